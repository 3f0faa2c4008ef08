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
  private static final String ADMIN_TOKEN = "local-cluster-it-admin-token-0123456789";
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void script(Map<String, String> env, String command, Path log) throws Exception {
    java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("bash", "../deploy/local/cluster.sh"));
    cmd.addAll(java.util.List.of(command.split(" ")));
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
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
    env.put("ADMIN_TOKEN", ADMIN_TOKEN);
    script(env, "stop", log); // leftovers of an interrupted run
    long started = System.nanoTime();
    script(env, "start", log);
    System.out.printf("local cluster started in %d ms%n", (System.nanoTime() - started) / 1_000_000);
    try {
      // one API key for all the tasks: its usage account must count each task once, kill or not;
      // with limits (never reached), so that every submit asks its limiter on a worker process
      HttpResponse<String> created =
          http.send(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/admin/keys"))
                  .header("Authorization", "Bearer " + ADMIN_TOKEN)
                  .header("Content-Type", "application/json")
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          "{\"tenant\":\"failover\",\"limits\":{\"requests_per_minute\":100000,\"max_active_tasks\":100000}}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(201, created.statusCode(), created.body());
      String keyId = JSON.readTree(created.body()).path("id").asText();
      String key = JSON.readTree(created.body()).path("key").asText();
      // submitted all at once, so that many are queued or running on every worker at the kill
      Map<String, java.util.concurrent.CompletableFuture<HttpResponse<String>>> submits = new LinkedHashMap<>();
      for (int i = 0; i < TASKS; i++) {
        String prompt = "task number " + i;
        HttpRequest submit =
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/v1/tasks"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + key)
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
        assertEquals("100000", r.headers().firstValue("x-ratelimit-limit-requests").orElse(""), "the limiter answered");
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
            round.put(id, getLenient(apiPort, "/v1/tasks/" + id, key));
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
      long promptTokens = 0;
      long completionTokens = 0;
      for (Map.Entry<String, JsonNode> e : terminal.entrySet()) {
        JsonNode task = e.getValue();
        promptTokens += task.at("/result/usage/prompt_tokens").asLong();
        completionTokens += task.at("/result/usage/completion_tokens").asLong();
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

      assertUsageCountedOnce(apiPort, keyId, TASKS, promptTokens, completionTokens);
      streamedToolCallsCrossNodes(apiPort, key);

      rollingRestartUnderLoad(env, log, apiPort);
    } finally {
      script(env, "stop", log);
    }
  }

  /**
   * Every node restarted in turn (SIGTERM, start, ready) while async tasks and sync chats keep
   * coming: every request the cluster accepted succeeds. Requests that found the api-node's port
   * closed (it was restarting) or got an honest 503 were not accepted and are only counted.
   */
  private void rollingRestartUnderLoad(Map<String, String> env, Path log, int apiPort) throws Exception {
    http.sendAsync(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + env.get("SIM_PORT") + "/sim/faults"))
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString("{\"latencyMs\":500}"))
                .build(),
            HttpResponse.BodyHandlers.ofString())
        .get(10, TimeUnit.SECONDS);
    java.util.concurrent.atomic.AtomicBoolean loading = new java.util.concurrent.atomic.AtomicBoolean(true);
    java.util.List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> asyncSubmits =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    java.util.List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> syncChats =
        java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    Thread load =
        new Thread(
            () -> {
              int i = 0;
              while (loading.get()) {
                String body =
                    "{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"rolling "
                        + i + "\"}]}";
                asyncSubmits.add(post(apiPort, "/v1/tasks", "{\"kind\":\"chat\",\"request\":" + body + "}"));
                if (i % 4 == 0) {
                  syncChats.add(post(apiPort, "/v1/chat/completions", body));
                }
                i++;
                java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
              }
            },
            "rolling-restart-load");
    load.start();
    long began = System.nanoTime();
    try {
      for (String node : new String[] {"worker-1", "worker-2", "worker-3", "api"}) {
        script(env, "restart " + node, log);
      }
    } finally {
      loading.set(false);
      load.join();
    }
    long restartMillis = (System.nanoTime() - began) / 1_000_000;

    int accepted = 0;
    int refused = 0;
    int unavailable = 0;
    java.util.List<String> ids = new java.util.ArrayList<>();
    for (var f : asyncSubmits) {
      HttpResponse<String> r = outcome(f);
      if (r == null) {
        refused++;
      } else if (r.statusCode() == 503) {
        unavailable++;
      } else {
        assertEquals(202, r.statusCode(), r.body());
        ids.add(JSON.readTree(r.body()).path("id").asText());
        accepted++;
      }
    }
    int chatsOk = 0;
    int chatsRefused = 0;
    for (var f : syncChats) {
      HttpResponse<String> r = outcome(f);
      if (r == null) {
        chatsRefused++;
      } else if (r.statusCode() == 503) {
        unavailable++;
      } else {
        assertEquals(200, r.statusCode(), "an accepted chat failed: " + r.body());
        chatsOk++;
      }
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    for (String id : ids) {
      JsonNode task = null;
      while (System.nanoTime() < deadline) {
        task = getLenient(apiPort, "/v1/tasks/" + id, null).get(60, TimeUnit.SECONDS);
        if (task != null && !task.path("status").asText().matches("queued|running|retry_scheduled")) {
          break;
        }
      }
      assertTrue(task != null, id + " never answered");
      assertEquals("succeeded", task.path("status").asText(), id + ": " + task);
    }
    System.out.printf(
        "rolling restart of 4 nodes in %d ms under load: %d async tasks accepted, all succeeded; %d sync chats answered 200; connection refused while the api-node restarted: %d submits, %d chats; answered 503 with Retry-After: %d%n",
        restartMillis, accepted, chatsOk, refused, chatsRefused, unavailable);
    assertTrue(accepted > 50 && chatsOk > 10, "the load ran during the restarts");
  }

  private java.util.concurrent.CompletableFuture<HttpResponse<String>> post(int port, String path, String body) {
    return http.sendAsync(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(Duration.ofSeconds(180))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /**
   * A streamed chat with tools, answered by a worker in another process: the runner's tool-call
   * fragments cross Artery as they were sent (index, id, name, argument pieces), and the usage chunk
   * and [DONE] follow.
   */
  private void streamedToolCallsCrossNodes(int apiPort, String key) throws Exception {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/v1/chat/completions"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer " + key)
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"model\":\"sim-small\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                            + "\"messages\":[{\"role\":\"user\",\"content\":\"weather and time in Oslo\"}],"
                            + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
                            + "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}]}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), r.body());
    Map<Integer, StringBuilder> arguments = new java.util.TreeMap<>();
    Map<Integer, String> names = new HashMap<>();
    String finish = null;
    for (String line : r.body().split("\n")) {
      if (!line.startsWith("data: {")) {
        continue;
      }
      JsonNode choice = JSON.readTree(line.substring(6)).path("choices").path(0);
      for (JsonNode call : choice.path("delta").path("tool_calls")) {
        int index = call.path("index").asInt();
        if (call.at("/function/name").isTextual()) {
          names.put(index, call.at("/function/name").asText());
        }
        arguments.computeIfAbsent(index, i -> new StringBuilder()).append(call.at("/function/arguments").asText(""));
      }
      if (choice.path("finish_reason").isTextual()) {
        finish = choice.path("finish_reason").asText();
      }
    }
    assertEquals(Map.of(0, "get_weather", 1, "get_time"), names, r.body());
    for (StringBuilder args : arguments.values()) {
      assertEquals("weather and time in Oslo", JSON.readTree(args.toString()).path("query").asText(), args.toString());
    }
    assertEquals("tool_calls", finish);
    assertTrue(r.body().contains("\"usage\"") && r.body().trim().endsWith("data: [DONE]"), r.body());
    System.out.printf("streamed tool calls across processes: %d calls reassembled%n", names.size());
  }

  /**
   * The key's usage account shows every task once: reports arrive after the tasks end (and after a
   * fail-over of the worker hosting the account), so it is polled until it matches or 90 s pass.
   */
  private void assertUsageCountedOnce(int apiPort, String keyId, int tasks, long prompt, long completion) throws Exception {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/admin/keys/" + keyId + "/usage"))
            .header("Authorization", "Bearer " + ADMIN_TOKEN)
            .timeout(Duration.ofSeconds(30))
            .GET()
            .build();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    JsonNode total = null;
    while (System.nanoTime() < deadline) {
      HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 200) {
        total = JSON.readTree(r.body()).path("total");
        if (total.path("requests").asLong() >= tasks) {
          break;
        }
      }
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(250));
    }
    assertTrue(total != null, "the usage of key " + keyId + " was never readable");
    assertEquals(tasks, total.path("requests").asLong(), "each task counted once: " + total);
    assertEquals(prompt, total.path("prompt_tokens").asLong(), total.toString());
    assertEquals(completion, total.path("completion_tokens").asLong(), total.toString());
    System.out.printf("usage after kill -9: %d tasks counted once, %d + %d tokens%n", tasks, prompt, completion);
  }

  /** The response, or null when the connection was refused or reset (the api-node was down). */
  private static HttpResponse<String> outcome(java.util.concurrent.CompletableFuture<HttpResponse<String>> f)
      throws Exception {
    try {
      return f.get(240, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof java.io.IOException) {
        return null;
      }
      throw e;
    }
  }

  /**
   * The task JSON, or null while the api-node answers 503 (shards moving). {@code key}: the API key
   * of the tenant owning the task, null for the anonymous caller.
   */
  private java.util.concurrent.CompletableFuture<JsonNode> getLenient(int port, String path, String key) {
    HttpRequest.Builder builder =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30)).GET();
    if (key != null) {
      builder.header("Authorization", "Bearer " + key);
    }
    HttpRequest request = builder.build();
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
