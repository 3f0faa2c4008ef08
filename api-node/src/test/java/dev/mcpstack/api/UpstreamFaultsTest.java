package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.dataEvents;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.ApiFixture.streamBody;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import java.net.http.HttpResponse;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Model-runner faults through the whole path: HTTP → task entity → runner client → simulator. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UpstreamFaultsTest {
  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    // a long keep-alive interval: an early failure of a stream must still become a plain status;
    // a breaker that does not open: these tests fail the runner on purpose
    api =
        ApiFixture.start(
            "UpstreamFaultsTest",
            "mcp.api.keepalive-interval = 10s\n"
                + "mcp.worker.upstream-defaults.breaker.max-failures = 1000\n"
                + "mcp.worker.upstreams.default.breaker.max-failures = 1000");
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
  void transientFailuresAreRetriedInvisibly() throws Exception {
    api.sim.setDefaults(Faults.none().withFailStatus(503).withFailFirst(2));
    HttpResponse<String> response = api.post("/v1/chat/completions", chatBody("try again"));
    assertEquals(200, response.statusCode(), response.body());
    assertEquals("Simulated reply to: try again", json(response).at("/choices/0/message/content").asText());
    assertEquals(3, api.sim.stats().requests());
  }

  @Test
  void permanentBadRequestSurfacesAs400() throws Exception {
    api.sim.setDefaults(Faults.none().withFailStatus(400));
    HttpResponse<String> response = api.post("/v1/chat/completions", chatBody("refused"));
    assertEquals(400, response.statusCode(), response.body());
    assertEquals("invalid_request_error", json(response).at("/error/type").asText());
    assertEquals(1, api.sim.stats().requests(), "a permanent error is not retried");
  }

  @Test
  void upstreamNotFoundSurfacesAs404() throws Exception {
    api.sim.setDefaults(Faults.none().withFailStatus(404));
    HttpResponse<String> response = api.post("/v1/chat/completions", chatBody("lost"));
    assertEquals(404, response.statusCode(), response.body());
    assertEquals("not_found_error", json(response).at("/error/type").asText());
    assertEquals("model_not_found", json(response).at("/error/code").asText());
  }

  @Test
  void unknownModelIs404EvenWhenStreaming() throws Exception {
    String body = "{\"model\":\"nope\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    HttpResponse<String> response = api.post("/v1/chat/completions", body);
    assertEquals(404, response.statusCode(), response.body());
    assertEquals("model_not_found", json(response).at("/error/code").asText());
  }

  @Test
  void persistentServerErrorsEndAs502() throws Exception {
    api.sim.setDefaults(Faults.none().withFailStatus(500));
    HttpResponse<String> response = api.post("/v1/chat/completions", chatBody("broken"));
    assertEquals(502, response.statusCode(), response.body());
    assertEquals("upstream_error", json(response).at("/error/code").asText());
    assertTrue(api.sim.stats().requests() > 1, "server errors are retried");
  }

  @Test
  void droppedStreamEndsWithAnErrorEventNotDone() throws Exception {
    api.sim.setDefaults(Faults.none().withDropAfterChunks(2));
    HttpResponse<String> response =
        api.post("/v1/chat/completions", streamBody("a long answer that will be cut short", true));
    assertEquals(200, response.statusCode(), response.body());
    List<String> events = dataEvents(response.body());
    assertFalse(events.contains("[DONE]"), response.body());
    JsonNode last = ApiFixture.JSON.readTree(events.get(events.size() - 1));
    assertTrue(last.path("error").isObject(), response.body());
    assertEquals("api_error", last.at("/error/type").asText());
    assertFalse(last.at("/error/request_id").asText().isEmpty());
    // what arrived before the drop was relayed
    assertTrue(events.size() >= 3, response.body());
  }

  @Test
  void afterFaultsANormalChatWorks() throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", chatBody("fine again"));
    assertEquals(200, response.statusCode(), response.body());
    assertEquals(MODEL, json(response).path("model").asText());
  }
}
