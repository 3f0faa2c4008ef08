package dev.mcpstack.api;

import static org.junit.jupiter.api.Assertions.*;

import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The bounds on MCP sessions: at most max-sessions per node, and idle ones closed. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class McpSessionLimitsTest {
  private static final String[] ACCEPT = {"Accept", "application/json, text/event-stream"};
  private static final String INITIALIZE =
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
          + "\"capabilities\":{},\"clientInfo\":{\"name\":\"raw\",\"version\":\"1\"}}}";
  private static final String PING = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("McpSessionLimitsTest", "mcp.api.mcp { max-sessions = 1, session-idle-timeout = 1s }");
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  @Test
  void aNodeKeepsAtMostItsSessionsAndClosesIdleOnes() throws Exception {
    HttpResponse<String> first = api.post("/mcp", INITIALIZE, ACCEPT);
    assertEquals(200, first.statusCode(), first.body());
    String session = first.headers().firstValue("Mcp-Session-Id").orElseThrow();
    HttpResponse<String> ping = api.post("/mcp", PING, ACCEPT[0], ACCEPT[1], "Mcp-Session-Id", session);
    assertEquals(200, ping.statusCode(), ping.body());

    HttpResponse<String> second = api.post("/mcp", INITIALIZE, ACCEPT);
    assertEquals(503, second.statusCode(), second.body());
    assertTrue(second.body().contains("limit of 1 MCP sessions"), second.body());

    // idle for longer than the timeout: closed, and its place free again
    api.eventually(
        Duration.ofSeconds(10),
        () -> {
          HttpResponse<String> again = api.post("/mcp", INITIALIZE, ACCEPT);
          assertEquals(200, again.statusCode(), again.body());
        });
    HttpResponse<String> expired = api.post("/mcp", PING, ACCEPT[0], ACCEPT[1], "Mcp-Session-Id", session);
    assertEquals(404, expired.statusCode(), expired.body());
  }
}
