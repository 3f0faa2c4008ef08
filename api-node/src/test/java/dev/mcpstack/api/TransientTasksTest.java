package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.dataEvents;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.ApiFixture.streamBody;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import dev.mcpstack.worker.testkit.TestNode;
import dev.mcpstack.worker.journal.RetentionCleaner;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A chat or embeddings call answered on its connection is transient: it cannot be read back
 * through {@code /v1/tasks} (only async tasks can), operators see it without its answer, and its
 * journal entries go {@code transient-after} after it ended; stored completions and async tasks
 * stay readable.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TransientTasksTest {
  private static final String TOKEN = "secret";
  private static final String[] ADMIN = {"Authorization", "Bearer " + TOKEN};
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("TransientTasksTest", "mcp.api.admin-token = \"" + TOKEN + "\"");
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  @Test
  void onlyAsyncTasksCanBeReadThroughTheTasksApi() throws Exception {
    String chat = chat(chatBody("private"));
    String streamed = streamed();
    String embeddings = embeddings();
    String stored = chat(storedBody("keep me"));
    String unknown = "task-" + "0".repeat(32);
    String notFound = message(api.get("/v1/tasks/" + unknown), unknown);

    for (String id : List.of(chat, streamed, embeddings, stored)) {
      HttpResponse<String> read = api.get("/v1/tasks/" + id);
      assertEquals(404, read.statusCode(), id + ": " + read.body());
      assertEquals("not_found_error", json(read).at("/error/type").asText());
      assertEquals(notFound, message(read, id), "the answer an unknown task gets");
      assertEquals(404, api.delete("/v1/tasks/" + id).statusCode(), id);
      assertEquals(404, api.get("/v1/tasks/" + id + "/events").statusCode(), id);
    }

    HttpResponse<String> completion = api.get("/v1/chat/completions/" + stored);
    assertEquals(200, completion.statusCode(), completion.body());
    assertEquals("Simulated reply to: keep me", json(completion).at("/choices/0/message/content").asText());
    String async = asyncTask();
    assertEquals(200, api.get("/v1/tasks/" + async).statusCode());
  }

  @Test
  void operatorsSeeATransientTaskWithoutItsAnswer() throws Exception {
    String chat = chat(chatBody("between us"));
    JsonNode inspected = json(api.get("/admin/tasks/" + chat, ADMIN));
    assertEquals("succeeded", inspected.path("status").asText(), inspected.toString());
    assertEquals(Caller.ANONYMOUS_TENANT, inspected.path("owner").asText());
    assertTrue(inspected.path("result").isNull(), inspected.toString());
    assertFalse(inspected.toString().contains("between us"), inspected.toString());

    for (String id : List.of(chat(storedBody("kept")), asyncTask())) {
      JsonNode kept = json(api.get("/admin/tasks/" + id, ADMIN));
      assertEquals(
          "Simulated reply to: kept", kept.at("/result/choices/0/message/content").asText(), kept.toString());
    }
  }

  @Test
  void onlyTransientTasksLeaveTheJournalAfterTheShortRetention() throws Exception {
    String chat = chat(chatBody("short-lived"));
    String embeddings = embeddings();
    String stored = chat(storedBody("kept"));
    String async = asyncTask();
    Config config = api.node.settings().config();

    RetentionCleaner later =
        new RetentionCleaner(
            config,
            Clock.offset(
                Clock.systemUTC(),
                config.getDuration("mcp.worker.retention.transient-after").plusMinutes(1)));
    assertTrue(later.cleanAll() >= 2);
    assertEquals(0, TestNode.journalRows(config, "event_journal", chat));
    assertEquals(0, TestNode.journalRows(config, "event_journal", embeddings));
    assertTrue(TestNode.journalRows(config, "event_journal", stored) > 0, "a stored completion stays");
    assertTrue(TestNode.journalRows(config, "event_journal", async) > 0, "an async task stays");
    assertEquals(200, api.get("/v1/chat/completions/" + stored).statusCode());
    assertEquals(200, api.get("/v1/tasks/" + async).statusCode());
    // once passivated, the deleted task is gone for operators too
    api.eventually(WAIT, () -> assertEquals(404, api.get("/admin/tasks/" + chat, ADMIN).statusCode()));
  }

  private static String storedBody(String text) {
    return "{\"model\":\"" + MODEL + "\",\"store\":true,\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
  }

  private String chat(String body) throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", body);
    assertEquals(200, response.statusCode(), response.body());
    return json(response).path("id").asText();
  }

  private String streamed() throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", streamBody("flowing", false));
    assertEquals(200, response.statusCode(), response.body());
    return ApiFixture.JSON.readTree(dataEvents(response.body()).get(0)).path("id").asText();
  }

  /** An embeddings call; its answer has no id, so an Idempotency-Key makes it known. */
  private String embeddings() throws Exception {
    String key = UUID.randomUUID().toString();
    HttpResponse<String> response =
        api.post("/v1/embeddings", "{\"model\":\"" + MODEL + "\",\"input\":\"vector me\"}", "Idempotency-Key", key);
    assertEquals(200, response.statusCode(), response.body());
    return TaskIds.make(TaskIds.EMBEDDINGS, Caller.ANONYMOUS_TENANT, Optional.of(key));
  }

  /** An async chat task, once it succeeded. */
  private String asyncTask() throws Exception {
    HttpResponse<String> submitted =
        api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("kept") + "}");
    assertEquals(202, submitted.statusCode(), submitted.body());
    String id = json(submitted).path("id").asText();
    api.eventually(
        WAIT, () -> assertEquals("succeeded", json(api.get("/v1/tasks/" + id)).path("status").asText()));
    return id;
  }

  private static String message(HttpResponse<String> response, String id) throws Exception {
    return json(response).at("/error/message").asText().replace(id, "ID");
  }
}
