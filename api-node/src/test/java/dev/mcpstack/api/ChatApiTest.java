package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.dataEvents;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.ApiFixture.streamBody;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The HTTP API end to end: real client, real cluster, real simulator. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatApiTest {
  private static final String ADMIN_TOKEN = "secret";
  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("ChatApiTest", "mcp.api.admin-token = \"" + ADMIN_TOKEN + "\"");
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  @BeforeEach
  void resetSimulator() {
    api.resetSimulator();
  }

  @Test
  void chatCompletionAnswersWithTheModelsReply() throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", chatBody("hello there"));
    assertEquals(200, response.statusCode(), response.body());
    JsonNode body = json(response);
    assertEquals("chat.completion", body.path("object").asText());
    // no Idempotency-Key: a chat kept in its worker's memory only (ADR 0007)
    assertTrue(body.path("id").asText().matches("chatcmpl-m[0-9a-f]{32}"), body.toString());
    assertEquals(MODEL, body.path("model").asText());
    assertEquals("Simulated reply to: hello there", body.at("/choices/0/message/content").asText());
    assertEquals("assistant", body.at("/choices/0/message/role").asText());
    assertTrue(body.at("/usage/total_tokens").asInt() > 0);
    assertTrue(response.headers().firstValue("X-Request-Id").isPresent());
  }

  @Test
  void streamedChatReassemblesAndEndsWithUsageAndDone() throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", streamBody("tell me a story", true));
    assertEquals(200, response.statusCode(), response.body());
    assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
    List<String> events = dataEvents(response.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
    List<JsonNode> chunks = new ArrayList<>();
    for (String e : events.subList(0, events.size() - 1)) {
      chunks.add(ApiFixture.JSON.readTree(e));
    }
    JsonNode first = chunks.get(0);
    assertEquals("assistant", first.at("/choices/0/delta/role").asText());
    assertEquals("", first.at("/choices/0/delta/content").asText());
    String id = first.path("id").asText();
    StringBuilder text = new StringBuilder();
    String finish = null;
    for (JsonNode c : chunks) {
      assertEquals("chat.completion.chunk", c.path("object").asText());
      assertEquals(id, c.path("id").asText());
      assertEquals(first.path("created").asLong(), c.path("created").asLong());
      assertEquals(MODEL, c.path("model").asText());
      if (c.path("choices").size() > 0) {
        text.append(c.at("/choices/0/delta/content").asText(""));
        if (c.at("/choices/0/finish_reason").isTextual()) {
          finish = c.at("/choices/0/finish_reason").asText();
        }
      }
    }
    assertEquals("Simulated reply to: tell me a story", text.toString());
    assertEquals("stop", finish);
    JsonNode usage = chunks.get(chunks.size() - 1);
    assertEquals(0, usage.path("choices").size());
    assertTrue(usage.at("/usage/completion_tokens").asInt() > 0, usage.toString());
  }

  @Test
  void streamWithoutIncludeUsageHasNoUsageChunk() throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", streamBody("short", false));
    assertEquals(200, response.statusCode());
    List<String> events = dataEvents(response.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
    for (String e : events.subList(0, events.size() - 1)) {
      JsonNode c = ApiFixture.JSON.readTree(e);
      assertFalse(c.has("usage"), e);
      assertEquals(1, c.path("choices").size(), e);
    }
  }

  @Test
  void idleStreamsGetKeepAlives() throws Exception {
    api.sim.setDefaults(Faults.none().withTimeToFirstToken(Duration.ofMillis(1500)));
    HttpResponse<String> response = api.post("/v1/chat/completions", streamBody("wait for it", false));
    assertEquals(200, response.statusCode());
    assertTrue(response.body().contains(": keep-alive\n\n"), response.body());
    List<String> events = dataEvents(response.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
  }

  @Test
  void storedCompletionCanBeReadBackOnlyWhenStored() throws Exception {
    String body = "{\"model\":\"" + MODEL + "\",\"store\":true,\"messages\":[{\"role\":\"user\",\"content\":\"keep me\"}]}";
    JsonNode created = json(api.post("/v1/chat/completions", body));
    String id = created.path("id").asText();
    assertTrue(id.startsWith("chatcmpl-s"), id);

    HttpResponse<String> read = api.get("/v1/chat/completions/" + id);
    assertEquals(200, read.statusCode(), read.body());
    assertEquals(id, json(read).path("id").asText());
    assertEquals("Simulated reply to: keep me", json(read).at("/choices/0/message/content").asText());

    String plainId = json(api.post("/v1/chat/completions", chatBody("forget me"))).path("id").asText();
    HttpResponse<String> notStored = api.get("/v1/chat/completions/" + plainId);
    assertEquals(404, notStored.statusCode());
    assertEquals("not_found_error", json(notStored).at("/error/type").asText());
    assertEquals(404, api.get("/v1/chat/completions/chatcmpl-s" + "0".repeat(32)).statusCode());
  }

  @Test
  void embeddingsReturnTheOpenAiList() throws Exception {
    HttpResponse<String> response =
        api.post("/v1/embeddings", "{\"model\":\"" + MODEL + "\",\"input\":[\"one\",\"two\"]}");
    assertEquals(200, response.statusCode(), response.body());
    JsonNode body = json(response);
    assertEquals("list", body.path("object").asText());
    assertEquals(2, body.path("data").size());
    assertEquals(8, body.at("/data/0/embedding").size());
  }

  @Test
  void anAsyncTaskWithoutATimeoutIsABacklogOfADay() throws Exception {
    HttpResponse<String> submitted = api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("whenever") + "}");
    assertEquals(202, submitted.statusCode(), submitted.body());
    JsonNode task = json(submitted);
    assertEquals(24 * 3600, task.path("deadline").asLong() - task.path("created_at").asLong(), 1, task.toString());
    HttpResponse<String> tooLong =
        api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("x") + ",\"timeout_seconds\":86401}");
    assertEquals(400, tooLong.statusCode(), tooLong.body());
    // ends here, not with a runner call that comes in during the next test
    String id = task.path("id").asText();
    api.await(
        Duration.ofSeconds(20),
        () -> {
          assertEquals("succeeded", json(api.get("/v1/tasks/" + id)).path("status").asText());
          return null;
        });
  }

  @Test
  void taskIsSubmittedPolledAndFollowed() throws Exception {
    HttpResponse<String> submitted =
        api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("async please") + ",\"timeout_seconds\":60}");
    assertEquals(202, submitted.statusCode(), submitted.body());
    JsonNode task = json(submitted);
    String id = task.path("id").asText();
    assertTrue(id.startsWith("task-"), id);
    assertEquals("task", task.path("object").asText());
    assertEquals("chat", task.path("kind").asText());
    assertEquals(MODEL, task.path("model").asText());
    assertEquals(60, task.path("deadline").asLong() - task.path("created_at").asLong(), 1, "its timeout_seconds");
    assertEquals("/v1/tasks/" + id, submitted.headers().firstValue("Location").orElse(""));

    JsonNode done =
        api.await(
            Duration.ofSeconds(20),
            () -> {
              JsonNode t = unchecked(() -> json(api.get("/v1/tasks/" + id)));
              assertEquals("succeeded", t.path("status").asText(), t.toString());
              return t;
            });
    assertEquals(id, done.at("/result/id").asText());
    assertEquals("Simulated reply to: async please", done.at("/result/choices/0/message/content").asText());
    assertTrue(done.path("error").isNull());

    HttpResponse<String> events = api.get("/v1/tasks/" + id + "/events");
    assertEquals(200, events.statusCode());
    List<String> data = dataEvents(events.body());
    assertEquals(1, data.size(), events.body());
    assertEquals("succeeded", ApiFixture.JSON.readTree(data.get(0)).path("status").asText());
  }

  @Test
  void eventsFollowARunningTaskToItsEnd() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofMillis(800)));
    String id = json(api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("follow") + "}")).path("id").asText();
    HttpResponse<String> events = api.get("/v1/tasks/" + id + "/events");
    assertEquals(200, events.statusCode());
    List<String> data = dataEvents(events.body());
    assertTrue(data.size() >= 1, events.body());
    JsonNode last = ApiFixture.JSON.readTree(data.get(data.size() - 1));
    assertEquals("succeeded", last.path("status").asText());
    for (String e : data.subList(0, data.size() - 1)) {
      assertNotEquals("succeeded", ApiFixture.JSON.readTree(e).path("status").asText());
    }
  }

  @Test
  void taskCanBeCancelled() throws Exception {
    api.sim.setDefaults(Faults.none().withHang(true));
    String id =
        json(api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("never") + "}", "X-Request-Id", "cancel-me"))
            .path("id").asText();
    awaitRunnerHas("cancel-me", 1);
    HttpResponse<String> cancelled = api.delete("/v1/tasks/" + id);
    assertEquals(200, cancelled.statusCode(), cancelled.body());
    assertEquals("cancelled", json(cancelled).path("status").asText());
    assertEquals("cancelled", json(api.get("/v1/tasks/" + id)).path("status").asText());
    awaitRunnerAbandoned("cancel-me"); // the runner's connection was closed: it stops computing
    assertEquals(404, api.get("/v1/tasks/task-unknown123").statusCode());
    assertEquals(404, api.delete("/v1/tasks/task-unknown123").statusCode());
  }

  @Test
  void aTaskPastItsDeadlineStopsItsRunnersCall() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofSeconds(60)));
    String id =
        json(api.post(
                "/v1/tasks",
                "{\"kind\":\"chat\",\"request\":" + chatBody("too slow") + ",\"timeout_seconds\":2}",
                "X-Request-Id", "deadline-2s"))
            .path("id").asText();
    awaitRunnerHas("deadline-2s", 1);
    awaitRunnerAbandoned("deadline-2s");
    JsonNode task = json(api.get("/v1/tasks/" + id));
    assertEquals("failed", task.path("status").asText(), task.toString());
    assertEquals("timeout", task.at("/error/code").asText(), task.toString());
  }

  /** Waits until the runner has {@code calls} calls of the request {@code requestId} (the stack passes it on). */
  private void awaitRunnerHas(String requestId, int calls) {
    api.await(
        Duration.ofSeconds(20),
        () -> {
          assertEquals(calls, api.sim.inFlightWith("X-Request-Id", requestId), "the runner has the call");
          return null;
        });
  }

  /** Waits until the runner saw the calls of {@code requestId} abandoned (the stack closed them), none left. */
  private void awaitRunnerAbandoned(String requestId) {
    api.await(
        Duration.ofSeconds(20),
        () -> {
          assertEquals(0, api.sim.inFlightWith("X-Request-Id", requestId), "calls the stack gave up on");
          assertTrue(api.sim.abandonedWith("X-Request-Id", requestId) >= 1, "the runner saw the call abandoned");
          return null;
        });
  }

  @Test
  void warmupAndEmbeddingTasksRun() throws Exception {
    String warm = json(api.post("/v1/tasks", "{\"kind\":\"model_warmup\",\"request\":{\"model\":\"" + MODEL + "\"}}")).path("id").asText();
    String embed =
        json(api.post("/v1/tasks", "{\"kind\":\"embeddings\",\"request\":{\"model\":\"" + MODEL + "\",\"input\":\"x\"}}"))
            .path("id").asText();
    for (String id : List.of(warm, embed)) {
      api.await(
          Duration.ofSeconds(20),
          () -> {
            JsonNode t = unchecked(() -> json(api.get("/v1/tasks/" + id)));
            assertEquals("succeeded", t.path("status").asText(), t.toString());
            return t;
          });
    }
  }

  @Test
  void idempotencyKeyMapsToOneTask() throws Exception {
    String body = "{\"kind\":\"chat\",\"request\":" + chatBody("once") + "}";
    HttpResponse<String> first = api.post("/v1/tasks", body, "Idempotency-Key", "key-1");
    HttpResponse<String> again = api.post("/v1/tasks", body, "Idempotency-Key", "key-1");
    assertEquals(202, first.statusCode());
    assertEquals(202, again.statusCode());
    assertEquals(json(first).path("id").asText(), json(again).path("id").asText());
    assertTrue(json(first).path("id").asText().matches("task-[0-9a-f]{32}"));

    HttpResponse<String> conflict =
        api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("twice") + "}", "Idempotency-Key", "key-1");
    assertEquals(409, conflict.statusCode(), conflict.body());
    assertEquals("conflict", json(conflict).at("/error/code").asText());
    String id = json(first).path("id").asText();
    api.await(
        Duration.ofSeconds(20),
        () -> {
          assertEquals("succeeded", json(api.get("/v1/tasks/" + id)).path("status").asText());
          return null;
        });
  }

  @Test
  void idempotencyKeyMakesARepeatedChatFree() throws Exception {
    HttpResponse<String> chat1 = api.post("/v1/chat/completions", chatBody("same"), "Idempotency-Key", "chat-key");
    HttpResponse<String> chat2 = api.post("/v1/chat/completions", chatBody("same"), "Idempotency-Key", "chat-key");
    assertEquals(200, chat2.statusCode(), chat2.body());
    assertEquals(json(chat1).path("id").asText(), json(chat2).path("id").asText());
    assertTrue(json(chat1).path("id").asText().matches("chatcmpl-[0-9a-f]{32}"), "in the journal: " + chat1.body());
    assertEquals(1, api.sim.stats().requests(), "the repeated call must not reach the model again");
  }

  @Test
  void modelsComeFromTheWorkers() throws Exception {
    JsonNode list =
        api.await(
            Duration.ofSeconds(20),
            () -> {
              HttpResponse<String> r = unchecked(() -> api.get("/v1/models"));
              assertEquals(200, r.statusCode(), r.body());
              return unchecked(() -> json(r));
            });
    assertEquals("list", list.path("object").asText());
    List<String> ids = new ArrayList<>();
    list.path("data").forEach(m -> ids.add(m.path("id").asText()));
    assertTrue(ids.contains(MODEL), ids.toString());
    assertEquals("model", list.at("/data/0/object").asText());

    JsonNode one = json(api.get("/v1/models/" + MODEL));
    assertEquals(MODEL, one.path("id").asText());
    HttpResponse<String> missing = api.get("/v1/models/no-such-model");
    assertEquals(404, missing.statusCode());
    assertEquals("model_not_found", json(missing).at("/error/code").asText());
  }

  @Test
  void healthEndpoints() throws Exception {
    HttpResponse<String> live = api.get("/health/live");
    assertEquals(200, live.statusCode());
    assertEquals("ok", json(live).path("status").asText());
    api.await(
        Duration.ofSeconds(20),
        () -> {
          HttpResponse<String> ready = unchecked(() -> api.get("/health/ready"));
          assertEquals(200, ready.statusCode(), ready.body());
          assertEquals("ok", unchecked(() -> json(ready)).path("status").asText());
          return null;
        });
  }

  @Test
  void requestIdIsEchoedAndInErrors() throws Exception {
    HttpResponse<String> response = api.get("/v1/nowhere", "X-Request-Id", "my-trace-42");
    assertEquals(404, response.statusCode());
    assertEquals("my-trace-42", response.headers().firstValue("X-Request-Id").orElse(""));
    assertEquals("my-trace-42", json(response).at("/error/request_id").asText());
    HttpResponse<String> insane = api.get("/v1/nowhere", "X-Request-Id", "bad id with spaces");
    assertNotEquals("bad id with spaces", insane.headers().firstValue("X-Request-Id").orElse(""));
  }

  @Test
  void clientDisconnectCancelsTheStreamedTask() throws Exception {
    // journaled (an Idempotency-Key): the task's end is there to read
    api.sim.setDefaults(Faults.none().withTokensPerSecond(4));
    String id = openStreamAndLeave("one two three four five six seven eight nine ten", "Idempotency-Key", "leave-1");
    api.await(
        Duration.ofSeconds(20),
        () -> {
          // a streamed chat is not a task its client reads back (TransientTasksTest): ask as operator.
          // Two ways end it, whichever comes first: the api-node cancels it when the response's
          // stream is cancelled, and the entity fails it when its last follower leaves after output
          JsonNode t = unchecked(() -> json(api.get("/admin/tasks/" + id, "Authorization", "Bearer " + ADMIN_TOKEN)));
          String status = t.path("status").asText();
          assertTrue(
              status.equals("cancelled")
                  || (status.equals("failed") && t.at("/error/message").asText().contains("client left")),
              t.toString());
          return null;
        });
  }

  @Test
  void clientDisconnectStopsTheRunnersWorkForAChatInMemory() throws Exception {
    // in memory (no key): gone a second after it ends, so the runner is the witness: one token a
    // second for an answer of some 25 tokens, and its connection closes long before that
    api.sim.setDefaults(Faults.none().withTokensPerSecond(1));
    String prompt = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
        + " seventeen eighteen nineteen twenty";
    String id = openStreamAndLeave(prompt);
    assertTrue(id.startsWith("chatcmpl-m"), id);
    api.await(
        Duration.ofSeconds(15),
        () -> {
          assertEquals(0, api.sim.stats().inFlight(), "the runner's call was aborted");
          return null;
        });
  }

  /** Opens a streamed chat, reads its first event, and closes the connection; the task's id. */
  private String openStreamAndLeave(String prompt, String... headers) throws Exception {
    HttpRequest.Builder request =
        api.request("/v1/chat/completions")
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(streamBody(prompt, false)));
    for (int i = 0; i < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    HttpResponse<InputStream> response =
        api.client
            .sendAsync(request.build(), HttpResponse.BodyHandlers.ofInputStream())
            .get(ApiFixture.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    assertEquals(200, response.statusCode());
    try (BufferedReader reader =
        new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      String line = reader.readLine();
      while (line != null && !line.startsWith("data: ")) {
        line = reader.readLine();
      }
      assertNotNull(line);
      assertTrue(api.sim.stats().inFlight() >= 1, "the runner is answering: " + api.sim.stats());
      return ApiFixture.JSON.readTree(line.substring(6)).path("id").asText();
    }
  }

  interface Call<T> {
    T call() throws Exception;
  }

  static <T> T unchecked(Call<T> call) {
    try {
      return call.call();
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
