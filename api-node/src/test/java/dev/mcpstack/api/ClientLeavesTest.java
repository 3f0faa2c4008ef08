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
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.slf4j.LoggerFactory;

/**
 * A synchronous chat or embeddings call whose client closes its connection before the answer
 * (ClientConnection): its task is cancelled and its key's limits freed, whether it is in memory or
 * journaled, and whenever the client leaves, also right after sending, before the Submit reached
 * the task; a client that waits for its answer, on a keep-alive connection or with {@code
 * Connection: close}, gets it.
 *
 * <p>The runner answers after {@link #SLOW} (the simulator's own request timeout is set above it),
 * so a call whose task were not cancelled would hold its key's place and the runner for that long:
 * every bound here is well below it. Witnesses: the tasks' states, the key's places, and the
 * runner, which sees the call's connection closed (ADR 0013: abandoned, no longer in flight).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
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
  void aJournaledChatWhoseClientLeavesEndsCancelledAndFreesItsKey() throws Exception {
    leaveOnceTheTaskRuns("/v1/chat/completions", chatBody("nobody will read this"), "leave-chat", true);
  }

  @Test
  void journaledEmbeddingsWhoseClientLeavesEndCancelledAndFreeTheirKey() throws Exception {
    leaveOnceTheTaskRuns(
        "/v1/embeddings", "{\"model\":\"" + MODEL + "\",\"input\":[\"one\",\"two\"]}", "leave-embeddings", false);
  }

  /**
   * A call with an Idempotency-Key (journaled, so its end can be read back) under a key with one
   * place: its client leaves once its task runs and the runner has the call.
   */
  private void leaveOnceTheTaskRuns(String path, String body, String idempotencyKey, boolean chat) throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(SLOW));
    String key = key("{\"max_concurrent_requests\":1}");
    String id =
        chat
            ? TaskIds.chat(TENANT, Optional.of(idempotencyKey), false)
            : TaskIds.embeddings(TENANT, Optional.of(idempotencyKey));
    String requestId = requestId();
    try (Socket socket =
        send(path, body, "Authorization", "Bearer " + key, "Idempotency-Key", idempotencyKey, "X-Request-Id", requestId)) {
      // its Submit reached the entity, which started the runner's call
      api.eventually(WAIT, () -> assertEquals("running", status(id)));
      assertEquals(429, probe(key), "the call holds its key's one place");
    } // the client leaves
    api.eventually(WAIT, () -> assertEquals("cancelled", status(id)));
    awaitRunnerLetGo();
    api.eventually(WAIT, () -> assertEquals(200, probe(key), "the key's place is free again"));
    Map<String, Object> line = answered(requestId);
    assertEquals(409, line.get("status"), line.toString());
    assertEquals("task_cancelled", line.get("error_code"), line.toString());
  }

  /**
   * First of the class: the only chat the runner has seen is then this one (the runner calls of the
   * other tests' cancelled tasks run on; one of them could come in late).
   */
  @Test
  @Order(1)
  void aChatInMemoryWhoseClientLeavesFreesItsKey() throws Exception {
    // no Idempotency-Key: the task lives in its worker's memory and its id is never told to anyone
    // here; the key's one place is the witness
    api.sim.setDefaults(Faults.none().withLatency(SLOW));
    String key = key("{\"max_concurrent_requests\":1}");
    String requestId = requestId();
    try (Socket socket =
        send("/v1/chat/completions", chatBody("in memory, for nobody"), "Authorization", "Bearer " + key, "X-Request-Id", requestId)) {
      api.eventually(
          WAIT,
          () -> assertEquals(1L, api.sim.stats().requestsByPath().getOrDefault("/v1/chat/completions", 0L), "the runner has the call"));
      assertEquals(429, probe(key), "the call holds its key's one place");
    } // the client leaves
    awaitRunnerLetGo();
    api.eventually(WAIT, () -> assertEquals(200, probe(key), "the key's place is free again"));
    Map<String, Object> line = answered(requestId);
    assertEquals(409, line.get("status"), line.toString());
    assertEquals("task_cancelled", line.get("error_code"), line.toString());
  }

  /**
   * Clients that close their connection right after sending, so that most leave before their
   * call's Submit reached its task: whichever way each call went (not started at all, or
   * cancelled as soon as its Submit was answered), no task runs on and no place of the key stays
   * taken. Half of the calls are journaled (their state is read back), half in memory.
   */
  @Test
  void clientsThatLeaveRightAfterSendingLeaveNothingRunning() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(SLOW));
    int calls = 8;
    int notStarted = 0;
    int cancelled = 0;
    for (int round = 0; round < 3; round++) {
      String key = key("{\"max_concurrent_requests\":" + calls + "}");
      List<String> requestIds = new ArrayList<>();
      Map<String, String> journaled = new HashMap<>();
      for (int i = 0; i < calls; i++) {
        String requestId = requestId();
        requestIds.add(requestId);
        List<String> headers = new ArrayList<>(List.of("Authorization", "Bearer " + key, "X-Request-Id", requestId));
        if (i % 2 == 1) {
          String idempotencyKey = "race-" + round + "-" + i;
          headers.addAll(List.of("Idempotency-Key", idempotencyKey));
          journaled.put(requestId, TaskIds.chat(TENANT, Optional.of(idempotencyKey), false));
        }
        send("/v1/chat/completions", chatBody("gone at once " + i), headers.toArray(String[]::new)).close();
      }
      for (String requestId : requestIds) {
        // once its call has answered, the api-node sends nothing more for it
        Map<String, Object> line = answered(requestId);
        assertEquals(409, line.get("status"), line.toString());
        assertEquals("task_cancelled", line.get("error_code"), line.toString());
        String id = journaled.get(requestId);
        if (id != null) {
          String status = status(id);
          assertTrue(status.equals("cancelled") || status.equals("404"), id + " is " + status);
          if (status.equals("404")) {
            notStarted++;
          } else {
            cancelled++;
          }
        }
      }
      // the runner has none of them left (the calls of an earlier round's probes end as well)
      api.eventually(WAIT, () -> assertEquals(0, api.sim.stats().inFlight(), "calls the runner still has"));
      // every call gave its place back: the key admits as many again at once
      api.eventually(WAIT, () -> assertEquals(calls, admittedAtOnce(key, calls)));
    }
    System.out.printf("journaled calls whose client left at once: %d not started, %d cancelled%n", notStarted, cancelled);
  }

  @Test
  void aKeepAliveConnectionThatWasAnsweredCancelsNothing() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofMillis(300)));
    String first = TaskIds.chat(TENANT, Optional.of("kept-1"), false);
    String second = TaskIds.chat(TENANT, Optional.of("kept-2"), false);
    try (Socket socket = send("/v1/chat/completions", chatBody("first"), "Authorization", "Bearer " + plainKey, "Idempotency-Key", "kept-1")) {
      assertEquals(200, readResponse(socket).status());
      // the connection stays open, answered: then serves a second call
      write(socket, "POST", "HTTP/1.1", "/v1/chat/completions", chatBody("second"),
          "Authorization", "Bearer " + plainKey, "Idempotency-Key", "kept-2");
      Response response = readResponse(socket);
      assertEquals(200, response.status(), response.body());
      assertEquals(second, ApiFixture.JSON.readTree(response.body()).path("id").asText());
    } // and closes after its answers
    assertEquals("succeeded", status(first));
    assertEquals("succeeded", status(second));
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

  /** The runner saw the call's connection closed: it has no call left, and at least one abandoned. */
  private void awaitRunnerLetGo() {
    api.eventually(
        WAIT,
        () -> {
          assertEquals(0, api.sim.stats().inFlight(), "calls the runner still has");
          assertTrue(api.sim.stats().abandoned() >= 1, "calls the runner saw abandoned: " + api.sim.stats());
        });
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
