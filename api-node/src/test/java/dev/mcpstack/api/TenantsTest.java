package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.json;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.errors.UnauthorizedException;
import com.openai.errors.RateLimitException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * API keys on a node that requires them: who may call, what each tenant may see, the admin API
 * that manages keys, and OpenAI's error codes and rate-limit headers as the official SDK sees them.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TenantsTest {
  private static final String ADMIN = "admin-token-for-tests-0123456789abcdef";
  private static final String[] ADMIN_AUTH = {"Authorization", "Bearer " + ADMIN};
  /** Declared in configuration (API_KEYS) as tenant "configured". */
  private static final String DECLARED_KEY = "sk-declared-key-for-the-tenants-test-0001";
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    api =
        ApiFixture.start(
            "TenantsTest",
            "mcp.api { keys.required = on, admin-token = \"" + ADMIN + "\", admin-failure-delay = 300ms,"
                + " keys.declared = \"configured:" + Sha256.hex(DECLARED_KEY) + "\" }\n"
                // 1 per million prompt tokens, 2 per million completion tokens: cost in micros = p + 2c
                + "mcp.worker.prices { \"" + MODEL + "\" { prompt = 1, completion = 2 } }");
  }

  @AfterAll
  void stop() throws Exception {
    if (api != null) {
      api.close();
    }
  }

  /** Creates a key through the admin API; answers the whole JSON (with the secret in "key"). */
  JsonNode createKey(String body) throws Exception {
    HttpResponse<String> created = api.post("/admin/keys", body, ADMIN_AUTH);
    assertEquals(201, created.statusCode(), created.body());
    return json(created);
  }

  static String[] bearer(String key) {
    return new String[] {"Authorization", "Bearer " + key};
  }

  private static void assertError(HttpResponse<String> r, int status, String type, String code) throws Exception {
    assertEquals(status, r.statusCode(), r.body());
    JsonNode error = json(r).path("error");
    assertEquals(type, error.path("type").asText(), r.body());
    assertEquals(code, error.path("code").asText(), r.body());
  }

  @Test
  void refusesMissingMalformedAndUnknownKeysWithInvalidApiKey() throws Exception {
    HttpResponse<String> none = api.post("/v1/chat/completions", chatBody("hi"));
    assertError(none, 401, "authentication_error", "invalid_api_key");
    assertEquals("Bearer", none.headers().firstValue("WWW-Authenticate").orElse(""));
    assertError(api.post("/v1/chat/completions", chatBody("hi"), bearer("short")), 401, "authentication_error", "invalid_api_key");
    assertError(
        api.post("/v1/chat/completions", chatBody("hi"), bearer("sk-mcp-000000000000-unknownunknownunknownunknown")),
        401, "authentication_error", "invalid_api_key");
    assertError(api.get("/v1/models"), 401, "authentication_error", "invalid_api_key");
    assertError(api.get("/v1/tasks/task-0123"), 401, "authentication_error", "invalid_api_key");
  }

  @Test
  void aCreatedKeyWorksAndIsShownOnlyOnce() throws Exception {
    JsonNode created = createKey("{\"tenant\":\"acme\",\"name\":\"ci\"}");
    String secret = created.path("key").asText();
    String id = created.path("id").asText();
    assertTrue(secret.startsWith("sk-mcp-" + id + "-"), secret);
    assertTrue(secret.length() >= 7 + 12 + 1 + 43, "256 bits of secret: " + secret);
    assertEquals("active", created.path("status").asText());

    api.eventually(WAIT, () -> assertEquals(200, api.post("/v1/chat/completions", chatBody("hi"), bearer(secret)).statusCode()));
    JsonNode read = json(api.get("/admin/keys/" + id, ADMIN_AUTH));
    assertEquals("acme", read.path("tenant").asText());
    assertTrue(read.path("key").isMissingNode(), "the secret is never shown again: " + read);
    assertFalse(api.get("/admin/keys?tenant=acme", ADMIN_AUTH).body().contains(secret));
  }

  @Test
  void aDeclaredKeyWorksFromTheStart() throws Exception {
    HttpResponse<String> r = api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("hi") + "}", bearer(DECLARED_KEY));
    assertEquals(202, r.statusCode(), r.body());
    String id = json(r).path("id").asText();
    assertEquals("configured", json(api.get("/admin/tasks/" + id, ADMIN_AUTH)).path("owner").asText());
  }

  @Test
  void aTenantSeesOnlyItsOwnTasksAndCompletions() throws Exception {
    String alice = createKey("{\"tenant\":\"alice\"}").path("key").asText();
    String bob = createKey("{\"tenant\":\"bob\"}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(bob)).statusCode()));

    String task = json(api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("mine") + "}", bearer(alice))).path("id").asText();
    String unknown = "task-00000000000000000000000000000000";
    for (String id : new String[] {task, unknown}) {
      HttpResponse<String> read = api.get("/v1/tasks/" + id, bearer(bob));
      assertError(read, 404, "not_found_error", "not_found");
      assertError(api.delete("/v1/tasks/" + id, bearer(bob)), 404, "not_found_error", "not_found");
      assertError(api.get("/v1/tasks/" + id + "/events", bearer(bob)), 404, "not_found_error", "not_found");
    }
    // the same answer for another's task as for no task at all: nothing tells them apart
    assertEquals(
        json(api.get("/v1/tasks/" + unknown, bearer(bob))).path("error").path("message").asText().replace(unknown, "ID"),
        json(api.get("/v1/tasks/" + task, bearer(bob))).path("error").path("message").asText().replace(task, "ID"));
    assertEquals(200, api.get("/v1/tasks/" + task, bearer(alice)).statusCode());

    String stored =
        json(api.post("/v1/chat/completions", "{\"model\":\"" + MODEL + "\",\"store\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", bearer(alice)))
            .path("id").asText();
    assertEquals(200, api.get("/v1/chat/completions/" + stored, bearer(alice)).statusCode());
    assertError(api.get("/v1/chat/completions/" + stored, bearer(bob)), 404, "not_found_error", "not_found");
  }

  @Test
  void anIdempotencyKeyBelongsToItsTenant() throws Exception {
    String alice = createKey("{\"tenant\":\"alice2\"}").path("key").asText();
    String bob = createKey("{\"tenant\":\"bob2\"}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(bob)).statusCode()));
    String body = "{\"kind\":\"chat\",\"request\":" + chatBody("same") + "}";
    String a1 = json(api.post("/v1/tasks", body, "Authorization", "Bearer " + alice, "Idempotency-Key", "k-1")).path("id").asText();
    String a2 = json(api.post("/v1/tasks", body, "Authorization", "Bearer " + alice, "Idempotency-Key", "k-1")).path("id").asText();
    HttpResponse<String> b = api.post("/v1/tasks", body, "Authorization", "Bearer " + bob, "Idempotency-Key", "k-1");
    assertEquals(202, b.statusCode(), b.body());
    assertEquals(a1, a2);
    assertNotEquals(a1, json(b).path("id").asText());
  }

  @Test
  void aKeyUsesOnlyItsModels() throws Exception {
    String key = createKey("{\"tenant\":\"narrow\",\"models\":[\"sim-large\"]}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));
    assertError(api.post("/v1/chat/completions", chatBody("hi"), bearer(key)), 404, "not_found_error", "model_not_found");
    assertError(api.get("/v1/models/" + MODEL, bearer(key)), 404, "not_found_error", "model_not_found");
    JsonNode models = json(api.get("/v1/models", bearer(key))).path("data");
    assertEquals(1, models.size(), models.toString());
    assertEquals("sim-large", models.get(0).path("id").asText());
    assertEquals(200, api.post("/v1/chat/completions", chatBody("hi").replace(MODEL, "sim-large"), bearer(key)).statusCode());
  }

  @Test
  void revokedAndRotatedKeysStopWorking() throws Exception {
    JsonNode created = createKey("{\"tenant\":\"rot\"}");
    String first = created.path("key").asText();
    String id = created.path("id").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(first)).statusCode()));

    HttpResponse<String> rotated = api.send(api.request("/admin/keys/" + id + "/rotate", ADMIN_AUTH).POST(HttpRequest.BodyPublishers.noBody()).build());
    assertEquals(201, rotated.statusCode(), rotated.body());
    String second = json(rotated).path("key").asText();
    String secondId = json(rotated).path("id").asText();
    assertEquals(200, api.get("/v1/models", bearer(second)).statusCode());
    api.eventually(WAIT, () -> assertError(api.get("/v1/models", bearer(first)), 401, "authentication_error", "invalid_api_key"));

    HttpResponse<String> revoked = api.send(api.request("/admin/keys/" + secondId + "/revoke", ADMIN_AUTH).POST(HttpRequest.BodyPublishers.noBody()).build());
    assertEquals(200, revoked.statusCode(), revoked.body());
    assertEquals("revoked", json(revoked).path("status").asText());
    assertTrue(json(revoked).path("revocation").asText().contains("500 ms"), revoked.body());
    // this node applied its own change at once
    HttpResponse<String> refused = api.get("/v1/models", bearer(second));
    assertError(refused, 401, "authentication_error", "invalid_api_key");
    assertTrue(json(refused).path("error").path("message").asText().contains("revoked"), refused.body());
  }

  @Test
  void limitsAreEnforcedWithOpenAiHeadersAndErrors() throws Exception {
    JsonNode created = createKey("{\"tenant\":\"limited\",\"limits\":{\"requests_per_minute\":2,\"tokens_per_minute\":100000}}");
    String key = created.path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));

    HttpResponse<String> ok = api.post("/v1/chat/completions", chatBody("hi"), bearer(key));
    assertEquals(200, ok.statusCode(), ok.body());
    assertEquals("2", ok.headers().firstValue("x-ratelimit-limit-requests").orElse(""));
    assertEquals("1", ok.headers().firstValue("x-ratelimit-remaining-requests").orElse(""));
    assertTrue(ok.headers().firstValue("x-ratelimit-reset-requests").orElse("").endsWith("s"));
    assertEquals("100000", ok.headers().firstValue("x-ratelimit-limit-tokens").orElse(""));
    assertTrue(Long.parseLong(ok.headers().firstValue("x-ratelimit-remaining-tokens").orElse("0")) < 100000);
    assertTrue(ok.headers().firstValue("x-ratelimit-reset-tokens").isPresent());

    assertEquals(200, api.post("/v1/chat/completions", chatBody("hi"), bearer(key)).statusCode());
    HttpResponse<String> over = api.post("/v1/chat/completions", chatBody("hi"), bearer(key));
    assertError(over, 429, "rate_limit_error", "rate_limit_exceeded");
    long retryAfter = Long.parseLong(over.headers().firstValue("Retry-After").orElse("0"));
    assertTrue(retryAfter >= 1 && retryAfter <= 60, "Retry-After " + retryAfter);
    assertEquals("0", over.headers().firstValue("x-ratelimit-remaining-requests").orElse(""));

    // raising the limit applies to the very next request
    HttpResponse<String> patched =
        api.send(
            api.request("/admin/keys/" + created.path("id").asText(), ADMIN_AUTH)
                .header("Content-Type", "application/json")
                .method("PATCH", HttpRequest.BodyPublishers.ofString("{\"limits\":{\"requests_per_minute\":10}}"))
                .build());
    assertEquals(200, patched.statusCode(), patched.body());
    assertEquals(100000, json(patched).path("limits").path("tokens_per_minute").asLong(), "other limits stay");
    assertEquals(200, api.post("/v1/chat/completions", chatBody("hi"), bearer(key)).statusCode());
  }

  @Test
  void onlyOperatorsWarmModelsUp() throws Exception {
    String key = createKey("{\"tenant\":\"warm\"}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));
    String warmup = "{\"kind\":\"model_warmup\",\"request\":{\"model\":\"" + MODEL + "\"}}";
    assertError(api.post("/v1/tasks", warmup, bearer(key)), 403, "permission_error", "permission_denied");
    HttpResponse<String> operator = api.post("/admin/tasks", warmup, ADMIN_AUTH);
    assertEquals(202, operator.statusCode(), operator.body());
  }

  @Test
  void aWrongAdminTokenIsRefusedLate() throws Exception {
    long start = System.nanoTime();
    HttpResponse<String> refused = api.get("/admin/keys", "Authorization", "Bearer guess");
    long tookMillis = (System.nanoTime() - start) / 1_000_000;
    assertError(refused, 401, "authentication_error", "invalid_api_key");
    assertTrue(tookMillis >= 300, "answered after " + tookMillis + " ms, before the configured delay");
  }

  @Test
  void adminKeyRequestsAreValidated() throws Exception {
    assertError(api.post("/admin/keys", "{}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"a b\"}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"t\",\"limits\":{\"requests_per_minute\":-1}}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"t\",\"models\":\"m\"}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"operator\"}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"Anonymous\"}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"t\",\"budget\":{\"amount\":1e-7}}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.post("/admin/keys", "{\"tenant\":\"t\",\"budget\":{\"amount\":5,\"period\":\"year\"}}", ADMIN_AUTH), 400, "invalid_request_error", "invalid_request");
    assertError(api.get("/admin/keys/nope", ADMIN_AUTH), 404, "not_found_error", "not_found");
    assertError(api.get("/admin/keys/0123456789ab", ADMIN_AUTH), 404, "not_found_error", "not_found");
  }

  @Test
  void theOfficialSdkSeesAuthenticationAndRateLimitErrors() throws Exception {
    String key = createKey("{\"tenant\":\"sdk\",\"limits\":{\"requests_per_minute\":1}}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));
    ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model(MODEL).addUserMessage("hello").build();
    OpenAIClient good = api.openAi(key);
    OpenAIClient bad = api.openAi("sk-mcp-000000000000-notarealkeynotarealkeynotarealkey00");
    try {
      ChatCompletion completion = good.chat().completions().create(params);
      assertFalse(completion.choices().isEmpty());
      RateLimitException limited = assertThrows(RateLimitException.class, () -> good.chat().completions().create(params));
      assertEquals(429, limited.statusCode());
      assertEquals("rate_limit_exceeded", limited.code().orElse(""));
      UnauthorizedException refused = assertThrows(UnauthorizedException.class, () -> bad.chat().completions().create(params));
      assertEquals("invalid_api_key", refused.code().orElse(""));
    } finally {
      good.close();
      bad.close();
    }
  }

  @Test
  void usageIsRecordedPerModelAndDayForTheTenant() throws Exception {
    String first = createKey("{\"tenant\":\"metered\"}").path("key").asText();
    String second = createKey("{\"tenant\":\"metered\"}").path("key").asText();
    String other = createKey("{\"tenant\":\"unmetered\"}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(other)).statusCode()));
    long prompt = 0;
    long completion = 0;
    for (String key : new String[] {first, second, first}) {
      JsonNode usage = json(api.post("/v1/chat/completions", chatBody("count these words"), bearer(key))).path("usage");
      prompt += usage.path("prompt_tokens").asLong();
      completion += usage.path("completion_tokens").asLong();
    }
    long p = prompt;
    long c = completion;
    api.eventually(
        WAIT,
        () -> {
          JsonNode report = json(api.get("/v1/usage", bearer(second)));
          assertEquals("metered", report.path("tenant").asText());
          JsonNode line = report.path("data").get(0);
          assertEquals(MODEL, line.path("model").asText(), report.toString());
          assertEquals(3, line.path("requests").asLong(), report.toString());
          assertEquals(p, line.path("prompt_tokens").asLong());
          assertEquals(c, line.path("completion_tokens").asLong());
          assertEquals((p + 2 * c) / 1e6, line.path("cost").asDouble(), 1e-9);
          assertEquals(3, report.path("total").path("requests").asLong());
        });
    assertEquals(0, json(api.get("/v1/usage", bearer(other))).path("data").size(), "another tenant's usage is not shown");
    assertEquals(400, api.get("/v1/usage?start_date=yesterday", bearer(other)).statusCode());
  }

  @Test
  void aSpentBudgetAnswersInsufficientQuota() throws Exception {
    JsonNode created = createKey("{\"tenant\":\"thrifty\",\"budget\":{\"amount\":0.000001,\"period\":\"month\",\"alert_at\":0.5}}");
    String key = created.path("key").asText();
    assertEquals("month", created.path("budget").path("period").asText());
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));
    assertEquals(200, api.post("/v1/chat/completions", chatBody("spend it"), bearer(key)).statusCode());
    api.eventually(
        WAIT,
        () -> assertError(api.post("/v1/chat/completions", chatBody("more"), bearer(key)), 429, "insufficient_quota", "insufficient_quota"));
    JsonNode usage = json(api.get("/admin/keys/" + created.path("id").asText() + "/usage", ADMIN_AUTH));
    assertTrue(usage.path("budget").path("spent").asDouble() >= 0.000001, usage.toString());

    // a rotated key keeps its account: the new secret does not get a fresh budget
    HttpResponse<String> rotated =
        api.send(api.request("/admin/keys/" + created.path("id").asText() + "/rotate", ADMIN_AUTH).POST(HttpRequest.BodyPublishers.noBody()).build());
    String next = json(rotated).path("key").asText();
    assertError(api.post("/v1/chat/completions", chatBody("again"), bearer(next)), 429, "insufficient_quota", "insufficient_quota");
  }

  @Test
  void aRepeatedOrConflictingIdempotentRequestNeverFreesTheTasksSlot() throws Exception {
    JsonNode created = createKey("{\"tenant\":\"single\",\"limits\":{\"max_active_tasks\":1}}");
    String key = created.path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));
    api.sim.setDefaults(dev.mcpstack.sim.Faults.none().withLatency(Duration.ofSeconds(20)));
    try {
      String body = "{\"kind\":\"chat\",\"request\":" + chatBody("slow") + "}";
      HttpResponse<String> first = api.post("/v1/tasks", body, "Authorization", "Bearer " + key, "Idempotency-Key", "one");
      assertEquals(202, first.statusCode(), first.body());
      String id = json(first).path("id").asText();
      HttpResponse<String> repeat = api.post("/v1/tasks", body, "Authorization", "Bearer " + key, "Idempotency-Key", "one");
      assertEquals(202, repeat.statusCode(), "an idempotent repeat is not refused for the slot its task holds: " + repeat.body());
      assertEquals(id, json(repeat).path("id").asText());
      HttpResponse<String> conflict =
          api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("other") + "}", "Authorization", "Bearer " + key, "Idempotency-Key", "one");
      assertError(conflict, 409, "invalid_request_error", "conflict");
      // the task still holds the key's only slot
      assertError(api.post("/v1/tasks", body, bearer(key)), 429, "rate_limit_error", "rate_limit_exceeded");
      assertEquals(200, api.delete("/v1/tasks/" + id, bearer(key)).statusCode());
      api.eventually(WAIT, () -> assertEquals(202, api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("next") + "}", bearer(key)).statusCode()));
    } finally {
      api.resetSimulator();
    }
  }

  @Test
  void theServersDefaultMaxTokensDoesNotLockOutAKeyWithASmallTokenLimit() throws Exception {
    // the default max_tokens (4096) alone is more than this key's minute
    String key = createKey("{\"tenant\":\"small\",\"limits\":{\"tokens_per_minute\":1000}}").path("key").asText();
    api.eventually(WAIT, () -> assertEquals(200, api.get("/v1/models", bearer(key)).statusCode()));
    HttpResponse<String> ok = api.post("/v1/chat/completions", chatBody("hello"), bearer(key));
    assertEquals(200, ok.statusCode(), ok.body());
    assertTrue(Long.parseLong(ok.headers().firstValue("x-ratelimit-remaining-tokens").orElse("-1")) >= 0);
  }
}
