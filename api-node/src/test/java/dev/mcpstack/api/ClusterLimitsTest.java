package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.TenantsTest.bearer;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Per-key limits across two api-nodes of one cluster (node A: api + worker, node B: api only):
 * a key's requests, tokens and concurrency are counted once for the cluster, not per node, and a
 * revoked key stops working on both.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterLimitsTest {
  private static final String ADMIN = "cluster-limits-admin-token-0123456789abcdef";
  private static final String[] ADMIN_AUTH = {"Authorization", "Bearer " + ADMIN};
  private static final String CONFIG = "mcp.api { keys.required = on, admin-token = \"" + ADMIN + "\" }";
  private static final Duration WAIT = Duration.ofSeconds(30);

  private ApiFixture a;
  private ApiFixture b;

  @BeforeAll
  void start() throws Exception {
    a = ApiFixture.start("ClusterLimitsTest", CONFIG);
    b = a.joinApiNode(CONFIG);
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

  @BeforeEach
  void resetSimulator() {
    a.resetSimulator();
  }

  /** A new key of tenant {@code t} made on node A, once node B knows it too. */
  private JsonNode key(String limits) throws Exception {
    return key("t", limits);
  }

  private JsonNode key(String tenant, String limits) throws Exception {
    HttpResponse<String> created =
        a.post("/admin/keys", "{\"tenant\":\"" + tenant + "\",\"limits\":" + limits + "}", ADMIN_AUTH);
    assertEquals(201, created.statusCode(), created.body());
    JsonNode key = json(created);
    String secret = key.path("key").asText();
    // the key is known on B once B's copy has caught up; asking /v1/models costs no limit
    b.eventually(WAIT, () -> assertEquals(200, b.get("/v1/models", bearer(secret)).statusCode()));
    return key;
  }

  /** Sends {@code count} requests alternately to A and B, {@code parallel} at a time; the statuses. */
  private List<HttpResponse<String>> spread(int count, int parallel, String key, String body) throws Exception {
    List<HttpResponse<String>> all = new ArrayList<>();
    for (int start = 0; start < count; start += parallel) {
      List<CompletableFuture<HttpResponse<String>>> wave = new ArrayList<>();
      for (int i = start; i < Math.min(count, start + parallel); i++) {
        ApiFixture node = i % 2 == 0 ? a : b;
        HttpRequest request =
            node.request("/v1/chat/completions", bearer(key))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        wave.add(node.client.sendAsync(request, HttpResponse.BodyHandlers.ofString()));
      }
      for (CompletableFuture<HttpResponse<String>> f : wave) {
        all.add(f.get(ApiFixture.TIMEOUT.toSeconds(), TimeUnit.SECONDS));
      }
    }
    return all;
  }

  private static long count(List<HttpResponse<String>> responses, int status) {
    return responses.stream().filter(r -> r.statusCode() == status).count();
  }

  private static void assertOnlyOkOrLimited(List<HttpResponse<String>> responses) throws Exception {
    for (HttpResponse<String> r : responses) {
      if (r.statusCode() != 200) {
        assertEquals(429, r.statusCode(), r.body());
        assertEquals("rate_limit_exceeded", json(r).path("error").path("code").asText(), r.body());
        assertTrue(r.headers().firstValue("Retry-After").isPresent());
      }
    }
  }

  @Test
  void sixtyRequestsPerMinuteMeansSixtyAcrossBothNodes() throws Exception {
    String secret = key("{\"requests_per_minute\":60}").path("key").asText();
    List<HttpResponse<String>> responses = spread(200, 8, secret, chatBody("hi"));
    assertOnlyOkOrLimited(responses);
    long ok = count(responses, 200);
    System.out.printf("rpm 60, 200 requests over 2 api-nodes: %d succeeded%n", ok);
    assertTrue(ok >= 60 && ok <= 61, ok + " succeeded");
    // the api-only node reads the key's usage account too: every succeeded call once
    b.eventually(
        WAIT,
        () -> {
          HttpResponse<String> usage = b.get("/v1/usage", bearer(secret));
          assertEquals(200, usage.statusCode(), usage.body());
          assertEquals(ok, json(usage).path("total").path("requests").asLong(), usage.body());
        });
  }

  @Test
  void tokensPerMinuteHoldAcrossBothNodes() throws Exception {
    // each request may use up to ~30 prompt tokens (estimate) + 100 completion tokens
    String secret = key("{\"tokens_per_minute\":1000}").path("key").asText();
    String body = "{\"model\":\"" + MODEL + "\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"" + "word ".repeat(100) + "\"}]}";
    List<HttpResponse<String>> responses = spread(40, 4, secret, body);
    assertOnlyOkOrLimited(responses);
    long used = 0;
    for (HttpResponse<String> r : responses) {
      if (r.statusCode() == 200) {
        used += json(r).path("usage").path("total_tokens").asLong();
      }
    }
    System.out.printf("tpm 1000: %d of 40 succeeded, %d tokens used%n", count(responses, 200), used);
    assertTrue(used <= 1000, used + " tokens used");
    assertTrue(count(responses, 200) >= 4, "the limit admits as many requests as their reservations fit");
  }

  @Test
  void concurrentRequestsAreCappedAcrossBothNodes() throws Exception {
    String secret = key("{\"max_concurrent_requests\":3}").path("key").asText();
    a.sim.setDefaults(Faults.none().withLatency(Duration.ofSeconds(3)));
    List<HttpResponse<String>> responses = spread(12, 12, secret, chatBody("slow"));
    assertOnlyOkOrLimited(responses);
    assertEquals(3, count(responses, 200));
    assertEquals(9, count(responses, 429));
  }

  @Test
  void aRevokedKeyStopsWorkingOnBothNodes() throws Exception {
    JsonNode key = key("{}");
    String secret = key.path("key").asText();
    assertEquals(200, a.get("/v1/models", bearer(secret)).statusCode());
    HttpResponse<String> revoked =
        b.send(b.request("/admin/keys/" + key.path("id").asText() + "/revoke", ADMIN_AUTH).POST(HttpRequest.BodyPublishers.noBody()).build());
    assertEquals(200, revoked.statusCode(), revoked.body());
    long start = System.nanoTime();
    assertEquals(401, b.get("/v1/models", bearer(secret)).statusCode(), "refused at once where it was revoked");
    a.eventually(WAIT, () -> assertEquals(401, a.get("/v1/models", bearer(secret)).statusCode()));
    System.out.printf("revoked on B, refused on A after %d ms%n", (System.nanoTime() - start) / 1_000_000);
  }

  @Test
  void aNoisyTenantAtItsLimitDoesNotStopAQuietOne() throws Exception {
    String noisy = key("noisy", "{\"requests_per_minute\":20}").path("key").asText();
    String quiet = key("quiet", "{}").path("key").asText();
    long quietAlone = quietLatencyMicros(quiet);
    CompletableFuture<List<HttpResponse<String>>> flood =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return spread(200, 8, noisy, chatBody("noise"));
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    long quietWithNoise = quietLatencyMicros(quiet);
    List<HttpResponse<String>> noise = flood.get(ApiFixture.TIMEOUT.toSeconds() * 4, TimeUnit.SECONDS);
    assertOnlyOkOrLimited(noise);
    assertTrue(count(noise, 200) <= 21, count(noise, 200) + " noisy requests succeeded");
    System.out.printf(
        "quiet tenant median latency: %d us alone, %d us beside a noisy tenant at its limit%n", quietAlone, quietWithNoise);
  }

  /** The median latency of 20 sequential requests of {@code key}, all of which must succeed. */
  private long quietLatencyMicros(String key) throws Exception {
    List<Long> micros = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      long start = System.nanoTime();
      HttpResponse<String> r = (i % 2 == 0 ? a : b).post("/v1/chat/completions", chatBody("quiet"), bearer(key));
      micros.add((System.nanoTime() - start) / 1000);
      assertEquals(200, r.statusCode(), r.body());
    }
    micros.sort(Long::compare);
    return micros.get(micros.size() / 2);
  }
}
