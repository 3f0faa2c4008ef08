package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.JSON;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.dataEvents;
import static dev.mcpstack.api.ApiFixture.streamBody;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import dev.mcpstack.worker.testkit.SilentRunner;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Chaos on the runner side (issue 10), through the whole path: HTTP → task entity → runner client →
 * real loopback runners. Every scenario checks that no accepted task was lost (each one succeeded)
 * and none finished twice (the runners gave exactly one successful answer per task), and prints its
 * figures.
 */
class RunnerChaosTest {
  private static final String ADMIN = "chaos-admin-token";

  /** One task of the load: its kind, its answer, how long it took from the client's side. */
  private record Outcome(String kind, String text, long millis) {}

  /**
   * Sends {@code perKind} synchronous chats, streamed chats and async tasks at once; completes
   * with each one's outcome once it has its answer (async tasks: once polling shows them finished).
   */
  private static List<CompletableFuture<Outcome>> load(ApiFixture api, String tag, int perKind, int asyncTimeoutSeconds) {
    List<CompletableFuture<Outcome>> all = new ArrayList<>();
    for (int i = 0; i < perKind; i++) {
      long start = System.nanoTime();
      String sync = tag + " sync " + i;
      all.add(
          send(api, "/v1/chat/completions", chatBody(sync))
              .thenApply(
                  r -> {
                    assertEquals(200, r.statusCode(), r.body());
                    return new Outcome("sync", unchecked(() -> JSON.readTree(r.body())).at("/choices/0/message/content").asText(), since(start));
                  }));
      String streamed = tag + " streamed " + i;
      all.add(
          send(api, "/v1/chat/completions", streamBody(streamed, true))
              .thenApply(
                  r -> {
                    assertEquals(200, r.statusCode(), r.body());
                    List<String> events = dataEvents(r.body());
                    assertEquals("[DONE]", events.get(events.size() - 1), r.body());
                    StringBuilder text = new StringBuilder();
                    for (String e : events.subList(0, events.size() - 1)) {
                      JsonNode chunk = unchecked(() -> JSON.readTree(e));
                      assertTrue(chunk.path("error").isMissingNode(), r.body());
                      text.append(chunk.at("/choices/0/delta/content").asText(""));
                    }
                    return new Outcome("streamed", text.toString(), since(start));
                  }));
      String async = tag + " async " + i;
      all.add(
          send(
                  api,
                  "/v1/tasks",
                  "{\"kind\":\"chat\",\"request\":" + chatBody(async) + ",\"timeout_seconds\":" + asyncTimeoutSeconds + "}")
              .thenApply(
                  r -> {
                    assertEquals(202, r.statusCode(), r.body());
                    return unchecked(() -> JSON.readTree(r.body())).path("id").asText();
                  })
              .thenCompose(id -> finished(api, id, start, asyncTimeoutSeconds)));
    }
    return all;
  }

  /**
   * Completes when the async task {@code id} succeeded, polling it without holding a thread: one
   * GET, then the next 50 ms after the answer, until {@code maxSeconds}.
   */
  private static CompletableFuture<Outcome> finished(ApiFixture api, String id, long start, int maxSeconds) {
    return api.client
        .sendAsync(api.request("/v1/tasks/" + id).GET().build(), HttpResponse.BodyHandlers.ofString())
        .thenCompose(
            r -> {
              JsonNode t = unchecked(() -> JSON.readTree(r.body()));
              String status = t.path("status").asText();
              if (status.equals("succeeded")) {
                return CompletableFuture.completedFuture(
                    new Outcome("async", t.at("/result/choices/0/message/content").asText(), since(start)));
              }
              assertTrue(Set.of("queued", "running", "retry_scheduled").contains(status), "accepted task lost: " + t);
              assertTrue(since(start) < maxSeconds * 1000L, "missed its deadline: " + t);
              return CompletableFuture.supplyAsync(
                      () -> null, CompletableFuture.delayedExecutor(50, TimeUnit.MILLISECONDS))
                  .thenCompose(x -> finished(api, id, start, maxSeconds));
            });
  }

  private static CompletableFuture<HttpResponse<String>> send(ApiFixture api, String path, String body) {
    HttpRequest request =
        api.request(path).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
    return api.client.sendAsync(request, HttpResponse.BodyHandlers.ofString());
  }

  private static List<Outcome> all(List<CompletableFuture<Outcome>> load, Duration max) throws Exception {
    CompletableFuture.allOf(load.toArray(CompletableFuture[]::new)).get(max.toMillis(), TimeUnit.MILLISECONDS);
    return load.stream().map(CompletableFuture::join).toList();
  }

  /** Every task got its own answer: the simulator's reply names the prompt it was given. */
  private static void assertEachAnswered(List<Outcome> outcomes, String tag, int perKind) {
    List<String> texts = new ArrayList<>(outcomes.stream().map(Outcome::text).toList());
    List<String> expected = new ArrayList<>();
    for (String kind : List.of("sync", "streamed", "async")) {
      for (int i = 0; i < perKind; i++) {
        expected.add("Simulated reply to: " + tag + " " + kind + " " + i);
      }
    }
    Collections.sort(texts);
    Collections.sort(expected);
    assertEquals(expected, texts, "no accepted task lost");
  }

  /** Chat calls the simulator answered with 200: one per task, or some task finished twice. */
  private static long servedChats(ApiFixture api) {
    return api.sim.stats().recent().stream()
        .filter(r -> r.path().endsWith("/chat/completions") && r.status() == 200)
        .count();
  }

  private static long failedChats(ApiFixture api) {
    return api.sim.stats().recent().stream()
        .filter(r -> r.path().endsWith("/chat/completions") && r.status() >= 500)
        .count();
  }

  private static long max(List<Outcome> outcomes, String kind) {
    return outcomes.stream().filter(o -> o.kind().equals(kind)).mapToLong(Outcome::millis).max().orElse(0);
  }

  private static long since(long startNanos) {
    return (System.nanoTime() - startNanos) / 1_000_000;
  }

  private static JsonNode upstream(ApiFixture api, String name) throws Exception {
    JsonNode body = JSON.readTree(api.get("/admin/upstreams", "Authorization", "Bearer " + ADMIN).body());
    for (JsonNode u : body.at("/workers/0/upstreams")) {
      if (u.path("name").asText().equals(name)) {
        return u;
      }
    }
    throw new AssertionError("no upstream " + name + " in " + body);
  }

  @FunctionalInterface
  private interface Risky<T> {
    T get() throws Exception;
  }

  private static <T> T unchecked(Risky<T> f) {
    try {
      return f.get();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void aRunnerFailingThirtyPercentOfCallsCostsRetriesButNoTask() throws Exception {
    int perKind = 40;
    int deadlineSeconds = 60;
    // production breaker and backoff floor; sync chats bounded by chat-timeout. 10 attempts, not the
    // default 5: a task fails when all its attempts hit failures, 0.3^5 = 0.24 % of tasks with 5,
    // about 0.3 of these 120 per run (a verify hit it); with 10, 0.3^10 = 6e-6 per task
    try (ApiFixture api =
        ApiFixture.start(
            "RunnerChaosFlaky",
            "mcp.api.admin-token = \"" + ADMIN + "\"\n"
                + "mcp.api.chat-timeout = " + deadlineSeconds + "s\n"
                + "mcp.worker.tasks.max-attempts = 10\n")) {
      api.sim.setDefaults(Faults.none().withFailStatus(503).withFailRatio(0.3).withLatency(Duration.ofMillis(20)));
      api.sim.reset();
      long start = System.nanoTime();
      List<Outcome> outcomes = all(load(api, "flaky", perKind, deadlineSeconds), Duration.ofSeconds(deadlineSeconds + 10));
      long tookMs = since(start);

      assertEachAnswered(outcomes, "flaky", perKind);
      for (Outcome o : outcomes) {
        assertTrue(o.millis() < deadlineSeconds * 1000L, o + " missed its deadline");
      }
      assertEquals(3L * perKind, servedChats(api), "one successful runner answer per task: none finished twice");
      long failed = failedChats(api);
      assertTrue(failed > 0, "the runner did fail calls");
      System.out.printf(
          "[figures] runner failing 30%% of calls with 503: %d of %d tasks succeeded (%d sync, %d streamed, %d async)"
              + " in %d ms; runner calls %d, of which %d failed (%.0f %%); slowest sync %d ms, streamed %d ms, async %d ms;"
              + " breaker now %s%n",
          outcomes.size(), 3 * perKind, perKind, perKind, perKind, tookMs, servedChats(api) + failed, failed,
          100.0 * failed / (servedChats(api) + failed), max(outcomes, "sync"), max(outcomes, "streamed"),
          max(outcomes, "async"), upstream(api, "default").path("breaker").asText());
    }
  }

  @Test
  void aRunnerThatAcceptsAndNeverAnswersTimesOutOpensItsBreakerAndTheFallbackServes() throws Exception {
    int perKind = 10;
    try (SilentRunner silent = new SilentRunner();
        ApiFixture api =
            ApiFixture.start(
                "RunnerChaosHang",
                "mcp.api.admin-token = \"" + ADMIN + "\"\n"
                    + "mcp.api.chat-timeout = 30s\n"
                    + "mcp.worker.upstreams.hang { base-url = \"" + silent.baseUrl() + "\", priority = 0,"
                    + " request-timeout = 1s, first-token-timeout = 1s, breaker { max-failures = 3, reset-timeout = 10m } }\n"
                    + "mcp.worker.upstreams.default.priority = 1\n")) {
      api.sim.reset();
      long start = System.nanoTime();
      List<CompletableFuture<Outcome>> firstWave = load(api, "hang", perKind, 30);
      // the time until the breaker opened, polled while the first wave runs
      api.eventually(
          Duration.ofSeconds(20),
          () -> assertEquals("open", upstream(api, "hang").path("breaker").asText()));
      long breakerOpenMs = since(start);
      List<Outcome> first = all(firstWave, Duration.ofSeconds(40));
      assertEachAnswered(first, "hang", perKind);
      long paidTimeout = first.stream().filter(o -> o.millis() >= 1000).count();
      JsonNode hang = upstream(api, "hang");
      boolean timedOut = false;
      for (JsonNode e : hang.path("recent_errors")) {
        timedOut |= e.path("code").asText().equals("timeout");
      }
      assertTrue(timedOut, "the hanging runner's calls timed out: " + hang);

      // the breaker is open: nothing more is sent to the hanging runner, nobody waits for it
      int connections = silent.connections();
      long secondStart = System.nanoTime();
      List<Outcome> second = all(load(api, "after", perKind, 30), Duration.ofSeconds(30));
      long secondMs = since(secondStart);
      assertEachAnswered(second, "after", perKind);
      assertEquals(connections, silent.connections(), "no call reached the hanging runner once its breaker was open");
      long slowestAfter = second.stream().mapToLong(Outcome::millis).max().orElse(0);

      long served = servedChats(api);
      assertEquals(6L * perKind, served, "every task served by the fallback, once: none finished twice");
      System.out.printf(
          "[figures] preferred runner accepts and never answers (1 s timeouts, breaker after 3 failures):"
              + " breaker open %d ms after the load began; first wave %d tasks, %d of them paid a timeout (slowest %d ms);"
              + " second wave %d tasks in %d ms, slowest %d ms, 0 calls to the hanging runner;"
              + " fallback served %d of %d tasks (100 %%); hanging runner saw %d connections%n",
          breakerOpenMs, first.size(), paidTimeout, first.stream().mapToLong(Outcome::millis).max().orElse(0),
          second.size(), secondMs, slowestAfter, served, 6 * perKind, silent.connections());
    }
  }

  @Test
  void anIdleDeadRunnerIsMarkedDownByItsProbesBeforeAClientPaysForIt() throws Exception {
    int perKind = 5;
    String dead;
    try (java.net.ServerSocket socket = new java.net.ServerSocket(0)) {
      dead = "http://127.0.0.1:" + socket.getLocalPort() + "/v1";
    }
    long start = System.nanoTime();
    try (ApiFixture api =
        ApiFixture.start(
            "RunnerChaosProbes",
            "mcp.api.admin-token = \"" + ADMIN + "\"\n"
                + "mcp.worker.upstream-probes { enabled = on, interval = 200ms, timeout = 500ms, down-after = 2 }\n"
                + "mcp.worker.upstreams.dead { base-url = \"" + dead + "\", priority = 0 }\n"
                + "mcp.worker.upstreams.default.priority = 1\n")) {
      long upMs = since(start);
      api.eventually(
          Duration.ofSeconds(10),
          () -> assertEquals("down", upstream(api, "dead").at("/probe/state").asText()));
      long downMs = since(start);
      JsonNode deadUpstream = upstream(api, "dead");
      assertTrue(deadUpstream.at("/probe/detail").asText().contains("unreachable"), deadUpstream.toString());
      assertTrue(deadUpstream.at("/probe/at").isIntegralNumber(), deadUpstream.toString());
      api.eventually(
          Duration.ofSeconds(10),
          () -> assertEquals("up", upstream(api, "default").at("/probe/state").asText()));

      api.sim.reset();
      List<Outcome> outcomes = all(load(api, "probed", perKind, 30), Duration.ofSeconds(30));
      assertEachAnswered(outcomes, "probed", perKind);
      assertEquals(3L * perKind, servedChats(api), "every task served by the fallback, once");
      assertEquals(0, upstream(api, "dead").path("recent_errors").size(), "no client call was sent to the dead runner");
      System.out.printf(
          "[figures] idle dead preferred runner, probes every 200 ms (down after 2): node up %d ms after start,"
              + " runner marked down %d ms after that; %d of %d tasks then served by the fallback, 0 calls tried the dead runner%n",
          upMs, downMs - upMs, servedChats(api), 3 * perKind);
    }
  }
}
