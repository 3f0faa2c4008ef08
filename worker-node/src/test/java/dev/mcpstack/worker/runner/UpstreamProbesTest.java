package dev.mcpstack.worker.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.sim.Faults;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.SimulatorSettings;
import dev.mcpstack.worker.testkit.SilentRunner;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Active upstream probes (docs/adr/0012) against real loopback servers: a refused port, a socket
 * that accepts and never answers, a runner whose answers change, and the simulator as a fallback.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UpstreamProbesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ProbeSettings FAST =
      new ProbeSettings(true, Duration.ofMillis(200), Duration.ofMillis(500), 2, "/models");

  private final ActorTestKit testKit = ActorTestKit.create();
  private ModelRunnerSimulator fallback;

  @BeforeAll
  void startSimulator() throws Exception {
    fallback =
        ModelRunnerSimulator.start(
                testKit.system(), new SimulatorSettings("127.0.0.1", 0, List.of("sim-small"), 4, Faults.none()))
            .toCompletableFuture()
            .get(20, TimeUnit.SECONDS);
  }

  @AfterAll
  void stop() {
    testKit.shutdownTestKit();
  }

  private static UpstreamSettings upstream(String name, String baseUrl, int priority) {
    return new UpstreamSettings(
        name, baseUrl, "", List.of(), 1, priority, 0, 1, 16, 256, Duration.ofSeconds(2),
        Duration.ofSeconds(10), Duration.ofSeconds(5), Duration.ofSeconds(5), 5, Duration.ofSeconds(1));
  }

  private static TaskSpec chat(String content) {
    ObjectNode request = JSON.createObjectNode().put("model", "sim-small");
    request.putArray("messages").addObject().put("role", "user").put("content", content);
    return new TaskSpec(TaskKind.CHAT, "sim-small", request);
  }

  private static String refusedPort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return "http://127.0.0.1:" + socket.getLocalPort() + "/v1";
    }
  }

  private Upstream named(ModelRunnerClient client, String name) {
    return client.upstreams().stream().filter(u -> u.name().equals(name)).findFirst().orElseThrow();
  }

  private long awaitProbe(Upstream upstream, Upstream.ProbeState expected, Duration max) {
    long start = System.nanoTime();
    testKit
        .createTestProbe()
        .awaitAssert(
            max,
            Duration.ofMillis(20),
            () -> {
              assertEquals(expected, upstream.probe().state(), upstream.name() + ": " + upstream.probe());
              return null;
            });
    return (System.nanoTime() - start) / 1_000_000;
  }

  @Test
  void idleDeadRunnersAreMarkedDownBeforeAClientPaysForThem() throws Exception {
    try (SilentRunner silent = new SilentRunner()) {
      ModelRunnerClient client =
          new ModelRunnerClient(
              testKit.system(),
              List.of(
                  upstream("refused", refusedPort(), 0),
                  upstream("silent", silent.baseUrl(), 0),
                  upstream("fallback", fallback.baseUrl() + "/v1", 1)),
              2);
      fallback.reset();
      long started = System.nanoTime();
      ActorRef<UpstreamProbes.Command> probes = testKit.spawn(UpstreamProbes.create(client.upstreams(), FAST));
      try {
        // two failed probes in a row: refused at once, silent after two 500 ms timeouts and a 200 ms pause
        long refusedMs = awaitProbe(named(client, "refused"), Upstream.ProbeState.DOWN, Duration.ofSeconds(10));
        awaitProbe(named(client, "silent"), Upstream.ProbeState.DOWN, Duration.ofSeconds(10));
        long silentMs = (System.nanoTime() - started) / 1_000_000;
        awaitProbe(named(client, "fallback"), Upstream.ProbeState.UP, Duration.ofSeconds(10));
        assertTrue(named(client, "silent").probe().detail().contains("no answer"), named(client, "silent").probe().toString());
        // a refused connect is reported as such; on a busy machine one probe may first run out of
        // its 500 ms before the refusal is seen, so the next probes are waited for
        testKit
            .createTestProbe()
            .awaitAssert(
                Duration.ofSeconds(10),
                () -> {
                  Upstream.Probe refused = named(client, "refused").probe();
                  assertTrue(refused.detail().contains("unreachable"), refused.toString());
                  assertEquals(Upstream.ProbeState.DOWN, refused.state(), refused.toString());
                  return null;
                });

        for (int i = 0; i < 5; i++) {
          TaskResult result = client.start("t", chat("x"), 1, choices -> null).result().toCompletableFuture().get(20, TimeUnit.SECONDS);
          assertEquals("fallback", result.upstream());
        }
        assertTrue(named(client, "refused").recentErrors().isEmpty(), "no client call paid for the refused runner");
        assertTrue(named(client, "silent").recentErrors().isEmpty(), "no client call paid for the silent runner");
        assertEquals(5L, fallback.stats().requestsByPath().getOrDefault("/v1/chat/completions", 0L));

        // no probe storm: one probe at a time, one interval after the previous ended
        long elapsedMs = (System.nanoTime() - started) / 1_000_000;
        long probesOfFallback = fallback.stats().requestsByPath().getOrDefault("/v1/models", 0L);
        assertTrue(
            probesOfFallback <= elapsedMs / FAST.interval().toMillis() + 1,
            probesOfFallback + " probes in " + elapsedMs + " ms");
        System.out.printf(
            "[figures] probes every %d ms, down after %d failures: refused runner down after %d ms,"
                + " silent runner (accepts, never answers; %d ms probe timeout) down after %d ms;"
                + " 5 of 5 calls served by the fallback, 0 paid for a dead runner;"
                + " %d probes of the healthy runner in %d ms%n",
            FAST.interval().toMillis(), FAST.downAfter(), refusedMs, FAST.timeout().toMillis(), silentMs,
            probesOfFallback, elapsedMs);
      } finally {
        testKit.stop(probes);
      }
    }
  }

  @Test
  void aRunnerIsMarkedUpWhenItAnswersAgainAndDownOnServerErrors() throws Exception {
    AtomicInteger status = new AtomicInteger(200);
    ServerBinding runner =
        Http.get(testKit.system())
            .newServerAt("127.0.0.1", 0)
            .bindSync(
                request -> {
                  request.discardEntityBytes(testKit.system());
                  return HttpResponse.create().withStatus(status.get());
                })
            .toCompletableFuture()
            .get(20, TimeUnit.SECONDS);
    try {
      ModelRunnerClient client =
          new ModelRunnerClient(
              testKit.system(),
              List.of(upstream("flaky", "http://127.0.0.1:" + runner.localAddress().getPort() + "/v1", 0)),
              2);
      Upstream flaky = client.upstreams().get(0);
      assertEquals(Upstream.ProbeState.UNKNOWN, flaky.probe().state());
      ActorRef<UpstreamProbes.Command> probes = testKit.spawn(UpstreamProbes.create(client.upstreams(), FAST));
      try {
        awaitProbe(flaky, Upstream.ProbeState.UP, Duration.ofSeconds(10));
        assertTrue(flaky.available());

        status.set(404); // a runner without /models still answers: alive
        awaitProbe(flaky, Upstream.ProbeState.UP, Duration.ofSeconds(10));

        status.set(503);
        long downMs = awaitProbe(flaky, Upstream.ProbeState.DOWN, Duration.ofSeconds(10));
        assertTrue(!flaky.available(), "a down upstream is not counted as usable");
        assertEquals("answered 503", flaky.probe().detail());
        assertEquals(0, flaky.recentErrors().size(), "probes are not client calls");
        assertEquals(Upstream.BreakerState.CLOSED, flaky.breakerState(), "probes do not touch the breaker");

        status.set(200);
        long upMs = awaitProbe(flaky, Upstream.ProbeState.UP, Duration.ofSeconds(10));
        assertTrue(flaky.available());
        System.out.printf(
            "[figures] probes every %d ms: a runner answering 503 marked down after %d ms, up again %d ms after it recovered%n",
            FAST.interval().toMillis(), downMs, upMs);
      } finally {
        testKit.stop(probes);
      }
    } finally {
      runner.unbind().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }
  }
}
