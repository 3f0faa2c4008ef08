package dev.mcpstack.shared;

import static org.junit.jupiter.api.Assertions.*;

import com.typesafe.config.ConfigFactory;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.junit.jupiter.api.Test;

class TraceContextTest {
  private static final String CLIENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  @Test
  void aValidTraceparentIsContinuedWithItsTracestate() {
    TraceContext t = TraceContext.accept(" " + CLIENT.toUpperCase() + " ", "vendor=abc", "req-1");
    assertEquals(CLIENT, t.traceparent());
    assertEquals("4bf92f3577b34da6a3ce929d0e0e4736", t.traceId());
    assertEquals("00f067aa0ba902b7", t.spanId());
    assertEquals("01", t.flags());
    assertEquals("vendor=abc", t.tracestate());
    assertEquals("req-1", t.requestId());
    TraceContext child = t.child();
    assertEquals(t.traceId(), child.traceId());
    assertNotEquals(t.spanId(), child.spanId());
    assertTrue(TraceContext.valid(child.traceparent()));
  }

  @Test
  void aMissingOrMalformedTraceparentStartsANewTrace() {
    for (String bad :
        new String[] {
          null,
          "",
          "00-not-a-trace-01",
          "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // invalid trace id
          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // invalid span id
          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // version 00 has 4 fields
          "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"
        }) {
      TraceContext t = TraceContext.accept(bad, "vendor=abc", "req-1");
      assertTrue(TraceContext.valid(t.traceparent()), t.traceparent());
      assertNotEquals("4bf92f3577b34da6a3ce929d0e0e4736", t.traceId(), String.valueOf(bad));
      assertNull(t.tracestate(), "a tracestate without its traceparent is dropped");
    }
    assertNotEquals(TraceContext.accept(null, null, null).traceId(), TraceContext.accept(null, null, null).traceId());
    // a later version's first four fields are understood
    assertTrue(TraceContext.valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"));
  }

  /** With tracing on, the OTLP exporter (JDK sender) is built from configuration and spans are made. */
  @Test
  void tracingOnBuildsTheOtlpExporter() {
    ActorTestKit kit =
        ActorTestKit.create(
            ConfigFactory.parseString(
                    "mcp.tracing { enabled = on, otlp-endpoint = \"http://127.0.0.1:9/v1/traces\", export-timeout = 1s }")
                .withFallback(ConfigFactory.load()));
    try {
      Tracing tracing = Tracing.get(kit.system());
      assertTrue(tracing.enabled());
      Span span = tracing.start("test", SpanKind.SERVER, TraceContext.accept(CLIENT, null, "r"));
      TraceContext own = Tracing.contextOf(span, null, "r");
      assertEquals("4bf92f3577b34da6a3ce929d0e0e4736", own.traceId());
      assertNotEquals("00f067aa0ba902b7", own.spanId());
      Tracing.end(span, null);
      Span root = tracing.start("root", SpanKind.SERVER, null);
      assertTrue(TraceContext.valid(Tracing.contextOf(root, null, null).traceparent()));
      root.end();
    } finally {
      kit.shutdownTestKit();
    }
  }

  @Test
  void tracingIsOffByDefault() {
    ActorTestKit kit = ActorTestKit.create();
    try {
      assertFalse(Tracing.get(kit.system()).enabled());
    } finally {
      kit.shutdownTestKit();
    }
  }
}
