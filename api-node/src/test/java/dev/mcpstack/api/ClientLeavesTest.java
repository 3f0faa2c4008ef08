package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.ApiFixture.streamBody;
import static org.junit.jupiter.api.Assertions.*;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.LoggerFactory;

/**
 * A synchronous chat or embeddings call whose client closes its connection before the answer
 * (ClientConnection): its task is cancelled and its key's limits freed, whether it is in memory or
 * journaled, and whenever the client leaves, also right after sending, before the Submit reached
 * the task; a call with an Idempotency-Key runs on for the retry with its key; a client that waits
 * for its answer, on a keep-alive connection or with {@code Connection: close}, gets it.
 *
 * <p>The runner answers after {@link #SLOW} (the simulator's own request timeout is set above it),
 * so a call whose task were not cancelled would hold its key's place and the runner for that long:
 * every bound here is well below it. Witnesses: the tasks' states, the key's places, and the
 * runner, which sees the call's connection closed (ADR 0013: abandoned, no longer in flight).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClientLeavesTest {
  private static final String ADMIN = "client-leaves-admin-token-0123456789abcdef";
  private static final String[] ADMIN_AUTH = {"Authorization", "Bearer " + ADMIN};
  private static final String TENANT = "leavers";
  private static final Duration SLOW = Duration.ofSeconds(30);
  /** Far above what a cancel takes, well below {@link #SLOW}. */
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture api;
  private final ListAppender<ILoggingEvent> accessLog = new ListAppender<>();
  private Level accessLevel;
  private final AtomicInteger requestIds = new AtomicInteger();
  /** A key without limits. */
  private String plainKey;

  @BeforeAll
  void start() throws Exception {
    accessLog.start();
    Logger access = (Logger) LoggerFactory.getLogger("mcp.access");
    accessLevel = access.getLevel();
    access.setLevel(Level.INFO); // the test configuration keeps the root at WARN
    access.addAppender(accessLog);
    api =
        ApiFixture.start(
            "ClientLeavesTest",
            "mcp.api { keys.required = on, admin-token = \"" + ADMIN + "\" }",
            "pekko.http.server.request-timeout = 90s");
    plainKey = key("{}");
  }

  @AfterAll
  void stop() throws Exception {
    Logger access = (Logger) LoggerFactory.getLogger("mcp.access");
    access.detachAppender(accessLog);
    access.setLevel(accessLevel);
    if (api != null) {
      api.close();
    }
  }

  @BeforeEach
  void resetSimulator() {
    api.resetSimulator();
  }

  @Test
  void aChatInMemoryWhoseClientLeavesIsCancelledAndFreesItsKey() throws Exception {
    // no Idempotency-Key: the task lives in its worker's memory and its id is never told to anyone
    leaveOnceTheRunnerHasTheCall("/v1/chat/completions", chatBody("in memory, for nobody"));
  }

  @Test
  void aStoredChatWhoseClientLeavesIsCancelledAndFreesItsKey() throws Exception {
    // journaled (store: true), but its id would have come with the answer: nobody can ask for it
    leaveOnceTheRunnerHasTheCall("/v1/chat/completions", chatWith("stored, for nobody", ",\"store\":true"));
  }

  @Test
  void embeddingsWhoseClientLeavesAreCancelledAndFreeTheirKey() throws Exception {
    leaveOnceTheRunnerHasTheCall("/v1/embeddings", "{\"model\":\"" + MODEL + "\",\"input\":[\"one\",\"two\"]}");
  }

  /**
   * A call under a key with one place whose client leaves once the runner has the call: the key's
   * place, the runner (which sees this call's connection closed: the stack passes the call's
   * X-Request-Id on) and the call's access-log line show it cancelled.
   */
  private void leaveOnceTheRunnerHasTheCall(String path, String body) throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(SLOW));
    String key = key("{\"max_concurrent_requests\":1}");
    String requestId = requestId();
    try (Socket socket = send(path, body, "Authorization", "Bearer " + key, "X-Request-Id", requestId)) {
      api.eventually(WAIT, () -> assertEquals(1, api.sim.inFlightWith("X-Request-Id", requestId), "the runner has the call"));
      assertEquals(429, probe(key), "the call holds its key's one place");
    } // the client leaves
    api.eventually(
        WAIT,
        () -> {
          assertEquals(0, api.sim.inFlightWith("X-Request-Id", requestId), "the runner still has the call");
          assertEquals(1L, api.sim.abandonedWith("X-Request-Id", requestId), "the runner saw the call abandoned");
        });
    api.eventually(WAIT, () -> assertEquals(200, probe(key), "the key's place is free again"));
    Map<String, Object> line = answered(requestId);
    assertEquals(409, line.get("status"), line.toString());
    assertEquals("task_cancelled", line.get("error_code"), line.toString());
  }

  /**
   * A streamed chat whose client leaves before the response begins (the node answers a stream's
   * headers with its first content or a keep-alive interval, here a minute): the connection's watch
   * cancels it, not the entity's orphan timeout (30 s) much later.
   */
  @Test
  void aStreamWhoseClientLeavesBeforeItsResponseIsCancelled() throws Exception {
    try (ApiFixture slowToStart =
        ApiFixture.start(
            "ClientLeavesStreamTest", "mcp.api.keepalive-interval = 60s", "pekko.http.server.request-timeout = 90s")) {
      slowToStart.sim.setDefaults(Faults.none().withLatency(SLOW));
      String requestId = requestId();
      try (Socket socket = new Socket("127.0.0.1", slowToStart.port)) {
        write(socket, "POST", "HTTP/1.1", "/v1/chat/completions", streamBody("gone before the headers", false),
            "X-Request-Id", requestId);
        slowToStart.eventually(
            WAIT, () -> assertEquals(1, slowToStart.sim.inFlightWith("X-Request-Id", requestId), "the runner has the call"));
      } // the client leaves; no byte of the response was sent
      slowToStart.eventually(
          WAIT,
          () -> {
            assertEquals(0, slowToStart.sim.inFlightWith("X-Request-Id", requestId), "the runner still has the call");
            assertEquals(1L, slowToStart.sim.abandonedWith("X-Request-Id", requestId), "the runner saw it abandoned");
          });
    }
  }

  /**
   * With an Idempotency-Key a client that lost its connection retries with the same key: its task
   * runs on to its end, and the retry gets the answer without a second call to the runner.
   */
  @Test
  void aCallWithAnIdempotencyKeyRunsOnForTheRetryWithItsKey() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofSeconds(3)));
    String id = TaskIds.chat(TENANT, Optional.of("retry-me"), false);
    String body = chatBody("keep this for my retry");
    String first = requestId();
    String retried = requestId();
    try (Socket socket = send("/v1/chat/completions", body,
        "Authorization", "Bearer " + plainKey, "Idempotency-Key", "retry-me", "X-Request-Id", first)) {
      api.eventually(WAIT, () -> assertEquals(1, api.sim.inFlightWith("X-Request-Id", first), "the runner has the call"));
    } // the connection is lost
    HttpResponse<String> retry = api.post("/v1/chat/completions", body,
        "Authorization", "Bearer " + plainKey, "Idempotency-Key", "retry-me", "X-Request-Id", retried);
    assertEquals(200, retry.statusCode(), retry.body());
    assertEquals(id, json(retry).path("id").asText());
    assertEquals("Simulated reply to: keep this for my retry", json(retry).at("/choices/0/message/content").asText());
    // the runner answered the first call whole, and never heard of the retry
    List<Integer> runnerAnswers = api.sim.stats().recent().stream()
        .filter(r -> first.equals(r.headers().get("x-request-id")) || retried.equals(r.headers().get("x-request-id")))
        .map(r -> r.status())
        .toList();
    assertEquals(List.of(200), runnerAnswers);
    assertEquals("succeeded", status(id));
  }

  /**
   * Clients that close their connection right after sending, so that most leave before their
   * call's Submit reached its task: whichever way each call went (not started at all, or
   * cancelled as soon as its Submit was answered), no call runs on at the runner and no place of
   * the key stays taken. Half of the chats are journaled ({@code store: true}), half in memory.
   */
  @Test
  void clientsThatLeaveRightAfterSendingLeaveNothingRunning() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(SLOW));
    int calls = 8;
    for (int round = 0; round < 3; round++) {
      String key = key("{\"max_concurrent_requests\":" + calls + "}");
      List<String> requestIds = new ArrayList<>();
      for (int i = 0; i < calls; i++) {
        String requestId = requestId();
        requestIds.add(requestId);
        String body = chatWith("gone at once " + i, i % 2 == 1 ? ",\"store\":true" : "");
        send("/v1/chat/completions", body, "Authorization", "Bearer " + key, "X-Request-Id", requestId).close();
      }
      for (String requestId : requestIds) {
        // once its call has answered, the api-node sends nothing more for it
        Map<String, Object> line = answered(requestId);
        assertEquals(409, line.get("status"), line.toString());
        assertEquals("task_cancelled", line.get("error_code"), line.toString());
      }
      // the runner has none of them left (the calls of an earlier round's probes end as well)
      api.eventually(WAIT, () -> assertEquals(0, api.sim.stats().inFlight(), "calls the runner still has"));
      // every call gave its place back: the key admits as many again at once
      api.eventually(WAIT, () -> assertEquals(calls, admittedAtOnce(key, calls)));
    }
  }

  @Test
  void aKeepAliveConnectionThatWasAnsweredCancelsNothing() throws Exception {
    // without an Idempotency-Key (a keyed call is never cancelled by its client leaving), stored so
    // that each task can be read back by the id its answer gives
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofMillis(300)));
    String first;
    String second;
    try (Socket socket =
        send("/v1/chat/completions", chatWith("first", ",\"store\":true"), "Authorization", "Bearer " + plainKey)) {
      Response response = readResponse(socket);
      assertEquals(200, response.status(), response.body());
      first = jsonOf(response).path("id").asText();
      // the connection stays open, answered: then serves a second call
      write(socket, "POST", "HTTP/1.1", "/v1/chat/completions", chatWith("second", ",\"store\":true"),
          "Authorization", "Bearer " + plainKey);
      response = readResponse(socket);
      assertEquals(200, response.status(), response.body());
      second = jsonOf(response).path("id").asText();
    } // and closes after its answers
    assertEquals("succeeded", status(first));
    assertEquals("succeeded", status(second));
    assertEquals(0L, api.sim.stats().abandoned());
  }

  @Test
  void clientsThatAnnounceTheEndOfTheirRequestsStillGetTheirAnswer() throws Exception {
    // after a request with Connection: close (or of HTTP/1.0) pekko-http knows no more will come;
    // that is not the client leaving
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofSeconds(1)));
    try (Socket socket = new Socket("127.0.0.1", api.port)) {
      write(socket, "POST", "HTTP/1.1", "/v1/chat/completions", chatBody("then I close"),
          "Authorization", "Bearer " + plainKey, "Connection", "close");
      Response response = readResponse(socket);
      assertEquals(200, response.status(), response.body());
      assertEquals("Simulated reply to: then I close", jsonOf(response).at("/choices/0/message/content").asText());
    }
    try (Socket socket = new Socket("127.0.0.1", api.port)) {
      write(socket, "POST", "HTTP/1.0", "/v1/chat/completions", chatBody("an old client"),
          "Authorization", "Bearer " + plainKey);
      Response response = readResponse(socket);
      assertEquals(200, response.status(), response.body());
      assertEquals("Simulated reply to: an old client", jsonOf(response).at("/choices/0/message/content").asText());
    }
  }

  // ---- helpers ----

  /** A chat's body with {@code extra} JSON members after its messages. */
  private static String chatWith(String text, String extra) {
    String plain = chatBody(text);
    return plain.substring(0, plain.length() - 1) + extra + "}";
  }

  /** A new key of the tenant with {@code limits}; its secret. */
  private String key(String limits) throws Exception {
    HttpResponse<String> created =
        api.post("/admin/keys", "{\"tenant\":\"" + TENANT + "\",\"limits\":" + limits + "}", ADMIN_AUTH);
    assertEquals(201, created.statusCode(), created.body());
    String secret = json(created).path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", "Authorization", "Bearer " + secret).statusCode()));
    return secret;
  }

  private String requestId() {
    return "client-leaves-" + requestIds.incrementAndGet();
  }

  /** A task's status as operators see it; "404" when there is no such task. */
  private String status(String id) throws Exception {
    HttpResponse<String> r = api.get("/admin/tasks/" + id, ADMIN_AUTH);
    if (r.statusCode() == 404) {
      return "404";
    }
    assertEquals(200, r.statusCode(), r.body());
    return json(r).path("status").asText();
  }

  /**
   * Whether {@code key} has a free place: a streamed chat is admitted (its headers come at once,
   * the runner being slow, with the first keep-alive) or refused with 429. An admitted one is
   * closed at once (it ends cancelled). The status.
   */
  private int probe(String key) throws Exception {
    HttpResponse<InputStream> response = openStream(key);
    response.body().close();
    return response.statusCode();
  }

  private HttpResponse<InputStream> openStream(String key) throws Exception {
    HttpRequest request =
        api.request("/v1/chat/completions", "Authorization", "Bearer " + key)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(streamBody("probe", false)))
            .build();
    return api.client
        .sendAsync(request, HttpResponse.BodyHandlers.ofInputStream())
        .get(ApiFixture.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
  }

  /** How many of {@code wanted} streamed chats of {@code key}, opened one after the other and held, were admitted. */
  private int admittedAtOnce(String key, int wanted) throws Exception {
    List<HttpResponse<InputStream>> open = new ArrayList<>();
    try {
      for (int i = 0; i < wanted; i++) {
        HttpResponse<InputStream> response = openStream(key);
        open.add(response);
        if (response.statusCode() != 200) {
          return i;
        }
      }
      return wanted;
    } finally {
      for (HttpResponse<InputStream> response : open) {
        response.body().close();
      }
    }
  }

  /** The access-log line of {@code requestId}, once its call has answered (to nobody, if its client left). */
  private Map<String, Object> answered(String requestId) {
    return api.await(
        WAIT,
        () -> {
          List<Map<String, Object>> found = new ArrayList<>();
          synchronized (accessLog) {
            for (ILoggingEvent e : List.copyOf(accessLog.list)) {
              Map<String, Object> fields = new HashMap<>();
              if (e.getKeyValuePairs() != null) {
                e.getKeyValuePairs().forEach(kv -> fields.put(kv.key, kv.value));
              }
              if (requestId.equals(fields.get("request_id"))) {
                found.add(fields);
              }
            }
          }
          assertEquals(1, found.size(), "access-log lines of " + requestId + " (none: its call has not answered yet)");
          return found.get(0);
        });
  }

  /** Opens a connection and sends one POST of HTTP/1.1, whole, in one write. */
  private Socket send(String path, String body, String... headers) throws IOException {
    Socket socket = new Socket("127.0.0.1", api.port);
    write(socket, "POST", "HTTP/1.1", path, body, headers);
    return socket;
  }

  private static void write(Socket socket, String method, String version, String path, String body, String... headers)
      throws IOException {
    byte[] content = body.getBytes(StandardCharsets.UTF_8);
    StringBuilder head = new StringBuilder(method + " " + path + " " + version + "\r\nHost: 127.0.0.1\r\n");
    head.append("Content-Type: application/json\r\n");
    for (int i = 0; i < headers.length; i += 2) {
      head.append(headers[i]).append(": ").append(headers[i + 1]).append("\r\n");
    }
    head.append("Content-Length: ").append(content.length).append("\r\n\r\n");
    ByteArrayOutputStream request = new ByteArrayOutputStream();
    request.write(head.toString().getBytes(StandardCharsets.US_ASCII));
    request.write(content);
    socket.getOutputStream().write(request.toByteArray());
    socket.getOutputStream().flush();
  }

  record Response(int status, String body) {}

  private static JsonNode jsonOf(Response response) throws IOException {
    return ApiFixture.JSON.readTree(response.body());
  }

  /** Reads one response with a Content-Length body from {@code socket}. */
  private static Response readResponse(Socket socket) throws IOException {
    socket.setSoTimeout((int) ApiFixture.TIMEOUT.toMillis());
    InputStream in = socket.getInputStream();
    String statusLine = line(in);
    int status = Integer.parseInt(statusLine.split(" ")[1]);
    int length = 0;
    for (String header = line(in); !header.isEmpty(); header = line(in)) {
      int colon = header.indexOf(':');
      if (header.substring(0, colon).trim().equalsIgnoreCase("Content-Length")) {
        length = Integer.parseInt(header.substring(colon + 1).trim());
      }
    }
    byte[] body = in.readNBytes(length);
    return new Response(status, new String(body, StandardCharsets.UTF_8));
  }

  private static String line(InputStream in) throws IOException {
    StringBuilder line = new StringBuilder();
    for (int c = in.read(); c != '\n'; c = in.read()) {
      if (c < 0) {
        throw new IOException("the connection closed mid-response: " + line);
      }
      if (c != '\r') {
        line.append((char) c);
      }
    }
    return line.toString();
  }
}
