package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.json;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import io.modelcontextprotocol.client.McpAsyncClient;
import io.modelcontextprotocol.client.McpClient;
import io.modelcontextprotocol.client.McpSyncClient;
import io.modelcontextprotocol.client.transport.HttpClientStreamableHttpTransport;
import io.modelcontextprotocol.json.TypeRef;
import io.modelcontextprotocol.spec.McpClientTransport;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.CallToolRequest;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import io.modelcontextprotocol.spec.McpSchema.ProgressNotification;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;

/**
 * Acceptance: the official MCP Java SDK's client talks to {@code /mcp} over real HTTP on loopback,
 * on a node that requires API keys, with the simulator as model runner.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class McpEndpointTest {
  private static final String ADMIN = "admin-token-for-mcp-tests-0123456789abcdef";
  private static final String[] ADMIN_AUTH = {"Authorization", "Bearer " + ADMIN};
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture api;
  private String key;

  @BeforeAll
  void start() throws Exception {
    api =
        ApiFixture.start(
            "McpEndpointTest",
            "mcp.api { keys.required = on, admin-token = \"" + ADMIN + "\", mcp.progress-interval = 200ms }");
    key = createKey("{\"tenant\":\"agent\"}");
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

  private String createKey(String body) throws Exception {
    HttpResponse<String> created = api.post("/admin/keys", body, ADMIN_AUTH);
    assertEquals(201, created.statusCode(), created.body());
    return json(created).path("key").asText();
  }

  private HttpClientStreamableHttpTransport transport(String bearer) {
    return HttpClientStreamableHttpTransport.builder(api.baseUrl())
        .endpoint("/mcp")
        .httpRequestCustomizer((b, method, uri, body, context) -> b.header("Authorization", "Bearer " + bearer))
        .build();
  }

  private McpSyncClient client(String bearer) {
    McpSyncClient client = McpClient.sync(transport(bearer)).requestTimeout(WAIT).build();
    client.initialize();
    return client;
  }

  private static CallToolRequest call(String tool, Map<String, Object> arguments) {
    return CallToolRequest.builder().name(tool).arguments(arguments).build();
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> structured(CallToolResult result) {
    return (Map<String, Object>) result.structuredContent();
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> error(CallToolResult result) {
    assertTrue(result.isError(), () -> "expected a tool error, got " + result);
    return (Map<String, Object>) structured(result).get("error");
  }

  @Test
  void initialisesAndListsTheToolsWithTheirSchemas() {
    McpSyncClient client = client(key);
    try {
      assertEquals("mcp-stack", client.getCurrentInitializationResult().serverInfo().name());
      assertNotNull(client.getCurrentInitializationResult().capabilities().tools());
      Map<String, McpSchema.Tool> tools =
          client.listTools().tools().stream().collect(Collectors.toMap(McpSchema.Tool::name, t -> t));
      assertEquals(Set.of("ask_model", "embed_texts", "submit_task", "get_task", "list_models"), tools.keySet());
      assertEquals(List.of("model"), tools.get("ask_model").inputSchema().required());
      assertEquals(List.of("model", "texts"), tools.get("embed_texts").inputSchema().required());
      assertEquals(List.of("kind", "request"), tools.get("submit_task").inputSchema().required());
      assertEquals(List.of("id"), tools.get("get_task").inputSchema().required());
      assertFalse(tools.get("ask_model").inputSchema().additionalProperties());
      tools.values().forEach(t -> assertNotNull(t.outputSchema(), t.name() + " has an output schema"));
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void asksAModelWithProgress() {
    List<ProgressNotification> progress = new CopyOnWriteArrayList<>();
    McpSyncClient client =
        McpClient.sync(transport(key))
            .requestTimeout(WAIT)
            .progressConsumer(progress::add)
            .build();
    try {
      client.initialize();
      CallToolResult result =
          client.callTool(
              CallToolRequest.builder()
                  .name("ask_model")
                  .arguments(Map.of("model", MODEL, "prompt", "hello over mcp", "system", "be brief"))
                  .progressToken("ask-1")
                  .build());
      assertFalse(result.isError(), result.toString());
      Map<String, Object> answer = structured(result);
      assertEquals("Simulated reply to: hello over mcp", answer.get("content"));
      assertEquals(MODEL, answer.get("model"));
      assertTrue(((String) answer.get("id")).startsWith("chatcmpl-"), answer.toString());
      assertTrue(((Number) ((Map<?, ?>) answer.get("usage")).get("total_tokens")).longValue() > 0, answer.toString());
      String text = ((McpSchema.TextContent) result.content().get(0)).text();
      assertTrue(text.contains("Simulated reply to: hello over mcp"), text);
      // the notifications of the call arrive before its response, on the same stream
      assertFalse(progress.isEmpty(), "progress was reported");
      assertTrue(progress.stream().allMatch(p -> "ask-1".equals(p.progressToken())), progress.toString());
      assertTrue(progress.get(0).message().contains((String) answer.get("id")), progress.toString());
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void embedsTexts() {
    McpSyncClient client = client(key);
    try {
      CallToolResult result = client.callTool(call("embed_texts", Map.of("model", MODEL, "texts", List.of("one", "two"))));
      assertFalse(result.isError(), result.toString());
      List<?> vectors = (List<?>) structured(result).get("embeddings");
      assertEquals(2, vectors.size());
      assertFalse(((List<?>) vectors.get(0)).isEmpty());
      assertTrue(((List<?>) vectors.get(0)).get(0) instanceof Number);
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void submitsAndReadsATask() {
    McpSyncClient client = client(key);
    try {
      Map<String, Object> request =
          Map.of("model", MODEL, "messages", List.of(Map.of("role", "user", "content", "in the background")));
      Map<String, Object> arguments = Map.of("kind", "chat", "request", request, "idempotency_key", "agent-run-1");
      CallToolResult submitted = client.callTool(call("submit_task", arguments));
      assertFalse(submitted.isError(), submitted.toString());
      String id = (String) structured(submitted).get("id");
      assertTrue(id.startsWith("task-"), id);
      // the same idempotency key answers the same task
      assertEquals(id, structured(client.callTool(call("submit_task", arguments))).get("id"));
      api.eventually(
          WAIT,
          () -> {
            CallToolResult read = client.callTool(call("get_task", Map.of("id", id)));
            assertFalse(read.isError(), read.toString());
            assertEquals("succeeded", structured(read).get("status"));
            Map<?, ?> result = (Map<?, ?>) structured(read).get("result");
            Map<?, ?> message = (Map<?, ?>) ((Map<?, ?>) ((List<?>) result.get("choices")).get(0)).get("message");
            assertEquals("Simulated reply to: in the background", message.get("content"));
          });
      // a task of another key is not found, as over HTTP
      McpSyncClient other = client(createKeyQuietly("{\"tenant\":\"someone-else\"}"));
      try {
        Map<String, Object> notFound = error(other.callTool(call("get_task", Map.of("id", id))));
        assertEquals("not_found", notFound.get("code"));
        assertEquals(404, ((Number) notFound.get("status")).intValue());
      } finally {
        other.closeGracefully();
      }
    } finally {
      client.closeGracefully();
    }
  }

  private String createKeyQuietly(String body) {
    try {
      return createKey(body);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void listsModels() {
    McpSyncClient client = client(key);
    try {
      api.eventually(
          WAIT,
          () -> {
            CallToolResult result = client.callTool(call("list_models", Map.of()));
            assertFalse(result.isError(), result.toString());
            List<?> models = (List<?>) structured(result).get("models");
            assertTrue(models.stream().anyMatch(m -> MODEL.equals(((Map<?, ?>) m).get("id"))), models.toString());
          });
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void failuresAreToolErrorsWithTheHttpApiCodes() {
    McpSyncClient client = client(key);
    try {
      Map<String, Object> unknown = error(client.callTool(call("ask_model", Map.of("model", "no-such-model", "prompt", "hi"))));
      assertEquals("model_not_found", unknown.get("code"));
      assertEquals("not_found_error", unknown.get("type"));
      assertEquals(404, ((Number) unknown.get("status")).intValue());

      Map<String, Object> invalid =
          error(client.callTool(call("ask_model", Map.of("model", MODEL, "prompt", "hi", "temperature", 5))));
      assertEquals("invalid_request", invalid.get("code"));
      assertEquals("temperature", invalid.get("param"));

      Map<String, Object> neither = error(client.callTool(call("ask_model", Map.of("model", MODEL))));
      assertEquals("prompt", neither.get("param"));

      Map<String, Object> extra =
          error(client.callTool(call("embed_texts", Map.of("model", MODEL, "texts", List.of("a"), "colour", "red"))));
      assertEquals("colour", extra.get("param"));

      Map<String, Object> badId = error(client.callTool(call("get_task", Map.of("id", "chatcmpl-0123"))));
      assertEquals("not_found", badId.get("code"));
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void aBadKeyIsRefusedBeforeAnyMcpMessage() throws Exception {
    McpSyncClient client =
        McpClient.sync(transport("sk-mcp-000000000000-unknownunknownunknownunknown")).requestTimeout(WAIT).build();
    try {
      RuntimeException e = assertThrows(RuntimeException.class, client::initialize);
      assertTrue(causes(e).stream().anyMatch(c -> c.getClass().getSimpleName().contains("Authorization")), causes(e).toString());
    } finally {
      client.closeGracefully();
    }
    HttpResponse<String> raw =
        api.post("/mcp", initializeMessage(), "Authorization", "Bearer sk-mcp-000000000000-unknownunknownunknownunknown",
            "Accept", "application/json, text/event-stream");
    assertEquals(401, raw.statusCode(), raw.body());
    assertEquals("invalid_api_key", json(raw).path("error").path("code").asText());
  }

  private static List<Throwable> causes(Throwable e) {
    List<Throwable> all = new java.util.ArrayList<>();
    for (Throwable t = e; t != null && all.size() < 10; t = t.getCause()) {
      all.add(t);
    }
    return all;
  }

  private static String initializeMessage() {
    return "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
        + "\"capabilities\":{},\"clientInfo\":{\"name\":\"raw\",\"version\":\"1\"}}}";
  }

  @Test
  void aSessionServesOnlyTheKeyThatOpenedIt() throws Exception {
    String[] accept = {"Accept", "application/json, text/event-stream"};
    HttpResponse<String> init =
        api.post("/mcp", initializeMessage(), "Authorization", "Bearer " + key, accept[0], accept[1]);
    assertEquals(200, init.statusCode(), init.body());
    String session = init.headers().firstValue("Mcp-Session-Id").orElseThrow();
    String list = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}";
    String other = createKey("{\"tenant\":\"intruder\"}");
    HttpResponse<String> stolen =
        api.post("/mcp", list, "Authorization", "Bearer " + other, "Mcp-Session-Id", session, accept[0], accept[1]);
    assertEquals(404, stolen.statusCode(), stolen.body());
    HttpResponse<String> own =
        api.post("/mcp", list, "Authorization", "Bearer " + key, "Mcp-Session-Id", session, accept[0], accept[1]);
    assertEquals(200, own.statusCode(), own.body());
    assertTrue(own.body().contains("ask_model"), own.body());
    HttpResponse<String> ended =
        api.send(api.request("/mcp", "Authorization", "Bearer " + key, "Mcp-Session-Id", session).DELETE().build());
    assertEquals(200, ended.statusCode(), ended.body());
    HttpResponse<String> after =
        api.post("/mcp", list, "Authorization", "Bearer " + key, "Mcp-Session-Id", session, accept[0], accept[1]);
    assertEquals(404, after.statusCode(), after.body());
  }

  @Test
  void browserPagesOfOriginsThatCorsRefusesCannotUseIt() throws Exception {
    String[] common = {"Authorization", "Bearer " + key, "Accept", "application/json, text/event-stream"};
    HttpResponse<String> evil =
        api.post("/mcp", initializeMessage(), common[0], common[1], common[2], common[3], "Origin", "http://evil.example");
    assertEquals(403, evil.statusCode(), evil.body());
    assertEquals("permission_denied", json(evil).path("error").path("code").asText());
    HttpResponse<String> local =
        api.post("/mcp", initializeMessage(), common[0], common[1], common[2], common[3], "Origin", "http://localhost:6274");
    assertEquals(200, local.statusCode(), local.body());
    assertTrue(
        local.headers().allValues("Access-Control-Expose-Headers").stream().anyMatch(v -> v.contains("Mcp-Session-Id")),
        local.headers().toString());
  }

  @Test
  void aCallOverTheKeysLimitIsARateLimitError() throws Exception {
    String limited = createKey("{\"tenant\":\"limited-agent\",\"limits\":{\"requests_per_minute\":1}}");
    McpSyncClient client = client(limited);
    try {
      CallToolResult first = client.callTool(call("ask_model", Map.of("model", MODEL, "prompt", "one")));
      assertFalse(first.isError(), first.toString());
      Map<String, Object> second = error(client.callTool(call("ask_model", Map.of("model", MODEL, "prompt", "two"))));
      assertEquals("rate_limit_exceeded", second.get("code"));
      assertEquals("rate_limit_error", second.get("type"));
      assertEquals(429, ((Number) second.get("status")).intValue());
      assertTrue(((Number) second.get("retry_after_seconds")).longValue() > 0, second.toString());
    } finally {
      client.closeGracefully();
    }
  }

  @Test
  void aCancelledCallCancelsItsTask() throws Exception {
    api.sim.setDefaults(Faults.none().withLatency(Duration.ofSeconds(60)));
    RecordingTransport transport = new RecordingTransport(transport(key));
    List<ProgressNotification> progress = new CopyOnWriteArrayList<>();
    McpAsyncClient client =
        McpClient.async(transport)
            .requestTimeout(Duration.ofSeconds(90))
            .progressConsumer(p -> Mono.fromRunnable(() -> progress.add(p)))
            .build();
    try {
      client.initialize().block(WAIT);
      List<Object> outcome = new CopyOnWriteArrayList<>();
      Disposable call =
          client
              .callTool(
                  CallToolRequest.builder()
                      .name("ask_model")
                      .arguments(Map.of("model", MODEL, "prompt", "never mind"))
                      .progressToken("slow")
                      .build())
              .subscribe(outcome::add, outcome::add);
      // the task id is in the first progress notification
      String taskId =
          api.await(
              WAIT,
              () -> {
                assertFalse(progress.isEmpty(), "no progress yet");
                String message = progress.get(0).message();
                return message.substring("task ".length(), message.indexOf(':'));
              });
      Object requestId = transport.lastToolCall();
      assertNotNull(requestId);
      api.eventually(
          WAIT,
          () -> assertEquals("running", adminTask(taskId).path("status").asText(), adminTask(taskId).toString()));
      transport
          .sendMessage(
              new McpSchema.JSONRPCNotification(
                  McpSchema.JSONRPC_VERSION, "notifications/cancelled", Map.of("requestId", requestId, "reason", "test")))
          .block(WAIT);
      call.dispose();
      api.eventually(WAIT, () -> assertEquals("cancelled", adminTask(taskId).path("status").asText()));
      assertTrue(outcome.isEmpty(), "a cancelled request gets no answer: " + outcome);
    } finally {
      client.closeGracefully().block(WAIT);
    }
  }

  private JsonNode adminTask(String id) throws Exception {
    HttpResponse<String> r = api.get("/admin/tasks/" + id, ADMIN_AUTH);
    assertEquals(200, r.statusCode(), r.body());
    return json(r);
  }

  /** The SDK's transport, remembering the JSON-RPC id of the last tools/call it sent. */
  private static final class RecordingTransport implements McpClientTransport {
    private final McpClientTransport inner;
    private volatile Object lastToolCall;

    RecordingTransport(McpClientTransport inner) {
      this.inner = inner;
    }

    Object lastToolCall() {
      return lastToolCall;
    }

    @Override
    public Mono<Void> connect(Function<Mono<McpSchema.JSONRPCMessage>, Mono<McpSchema.JSONRPCMessage>> handler) {
      return inner.connect(handler);
    }

    @Override
    public Mono<Void> sendMessage(McpSchema.JSONRPCMessage message) {
      if (message instanceof McpSchema.JSONRPCRequest request && McpSchema.METHOD_TOOLS_CALL.equals(request.method())) {
        lastToolCall = request.id();
      }
      return inner.sendMessage(message);
    }

    @Override
    public Mono<Void> closeGracefully() {
      return inner.closeGracefully();
    }

    @Override
    public <T> T unmarshalFrom(Object data, TypeRef<T> typeRef) {
      return inner.unmarshalFrom(data, typeRef);
    }

    @Override
    public List<String> protocolVersions() {
      return inner.protocolVersions();
    }

    @Override
    public void setExceptionHandler(java.util.function.Consumer<Throwable> handler) {
      inner.setExceptionHandler(handler);
    }
  }
}
