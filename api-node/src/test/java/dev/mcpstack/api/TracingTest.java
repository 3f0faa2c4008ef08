package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.chatBody;
import static org.junit.jupiter.api.Assertions.*;

import dev.mcpstack.shared.Tracing;
import dev.mcpstack.sim.RecordedRequest;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Trace context across two nodes of one cluster (node A: api + worker, node B: api only): a chat
 * sent to B runs on A's worker, and its spans (B's request; A's task, attempt and runner call) form
 * one tree under the client's traceparent; the runner receives traceparent and X-Request-Id.
 * Each node's spans go to an in-memory exporter of its own.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TracingTest {
  private static final Duration WAIT = Duration.ofSeconds(20);
  private static final String TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
  private static final String CLIENT_SPAN = "00f067aa0ba902b7";

  private ApiFixture a;
  private ApiFixture b;
  private final InMemorySpanExporter spansA = InMemorySpanExporter.create();
  private final InMemorySpanExporter spansB = InMemorySpanExporter.create();

  @BeforeAll
  void start() throws Exception {
    a = ApiFixture.start("TracingTest");
    b = a.joinApiNode("");
  }

  @AfterAll
  void stop() throws Exception {
    if (b != null) {
      b.close();
    }
    if (a != null) {
      a.close();
    }
  }

  @BeforeEach
  void reset() {
    a.resetSimulator();
    spansA.reset();
    spansB.reset();
  }

  private static OpenTelemetrySdk sdk(InMemorySpanExporter exporter) {
    return OpenTelemetrySdk.builder()
        .setTracerProvider(SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(exporter)).build())
        .build();
  }

  private void tracing(boolean on) {
    Tracing.get(a.node).use(on ? sdk(spansA) : null);
    Tracing.get(b.node).use(on ? sdk(spansB) : null);
  }

  private RecordedRequest runnerCall() {
    List<RecordedRequest> calls =
        a.sim.stats().recent().stream().filter(r -> r.path().endsWith("/chat/completions")).toList();
    assertEquals(1, calls.size(), calls.toString());
    return calls.get(0);
  }

  private static SpanData named(List<SpanData> spans, String name) {
    return spans.stream().filter(s -> s.getName().equals(name)).findFirst().orElseThrow(() -> new AssertionError(name + " not in " + spans));
  }

  @Test
  void oneRequestMakesOneSpanTreeAcrossTheApiNodeAndTheWorker() throws Exception {
    tracing(true);
    try {
      HttpResponse<String> r =
          b.post(
              "/v1/chat/completions",
              chatBody("hi"),
              "traceparent", "00-" + TRACE_ID + "-" + CLIENT_SPAN + "-01",
              "tracestate", "vendor=abc",
              "X-Request-Id", "req-trace-1");
      assertEquals(200, r.statusCode(), r.body());

      a.eventually(WAIT, () -> assertEquals(3, spansA.getFinishedSpanItems().size(), spansA.getFinishedSpanItems().toString()));
      b.eventually(WAIT, () -> assertEquals(1, spansB.getFinishedSpanItems().size(), spansB.getFinishedSpanItems().toString()));

      SpanData request = named(spansB.getFinishedSpanItems(), "POST /v1/chat/completions");
      assertEquals(SpanKind.SERVER, request.getKind());
      assertEquals(TRACE_ID, request.getTraceId());
      assertEquals(CLIENT_SPAN, request.getParentSpanId());
      assertEquals(200L, request.getAttributes().get(io.opentelemetry.api.common.AttributeKey.longKey("http.response.status_code")));

      List<SpanData> worker = spansA.getFinishedSpanItems();
      SpanData task = named(worker, "task chat");
      SpanData attempt = named(worker, "attempt");
      SpanData call = named(worker, "POST /chat/completions");
      for (SpanData s : worker) {
        assertEquals(TRACE_ID, s.getTraceId(), s.toString());
      }
      assertEquals(request.getSpanId(), task.getParentSpanId());
      assertEquals(task.getSpanId(), attempt.getParentSpanId());
      assertEquals(attempt.getSpanId(), call.getParentSpanId());
      assertEquals(SpanKind.CLIENT, call.getKind());

      RecordedRequest sent = runnerCall();
      assertEquals("00-" + TRACE_ID + "-" + call.getSpanId() + "-01", sent.headers().get("traceparent"));
      assertEquals("vendor=abc", sent.headers().get("tracestate"));
      assertEquals("req-trace-1", sent.headers().get("x-request-id"));
    } finally {
      tracing(false);
    }
  }

  @Test
  void withTracingOffTheRunnerStillGetsTheTraceAndTheRequestId() throws Exception {
    tracing(false);
    HttpResponse<String> r =
        b.post("/v1/chat/completions", chatBody("hi"), "traceparent", "00-" + TRACE_ID + "-" + CLIENT_SPAN + "-01");
    assertEquals(200, r.statusCode(), r.body());
    String requestId = r.headers().firstValue("X-Request-Id").orElseThrow();
    RecordedRequest sent = runnerCall();
    String traceparent = sent.headers().get("traceparent");
    assertNotNull(traceparent, sent.headers().toString());
    assertTrue(traceparent.startsWith("00-" + TRACE_ID + "-"), traceparent);
    assertNotEquals(CLIENT_SPAN, traceparent.substring(36, 52), "the runner call has a span id of its own");
    assertEquals(requestId, sent.headers().get("x-request-id"));
    assertTrue(spansA.getFinishedSpanItems().isEmpty());
    assertTrue(spansB.getFinishedSpanItems().isEmpty());
  }

  @Test
  void aMalformedOrMissingTraceparentStartsANewTrace() throws Exception {
    tracing(false);
    HttpResponse<String> r = b.post("/v1/chat/completions", chatBody("hi"), "traceparent", "00-not-a-trace-01");
    assertEquals(200, r.statusCode(), r.body());
    String first = runnerCall().headers().get("traceparent");
    assertNotNull(first);
    assertTrue(dev.mcpstack.shared.TraceContext.valid(first), first);
    a.resetSimulator();
    HttpResponse<String> again = a.post("/v1/chat/completions", chatBody("hi"));
    assertEquals(200, again.statusCode(), again.body());
    String second = runnerCall().headers().get("traceparent");
    assertTrue(dev.mcpstack.shared.TraceContext.valid(second), second);
    assertNotEquals(first.substring(3, 35), second.substring(3, 35), "two requests without a trace: two traces");
  }
}
