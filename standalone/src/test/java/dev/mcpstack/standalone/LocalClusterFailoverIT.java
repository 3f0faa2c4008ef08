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
    env.put("ARTERY_BASE", "29520"); // fixed ports below the ephemeral range (32768+): no outgoing connection holds them
    env.put("MANAGEMENT_BASE", "27626");
    env.put("METRICS_BASE", "28095");
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
        submits.put(prompt, submitChatTask(apiPort, key, prompt));
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

      assertUsageCountedOnce(apiPort, keyId, TASKS, promptTokens, completionTokens, "after kill -9");
      streamedToolCallsCrossNodes(apiPort, key);
      largePayloadsCrossNodes(apiPort, key);
      partitionByPause(env, log, dir, apiPort);
      killMidStream(env, log, dir, apiPort, key);

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
  private void assertUsageCountedOnce(int apiPort, String keyId, int tasks, long prompt, long completion, String when) throws Exception {
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
    System.out.printf("usage %s: %d tasks counted once, %d + %d tokens%n", when, tasks, prompt, completion);
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

  /**
   * Bodies far over Artery's 256 KiB frame between the api-node and a worker process: a 1.5 MB
   * prompt in, and 2,000 embeddings of 1,536 floats (tens of MB) out.
   */
  private void largePayloadsCrossNodes(int apiPort, String key) throws Exception {
    String prompt = "word ".repeat(300_000).trim();
    long start = System.nanoTime();
    HttpResponse<String> chat =
        send(apiPort, "/v1/chat/completions", key,
            "{\"model\":\"sim-small\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]}");
    assertEquals(200, chat.statusCode(), chat.body().length() > 2000 ? chat.body().substring(0, 2000) : chat.body());
    long chatMillis = (System.nanoTime() - start) / 1_000_000;
    assertTrue(
        JSON.readTree(chat.body()).at("/usage/prompt_tokens").asLong() >= 300_000,
        "the whole prompt reached the runner: " + JSON.readTree(chat.body()).path("usage"));

    StringBuilder inputs = new StringBuilder();
    for (int i = 0; i < 2000; i++) {
      inputs.append(i == 0 ? "" : ",").append("\"text number ").append(i).append('"');
    }
    start = System.nanoTime();
    HttpResponse<String> embeddings =
        send(apiPort, "/v1/embeddings", key,
            "{\"model\":\"sim-small\",\"dimensions\":1536,\"input\":[" + inputs + "]}");
    long embeddingsMillis = (System.nanoTime() - start) / 1_000_000;
    assertEquals(200, embeddings.statusCode(), embeddings.body().length() > 2000 ? embeddings.body().substring(0, 2000) : embeddings.body());
    JsonNode data = JSON.readTree(embeddings.body()).path("data");
    assertEquals(2000, data.size());
    for (int i = 0; i < 2000; i++) {
      assertEquals(i, data.get(i).path("index").asInt());
      assertEquals(1536, data.get(i).path("embedding").size());
    }
    System.out.printf(
        "across processes: a %d KB prompt answered in %d ms; %d embeddings of 1536 floats (%d KB of JSON) in %d ms%n",
        prompt.length() / 1024, chatMillis, data.size(), embeddings.body().length() / 1024, embeddingsMillis);
  }

  /**
   * A worker cut off from the others: its process paused with SIGSTOP (no heartbeats, no
   * answers, its TCP connections open) while it hosts async tasks waiting on a slow runner. The
   * split-brain resolver keeps the majority (the api-node and the other worker) and downs it; its
   * tasks resume there. Then SIGCONT: the paused node must find itself removed and stop, and
   * whatever it still tries to persist for the tasks taken over must be refused by the journal's
   * unique (persistence_id, sequence_number). Each task ends exactly once, checked in the journal.
   * Needs worker-2 and worker-3 up (worker-1 is dead since the kill -9); leaves them so.
   */
  private void partitionByPause(Map<String, String> env, Path log, Path dir, int apiPort) throws Exception {
    // a key of its own: its usage account must count each task once, whatever the woken node sends
    HttpResponse<String> created =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/admin/keys"))
                .header("Authorization", "Bearer " + ADMIN_TOKEN)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"tenant\":\"partition\"}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(201, created.statusCode(), created.body());
    String keyId = JSON.readTree(created.body()).path("id").asText();
    String key = JSON.readTree(created.body()).path("key").asText();
    final int tasks = 12; // at most max-concurrency (16) per worker: all in flight at once, wherever they land
    simFaults(env, "{\"latencyMs\":6000}");
    String run = java.util.UUID.randomUUID().toString(); // the journal outlives a run
    long chatsBefore = simChatRequests(env);
    Map<String, java.util.concurrent.CompletableFuture<HttpResponse<String>>> submits = new LinkedHashMap<>();
    for (int i = 0; i < tasks; i++) {
      String prompt = "partition " + run + " " + i;
      submits.put(prompt, submitChatTask(apiPort, key, prompt));
    }
    Map<String, String> prompts = new LinkedHashMap<>();
    for (var e : submits.entrySet()) {
      HttpResponse<String> r = e.getValue().get(60, TimeUnit.SECONDS);
      assertEquals(202, r.statusCode(), r.body());
      prompts.put(JSON.readTree(r.body()).path("id").asText(), e.getKey());
    }
    // every task's first attempt is at the runner (answering in 6 s) before the pause
    awaitSimChatRequests(env, chatsBefore + tasks);

    // worker-2 is the oldest worker now: it hosts the shard coordinator too
    String paused = "worker-2";
    long pid = Long.parseLong(Files.readString(dir.resolve("pids/" + paused + ".pid")).trim());
    ProcessHandle process = ProcessHandle.of(pid).orElseThrow();
    Path nodeLog = dir.resolve("logs/" + paused + ".log");
    long pausedAt = System.nanoTime();
    assertEquals(0, new ProcessBuilder("kill", "-STOP", String.valueOf(pid)).start().waitFor());
    boolean continued = false;
    try {
      Map<String, JsonNode> terminal = new HashMap<>();
      long firstResumed = -1;
      long deadline = pausedAt + TimeUnit.SECONDS.toNanos(90);
      while (terminal.size() < tasks) {
        assertTrue(System.nanoTime() < deadline, "not all tasks ended after the pause: " + terminal.keySet());
        Map<String, java.util.concurrent.CompletableFuture<JsonNode>> round = new HashMap<>();
        for (String id : prompts.keySet()) {
          if (!terminal.containsKey(id)) {
            round.put(id, adminTask(apiPort, id)); // asked concurrently: a moving shard delays its own tasks only
          }
        }
        for (var r : round.entrySet()) {
          String id = r.getKey();
          JsonNode task = r.getValue().get(30, TimeUnit.SECONDS);
          if (task == null) {
            continue; // the shard is moving: ask again
          }
          if (firstResumed < 0 && task.path("attempts").asInt() >= 2) {
            firstResumed = System.nanoTime();
          }
          if (task.path("status").asText().matches("succeeded|failed|cancelled")) {
            terminal.put(id, task);
          }
        }
        java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
      }
      long allDone = System.nanoTime();
      int resumed = 0;
      for (var e : terminal.entrySet()) {
        assertEquals("succeeded", e.getValue().path("status").asText(), e.getKey() + ": " + e.getValue());
        assertEquals(
            "Simulated reply to: " + prompts.get(e.getKey()),
            e.getValue().at("/result/choices/0/message/content").asText(),
            "each task has its own answer");
        resumed += e.getValue().path("attempts").asInt() >= 2 ? 1 : 0;
      }
      assertTrue(resumed > 0, "the paused worker hosted tasks that were resumed elsewhere");
      long chatsDone = simChatRequests(env);
      Map<String, long[]> before = journalCounts(env, prompts.keySet());

      // SIGCONT: the node wakes up removed; it must stop, not rejoin nor finish its stale attempts
      long logSize = Files.size(nodeLog);
      long continuedAt = System.nanoTime();
      assertEquals(0, new ProcessBuilder("kill", "-CONT", String.valueOf(pid)).start().waitFor());
      continued = true;
      process.onExit().get(60, TimeUnit.SECONDS);
      long exitedMillis = (System.nanoTime() - continuedAt) / 1_000_000;
      String woke;
      try (var in = Files.newInputStream(nodeLog)) {
        in.skipNBytes(logSize);
        woke = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      }
      long refusedWrites = woke.lines().filter(l -> l.contains("Failed to persist") || l.contains("Unique index") || l.contains("primary key violation")).count();
      long chatsAfter = simChatRequests(env);
      Map<String, long[]> after = journalCounts(env, prompts.keySet());
      for (String id : prompts.keySet()) {
        long[] c = after.get(id);
        assertTrue(c != null, id + " has no journal events");
        assertEquals(1, c[1], id + ": exactly one terminal event in the journal");
        assertTrue(java.util.Arrays.equals(before.get(id), c), id + ": nothing journaled after SIGCONT");
      }
      assertEquals(chatsDone, chatsAfter, "the woken node called the runner no more");
      assertUsageCountedOnce(
          apiPort, keyId, tasks,
          terminal.values().stream().mapToLong(t -> t.at("/result/usage/prompt_tokens").asLong()).sum(),
          terminal.values().stream().mapToLong(t -> t.at("/result/usage/completion_tokens").asLong()).sum(),
          "after the partition");
      long attempts = terminal.values().stream().mapToLong(t -> t.path("attempts").asInt()).sum();
      long attemptEvents = after.values().stream().mapToLong(c -> c[0]).sum();
      System.out.printf(
          "partition (SIGSTOP of %s, runner at 6 s): %d of %d tasks were on it; first resumed attempt %d ms after the pause, all done %d ms after it; "
              + "%d runner calls for %d attempts (%d AttemptStarted in the journal); after SIGCONT the node exited in %d ms, journaled nothing (%d refused-write log lines), "
              + "each task has exactly one terminal event. Its log after SIGCONT:%n%s%n",
          paused, resumed, tasks, (firstResumed - pausedAt) / 1_000_000, (allDone - pausedAt) / 1_000_000,
          chatsAfter - chatsBefore, attempts, attemptEvents, exitedMillis, refusedWrites,
          woke.lines().filter(l -> !l.isBlank() && !l.startsWith("\t")).limit(25).map(l -> "  | " + (l.length() > 300 ? l.substring(0, 300) : l)).collect(java.util.stream.Collectors.joining("\n")));
    } finally {
      if (!continued) {
        new ProcessBuilder("kill", "-CONT", String.valueOf(pid)).start().waitFor();
      }
    }
    simFaults(env, "{}");
    script(env, "restart " + paused, log); // the following steps need it
  }

  /** A task by the admin API, or null while it cannot be answered (503, timeout: a shard moving). */
  private java.util.concurrent.CompletableFuture<JsonNode> adminTask(int apiPort, String taskId) {
    return http.sendAsync(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/admin/tasks/" + taskId))
                .header("Authorization", "Bearer " + ADMIN_TOKEN)
                .timeout(Duration.ofSeconds(10))
                .GET()
                .build(),
            HttpResponse.BodyHandlers.ofString())
        .thenApply(
            r -> {
              try {
                return r.statusCode() == 200 ? JSON.readTree(r.body()) : null;
              } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            })
        .exceptionally(e -> null);
  }

  /** Per task, from the shared H2 journal: {AttemptStarted events, terminal events, all events}. */
  private static Map<String, long[]> journalCounts(Map<String, String> env, java.util.Collection<String> taskIds) throws Exception {
    Map<String, long[]> counts = new HashMap<>();
    try (java.sql.Connection c =
            java.sql.DriverManager.getConnection("jdbc:h2:tcp://127.0.0.1:" + env.get("H2_PORT") + "/mcp-cluster", "mcp", "mcp");
        java.sql.PreparedStatement q =
            c.prepareStatement(
                "SELECT \"event_ser_manifest\" FROM PUBLIC.\"event_journal\" WHERE \"persistence_id\" = ?")) {
      for (String id : taskIds) {
        q.setString(1, "Task|" + id);
        long[] n = new long[3];
        try (java.sql.ResultSet rs = q.executeQuery()) {
          while (rs.next()) {
            String manifest = rs.getString(1);
            n[0] += manifest.endsWith("AttemptStarted") ? 1 : 0;
            n[1] += manifest.matches(".*(TaskSucceeded|TaskFailed|TaskCancelled)$") ? 1 : 0;
            n[2]++;
          }
        }
        if (n[2] > 0) {
          counts.put(id, n);
        }
      }
    }
    return counts;
  }

  /**
   * kill -9 of the worker serving an open stream. After its first delta: the stream ends with an
   * error event (no second answer glued to the first) and the task is not run again. Before it:
   * the stream goes on transparently from another worker and the client gets one whole answer.
   */
  private void killMidStream(Map<String, String> env, Path log, Path dir, int apiPort, String key) throws Exception {
    // one worker serves (it hosts every task); the others stand by, stopped
    stop(dir, "worker-3");
    String prompt = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    String expected = "Simulated reply to: " + prompt;

    // after output: the client has part of the answer when its worker dies
    simFaults(env, "{\"tokensPerSecond\":2}");
    // idempotency keys of their own: the journal outlives a run of this test
    String run = java.util.UUID.randomUUID().toString();
    Streamed partial = Streamed.open(http, apiPort, key, "kill-after-output-" + run, prompt);
    partial.awaitContent();
    String partialId = "chatcmpl-" + sha256Hex("failover:kill-after-output-" + run).substring(0, 32);
    long killed = kill9(dir, "worker-2");
    partial.awaitEnd();
    long detected = (System.nanoTime() - killed) / 1_000_000;
    assertTrue(partial.events().get(partial.events().size() - 1).contains("\"error\""), partial.raw());
    assertTrue(!partial.raw().contains("[DONE]"), partial.raw());
    assertTrue(expected.startsWith(partial.content()) && partial.content().length() < expected.length(),
        "a part of one answer, nothing twice: '" + partial.content() + "'");
    script(env, "restart worker-1", log); // the task resumes there, and must not run again
    JsonNode ended = awaitTerminal(apiPort, partialId);
    assertEquals("failed", ended.path("status").asText(), ended.toString());
    assertEquals(1, ended.path("attempts").asInt(), "not run again after its output started: " + ended);
    assertTrue(ended.at("/error/message").asText().contains("partial output"), ended.toString());

    // before output: the worker dies while the runner thinks about the first token
    simFaults(env, "{\"timeToFirstTokenMs\":6000,\"tokensPerSecond\":40}");
    long chatsBefore = simChatRequests(env);
    Streamed whole = Streamed.open(http, apiPort, key, "kill-before-output-" + run, prompt);
    String wholeId = "chatcmpl-" + sha256Hex("failover:kill-before-output-" + run).substring(0, 32);
    awaitSimChatRequests(env, chatsBefore + 1);
    kill9(dir, "worker-1"); // the only worker
    script(env, "restart worker-3", log);
    whole.awaitEnd();
    assertTrue(whole.raw().trim().endsWith("data: [DONE]"), whole.raw());
    assertEquals(expected, whole.content(), "one whole answer, from the attempt on another worker");
    JsonNode resumed = awaitTerminal(apiPort, wholeId);
    assertEquals("succeeded", resumed.path("status").asText(), resumed.toString());
    // resumed elsewhere: a new attempt (more if the shard moved again while the new worker joined)
    assertTrue(resumed.path("attempts").asInt() >= 2, resumed.toString());
    System.out.printf(
        "kill -9 mid-stream: after output the client got an error event %d ms after the kill, the task failed without a new attempt; before output the stream went on from another worker (%d attempts, one answer)%n",
        detected, resumed.path("attempts").asInt());

    // the same two cases for a chat kept in memory only (no Idempotency-Key: docs/adr/0007), now on
    // worker-3, the only worker
    simFaults(env, "{\"tokensPerSecond\":2}");
    long chatsBeforeMemory = simChatRequests(env);
    Streamed memoryPartial = Streamed.open(http, apiPort, key, null, prompt);
    memoryPartial.awaitContent();
    long memoryKilled = kill9(dir, "worker-3");
    memoryPartial.awaitEnd();
    long memoryDetected = (System.nanoTime() - memoryKilled) / 1_000_000;
    assertTrue(memoryPartial.events().get(memoryPartial.events().size() - 1).contains("\"error\""), memoryPartial.raw());
    assertTrue(!memoryPartial.raw().contains("[DONE]"), memoryPartial.raw());
    assertTrue(expected.startsWith(memoryPartial.content()) && memoryPartial.content().length() < expected.length(),
        "a part of one answer, nothing twice: '" + memoryPartial.content() + "'");
    script(env, "restart worker-1", log);

    simFaults(env, "{\"timeToFirstTokenMs\":6000,\"tokensPerSecond\":40}");
    Streamed memoryWhole = Streamed.open(http, apiPort, key, null, prompt);
    awaitSimChatRequests(env, chatsBeforeMemory + 2);
    kill9(dir, "worker-1"); // the only worker: the task and its memory are gone with it
    script(env, "restart worker-2", log);
    memoryWhole.awaitEnd();
    assertTrue(memoryWhole.raw().trim().endsWith("data: [DONE]"), memoryWhole.raw());
    assertEquals(expected, memoryWhole.content(), "one whole answer: the api-node submitted the chat again");
    // the interrupted one was not sent again; the lost one was sent once more
    assertEquals(chatsBeforeMemory + 3, simChatRequests(env));
    simFaults(env, "{}");
    System.out.printf(
        "kill -9 mid-stream, chat in memory: after output an error event %d ms after the kill, nothing sent again; before output the api-node submitted it again and the client got one whole answer%n",
        memoryDetected);
  }

  private HttpResponse<String> send(int port, String path, String key, String body) throws Exception {
    return http.send(jsonPost(port, path, key, body), HttpResponse.BodyHandlers.ofString());
  }

  /** Submits an async chat task whose prompt is {@code prompt} (202 when accepted). */
  private java.util.concurrent.CompletableFuture<HttpResponse<String>> submitChatTask(int port, String key, String prompt) {
    String body =
        "{\"kind\":\"chat\",\"request\":{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\""
            + prompt + "\"}]}}";
    return http.sendAsync(jsonPost(port, "/v1/tasks", key, body), HttpResponse.BodyHandlers.ofString());
  }

  /** A JSON POST with an API key to a node of the local cluster. */
  private static HttpRequest jsonPost(int port, String path, String key, String body) {
    return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .timeout(Duration.ofSeconds(120))
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer " + key)
        .POST(HttpRequest.BodyPublishers.ofString(body))
        .build();
  }

  private void simFaults(Map<String, String> env, String faults) throws Exception {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + env.get("SIM_PORT") + "/sim/faults"))
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString(faults))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), r.body());
  }

  /** Chat completions the simulator has received so far. */
  private long simChatRequests(Map<String, String> env) throws Exception {
    HttpRequest stats = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + env.get("SIM_PORT") + "/sim/stats")).GET().build();
    return JSON.readTree(http.send(stats, HttpResponse.BodyHandlers.ofString()).body())
        .path("requestsByPath")
        .path("/v1/chat/completions")
        .asLong();
  }

  /** Waits until the simulator has received {@code count} chat completions (an attempt reached it). */
  private void awaitSimChatRequests(Map<String, String> env, long count) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (simChatRequests(env) < count) {
      assertTrue(System.nanoTime() < deadline, "the call never reached the simulator");
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
    }
  }

  /** SIGTERM to a node (a graceful leave), and wait until its process is gone. */
  private static void stop(Path dir, String node) throws Exception {
    long pid = Long.parseLong(Files.readString(dir.resolve("pids/" + node + ".pid")).trim());
    java.util.Optional<ProcessHandle> process = ProcessHandle.of(pid);
    assertEquals(0, new ProcessBuilder("kill", "-TERM", String.valueOf(pid)).start().waitFor());
    if (process.isPresent()) {
      process.get().onExit().get(60, TimeUnit.SECONDS);
    }
  }

  private JsonNode awaitTerminal(int apiPort, String taskId) throws Exception {
    HttpRequest get =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + apiPort + "/admin/tasks/" + taskId))
            .header("Authorization", "Bearer " + ADMIN_TOKEN)
            .timeout(Duration.ofSeconds(30))
            .GET()
            .build();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (true) {
      HttpResponse<String> r = http.send(get, HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() == 200) {
        JsonNode task = JSON.readTree(r.body());
        String status = task.path("status").asText();
        if (status.equals("succeeded") || status.equals("failed") || status.equals("cancelled")) {
          return task;
        }
      }
      assertTrue(System.nanoTime() < deadline, taskId + " did not end: " + r.body());
      java.util.concurrent.locks.LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
    }
  }

  /** kill -9 of a node by its pid file; when it was done (nanoTime). */
  private static long kill9(Path dir, String node) throws Exception {
    long pid = Long.parseLong(Files.readString(dir.resolve("pids/" + node + ".pid")).trim());
    long at = System.nanoTime();
    assertEquals(0, new ProcessBuilder("kill", "-9", String.valueOf(pid)).start().waitFor());
    return at;
  }

  private static String sha256Hex(String s) throws Exception {
    byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    StringBuilder hex = new StringBuilder();
    for (byte b : d) {
      hex.append(String.format("%02x", b));
    }
    return hex.toString();
  }

  /** A streamed chat read line by line as it arrives. */
  private static final class Streamed {
    private final java.util.concurrent.LinkedBlockingQueue<String> lines = new java.util.concurrent.LinkedBlockingQueue<>();
    private final java.util.concurrent.CompletableFuture<Void> ended = new java.util.concurrent.CompletableFuture<>();
    private final StringBuilder raw = new StringBuilder();
    private final java.util.List<String> events = new java.util.ArrayList<>();
    private final StringBuilder content = new StringBuilder();

    static Streamed open(HttpClient http, int port, String key, String idempotencyKey, String prompt) {
      Streamed s = new Streamed();
      HttpRequest.Builder request =
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
              .timeout(Duration.ofSeconds(180))
              .header("Content-Type", "application/json")
              .header("Authorization", "Bearer " + key)
              .POST(
                  HttpRequest.BodyPublishers.ofString(
                      "{\"model\":\"sim-small\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\""
                          + prompt + "\"}]}"));
      if (idempotencyKey != null) { // without one the chat is kept in memory only
        request.header("Idempotency-Key", idempotencyKey);
      }
      http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofLines())
          .thenAccept(r -> r.body().forEach(s.lines::add))
          .whenComplete((v, e) -> s.ended.complete(null));
      return s;
    }

    /** Waits for the first piece of text. */
    void awaitContent() throws Exception {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (content.length() == 0) {
        String line = lines.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        assertTrue(line != null, "no content arrived: " + raw);
        take(line);
      }
    }

    void awaitEnd() throws Exception {
      ended.get(180, TimeUnit.SECONDS);
      for (String line; (line = lines.poll()) != null; ) {
        take(line);
      }
    }

    private void take(String line) throws Exception {
      raw.append(line).append('\n');
      if (!line.startsWith("data: ")) {
        return;
      }
      String data = line.substring(6);
      events.add(data);
      if (data.startsWith("{")) {
        JsonNode delta = JSON.readTree(data).path("choices").path(0).path("delta");
        content.append(delta.path("content").asText(""));
      }
    }

    String raw() {
      return raw.toString();
    }

    java.util.List<String> events() {
      return events;
    }

    String content() {
      return content.toString();
    }
  }
}
