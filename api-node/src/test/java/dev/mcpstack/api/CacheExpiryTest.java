package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.json;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;

/**
 * What time does to the caches: a cached chat answer expires after its TTL (then the runner is
 * asked again), and the /v1/models catalogue is asked of the runner once per TTL and outlives a
 * runner that stopped answering for keep-last-good-for. The last test stops the simulator.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CacheExpiryTest {
  private static final Duration WAIT = Duration.ofSeconds(20);
  private static final Duration MODELS_TTL = Duration.ofSeconds(1);
  private static final String CONFIG =
      "mcp.cache { enabled = on, ttl = 1500ms, sweep-interval = 200ms }\n"
          + "mcp.api.models-cache { ttl = 1s, keep-last-good-for = 3s }";

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("CacheExpiryTest", CONFIG);
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  private long runnerCalls(String pathEnd) {
    return api.sim.stats().requestsByPath().entrySet().stream()
        .filter(e -> e.getKey().endsWith(pathEnd))
        .mapToLong(java.util.Map.Entry::getValue)
        .sum();
  }

  private HttpResponse<String> chat(String body) throws Exception {
    return api.post("/v1/chat/completions", body);
  }

  private static String xCache(HttpResponse<String> r) {
    return r.headers().firstValue("X-Cache").orElse("(none)");
  }

  @Test
  @Order(1)
  void anAnswerExpiresAfterItsTtl() throws Exception {
    String body =
        "{\"model\":\"" + MODEL + "\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"ttl "
            + UUID.randomUUID() + "\"}]}";
    assertEquals("miss", xCache(chat(body)));
    api.eventually(WAIT, () -> assertEquals("hit", xCache(chat(body))));
    long before = runnerCalls("/chat/completions");
    // polled, not slept: within a few seconds the answer is gone and the runner is asked again
    api.eventually(WAIT, () -> assertEquals("miss", xCache(chat(body))));
    assertEquals(before + 1, runnerCalls("/chat/completions"), "exactly the expired request reached the runner");
  }

  @Test
  @Order(2)
  void theModelListIsCachedAndOutlivesAFailedRunner() throws Exception {
    HttpResponse<String> first = api.get("/v1/models");
    assertEquals(200, first.statusCode(), first.body());
    long fetchedAt = System.nanoTime();
    long asked = runnerCalls("/models");
    assertEquals(200, api.get("/v1/models").statusCode());
    assertEquals(200, api.get("/v1/models").statusCode());
    if (System.nanoTime() - fetchedAt < MODELS_TTL.toNanos()) {
      assertEquals(asked, runnerCalls("/models"), "within its TTL the list is not asked again");
    }
    // the runner goes away: after the TTL the last good list is still served...
    api.sim.stop().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
    api.eventually(
        WAIT,
        () -> {
          assertTrue(System.nanoTime() - fetchedAt > MODELS_TTL.toNanos() + 200_000_000L, "TTL not over yet");
          HttpResponse<String> r = api.get("/v1/models");
          assertEquals(200, r.statusCode(), r.body());
          assertTrue(modelIds(r).toString().contains("\"" + MODEL + "\""), "the last good list, while the runner is down: " + r.body());
        });
    // ...until keep-last-good-for is over too: then the runner's (empty) answer shows
    api.eventually(WAIT, () -> assertTrue(modelIds(api.get("/v1/models")).isEmpty(), "the stale list is dropped"));
  }

  private static JsonNode modelIds(HttpResponse<String> r) throws Exception {
    com.fasterxml.jackson.databind.node.ArrayNode ids = ApiFixture.JSON.createArrayNode();
    json(r).path("data").forEach(m -> ids.add(m.path("id").asText()));
    return ids;
  }
}
