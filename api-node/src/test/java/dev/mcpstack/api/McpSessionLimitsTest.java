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
    // sessions expire after 1 s idle, so on a busy machine one may already be gone before the next
    // request: every step waits for the outcome it needs instead of assuming timing
    String[] live = new String[1];
    api.eventually(
        Duration.ofSeconds(30),
        () -> {
          HttpResponse<String> opened = api.post("/mcp", INITIALIZE, ACCEPT);
          if (opened.statusCode() == 200) {
            live[0] = opened.headers().firstValue("Mcp-Session-Id").orElseThrow();
          }
          // the node's one place is taken: the next session is refused while the first lives
          HttpResponse<String> second = api.post("/mcp", INITIALIZE, ACCEPT);
          assertEquals(503, second.statusCode(), second.body());
          assertTrue(second.body().contains("limit of 1 MCP sessions"), second.body());
        });
    String session = live[0];
    assertTrue(session != null, "a session was opened");

    // idle for longer than the timeout: closed, so its place is free again (a request on it would
    // count as use, so the place is what the test watches) ...
    api.eventually(
        Duration.ofSeconds(30),
        () -> assertEquals(200, api.post("/mcp", INITIALIZE, ACCEPT).statusCode(), "a place is free again"));
    // ... and the closed session is gone for good
    HttpResponse<String> expired = api.post("/mcp", PING, ACCEPT[0], ACCEPT[1], "Mcp-Session-Id", session);
    assertEquals(404, expired.statusCode(), expired.body());
    // a new session answers (opened anew should it idle out before its ping on a busy machine)
    api.eventually(
        Duration.ofSeconds(30),
        () -> {
          HttpResponse<String> again = api.post("/mcp", INITIALIZE, ACCEPT);
          assertEquals(200, again.statusCode(), again.body());
          String id = again.headers().firstValue("Mcp-Session-Id").orElseThrow();
          HttpResponse<String> ping = api.post("/mcp", PING, ACCEPT[0], ACCEPT[1], "Mcp-Session-Id", id);
          assertEquals(200, ping.statusCode(), "a new session answers: " + ping.body());
        });
  }
}
