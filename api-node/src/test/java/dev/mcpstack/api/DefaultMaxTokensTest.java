package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.dataEvents;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.ChatApiTest.unchecked;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code mcp.api.default-max-tokens} reaches the model runner for chat requests without a limit of
 * their own, sync, streamed and async. The simulator answers one token per word and stops at the
 * limit it receives with {@code finish_reason: length}: that is what shows the limit arrived.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DefaultMaxTokensTest {
  private static final int DEFAULT = 3;
  /** The simulator's reply to it has 9 words: "Simulated reply to: one two three four five six". */
  private static final String PROMPT = "one two three four five six";

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("DefaultMaxTokensTest", "mcp.api.default-max-tokens = " + DEFAULT);
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  private static String chat(String extra) {
    return "{\"model\":\"" + MODEL + "\"" + extra + ",\"messages\":[{\"role\":\"user\",\"content\":\"" + PROMPT + "\"}]}";
  }

  @Test
  void aChatWithoutALimitGetsTheDefault() throws Exception {
    for (String body : List.of(chat(""), chat(",\"max_tokens\":null"))) {
      JsonNode answer = json(api.post("/v1/chat/completions", body));
      assertEquals("length", answer.at("/choices/0/finish_reason").asText(), answer.toString());
      assertEquals(DEFAULT, answer.at("/usage/completion_tokens").asInt(), answer.toString());
    }
  }

  @Test
  void theClientsOwnLimitWins() throws Exception {
    JsonNode higher = json(api.post("/v1/chat/completions", chat(",\"max_tokens\":5")));
    assertEquals(5, higher.at("/usage/completion_tokens").asInt(), higher.toString());
    // the runner takes the smaller of both fields: had the default been added too, this would be 3
    JsonNode newer = json(api.post("/v1/chat/completions", chat(",\"max_completion_tokens\":6")));
    assertEquals(6, newer.at("/usage/completion_tokens").asInt(), newer.toString());
    JsonNode unlimited = json(api.post("/v1/chat/completions", chat(",\"max_tokens\":100")));
    assertEquals("stop", unlimited.at("/choices/0/finish_reason").asText(), unlimited.toString());
    assertEquals(9, unlimited.at("/usage/completion_tokens").asInt(), unlimited.toString());
  }

  @Test
  void aStreamedChatWithoutALimitGetsTheDefault() throws Exception {
    HttpResponse<String> r =
        api.post("/v1/chat/completions", chat(",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
    assertEquals(200, r.statusCode(), r.body());
    List<String> events = dataEvents(r.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
    JsonNode usage = ApiFixture.JSON.readTree(events.get(events.size() - 2));
    assertEquals(DEFAULT, usage.at("/usage/completion_tokens").asInt(), r.body());
    String finish = null;
    for (String e : events.subList(0, events.size() - 1)) {
      JsonNode reason = ApiFixture.JSON.readTree(e).at("/choices/0/finish_reason");
      if (reason.isTextual()) {
        finish = reason.asText();
      }
    }
    assertEquals("length", finish, r.body());
  }

  @Test
  void anAsyncChatTaskWithoutALimitGetsTheDefault() throws Exception {
    HttpResponse<String> submitted = api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chat("") + "}");
    assertEquals(202, submitted.statusCode(), submitted.body());
    String id = json(submitted).path("id").asText();
    JsonNode done =
        api.await(
            Duration.ofSeconds(20),
            () -> {
              JsonNode t = unchecked(() -> json(api.get("/v1/tasks/" + id)));
              assertEquals("succeeded", t.path("status").asText(), t.toString());
              return t;
            });
    assertEquals("length", done.at("/result/choices/0/finish_reason").asText(), done.toString());
    assertEquals(DEFAULT, done.at("/result/usage/completion_tokens").asInt(), done.toString());
  }

  @Test
  void theCallersBodyIsCopiedNotChanged() {
    RequestValidation validation = new RequestValidation(settings(DEFAULT));
    ObjectNode body = (ObjectNode) unchecked(() -> ApiFixture.JSON.readTree(chat("")));
    JsonNode sent = validation.chatWithDefaults(body);
    assertEquals(DEFAULT, sent.path("max_tokens").asInt());
    assertFalse(body.has("max_tokens"), body.toString());
    assertSame(body, new RequestValidation(settings(0)).chatWithDefaults(body), "0 = no default");
  }

  @Test
  void aDefaultOutsideZeroToTheCapRefusesToStart() {
    for (int bad : new int[] {-1, 32769}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> new RequestValidation(settings(bad)));
      assertTrue(e.getMessage().contains("API_DEFAULT_MAX_TOKENS"), e.getMessage());
    }
  }

  private static ApiSettings settings(int defaultMaxTokens) {
    return ApiSettings.fromConfig(
        ConfigFactory.parseString("mcp.api { default-max-tokens = " + defaultMaxTokens + ", max-tokens-cap = 32768 }")
            .withFallback(ConfigFactory.defaultReference()));
  }
}
