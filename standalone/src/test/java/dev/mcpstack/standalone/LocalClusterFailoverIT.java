package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The multi-process fail-over test: the local cluster from {@code deploy/local/cluster.sh} (one
 * api-node, three worker-nodes, the simulator, a shared journal, each its own JVM from the built
 * jar), a few hundred async tasks with model latency, and {@code kill -9} of one worker mid-way.
 * Every accepted task must reach exactly one terminal state with its own answer; the time from
 * the kill until the dead worker's tasks progress again is measured and printed.
 */
class LocalClusterFailoverIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int TASKS = 300;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void script(Map<String, String> env, String command, Path log) throws Exception {
    ProcessBuilder pb =
        new ProcessBuilder("bash", "../deploy/local/cluster.sh", command)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    pb.environment().putAll(env);
    Process p = pb.start();
    assertTrue(p.waitFor(240, TimeUnit.SECONDS), "cluster.sh " + command + " did not finish");
    assertEquals(0, p.exitValue(), "cluster.sh " + command + " failed; see " + log + ":\n" + Files.readString(log));
  }

  @Test
  void killingAWorkerLosesNoTask() throws Exception {
    Path dir = Path.of("target", "local-cluster-it").toAbsolutePath();
    Files.createDirectories(dir);
    Path log = dir.resolve("cluster-sh.log");
    int apiPort = freePort();
    Map<String, String> env = new HashMap<>();
    env.put("CLUSTER_DIR", dir.toString());
    env.put("JAR", new File("target/mcp-stack.jar").getAbsolutePath());
    env.put("API_PORT", String.valueOf(apiPort));
    env.put("SIM_PORT", String.valueOf(freePort()));
    env.put("H2_PORT", String.valueOf(freePort()));
    env.put("ARTERY_BASE", "35520");
    env.put("MANAGEMENT_BASE", "17626");
    env.put("METRICS_BASE", "19095");
    env.put("SIM_LATENCY_MS", "3000");
    env.put("LOG_LEVEL", "WARN");
    script(env, "stop", log); // leftovers of an interrupted run
    long started = System.nanoTime();
    script(env, "start", log);
    System.out.printf("local cluster started in %d ms%n", (System.nanoTime() - started) / 1_000_000);
    try {
      // submitted all at once, so that many are queued or running on every worker at the kill
      Map<String, java.util.concurrent.CompletableFuture<HttpResponse<String>>> submits = new LinkedHashMap<>();
      for (int i = 0; i < TASKS; i++) {
        String prompt = "task number " + i;
        HttpRequest submit =
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/v1/tasks"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"kind\":\"chat\",\"request\":{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\""
                            + prompt
                            + "\"}]}}"))
                .build();
        submits.put(prompt, http.sendAsync(submit, HttpResponse.BodyHandlers.ofString()));
      }
      Map<String, String> prompts = new LinkedHashMap<>();
      for (Map.Entry<String, java.util.concurrent.CompletableFuture<HttpResponse<String>>> e : submits.entrySet()) {
        HttpResponse<String> r = e.getValue().get(60, TimeUnit.SECONDS);
        assertEquals(202, r.statusCode(), r.body());
        prompts.put(JSON.readTree(r.body()).path("id").asText(), e.getKey());
      }
      assertEquals(TASKS, prompts.size(), "every submit got its own task id");

      // worker-1 is the oldest worker: it hosts the shard coordinator too, the harshest case
      long pid = Long.parseLong(Files.readString(dir.resolve("pids/worker-1.pid")).trim());
      long killedAt = System.nanoTime();
      assertEquals(0, new ProcessBuilder("kill", "-9", String.valueOf(pid)).start().waitFor());

      Map<String, JsonNode> terminal = new HashMap<>();
      long firstResumed = -1;
      long deadline = killedAt + TimeUnit.SECONDS.toNanos(150);
      while (terminal.size() < TASKS && System.nanoTime() < deadline) {
        // one round: every unfinished task, asked concurrently
        Map<String, java.util.concurrent.CompletableFuture<JsonNode>> round = new HashMap<>();
        for (String id : prompts.keySet()) {
          if (!terminal.containsKey(id)) {
            round.put(id, getLenient(apiPort, "/v1/tasks/" + id));
          }
        }
        for (Map.Entry<String, java.util.concurrent.CompletableFuture<JsonNode>> e : round.entrySet()) {
          JsonNode task = e.getValue().get(60, TimeUnit.SECONDS);
          if (task == null) {
            continue; // 503 while shards move: ask again next round
          }
          if (firstResumed < 0 && task.path("attempts").asInt() >= 2) {
            firstResumed = System.nanoTime();
          }
          String status = task.path("status").asText();
          if (status.equals("succeeded") || status.equals("failed") || status.equals("cancelled")) {
            terminal.put(e.getKey(), task);
          }
        }
      }
      long allDone = System.nanoTime();
      assertEquals(TASKS, terminal.size(), "every accepted task reached a terminal state");
      int resumed = 0;
      for (Map.Entry<String, JsonNode> e : terminal.entrySet()) {
        JsonNode task = e.getValue();
        assertEquals("succeeded", task.path("status").asText(), e.getKey() + ": " + task);
        assertEquals(
            "Simulated reply to: " + prompts.get(e.getKey()),
            task.at("/result/choices/0/message/content").asText(),
            "each task has its own answer");
        if (task.path("attempts").asInt() >= 2) {
          resumed++;
        }
      }
      assertTrue(resumed > 0, "the killed worker hosted tasks that were resumed elsewhere");
      System.out.printf(
          "fail-over: %d of %d tasks were on the killed worker; their first resumed attempt %d ms after kill -9; all %d tasks done %d ms after it%n",
          resumed,
          TASKS,
          (firstResumed - killedAt) / 1_000_000,
          TASKS,
          (allDone - killedAt) / 1_000_000);
    } finally {
      script(env, "stop", log);
    }
  }

  /** The task JSON, or null while the api-node answers 503 (shards moving). */
  private java.util.concurrent.CompletableFuture<JsonNode> getLenient(int port, String path) {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30)).GET().build();
    return http.sendAsync(request, HttpResponse.BodyHandlers.ofString())
        .thenApply(
            r -> {
              if (r.statusCode() == 503) {
                return null;
              }
              assertEquals(200, r.statusCode(), r.body());
              try {
                return JSON.readTree(r.body());
              } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
  }
}
