package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.json;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad input, table-driven: each case gets its documented status and an OpenAI-shaped error with
 * a request id; afterwards the API still serves a normal chat.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BadInputTest {
  private static final String CHAT = "/v1/chat/completions";
  private static final String USER = "[{\"role\":\"user\",\"content\":\"hi\"}]";

  /** A key without limits, used by every case that is not about keys. */
  private static final String GOOD = "sk-bad-input-test-good-key-0000000000000001";
  /** A key that may use only sim-large. */
  private static final String NARROW = "sk-bad-input-test-narrow-key-000000000000002";
  /** A key whose 2 tokens per minute no chat prompt fits in. */
  private static final String TINY = "sk-bad-input-test-tiny-key-00000000000000003";

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    java.nio.file.Path keys = java.nio.file.Files.createTempFile("bad-input-keys", ".conf");
    java.nio.file.Files.writeString(
        keys,
        "keys = [\n"
            + "  { tenant = good, sha256 = \"" + Sha256.hex(GOOD) + "\" }\n"
            + "  { tenant = narrow, sha256 = \"" + Sha256.hex(NARROW) + "\", models = [sim-large] }\n"
            + "  { tenant = tiny, sha256 = \"" + Sha256.hex(TINY) + "\", limits { tokens-per-minute = 2 } }\n"
            + "]\n");
    keys.toFile().deleteOnExit();
    // keys required, declared in a file; no admin token (whatever ADMIN_TOKEN says): the admin API is off
    api =
        ApiFixture.start(
            "BadInputTest",
            "mcp.api.max-body-size = 64k\nmcp.api.admin-token = \"\"\n"
                + "mcp.api.keys { required = on, file = \"" + keys.toAbsolutePath() + "\" }");
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  private static String chat(String extra) {
    return "{\"model\":\"" + MODEL + "\",\"messages\":" + USER + extra + "}";
  }

  /** name, method, path, content type, body, status, error type, param (null = not checked). */
  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("malformed JSON", "POST", CHAT, "application/json", "{\"model\": \"x\",", 400, "invalid_request_error", null),
        Arguments.of("trailing garbage", "POST", CHAT, "application/json", chat("") + " nope", 400, "invalid_request_error", null),
        Arguments.of("empty body", "POST", CHAT, "application/json", "", 400, "invalid_request_error", null),
        Arguments.of("not an object", "POST", CHAT, "application/json", "[1,2]", 400, "invalid_request_error", null),
        Arguments.of("missing model", "POST", CHAT, "application/json", "{\"messages\":" + USER + "}", 400, "invalid_request_error", "model"),
        Arguments.of("model is a number", "POST", CHAT, "application/json", "{\"model\":7,\"messages\":" + USER + "}", 400, "invalid_request_error", "model"),
        Arguments.of("blank model", "POST", CHAT, "application/json", "{\"model\":\" \",\"messages\":" + USER + "}", 400, "invalid_request_error", "model"),
        Arguments.of("messages not an array", "POST", CHAT, "application/json", "{\"model\":\"m\",\"messages\":\"hi\"}", 400, "invalid_request_error", "messages"),
        Arguments.of("empty messages", "POST", CHAT, "application/json", "{\"model\":\"m\",\"messages\":[]}", 400, "invalid_request_error", "messages"),
        Arguments.of("message not an object", "POST", CHAT, "application/json", "{\"model\":\"m\",\"messages\":[\"hi\"]}", 400, "invalid_request_error", "messages[0]"),
        Arguments.of("unknown role", "POST", CHAT, "application/json", "{\"model\":\"m\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", 400, "invalid_request_error", "messages[0].role"),
        Arguments.of("missing content", "POST", CHAT, "application/json", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", 400, "invalid_request_error", "messages[0].content"),
        Arguments.of("content is a number", "POST", CHAT, "application/json", "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"a\"},{\"role\":\"user\",\"content\":3}]}", 400, "invalid_request_error", "messages[1].content"),
        Arguments.of("negative max_tokens", "POST", CHAT, "application/json", chat(",\"max_tokens\":-5"), 400, "invalid_request_error", "max_tokens"),
        Arguments.of("huge max_tokens", "POST", CHAT, "application/json", chat(",\"max_tokens\":100000000"), 400, "invalid_request_error", "max_tokens"),
        Arguments.of("enormous max_completion_tokens", "POST", CHAT, "application/json", chat(",\"max_completion_tokens\":99999999999999999999999"), 400, "invalid_request_error", "max_completion_tokens"),
        Arguments.of("fractional max_tokens", "POST", CHAT, "application/json", chat(",\"max_tokens\":1.5"), 400, "invalid_request_error", "max_tokens"),
        Arguments.of("temperature 5", "POST", CHAT, "application/json", chat(",\"temperature\":5"), 400, "invalid_request_error", "temperature"),
        Arguments.of("temperature a string", "POST", CHAT, "application/json", chat(",\"temperature\":\"hot\""), 400, "invalid_request_error", "temperature"),
        Arguments.of("top_p 2", "POST", CHAT, "application/json", chat(",\"top_p\":2"), 400, "invalid_request_error", "top_p"),
        Arguments.of("n 3", "POST", CHAT, "application/json", chat(",\"n\":3"), 400, "invalid_request_error", "n"),
        Arguments.of("stream a string", "POST", CHAT, "application/json", chat(",\"stream\":\"yes\""), 400, "invalid_request_error", "stream"),
        Arguments.of("empty embeddings input", "POST", "/v1/embeddings", "application/json", "{\"model\":\"m\",\"input\":[]}", 400, "invalid_request_error", "input"),
        Arguments.of("embeddings input of numbers", "POST", "/v1/embeddings", "application/json", "{\"model\":\"m\",\"input\":[1]}", 400, "invalid_request_error", "input[0]"),
        Arguments.of("unknown task kind", "POST", "/v1/tasks", "application/json", "{\"kind\":\"dance\",\"request\":{}}", 400, "invalid_request_error", "kind"),
        Arguments.of("task without request", "POST", "/v1/tasks", "application/json", "{\"kind\":\"chat\"}", 400, "invalid_request_error", "request"),
        Arguments.of("task chat without messages", "POST", "/v1/tasks", "application/json", "{\"kind\":\"chat\",\"request\":{\"model\":\"m\"}}", 400, "invalid_request_error", "request.messages"),
        Arguments.of("task that streams", "POST", "/v1/tasks", "application/json", "{\"kind\":\"chat\",\"request\":" + chat(",\"stream\":true") + "}", 400, "invalid_request_error", "request.stream"),
        Arguments.of("task timeout 0", "POST", "/v1/tasks", "application/json", "{\"kind\":\"model_warmup\",\"request\":{\"model\":\"m\"},\"timeout_seconds\":0}", 400, "invalid_request_error", "timeout_seconds"),
        Arguments.of("wrong content type", "POST", CHAT, "text/plain", chat(""), 415, "invalid_request_error", null),
        Arguments.of("form content type", "POST", "/v1/tasks", "application/x-www-form-urlencoded", "kind=chat", 415, "invalid_request_error", null),
        Arguments.of("wrong method on chat", "PUT", CHAT, "application/json", chat(""), 405, "invalid_request_error", null),
        Arguments.of("GET on embeddings", "GET", "/v1/embeddings", null, null, 405, "invalid_request_error", null),
        Arguments.of("DELETE on models", "DELETE", "/v1/models", null, null, 405, "invalid_request_error", null),
        Arguments.of("unknown path", "GET", "/v1/unknown", null, null, 404, "invalid_request_error".replace("invalid_request_error", "not_found_error"), null),
        Arguments.of("unknown version", "POST", "/v2/chat/completions", "application/json", chat(""), 404, "not_found_error", null),
        Arguments.of("task id with a pipe", "GET", "/v1/tasks/a%7Cb", null, null, 404, "not_found_error", null),
        Arguments.of("unknown task", "GET", "/v1/tasks/task-00000000000000000000000000000000", null, null, 404, "not_found_error", null),
        Arguments.of("unknown stored completion", "GET", "/v1/chat/completions/chatcmpl-nothing", null, null, 404, "not_found_error", null));
  }

  @Order(1)
  @ParameterizedTest(name = "{0} -> {5}")
  @MethodSource("cases")
  void badInputGetsItsStatusAndAnOpenAiError(
      String name, String method, String path, String contentType, String body, int status, String type, String param)
      throws Exception {
    HttpRequest.Builder request = api.request(path, "Authorization", "Bearer " + GOOD);
    if (contentType != null) {
      request.header("Content-Type", contentType);
    }
    request.method(
        method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    assertOpenAiError(name, api.send(request.build()), status, type, param);
  }

  /**
   * name, method, path, Authorization header (null = none), body, status, error type, error code:
   * keys, models a key may not use, operator-only tasks and limits.
   */
  static Stream<Arguments> keyCases() {
    String warmup = "{\"kind\":\"model_warmup\",\"request\":{\"model\":\"" + MODEL + "\"}}";
    return Stream.of(
        Arguments.of("no key", "POST", CHAT, null, chat(""), 401, "authentication_error", "invalid_api_key"),
        Arguments.of("empty bearer", "POST", CHAT, "Bearer ", chat(""), 401, "authentication_error", "invalid_api_key"),
        Arguments.of("basic auth", "POST", CHAT, "Basic Z29vZDprZXk=", chat(""), 401, "authentication_error", "invalid_api_key"),
        Arguments.of("malformed key", "POST", CHAT, "Bearer sk-short", chat(""), 401, "authentication_error", "invalid_api_key"),
        Arguments.of("key with spaces", "POST", CHAT, "Bearer sk mcp with spaces in it", chat(""), 401, "authentication_error", "invalid_api_key"),
        Arguments.of("unknown key", "POST", CHAT, "Bearer sk-mcp-0123456789ab-unknownunknownunknownunknownunknown", chat(""), 401, "authentication_error", "invalid_api_key"),
        Arguments.of("unknown key, tasks", "GET", "/v1/tasks/task-0123", "Bearer sk-mcp-0123456789ab-unknownunknownunknownunknownunknown", null, 401, "authentication_error", "invalid_api_key"),
        Arguments.of("no key, models", "GET", "/v1/models", null, null, 401, "authentication_error", "invalid_api_key"),
        Arguments.of("no key, usage", "GET", "/v1/usage", null, null, 401, "authentication_error", "invalid_api_key"),
        Arguments.of("model the key may not use", "POST", CHAT, "Bearer " + NARROW, chat(""), 404, "not_found_error", "model_not_found"),
        Arguments.of("model the key may not use, read", "GET", "/v1/models/" + MODEL, "Bearer " + NARROW, null, 404, "not_found_error", "model_not_found"),
        Arguments.of("model the key may not use, task", "POST", "/v1/tasks", "Bearer " + NARROW, "{\"kind\":\"chat\",\"request\":" + chat("") + "}", 404, "not_found_error", "model_not_found"),
        Arguments.of("model the key may not use, embeddings", "POST", "/v1/embeddings", "Bearer " + NARROW, "{\"model\":\"" + MODEL + "\",\"input\":\"x\"}", 404, "not_found_error", "model_not_found"),
        Arguments.of("warm-up with a key", "POST", "/v1/tasks", "Bearer " + GOOD, warmup, 403, "permission_error", "permission_denied"),
        Arguments.of("over tokens per minute", "POST", CHAT, "Bearer " + TINY, chat(""), 429, "rate_limit_error", "rate_limit_exceeded"),
        Arguments.of("over tokens per minute, task", "POST", "/v1/tasks", "Bearer " + TINY, "{\"kind\":\"chat\",\"request\":" + chat("") + "}", 429, "rate_limit_error", "rate_limit_exceeded"),
        Arguments.of("usage, bad date", "GET", "/v1/usage?start_date=28.11.2026", "Bearer " + GOOD, null, 400, "invalid_request_error", "invalid_request"),
        Arguments.of("usage, reversed range", "GET", "/v1/usage?start_date=2026-11-28&end_date=2026-11-01", "Bearer " + GOOD, null, 400, "invalid_request_error", "invalid_request"),
        Arguments.of("usage, range over a year", "GET", "/v1/usage?start_date=2024-01-01&end_date=2026-11-01", "Bearer " + GOOD, null, 400, "invalid_request_error", "invalid_request"));
  }

  @Order(1)
  @ParameterizedTest(name = "{0} -> {5}")
  @MethodSource("keyCases")
  void keyCasesGetTheirStatusAndOpenAiCode(
      String name, String method, String path, String authorization, String body, int status, String type, String code)
      throws Exception {
    HttpRequest.Builder request = api.request(path);
    if (authorization != null) {
      request.header("Authorization", authorization);
    }
    if (body != null) {
      request.header("Content-Type", "application/json");
    }
    request.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    HttpResponse<String> response = api.send(request.build());
    assertOpenAiError(name, response, status, type, null);
    assertEquals(code, json(response).path("error").path("code").asText(), response.body());
    if (status == 401) {
      assertEquals("Bearer", response.headers().firstValue("WWW-Authenticate").orElse(""), name);
    }
    if (status == 429) {
      assertTrue(response.headers().firstValue("Retry-After").isPresent(), name);
      assertEquals("2", response.headers().firstValue("x-ratelimit-limit-tokens").orElse(""), name);
    }
  }

  private static void assertOpenAiError(String name, HttpResponse<String> response, int status, String type, String param)
      throws Exception {
    assertEquals(status, response.statusCode(), name + ": " + response.body());
    assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), name);
    JsonNode error = json(response).path("error");
    assertTrue(error.isObject(), response.body());
    assertEquals(type, error.path("type").asText(), response.body());
    assertFalse(error.path("message").asText().isBlank(), response.body());
    assertTrue(error.has("param") && error.has("code"), response.body());
    String requestId = response.headers().firstValue("X-Request-Id").orElse("");
    assertFalse(requestId.isEmpty());
    assertEquals(requestId, error.path("request_id").asText());
    if (param != null) {
      assertEquals(param, error.path("param").asText(), response.body());
      assertTrue(error.path("message").asText().contains(param), response.body());
    }
    if (status == 405) {
      assertTrue(response.headers().firstValue("Allow").isPresent(), name);
    }
    assertFalse(response.body().contains("Exception"), response.body());
  }

  /**
   * A body declared larger than max-body-size gets 413 before it is read. Raw socket: the client
   * sends the headers and only a few bytes, so no unread data can make the server's close reset
   * the connection before the answer is read (which a client writing the whole body risks).
   */
  @Order(1)
  @Test
  void bodyTooLargeIs413() throws Exception {
    try (Socket socket = new Socket("127.0.0.1", api.port)) {
      socket.setSoTimeout(20_000);
      OutputStream out = socket.getOutputStream();
      out.write(
          ("POST " + CHAT + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  + "Authorization: Bearer " + GOOD + "\r\n"
                  + "Content-Length: 100000\r\nX-Request-Id: too-big-1\r\n\r\n{\"model\":")
              .getBytes(StandardCharsets.US_ASCII));
      out.flush();
      BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
      String statusLine = in.readLine();
      assertTrue(statusLine.startsWith("HTTP/1.1 413"), statusLine);
      int length = 0;
      String line;
      while (!(line = in.readLine()).isEmpty()) {
        if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
          length = Integer.parseInt(line.substring(15).trim());
        }
      }
      char[] body = new char[length];
      int read = 0;
      while (read < length) {
        int n = in.read(body, read, length - read);
        assertTrue(n > 0, "connection closed before the body was read");
        read += n;
      }
      JsonNode error = ApiFixture.JSON.readTree(new String(body)).path("error");
      assertEquals("invalid_request_error", error.path("type").asText());
      assertEquals("payload_too_large", error.path("code").asText());
      assertEquals("too-big-1", error.path("request_id").asText());
    }
  }

  @Order(2)
  @Test
  void aNormalChatStillWorksAfterwards() throws Exception {
    HttpResponse<String> response = api.post(CHAT, chatBody("still here"), "Authorization", "Bearer " + GOOD);
    assertEquals(200, response.statusCode(), response.body());
    assertEquals("Simulated reply to: still here", json(response).at("/choices/0/message/content").asText());
  }

  @Order(3)
  @Test
  void badIdempotencyKeyIsRejected() throws Exception {
    HttpResponse<String> response =
        api.post(CHAT, chatBody("x"), "Authorization", "Bearer " + GOOD, "Idempotency-Key", "k".repeat(300));
    assertEquals(400, response.statusCode());
    assertEquals("Idempotency-Key", json(response).at("/error/param").asText());
  }

  @Order(3)
  @Test
  void adminApiIsAbsentWithoutAToken() throws Exception {
    HttpResponse<String> unknown = api.get("/no-such-thing");
    for (HttpResponse<String> response :
        List.of(
            api.get("/admin/cluster"),
            api.get("/admin/cluster", "Authorization", "Bearer anything"),
            api.get("/admin/upstreams", "Authorization", "Bearer "),
            api.get("/admin/tasks/task-unknown123"),
            api.send(
                api.request("/admin/upstreams/default/reset")
                    .POST(HttpRequest.BodyPublishers.noBody())
                    .build()))) {
      assertEquals(404, response.statusCode(), response.body());
      assertEquals(json(unknown).at("/error/type"), json(response).at("/error/type"));
      assertEquals(json(unknown).at("/error/code"), json(response).at("/error/code"));
      assertTrue(response.headers().firstValue("WWW-Authenticate").isEmpty());
    }
  }
}
