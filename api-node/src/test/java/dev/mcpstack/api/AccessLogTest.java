package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.streamBody;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.LoggerFactory;
import org.slf4j.event.KeyValuePair;

/**
 * One access-log line per request, with the facts an operator needs and none a tenant would not
 * want logged: key id but never the key, route templates instead of ids, tokens and attempts of a
 * chat, time to first token of a stream, error codes of refusals; no prompt or completion text.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AccessLogTest {
  private static final String KEY = "sk-declared-key-for-the-access-log-test-01";
  private static final String KEY_ID = "cfg" + Sha256.hex(KEY).substring(0, 9);
  private static final String SECRET_PROMPT = "prompt-text-that-must-never-be-logged";
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture api;
  private final ListAppender<ILoggingEvent> lines = new ListAppender<>();

  @BeforeAll
  void start() throws Exception {
    lines.start();
    Logger access = (Logger) LoggerFactory.getLogger("mcp.access");
    access.setLevel(Level.INFO); // the test configuration keeps the root at WARN
    access.addAppender(lines);
    api =
        ApiFixture.start(
            "AccessLogTest", "mcp.api { keys.required = on, keys.declared = \"acme:" + Sha256.hex(KEY) + "\" }");
  }

  @AfterAll
  void stop() throws Exception {
    ((Logger) LoggerFactory.getLogger("mcp.access")).detachAppender(lines);
    if (api != null) {
      api.close();
    }
  }

  private static String[] headers(String requestId, boolean withKey) {
    return withKey
        ? new String[] {"X-Request-Id", requestId, "Authorization", "Bearer " + KEY}
        : new String[] {"X-Request-Id", requestId};
  }

  /** The fields of the one line of {@code requestId}, once it was written. */
  private Map<String, Object> line(String requestId) {
    return api.await(
        WAIT,
        () -> {
          List<Map<String, Object>> found;
          synchronized (lines) {
            found =
                List.copyOf(lines.list).stream()
                    .map(AccessLogTest::fields)
                    .filter(f -> requestId.equals(f.get("request_id")))
                    .toList();
          }
          assertEquals(1, found.size(), "access-log lines of " + requestId);
          return found.get(0);
        });
  }

  private static Map<String, Object> fields(ILoggingEvent e) {
    Map<String, Object> out = new HashMap<>();
    List<KeyValuePair> kvs = e.getKeyValuePairs();
    if (kvs != null) {
      kvs.forEach(kv -> out.put(kv.key, kv.value));
    }
    out.put("message", e.getFormattedMessage());
    return out;
  }

  private static void assertNothingSecret(Map<String, Object> line) {
    String all = line.toString();
    assertFalse(all.contains(KEY), "the key itself is logged: " + all);
    assertFalse(all.contains(SECRET_PROMPT), "prompt text is logged: " + all);
    assertFalse(all.contains("Simulated reply"), "completion text is logged: " + all);
  }

  @Test
  void aChatLogsItsCallerModelTokensAttemptsAndDuration() throws Exception {
    HttpResponse<String> r = api.post("/v1/chat/completions", chatBody(SECRET_PROMPT), headers("req-log-chat", true));
    assertEquals(200, r.statusCode(), r.body());
    Map<String, Object> line = line("req-log-chat");
    assertEquals("POST", line.get("method"));
    assertEquals("/v1/chat/completions", line.get("route"));
    assertEquals(200, line.get("status"));
    assertEquals(KEY_ID, line.get("key_id"));
    assertEquals("acme", line.get("tenant"));
    assertEquals(MODEL, line.get("model"));
    assertEquals(1, line.get("attempts"));
    assertTrue(((Long) line.get("prompt_tokens")) > 0, line.toString());
    assertTrue(((Long) line.get("completion_tokens")) > 0, line.toString());
    assertNotNull(line.get("upstream"), line.toString());
    assertTrue(((Double) line.get("duration_ms")) > 0, line.toString());
    assertFalse(line.containsKey("error_code"), line.toString());
    assertFalse(line.containsKey("ttft_ms"), "a plain chat has no time to first token: " + line);
    assertEquals("POST /v1/chat/completions 200", line.get("message"));
    assertNothingSecret(line);
  }

  @Test
  void aStreamLogsItsTimeToFirstTokenAndUsageWhenItEnds() throws Exception {
    HttpResponse<String> r =
        api.post("/v1/chat/completions", streamBody(SECRET_PROMPT, true), headers("req-log-stream", true));
    assertEquals(200, r.statusCode(), r.body());
    assertTrue(r.body().contains("[DONE]"), r.body());
    Map<String, Object> line = line("req-log-stream");
    assertEquals(200, line.get("status"));
    assertEquals(MODEL, line.get("model"));
    double ttft = (Double) line.get("ttft_ms");
    double duration = (Double) line.get("duration_ms");
    assertTrue(ttft > 0 && ttft <= duration, "ttft " + ttft + " within duration " + duration);
    assertTrue(((Long) line.get("completion_tokens")) > 0, line.toString());
    assertEquals(1, line.get("attempts"));
    assertNothingSecret(line);
  }

  @Test
  void routesAreTemplatesAndRefusalsCarryTheirErrorCode() throws Exception {
    assertEquals(401, api.post("/v1/chat/completions", chatBody(SECRET_PROMPT), headers("req-log-401", false)).statusCode());
    Map<String, Object> refused = line("req-log-401");
    assertEquals(401, refused.get("status"));
    assertEquals("invalid_api_key", refused.get("error_code"));
    assertFalse(refused.containsKey("key_id"), refused.toString());
    assertNothingSecret(refused);

    assertEquals(404, api.get("/v1/tasks/task_does_not_exist_123", headers("req-log-404", true)).statusCode());
    Map<String, Object> missing = line("req-log-404");
    assertEquals("/v1/tasks/{id}", missing.get("route"));
    assertEquals("not_found", missing.get("error_code"));
    assertEquals("acme", missing.get("tenant"));

    assertEquals(404, api.get("/no/such/path/abc", headers("req-log-unmatched", false)).statusCode());
    assertEquals("unmatched", line("req-log-unmatched").get("route"));

    HttpResponse<String> task =
        api.post(
            "/v1/tasks",
            "{\"kind\":\"chat\",\"request\":" + chatBody(SECRET_PROMPT) + "}",
            headers("req-log-task", true));
    assertEquals(202, task.statusCode(), task.body());
    Map<String, Object> submitted = line("req-log-task");
    assertEquals("/v1/tasks", submitted.get("route"));
    assertEquals(MODEL, submitted.get("model"));
    assertNothingSecret(submitted);

    assertEquals(200, api.get("/health/live", headers("req-log-live", false)).statusCode());
    assertEquals("/health/live", line("req-log-live").get("route"));
  }
}
