package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.TenantsTest.bearer;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The response cache (docs/adr/0009) on a real two-node cluster (node A: api + worker, node B: api
 * only) with the cache on, one partition and a bound of three answers: hits never reach the
 * simulator, tenants never share answers, the least recently used answer is evicted, a hit made on
 * A is found on B, and clients and keys can opt out.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CacheTest {
  private static final String ADMIN = "cache-test-admin-token-0123456789abcdef01";
  private static final String[] ADMIN_AUTH = {"Authorization", "Bearer " + ADMIN};
  private static final String CONFIG =
      "mcp.api { keys.required = on, admin-token = \"" + ADMIN + "\" }\n"
          + "mcp.cache { enabled = on, ttl = 1h, partitions = 1, max-entries = 3, max-bytes = 0 }";
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture a;
  private ApiFixture b;
  private String alpha;
  private String alpha2;
  private String beta;

  @BeforeAll
  void start() throws Exception {
    a = ApiFixture.start("CacheTest", CONFIG);
    b = a.joinApiNode(CONFIG);
    alpha = key("alpha", "");
    alpha2 = key("alpha", "");
    beta = key("beta", "");
  }

  @AfterAll
  void stop() throws Exception {
    if (b != null) {
      b.close();
    }
    if (a != null) {
      a.close();
    }
  }

  /** A new key of {@code tenant} made on A (extra: more JSON fields), once both nodes know it. */
  private String key(String tenant, String extra) throws Exception {
    HttpResponse<String> created = a.post("/admin/keys", "{\"tenant\":\"" + tenant + "\"" + extra + "}", ADMIN_AUTH);
    assertEquals(201, created.statusCode(), created.body());
    String secret = json(created).path("key").asText();
    for (ApiFixture node : new ApiFixture[] {a, b}) {
      node.eventually(WAIT, () -> assertEquals(200, node.get("/v1/models", bearer(secret)).statusCode()));
    }
    return secret;
  }

  /** A deterministic chat request (temperature 0) about {@code text}. */
  private static String greedy(String text) {
    return "{\"model\":\"" + MODEL + "\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
  }

  private static String unique(String what) {
    return what + " " + UUID.randomUUID();
  }

  /** Chat calls the simulator received so far. */
  private long runnerChats() {
    return a.sim.stats().requestsByPath().entrySet().stream()
        .filter(e -> e.getKey().endsWith("/chat/completions"))
        .mapToLong(java.util.Map.Entry::getValue)
        .sum();
  }

  private static HttpResponse<String> chat(ApiFixture node, String body, String key, String... headers) throws Exception {
    String[] all = new String[headers.length + 2];
    System.arraycopy(bearer(key), 0, all, 0, 2);
    System.arraycopy(headers, 0, all, 2, headers.length);
    return node.post("/v1/chat/completions", body, all);
  }

  private static String xCache(HttpResponse<String> r) {
    return r.headers().firstValue("X-Cache").orElse("(none)");
  }

  /** The content of a chat answer's first choice. */
  private static String content(HttpResponse<String> r) throws Exception {
    return json(r).path("choices").path(0).path("message").path("content").asText();
  }

  /**
   * Sends {@code body} until it is a hit (the store after a miss reaches the partition shortly
   * after the miss's answer), then once more: that hit must not reach the runner.
   */
  private HttpResponse<String> awaitHit(ApiFixture node, String body, String key) throws Exception {
    node.eventually(WAIT, () -> assertEquals("hit", xCache(chat(node, body, key))));
    long before = runnerChats();
    HttpResponse<String> hit = chat(node, body, key);
    assertEquals(200, hit.statusCode(), hit.body());
    assertEquals("hit", xCache(hit));
    assertEquals(before, runnerChats(), "a hit must not reach the model runner");
    return hit;
  }

  @Test
  void aRepeatedDeterministicRequestIsAHitThatNeverReachesTheRunner() throws Exception {
    String body = greedy(unique("hit and miss"));
    long before = runnerChats();
    HttpResponse<String> miss = chat(a, body, alpha);
    assertEquals(200, miss.statusCode(), miss.body());
    assertEquals("miss", xCache(miss));
    assertEquals(before + 1, runnerChats());
    HttpResponse<String> hit = awaitHit(a, body, alpha);
    assertEquals(content(miss), content(hit));
    assertEquals(json(miss).path("id").asText(), json(hit).path("id").asText(), "the cached answer, as it was");
    // a seed makes a sampled request deterministic too
    String seeded =
        "{\"model\":\"" + MODEL + "\",\"seed\":7,\"messages\":[{\"role\":\"user\",\"content\":\""
            + unique("seeded") + "\"}]}";
    assertEquals("miss", xCache(chat(a, seeded, alpha)));
    awaitHit(a, seeded, alpha);
  }

  @Test
  void fieldOrderAndDeliveryFieldsDoNotChangeTheKey() throws Exception {
    String text = unique("canonical");
    String body = greedy(text);
    assertEquals("miss", xCache(chat(a, body, alpha)));
    awaitHit(a, body, alpha);
    String reordered =
        "{\"messages\":[{\"content\":\"" + text + "\",\"role\":\"user\"}],\"user\":\"someone\",\"temperature\":0.0,"
            + "\"metadata\":{\"k\":\"v\"},\"model\":\"" + MODEL + "\"}";
    long before = runnerChats();
    HttpResponse<String> hit = chat(a, reordered, alpha);
    assertEquals("hit", xCache(hit), hit.body());
    assertEquals(before, runnerChats());
  }

  @Test
  void nonDeterministicToolAndStreamedRequestsBypassTheCache() throws Exception {
    String text = unique("bypass");
    String sampled = "{\"model\":\"" + MODEL + "\",\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
    String withTools =
        "{\"model\":\"" + MODEL + "\",\"temperature\":0,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
            + "\"parameters\":{\"type\":\"object\"}}}],\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
    long before = runnerChats();
    for (String body : new String[] {sampled, sampled, withTools, withTools}) {
      HttpResponse<String> r = chat(a, body, alpha);
      assertEquals(200, r.statusCode(), r.body());
      assertEquals("bypass", xCache(r));
    }
    assertEquals(before + 4, runnerChats(), "every bypassed request reaches the runner");
    // streamed requests never use the cache, even deterministic ones whose answer is cached
    String body = greedy(unique("streamed"));
    chat(a, body, alpha);
    awaitHit(a, body, alpha);
    long beforeStream = runnerChats();
    String streamed = body.replace("\"temperature\":0,", "\"temperature\":0,\"stream\":true,");
    HttpResponse<String> r = chat(a, streamed, alpha);
    assertEquals(200, r.statusCode());
    assertTrue(r.body().contains("[DONE]"), r.body());
    assertEquals(beforeStream + 1, runnerChats());
  }

  @Test
  void oneTenantNeverGetsAnothersAnswer() throws Exception {
    String body = greedy(unique("tenants"));
    assertEquals("miss", xCache(chat(a, body, alpha)));
    awaitHit(a, body, alpha);
    long before = runnerChats();
    HttpResponse<String> other = chat(a, body, beta);
    assertEquals(200, other.statusCode(), other.body());
    assertEquals("miss", xCache(other), "tenant beta must not get tenant alpha's answer");
    assertEquals(before + 1, runnerChats());
    // another key of the same tenant shares its tenant's cache
    HttpResponse<String> sameTenant = chat(a, body, alpha2);
    assertEquals("hit", xCache(sameTenant));
    assertEquals(before + 1, runnerChats());
  }

  @Test
  void theLeastRecentlyUsedAnswerIsEvictedAtTheBound() throws Exception {
    String first = greedy(unique("evict first"));
    assertEquals("miss", xCache(chat(a, first, alpha)));
    awaitHit(a, first, alpha);
    // three more answers: the bound (three) leaves no room for the first, used least recently
    String last = null;
    for (int i = 0; i < 3; i++) {
      last = greedy(unique("evict " + i));
      chat(a, last, alpha);
      awaitHit(a, last, alpha);
    }
    long before = runnerChats();
    HttpResponse<String> again = chat(a, first, alpha);
    assertEquals("miss", xCache(again), "the first answer was evicted");
    assertEquals(before + 1, runnerChats());
    // the newest answer was not the oldest one when the first one's new answer took a place
    assertEquals("hit", xCache(chat(a, last, alpha)));
  }

  @Test
  void aSecondApiNodeGetsTheHit() throws Exception {
    String body = greedy(unique("two nodes"));
    assertEquals("miss", xCache(chat(a, body, alpha)));
    awaitHit(a, body, alpha);
    long before = runnerChats();
    HttpResponse<String> onB = chat(b, body, alpha);
    assertEquals(200, onB.statusCode(), onB.body());
    assertEquals("hit", xCache(onB), "node B asks the partition that node A filled");
    assertEquals(before, runnerChats());
  }

  @Test
  void cacheControlSkipsReadingOrWriting() throws Exception {
    String body = greedy(unique("no-cache"));
    chat(a, body, alpha);
    awaitHit(a, body, alpha);
    long before = runnerChats();
    HttpResponse<String> fresh = chat(a, body, alpha, "Cache-Control", "no-cache");
    assertEquals(200, fresh.statusCode(), fresh.body());
    assertEquals("bypass", xCache(fresh));
    assertEquals(before + 1, runnerChats(), "no-cache asks the runner");

    String unstored = greedy(unique("no-store"));
    HttpResponse<String> first = chat(a, unstored, alpha, "Cache-Control", "no-store");
    assertEquals("miss", xCache(first));
    // nothing was stored: the next request is a miss again (and is stored, then hits)
    assertEquals("miss", xCache(chat(a, unstored, alpha)));
    assertEquals(before + 3, runnerChats());
    awaitHit(a, unstored, alpha);
  }

  @Test
  void aKeyWithTheCacheOffNeverUsesIt() throws Exception {
    HttpResponse<String> created = a.post("/admin/keys", "{\"tenant\":\"gamma\",\"cache\":false}", ADMIN_AUTH);
    assertEquals(201, created.statusCode(), created.body());
    JsonNode key = json(created);
    assertFalse(key.path("cache").asBoolean(true), created.body());
    String secret = key.path("key").asText();
    a.eventually(WAIT, () -> assertEquals(200, a.get("/v1/models", bearer(secret)).statusCode()));
    String body = greedy(unique("key off"));
    long before = runnerChats();
    for (int i = 0; i < 3; i++) {
      HttpResponse<String> r = chat(a, body, secret);
      assertEquals(200, r.statusCode(), r.body());
      assertEquals("bypass", xCache(r));
    }
    assertEquals(before + 3, runnerChats());
    // switched on with the admin API: its next requests use the cache
    HttpResponse<String> on =
        a.send(
            a.request("/admin/keys/" + key.path("id").asText(), ADMIN_AUTH)
                .header("Content-Type", "application/json")
                .method("PATCH", java.net.http.HttpRequest.BodyPublishers.ofString("{\"cache\":true}"))
                .build());
    assertEquals(200, on.statusCode(), on.body());
    assertTrue(json(on).path("cache").asBoolean(false));
    a.eventually(WAIT, () -> assertNotEquals("bypass", xCache(chat(a, body, secret))));
    awaitHit(a, body, secret);
  }
}
