package dev.mcpstack.worker.runner;

import dev.mcpstack.worker.task.AttemptRunner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.sim.Faults;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.RecordedRequest;
import dev.mcpstack.sim.SimulatorSettings;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The model-runner client against real simulator servers on loopback ports. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ModelRunnerClientTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final AttemptRunner.Output NO_OUTPUT = relay(choices -> {});

  /** An output that takes every delta at once. */
  private static AttemptRunner.Output relay(java.util.function.Consumer<JsonNode> take) {
    return choices -> {
      take.accept(choices);
      return java.util.concurrent.CompletableFuture.completedFuture(org.apache.pekko.Done.getInstance());
    };
  }

  private final ActorTestKit testKit = ActorTestKit.create();
  private ModelRunnerSimulator primary;
  private ModelRunnerSimulator secondary;

  @BeforeAll
  void startSimulators() throws Exception {
    SimulatorSettings settings =
        new SimulatorSettings("127.0.0.1", 0, List.of("sim-small", "sim-large"), 4, Faults.none());
    primary = await(ModelRunnerSimulator.start(testKit.system(), settings));
    secondary = await(ModelRunnerSimulator.start(testKit.system(), settings));
  }

  @BeforeEach
  void resetSimulators() {
    for (ModelRunnerSimulator sim : List.of(primary, secondary)) {
      sim.setDefaults(Faults.none());
      sim.reset();
    }
  }

  @AfterAll
  void stop() {
    testKit.shutdownTestKit();
  }

  // ---- fixtures ----

  /** Upstream settings for a test: generous limits unless a test narrows one. */
  private static final class Up {
    private final String name;
    private final String baseUrl;
    List<String> models = List.of();
    int weight = 1;
    int priority = 0;
    double rate = 1000;
    int burst = 100;
    int maxConcurrency = 16;
    int queueSize = 256;
    Duration requestTimeout = Duration.ofSeconds(10);
    Duration firstTokenTimeout = Duration.ofSeconds(5);
    int maxFailures = 5;
    Duration resetTimeout = Duration.ofSeconds(1);

    Up(String name, String baseUrl) {
      this.name = name;
      this.baseUrl = baseUrl;
    }

    UpstreamSettings build() {
      return new UpstreamSettings(
          name, baseUrl, "", models, weight, priority, rate, burst, maxConcurrency, queueSize,
          Duration.ofSeconds(2), requestTimeout, firstTokenTimeout, Duration.ofSeconds(5),
          maxFailures, resetTimeout);
    }
  }

  private static UpstreamSettings upstream(String name, String baseUrl) {
    return new Up(name, baseUrl).build();
  }

  private static UpstreamSettings build(Up up, java.util.function.Consumer<Up> narrow) {
    narrow.accept(up);
    return up.build();
  }

  private ModelRunnerClient client(UpstreamSettings... upstreams) {
    return new ModelRunnerClient(testKit.system(), List.of(upstreams), 2);
  }

  private static TaskSpec chat(String content, boolean stream) {
    ObjectNode request = JSON.createObjectNode().put("model", "sim-small").put("stream", stream);
    request.putArray("messages").addObject().put("role", "user").put("content", content);
    return new TaskSpec(TaskKind.CHAT, "sim-small", request);
  }

  private static <T> T await(CompletionStage<T> stage) throws Exception {
    return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
  }

  private static UpstreamFailure failureOf(CompletionStage<?> stage) throws Exception {
    try {
      stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return assertInstanceOf(UpstreamFailure.class, e.getCause());
    }
    return fail("expected the call to fail");
  }

  private static TaskResult run(ModelRunnerClient client, TaskSpec spec) throws Exception {
    return await(client.start("t", spec, 1, NO_OUTPUT).result());
  }

  private static String unusedPort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return "http://127.0.0.1:" + socket.getLocalPort() + "/v1";
    }
  }

  // ---- replies ----

  @Test
  void nonStreamedChatReturnsTheRunnersCompletionAndUsage() throws Exception {
    TaskResult result = run(client(upstream("p", primary.baseUrl() + "/v1")), chat("hello there", false));
    assertEquals(
        "Simulated reply to: hello there",
        result.body().at("/choices/0/message/content").asText());
    assertEquals(5, result.usage().completionTokens());
    assertEquals("p", result.upstream());
  }

  @Test
  void dockerModelRunnerPathsWork() throws Exception {
    TaskResult result =
        run(client(upstream("dmr", primary.baseUrl() + "/engines/v1")), chat("hi", false));
    assertEquals("Simulated reply to: hi", result.body().at("/choices/0/message/content").asText());
    assertEquals(1L, primary.stats().requestsByPath().get("/engines/v1/chat/completions"));
  }

  @Test
  void streamedChatRelaysDeltasThatReassembleToTheAnswer() throws Exception {
    StringBuilder relayed = new StringBuilder();
    List<String> finishes = new ArrayList<>();
    TaskResult result =
        await(
            client(upstream("p", primary.baseUrl() + "/v1"))
                .start(
                    "t",
                    chat("stream me please", true),
                    1,
                    relay(
                        choices -> {
                          relayed.append(TaskUpdate.ContentDelta.contentOf(choices));
                          String finish = TaskUpdate.ContentDelta.finishReasonOf(choices);
                          if (finish != null) {
                            finishes.add(finish);
                          }
                        }))
                .result());
    assertEquals("Simulated reply to: stream me please", relayed.toString());
    assertEquals(relayed.toString(), result.body().at("/choices/0/message/content").asText());
    assertEquals(List.of("stop"), finishes);
    assertTrue(result.usage().totalTokens() > 0, "usage is requested from the runner");
  }

  private static TaskSpec withTools(TaskSpec spec) {
    ObjectNode request = ((ObjectNode) spec.request()).deepCopy();
    var tools = request.putArray("tools");
    for (String name : List.of("get_weather", "get_time")) {
      tools.addObject().put("type", "function").putObject("function").put("name", name);
    }
    return new TaskSpec(spec.kind(), spec.model(), request);
  }

  @Test
  void streamedToolCallsAreRelayedAsSentAndAccumulatedIntoTheResult() throws Exception {
    List<JsonNode> relayed = new java.util.concurrent.CopyOnWriteArrayList<>();
    ModelRunnerClient client = client(upstream("p", primary.baseUrl() + "/v1"));
    TaskResult streamed =
        await(client.start("t", withTools(chat("weather in Oslo", true)), 1, relay(relayed::add)).result());
    TaskResult plain = await(client.start("t", withTools(chat("weather in Oslo", false)), 1, NO_OUTPUT).result());

    JsonNode expected = plain.body().at("/choices/0/message");
    JsonNode got = streamed.body().at("/choices/0/message");
    assertEquals(2, expected.get("tool_calls").size());
    assertEquals(expected.get("tool_calls"), got.get("tool_calls"), "arguments concatenated per index");
    assertTrue(got.get("content").isNull());
    assertEquals("tool_calls", streamed.body().at("/choices/0/finish_reason").asText());
    assertEquals(plain.usage(), streamed.usage());

    // every chunk after the role chunk, as the runner sent it: a head per call, then fragments, then the finish
    assertTrue(relayed.size() > 4, relayed.toString());
    JsonNode head = relayed.get(0).at("/0/delta/tool_calls/0");
    assertEquals(0, head.get("index").asInt());
    assertEquals("call_0", head.get("id").asText());
    assertEquals("get_weather", head.at("/function/name").asText());
    JsonNode fragment = relayed.get(1).at("/0/delta/tool_calls/0");
    assertEquals(0, fragment.get("index").asInt());
    assertFalse(fragment.has("id"));
    assertEquals("tool_calls", TaskUpdate.ContentDelta.finishReasonOf(relayed.get(relayed.size() - 1)));
  }

  /** What a richer runner streams: reasoning, logprobs, a call without text, two choices, a role-only chunk. */
  private static final String RICH_STREAM =
      """
      data: {"id":"r1","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}

      data: {"id":"r1","choices":[{"index":0,"delta":{"reasoning_content":"think "}},{"index":1,"delta":{"content":"B"}}]}

      data: {"id":"r1","choices":[{"index":0,"delta":{"reasoning_content":"hard","content":"","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"a\\""}}]},"logprobs":{"content":[{"token":"t1","logprob":-1.0}]}}]}

      data: {"id":"r1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"logprobs":{"content":[{"token":"t2","logprob":-2.0}]}}]}

      data: {"id":"r1","choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}

      data: {"id":"r1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"},{"index":1,"delta":{"refusal":"no"},"finish_reason":"stop"}]}

      data: {"id":"r1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}

      data: [DONE]

      """;

  /** A runner at a loopback port that answers every request with {@code body} as {@code type}. */
  private org.apache.pekko.http.javadsl.ServerBinding cannedRunner(
      org.apache.pekko.http.javadsl.model.ContentType type, String body) throws Exception {
    return await(
        org.apache.pekko.http.javadsl.Http.get(testKit.system())
            .newServerAt("127.0.0.1", 0)
            .bindSync(
                request -> {
                  request.discardEntityBytes(testKit.system());
                  return org.apache.pekko.http.javadsl.model.HttpResponse.create()
                      .withEntity(org.apache.pekko.http.javadsl.model.HttpEntities.create(type, body.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
                }));
  }

  @Test
  void aStreamAnsweredAsPlainJsonIsABrokenStreamWithItsContentType() throws Exception {
    var runner =
        cannedRunner(
            org.apache.pekko.http.javadsl.model.ContentTypes.APPLICATION_JSON,
            "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[]}");
    try {
      String url = "http://127.0.0.1:" + runner.localAddress().getPort() + "/v1";
      UpstreamFailure failure = failureOf(client(upstream("json", url)).start("t", chat("x", true), 1, NO_OUTPUT).result());
      assertEquals(ErrorCode.UPSTREAM_ERROR, failure.error().code());
      assertTrue(failure.detail().contains("application/json"), failure.detail());
    } finally {
      runner.unbind();
    }
  }

  @Test
  void aChunkOfHalfAMegabyteOnOneLineIsRead() throws Exception {
    String big = "x".repeat(500_000);
    var runner =
        cannedRunner(
            org.apache.pekko.http.javadsl.model.MediaTypes.TEXT_EVENT_STREAM.toContentType(),
            "data: {\"id\":\"b\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + big
                + "\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    try {
      String url = "http://127.0.0.1:" + runner.localAddress().getPort() + "/v1";
      TaskResult result = await(client(upstream("big", url)).start("t", chat("x", true), 1, NO_OUTPUT).result());
      assertEquals(big, result.body().at("/choices/0/message/content").asText());
    } finally {
      runner.unbind();
    }
  }

  @Test
  void everythingARunnerStreamsIsRelayedAndAccumulated() throws Exception {
    org.apache.pekko.http.javadsl.ServerBinding runner =
        cannedRunner(org.apache.pekko.http.javadsl.model.MediaTypes.TEXT_EVENT_STREAM.toContentType(), RICH_STREAM);
    try {
      List<JsonNode> relayed = new java.util.concurrent.CopyOnWriteArrayList<>();
      String url = "http://127.0.0.1:" + runner.localAddress().getPort() + "/v1";
      TaskResult result =
          await(client(upstream("rich", url)).start("t", chat("x", true), 1, relay(relayed::add)).result());

      List<String> chunks = RICH_STREAM.lines().filter(l -> l.startsWith("data: {")).toList();
      assertEquals(5, relayed.size(), "all but the role-only and the usage chunks");
      for (int i = 0; i < relayed.size(); i++) {
        assertEquals(JSON.readTree(chunks.get(i + 1).substring(6)).get("choices"), relayed.get(i), "as sent");
      }

      JsonNode expected =
          JSON.readTree(
              """
              [{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"think hard",
                 "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"a\\":1}"}},
                               {"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]},
                "logprobs":{"content":[{"token":"t1","logprob":-1.0},{"token":"t2","logprob":-2.0}]},
                "finish_reason":"tool_calls"},
               {"index":1,"message":{"role":"assistant","content":"B","refusal":"no"},"logprobs":null,
                "finish_reason":"stop"}]""");
      assertEquals(expected, result.body().get("choices"));
      assertEquals("r1", result.body().get("id").asText());
      assertEquals(7L, result.usage().totalTokens());
    } finally {
      await(runner.unbind());
    }
  }

  @Test
  void aStreamDroppedMidwayIsAnErrorNotAShortSuccess() throws Exception {
    primary.setDefaults(Faults.none().withDropAfterChunks(2));
    StringBuilder relayed = new StringBuilder();
    UpstreamFailure failure =
        failureOf(
            client(upstream("p", primary.baseUrl() + "/v1"))
                .start("t", chat("one two three four five", true), 1, relay(choices -> relayed.append(TaskUpdate.ContentDelta.contentOf(choices))))
                .result());
    assertEquals(ErrorCode.UPSTREAM_ERROR, failure.error().code());
    assertTrue(failure.retryable());
    assertFalse(relayed.toString().isEmpty(), "the first chunks were relayed");
    assertFalse(relayed.toString().equals("Simulated reply to: one two three four five"));
  }

  @Test
  void plainTextAndJsonErrorsAreBothParsed() throws Exception {
    primary.setDefaults(Faults.none().withFailStatus(503).withPlainTextErrors(true));
    UpstreamFailure plain = failureOf(client(upstream("p", primary.baseUrl() + "/v1")).start("t", chat("x", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.UPSTREAM_ERROR, plain.error().code());
    assertEquals(503, plain.error().upstreamStatus());
    assertTrue(plain.retryable());
    assertTrue(plain.error().message().contains("503"), plain.error().message());

    primary.setDefaults(Faults.none().withFailStatus(400));
    UpstreamFailure json = failureOf(client(upstream("p", primary.baseUrl() + "/v1")).start("t", chat("x", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.INVALID_REQUEST, json.error().code());
    assertFalse(json.retryable());
    assertFalse(json.error().message().startsWith("{"), "the runner's message, not its JSON");
  }

  @Test
  void retryAfterIsReadFromA429() throws Exception {
    primary.setDefaults(Faults.none().withFailStatus(429).withRetryAfter(Duration.ofSeconds(7)));
    UpstreamFailure failure =
        failureOf(client(upstream("p", primary.baseUrl() + "/v1")).start("t", chat("x", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.UNAVAILABLE, failure.error().code());
    assertEquals(Duration.ofSeconds(7), failure.retryAfter());
    assertTrue(failure.retryable());
  }

  @Test
  void unknownModelsArePermanentErrors() throws Exception {
    ObjectNode request = (ObjectNode) chat("x", false).request();
    UpstreamFailure fromRunner =
        failureOf(
            client(upstream("p", primary.baseUrl() + "/v1"))
                .start("t", new TaskSpec(TaskKind.CHAT, "no-such-model", request), 1, NO_OUTPUT)
                .result());
    assertEquals(ErrorCode.MODEL_NOT_FOUND, fromRunner.error().code());
    assertFalse(fromRunner.retryable());

    UpstreamSettings onlySmall =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.models = List.of("sim-small");
            });
    UpstreamFailure unrouted =
        failureOf(
            client(onlySmall)
                .start("t", new TaskSpec(TaskKind.CHAT, "sim-large", request), 1, NO_OUTPUT)
                .result());
    assertEquals(ErrorCode.MODEL_NOT_FOUND, unrouted.error().code());
    assertEquals(1, primary.stats().requests(), "the unrouted model never reached a runner");
  }

  @Test
  void aHangingRunnerTimesOut() throws Exception {
    primary.setDefaults(Faults.none().withHang(true));
    UpstreamSettings quick =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.requestTimeout = Duration.ofMillis(500);
              u.firstTokenTimeout = Duration.ofMillis(500);
            });
    UpstreamFailure failure = failureOf(client(quick).start("t", chat("x", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.TIMEOUT, failure.error().code());
    assertTrue(failure.retryable());
  }

  // ---- throttle, concurrency, queue ----

  @Test
  void theThrottleHoldsTheRate() throws Exception {
    int n = 11;
    int burst = 1;
    double rate = 20;
    UpstreamSettings throttled =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.rate = rate;
              u.burst = burst;
            });
    ModelRunnerClient client = client(throttled);
    List<CompletableFuture<TaskResult>> calls = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      calls.add(client.start("t", chat("x", false), 1, NO_OUTPUT).result().toCompletableFuture());
    }
    for (CompletableFuture<TaskResult> call : calls) {
      call.get(20, TimeUnit.SECONDS);
    }
    List<Long> arrivals =
        primary.stats().recent().stream().map(RecordedRequest::arrivalNanos).sorted().toList();
    assertEquals(n, arrivals.size());
    long spanMillis = (arrivals.get(n - 1) - arrivals.get(0)) / 1_000_000;
    long floorMillis = (long) ((n - burst) / rate * 1000);
    // the shaper spaces calls evenly; allow 10% for the clock granularity of the two sides
    assertTrue(spanMillis >= floorMillis * 0.9, "span " + spanMillis + " ms < " + floorMillis + " ms");
  }

  @Test
  void withoutARateOnlyTheConcurrencyCapHoldsCallsBack() throws Exception {
    primary.setDefaults(Faults.none().withLatency(Duration.ofSeconds(2)));
    UpstreamSettings unthrottled =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.rate = 0;
              u.burst = 1;
              u.maxConcurrency = 8;
            });
    ModelRunnerClient client = client(unthrottled);
    List<CompletableFuture<TaskResult>> calls = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      calls.add(client.start("t", chat("x", false), 1, NO_OUTPUT).result().toCompletableFuture());
    }
    for (CompletableFuture<TaskResult> call : calls) {
      call.get(20, TimeUnit.SECONDS);
    }
    // rate 0 is no throttle (not a division by zero): all 8 ran at once, up to the cap
    assertEquals(8, primary.stats().maxInFlight());
    assertThrows(
        IllegalArgumentException.class,
        () -> build(new Up("p", primary.baseUrl() + "/v1"), u -> u.rate = -1));
  }

  @Test
  void concurrencyIsCappedAndAFullQueueFailsFast() throws Exception {
    primary.setDefaults(Faults.none().withLatency(Duration.ofMillis(300)));
    UpstreamSettings capped =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.maxConcurrency = 3;
              u.queueSize = 4;
            });
    ModelRunnerClient client = client(capped);
    List<CompletableFuture<TaskResult>> calls = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      calls.add(client.start("t", chat("x", false), 1, NO_OUTPUT).result().toCompletableFuture());
    }
    int ok = 0;
    int queueFull = 0;
    for (CompletableFuture<TaskResult> call : calls) {
      try {
        call.get(20, TimeUnit.SECONDS);
        ok++;
      } catch (ExecutionException e) {
        UpstreamFailure f = assertInstanceOf(UpstreamFailure.class, e.getCause());
        assertEquals(ErrorCode.UNAVAILABLE, f.error().code());
        assertTrue(f.retryable() && f.notSent());
        queueFull++;
      }
    }
    assertTrue(ok >= 4, "the queued calls ran: " + ok);
    assertTrue(queueFull > 0, "some calls found the queue full");
    int maxInFlight = primary.stats().maxInFlight();
    assertTrue(maxInFlight <= 3, "max in flight " + maxInFlight);
    assertTrue(maxInFlight >= 2, "calls did overlap: " + maxInFlight);
  }

  // ---- breaker and routing ----

  @Test
  void theBreakerOpensFailsFastAndClosesAfterAHalfOpenSuccess() throws Exception {
    primary.setDefaults(Faults.none().withFailStatus(500));
    UpstreamSettings fragile =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.maxFailures = 2;
              u.resetTimeout = Duration.ofMillis(500);
            });
    ModelRunnerClient client = client(fragile);
    Upstream upstream = client.upstreams().get(0);
    failureOf(client.start("t", chat("x", false), 1, NO_OUTPUT).result());
    failureOf(client.start("t", chat("x", false), 1, NO_OUTPUT).result());
    awaitBreaker(upstream, Upstream.BreakerState.OPEN);

    UpstreamFailure fast = failureOf(client.start("t", chat("x", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.UNAVAILABLE, fast.error().code());
    assertTrue(fast.retryable());
    assertTrue(fast.deferred(), "never sent: a background task waits for the breaker without spending an attempt");
    assertTrue(fast.retryAfter().compareTo(Duration.ofMillis(500)) <= 0, "retry when a trial may go: " + fast.retryAfter());
    assertEquals(2, primary.stats().requests(), "an open breaker sends nothing");
    assertEquals("upstream_error", upstream.recentErrors().get(1).code(), "the failures are kept for operators");

    primary.setDefaults(Faults.none());
    TestProbe<Object> probe = testKit.createTestProbe();
    probe.awaitAssert(
        Duration.ofSeconds(10),
        () -> {
          assertEquals(Upstream.BreakerState.HALF_OPEN, upstream.breakerState());
          return null;
        });
    run(client, chat("x", false));
    // the breaker records the trial call's success on its own callback, just after the call
    probe.awaitAssert(
        Duration.ofSeconds(10),
        () -> {
          assertEquals(Upstream.BreakerState.CLOSED, upstream.breakerState());
          return null;
        });
  }

  /**
   * The breaker records a call's outcome on its own callback of the call's future, which may run
   * just after the caller sees the result: wait for it rather than assume the order.
   */
  private void awaitBreaker(Upstream upstream, Upstream.BreakerState expected) {
    testKit
        .createTestProbe()
        .awaitAssert(
            Duration.ofSeconds(10),
            () -> {
              assertEquals(expected, upstream.breakerState());
              return null;
            });
  }

  @Test
  void anOperatorResetClosesAnOpenBreaker() throws Exception {
    primary.setDefaults(Faults.none().withFailStatus(500));
    UpstreamSettings fragile =
        build(
            new Up("p", primary.baseUrl() + "/v1"),
            u -> {
              u.maxFailures = 1;
              u.resetTimeout = Duration.ofMinutes(10);
            });
    ModelRunnerClient client = client(fragile);
    Upstream upstream = client.upstreams().get(0);
    failureOf(client.start("t", chat("x", false), 1, NO_OUTPUT).result());
    awaitBreaker(upstream, Upstream.BreakerState.OPEN);
    primary.setDefaults(Faults.none());
    upstream.resetBreaker();
    assertEquals(Upstream.BreakerState.CLOSED, upstream.breakerState());
    assertEquals("Simulated reply to: x", run(client, chat("x", false)).body().at("/choices/0/message/content").asText());
  }

  @Test
  void aFallbackUpstreamServesWhileThePrimaryIsDown() throws Exception {
    UpstreamSettings down =
        build(
            new Up("primary", unusedPort()),
            u -> {
              u.maxFailures = 2;
              u.resetTimeout = Duration.ofSeconds(30);
            });
    UpstreamSettings fallback =
        build(
            new Up("fallback", secondary.baseUrl() + "/v1"),
            u -> {
              u.priority = 1;
              u.maxFailures = 2;
              u.resetTimeout = Duration.ofSeconds(30);
            });
    ModelRunnerClient client = client(down, fallback);
    for (int i = 0; i < 4; i++) {
      assertEquals("fallback", run(client, chat("x", false)).upstream());
    }
    Upstream primaryUpstream =
        client.upstreams().stream().filter(u -> u.name().equals("primary")).findFirst().orElseThrow();
    assertEquals(
        1, primaryUpstream.recentErrors().size(), "once refused, the primary goes to the back of the line");
    assertEquals(4, secondary.stats().requests());
  }

  @Test
  void theNextAttemptAvoidsTheUpstreamThatJustFailedIt() throws Exception {
    primary.setDefaults(Faults.none().withFailStatus(500));
    ModelRunnerClient client =
        client(
            build(new Up("a", primary.baseUrl() + "/v1"), u -> u.weight = 1),
            // weight 0: never the first pick (1,000:1 still picked b one time in a thousand)
            build(new Up("b", secondary.baseUrl() + "/v1"), u -> u.weight = 0));
    UpstreamFailure first = failureOf(client.start("t", chat("x", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.UPSTREAM_ERROR, first.error().code());
    assertFalse(first.error().message().contains("simulated"), "the runner's own text stays internal");
    assertEquals("b", run(client, chat("x", false)).upstream(), "the retry went to the other runner");
  }

  @Test
  void equalPriorityUpstreamsSplitTrafficByWeight() throws Exception {
    UpstreamSettings a =
        build(
            new Up("a", primary.baseUrl() + "/v1"),
            u -> {
              u.weight = 3;
              u.rate = 10000;
              u.burst = 1000;
              u.queueSize = 1024;
            });
    UpstreamSettings b =
        build(
            new Up("b", secondary.baseUrl() + "/v1"),
            u -> {
              u.rate = 10000;
              u.burst = 1000;
              u.queueSize = 1024;
            });
    ModelRunnerClient client = client(a, b);
    int total = 400;
    List<CompletableFuture<TaskResult>> calls = new ArrayList<>();
    for (int i = 0; i < total; i++) {
      calls.add(client.start("t", chat("x", false), 1, NO_OUTPUT).result().toCompletableFuture());
    }
    int toA = 0;
    for (CompletableFuture<TaskResult> call : calls) {
      if (call.get(30, TimeUnit.SECONDS).upstream().equals("a")) {
        toA++;
      }
    }
    // expected 300; 6 standard deviations (sqrt(400*0.75*0.25) ≈ 8.7) keep this from ever flaking
    assertTrue(Math.abs(toA - 300) <= 52, "share of a: " + toA + "/" + total);
  }

  // ---- embeddings and warm-up ----

  @Test
  void embeddingsAreBatchedAndReassembledInOrder() throws Exception {
    ObjectNode request = JSON.createObjectNode().put("model", "sim-small");
    var input = request.putArray("input");
    for (int i = 0; i < 5; i++) {
      input.add("text " + i);
    }
    TaskResult result =
        run(client(upstream("p", primary.baseUrl() + "/v1")), new TaskSpec(TaskKind.EMBEDDINGS, "sim-small", request));
    assertEquals(5, result.body().path("data").size());
    for (int i = 0; i < 5; i++) {
      assertEquals(i, result.body().path("data").get(i).path("index").asInt());
    }
    assertEquals(2, primary.stats().maxEmbeddingBatch());
    assertEquals(3L, primary.stats().requests());

    ObjectNode single = JSON.createObjectNode().put("model", "sim-small").put("input", "text 3");
    TaskResult one =
        run(client(upstream("p", primary.baseUrl() + "/v1")), new TaskSpec(TaskKind.EMBEDDINGS, "sim-small", single));
    assertEquals(
        result.body().path("data").get(3).path("embedding"),
        one.body().path("data").get(0).path("embedding"),
        "same text, same vector, whichever batch it was in");
  }

  @Test
  void warmupLoadsTheModelOnEveryUpstreamThatServesIt() throws Exception {
    TaskResult result =
        run(
            client(upstream("a", primary.baseUrl() + "/v1"), upstream("b", secondary.baseUrl() + "/v1")),
            new TaskSpec(TaskKind.MODEL_WARMUP, "sim-small", JSON.createObjectNode()));
    assertEquals(2, result.body().path("loaded").asInt());
    assertEquals(1L, primary.stats().requests());
    assertEquals(1L, secondary.stats().requests());
  }

  @Test
  void cancelledCallsDoNotOpenTheBreaker() throws Exception {
    primary.setDefaults(Faults.none().withTokensPerSecond(5));
    ModelRunnerClient client = client(build(new Up("p", primary.baseUrl() + "/v1"), u -> u.maxFailures = 2));
    for (int i = 0; i < 4; i++) {
      CompletableFuture<Void> firstDelta = new CompletableFuture<>();
      var attempt =
          client.start("t", chat("a long answer with many words in it", true), 1, relay(choices -> firstDelta.complete(null)));
      firstDelta.get(20, TimeUnit.SECONDS);
      attempt.cancel(); // the client left
      assertTrue(attempt.result().toCompletableFuture().handle((r, e) -> e != null).get(20, TimeUnit.SECONDS));
    }
    assertEquals(Upstream.BreakerState.CLOSED, client.upstreams().get(0).breakerState(), "leaving clients are not runner failures");
  }

  @Test
  void theFirstEventMayTakeLongerThanTheIdleTimeout() throws Exception {
    // idle-timeout 5 s (as in every test upstream) but first-token-timeout 20 s: a 7 s prefill is fine
    primary.setDefaults(Faults.none().withTimeToFirstToken(Duration.ofSeconds(7)));
    ModelRunnerClient client =
        client(build(new Up("p", primary.baseUrl() + "/v1"), u -> u.firstTokenTimeout = Duration.ofSeconds(20)));
    TaskResult result = await(client.start("t", chat("slow to start", true), 1, NO_OUTPUT).result());
    assertEquals("Simulated reply to: slow to start", result.body().at("/choices/0/message/content").asText());
  }

  @Test
  void cancellingAStreamClosesTheRunnersConnection() throws Exception {
    primary.setDefaults(Faults.none().withTokensPerSecond(5));
    CompletableFuture<Void> firstDelta = new CompletableFuture<>();
    var attempt =
        client(upstream("p", primary.baseUrl() + "/v1"))
            .start("t", chat("a long answer with many words in it", true), 1, relay(choices -> firstDelta.complete(null)));
    firstDelta.get(20, TimeUnit.SECONDS);
    attempt.cancel();
    try {
      attempt.result().toCompletableFuture().get(20, TimeUnit.SECONDS);
      fail("a cancelled stream must not succeed");
    } catch (ExecutionException expected) {
      // aborted
    } catch (TimeoutException e) {
      fail("cancel did not end the stream");
    }
    TestProbe<Object> probe = testKit.createTestProbe();
    probe.awaitAssert(
        Duration.ofSeconds(10),
        () -> {
          assertEquals(0, primary.stats().inFlight());
          return null;
        });
  }

  /** Fails unless {@code attempt} ends cancelled within 20 s. */
  private static void assertCancelled(AttemptRunner.Attempt attempt) throws Exception {
    Throwable failure =
        attempt.result().toCompletableFuture().handle((r, e) -> e).get(20, TimeUnit.SECONDS);
    assertInstanceOf(java.util.concurrent.CancellationException.class, dev.mcpstack.shared.Failures.unwrap(failure));
  }

  /** Waits until the runner saw {@code abandoned} calls whose client left, and has none in flight. */
  private void awaitAbandoned(long abandoned) {
    testKit.createTestProbe().awaitAssert(
        Duration.ofSeconds(10),
        () -> {
          assertEquals(abandoned, primary.stats().abandoned(), "calls whose connection we closed");
          assertEquals(0, primary.stats().inFlight());
          return null;
        });
  }

  private void awaitInFlight(int n) {
    testKit.createTestProbe().awaitAssert(
        Duration.ofSeconds(10),
        () -> {
          assertEquals(n, primary.stats().inFlight(), "the runner has the call");
          return null;
        });
  }

  @Test
  void cancellingANonStreamedCallClosesTheRunnersConnection() throws Exception {
    primary.setDefaults(Faults.none().withLatency(Duration.ofSeconds(30)));
    ModelRunnerClient client =
        client(build(new Up("p", primary.baseUrl() + "/v1"), u -> u.requestTimeout = Duration.ofSeconds(60)));
    AttemptRunner.Attempt attempt = client.start("t", chat("nobody will read this", false), 1, NO_OUTPUT);
    awaitInFlight(1);
    attempt.cancel(); // a DELETE, a deadline, or the client left
    assertCancelled(attempt);
    awaitAbandoned(1); // the runner saw its client go, long before its 30 s answer

    // the same for embeddings, and the upstream goes on serving on a fresh connection
    ObjectNode embed = JSON.createObjectNode().put("model", "sim-small");
    embed.putArray("input").add("one").add("two").add("three");
    AttemptRunner.Attempt embeddings =
        client.start("t", new TaskSpec(TaskKind.EMBEDDINGS, "sim-small", embed), 1, NO_OUTPUT);
    awaitInFlight(2); // two batches of at most two inputs
    embeddings.cancel();
    assertCancelled(embeddings);
    awaitAbandoned(3);
    primary.setDefaults(Faults.none());
    assertEquals(
        "Simulated reply to: after",
        run(client, chat("after", false)).body().at("/choices/0/message/content").asText());
    assertEquals(Upstream.BreakerState.CLOSED, client.upstreams().get(0).breakerState());
  }

  @Test
  void cancellingAStreamBeforeItsHeadersClosesTheRunnersConnection() throws Exception {
    // a runner that answers a stream's headers only with its first token (a long prefill)
    primary.setDefaults(Faults.none().withLatency(Duration.ofSeconds(30)));
    ModelRunnerClient client =
        client(build(new Up("p", primary.baseUrl() + "/v1"), u -> u.firstTokenTimeout = Duration.ofSeconds(60)));
    AttemptRunner.Attempt attempt = client.start("t", chat("a long prefill", true), 1, NO_OUTPUT);
    awaitInFlight(1);
    attempt.cancel();
    assertCancelled(attempt);
    awaitAbandoned(1);
  }

  @Test
  void aCallThatTimesOutClosesTheRunnersConnection() throws Exception {
    primary.setDefaults(Faults.none().withLatency(Duration.ofSeconds(30)));
    ModelRunnerClient client =
        client(build(new Up("p", primary.baseUrl() + "/v1"), u -> u.requestTimeout = Duration.ofSeconds(1)));
    UpstreamFailure failure = failureOf(client.start("t", chat("too slow", false), 1, NO_OUTPUT).result());
    assertEquals(ErrorCode.TIMEOUT, failure.error().code());
    awaitAbandoned(1); // the runner does not compute on for nobody
  }

  @Test
  void answeredCallsKeepTheirConnectionAlive() throws Exception {
    ModelRunnerClient client = client(upstream("p", primary.baseUrl() + "/v1"));
    for (int i = 0; i < 10; i++) {
      run(client, chat("call " + i, false));
    }
    assertEquals(10, primary.stats().requests());
    // at most one: the pool may still hold an idle connection of an earlier test with the same settings
    assertTrue(primary.stats().connections() <= 1, "one pooled connection for ten calls in a row, not one each");
    assertEquals(0, primary.stats().abandoned());
  }
}
