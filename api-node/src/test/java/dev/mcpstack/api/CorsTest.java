package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.json;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * CORS with real preflight and actual requests through a running node: one with an explicit
 * origin list ({@code CORS_ORIGINS}), one on the development defaults (localhost only); and the
 * start-up validation of the settings.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CorsTest {
  private static final String APP = "https://app.example.com";
  private static final String EVIL = "https://evil.example";
  private static final String CHAT = "/v1/chat/completions";
  /** What the OpenAI JS SDK asks for in a browser (plus Idempotency-Key and X-Request-Id). */
  private static final String SDK_HEADERS =
      "authorization, content-type, idempotency-key, openai-organization, openai-project, user-agent,"
          + " x-request-id, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version,"
          + " x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout";
  private static final List<String> EXPOSED =
      List.of(
          "x-request-id", "retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
          "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
          "x-ratelimit-reset-tokens");

  private ApiFixture listed;
  private ApiFixture localhost;

  @BeforeAll
  void start() throws Exception {
    listed = ApiFixture.start("CorsTest", "mcp.api.cors.origins = \"" + APP + " , http://localhost:5173\"");
    localhost = ApiFixture.start("CorsTestDev");
  }

  @AfterAll
  void stop() throws Exception {
    for (ApiFixture f : new ApiFixture[] {listed, localhost}) {
      if (f != null) {
        f.close();
      }
    }
  }

  // ---- preflight ----

  @Test
  void preflightFromAnAllowedOriginIsAnswered204WithTheAllowHeaders() throws Exception {
    HttpResponse<String> r = preflight(listed, CHAT, APP, "POST", SDK_HEADERS);
    assertEquals(204, r.statusCode(), r.body());
    assertEquals(APP, header(r, "Access-Control-Allow-Origin"));
    assertEquals(Set.of("get", "post", "delete"), values(r, "Access-Control-Allow-Methods"));
    assertEquals(values(SDK_HEADERS), values(r, "Access-Control-Allow-Headers"));
    assertEquals("600", header(r, "Access-Control-Max-Age"));
    assertTrue(values(r, "Vary").contains("origin"), r.headers().toString());
    assertTrue(r.headers().firstValue("Access-Control-Allow-Credentials").isEmpty(), r.headers().toString());
    assertTrue(r.body().isEmpty(), r.body());
    assertFalse(header(r, "X-Request-Id").isEmpty());

    // the second listed origin, another path, a method without headers
    HttpResponse<String> other = preflight(listed, "/v1/tasks/task-abc", "http://localhost:5173", "DELETE", null);
    assertEquals(204, other.statusCode(), other.body());
    assertEquals("http://localhost:5173", header(other, "Access-Control-Allow-Origin"));
    assertTrue(other.headers().firstValue("Access-Control-Allow-Headers").isEmpty());
  }

  @Test
  void preflightFromAnyOtherOriginIs403InOpenAisErrorShape() throws Exception {
    for (String origin :
        List.of(
            EVIL,
            "http://app.example.com", // other scheme
            "https://app.example.com:8443", // other port
            "https://sub.app.example.com",
            "https://app.example.com.evil.example",
            "http://localhost:3000", // localhost is the development default only without a list
            "null")) {
      HttpResponse<String> r = preflight(listed, CHAT, origin, "POST", "authorization, content-type");
      assertRefused(r, "Origin");
      assertTrue(values(r, "Vary").contains("origin"), r.headers().toString());
    }
  }

  @Test
  void preflightAskingForAnotherMethodOrHeaderIs403() throws Exception {
    assertRefused(preflight(listed, CHAT, APP, "PUT", "content-type"), "PUT");
    assertRefused(preflight(listed, CHAT, APP, "POST", "content-type, x-secret-debug"), "x-secret-debug");
    assertRefused(preflight(listed, CHAT, APP, "POST", "cookie"), "cookie");
  }

  @Test
  void optionsWithoutOriginIsUntouched() throws Exception {
    // what the API did before CORS: 405 listing the allowed method, no CORS headers
    HttpResponse<String> r =
        listed.send(listed.request(CHAT).method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build());
    assertEquals(405, r.statusCode(), r.body());
    assertEquals("POST", header(r, "Allow"));
    assertEquals("invalid_request_error", json(r).at("/error/type").asText());
    assertNoCorsHeaders(r);
    assertTrue(r.headers().firstValue("Vary").isEmpty(), r.headers().toString());

    // a preflight's method header without Origin is no preflight either
    HttpResponse<String> noOrigin =
        listed.send(
            listed
                .request(CHAT, "Access-Control-Request-Method", "POST")
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                .build());
    assertEquals(405, noOrigin.statusCode(), noOrigin.body());
    assertNoCorsHeaders(noOrigin);
  }

  // ---- actual requests ----

  @Test
  void chatFromAnAllowedOriginCarriesAllowOriginAndExposedHeaders() throws Exception {
    HttpResponse<String> r = listed.post(CHAT, chatBody("hello from a page"), "Origin", APP);
    assertEquals(200, r.statusCode(), r.body());
    assertEquals("Simulated reply to: hello from a page", json(r).at("/choices/0/message/content").asText());
    assertAllowed(r, APP);
  }

  @Test
  void errorsForAnAllowedOriginCarryTheCorsHeaders() throws Exception {
    HttpResponse<String> notFound = listed.get("/v1/no-such-thing", "Origin", APP);
    assertEquals(404, notFound.statusCode(), notFound.body());
    assertEquals("not_found_error", json(notFound).at("/error/type").asText());
    assertAllowed(notFound, APP);

    HttpResponse<String> wrongMethod = listed.send(listed.request(CHAT, "Origin", APP).DELETE().build());
    assertEquals(405, wrongMethod.statusCode(), wrongMethod.body());
    assertAllowed(wrongMethod, APP);

    HttpResponse<String> badJson = listed.post(CHAT, "{not json", "Origin", APP);
    assertEquals(400, badJson.statusCode(), badJson.body());
    assertAllowed(badJson, APP);

    // OPTIONS with Origin but no Access-Control-Request-Method is an actual request: 405 + CORS
    HttpResponse<String> options =
        listed.send(
            listed.request(CHAT, "Origin", APP).method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build());
    assertEquals(405, options.statusCode(), options.body());
    assertAllowed(options, APP);

    HttpResponse<String> health = listed.get("/health/live", "Origin", APP);
    assertEquals(200, health.statusCode(), health.body());
    assertAllowed(health, APP);
  }

  @Test
  void actualRequestsFromOtherOriginsAreServedWithoutCorsHeaders() throws Exception {
    // the browser keeps such a response from the page; refusing it would break same-origin POSTs
    HttpResponse<String> r = listed.get("/health/live", "Origin", EVIL);
    assertEquals(200, r.statusCode(), r.body());
    assertNoCorsHeaders(r);
    assertTrue(values(r, "Vary").contains("origin"), r.headers().toString());
  }

  @Test
  void requestsWithoutOriginGetNoCorsHeaders() throws Exception {
    HttpResponse<String> r = listed.post(CHAT, chatBody("server to server"));
    assertEquals(200, r.statusCode(), r.body());
    assertNoCorsHeaders(r);
  }

  @Test
  void theAdminApiIsNotOfferedToBrowsers() throws Exception {
    assertRefused(preflight(listed, "/admin/cluster", APP, "GET", "authorization"), "admin");
    HttpResponse<String> r = listed.get("/admin/cluster", "Origin", APP);
    assertEquals(404, r.statusCode(), r.body()); // admin API off in this node, as if it did not exist
    assertNoCorsHeaders(r);
  }

  // ---- development defaults ----

  @Test
  void developmentDefaultsAllowLocalhostOriginsOnly() throws Exception {
    for (String origin :
        List.of("http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:5173", "https://localhost", "http://localhost")) {
      HttpResponse<String> r = preflight(localhost, CHAT, origin, "POST", "authorization, content-type");
      assertEquals(204, r.statusCode(), origin + ": " + r.body());
      assertEquals(origin, header(r, "Access-Control-Allow-Origin"));
    }
    HttpResponse<String> chat = localhost.post(CHAT, chatBody("local page"), "Origin", "http://localhost:3000");
    assertEquals(200, chat.statusCode(), chat.body());
    assertAllowed(chat, "http://localhost:3000");

    for (String origin :
        List.of(EVIL, "http://localhost.evil.example:3000", "http://127.0.0.2:3000", "file://localhost", "null")) {
      assertRefused(preflight(localhost, CHAT, origin, "POST", "content-type"), "Origin");
    }
  }

  // ---- settings validation at start ----

  static Stream<Arguments> refusedSettings() {
    return Stream.of(
        Arguments.of("production", "", "is empty"),
        Arguments.of("production", " , ", "is empty"),
        Arguments.of("production", "*", "only in development"),
        Arguments.of("production", "https://app.example.com,*", "only in development"),
        Arguments.of("development", "*,https://app.example.com", "mixes '*'"),
        Arguments.of("production", "https://app.example.com/", "is not an origin"),
        Arguments.of("production", "https://app.example.com/chat", "is not an origin"),
        Arguments.of("production", "app.example.com", "is not an origin"),
        Arguments.of("production", "ftp://app.example.com", "is not an origin"),
        Arguments.of("production", "https://user@app.example.com", "is not an origin"),
        Arguments.of("production", "https://app.example.com?x=1", "is not an origin"),
        Arguments.of("production", "https://app.example.com:99999", "is not an origin"),
        Arguments.of("development", "https://*.example.com", "is not an origin"),
        Arguments.of("staging", "", "is empty"));
  }

  @ParameterizedTest(name = "{0} with origins [{1}] is refused")
  @MethodSource("refusedSettings")
  void settingsThatMustNotStartAreRefusedWithAReason(String environment, String origins, String reason) {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> CorsSettings.fromConfig(config(origins), environment));
    assertTrue(e.getMessage().contains(reason), e.getMessage());
    assertTrue(e.getMessage().contains("CORS_ORIGINS"), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
  }

  @Test
  void acceptedSettingsAreNormalisedToWhatBrowsersSend() {
    CorsSettings production =
        CorsSettings.fromConfig(config("https://App.Example.com:443, http://10.0.0.5:8080 ,http://[::1]:80"), "production");
    assertEquals(CorsSettings.Mode.LIST, production.mode());
    assertEquals(Set.of("https://app.example.com", "http://10.0.0.5:8080", "http://[::1]"), production.origins());
    assertTrue(production.allows("https://app.example.com"));
    assertFalse(production.allows("http://localhost:3000"));

    assertEquals(CorsSettings.Mode.LOCALHOST, CorsSettings.fromConfig(config(""), "development").mode());
    CorsSettings any = CorsSettings.fromConfig(config("*"), "Development");
    assertEquals(CorsSettings.Mode.ANY, any.mode());
    assertTrue(any.allows(EVIL));
  }

  // ---- helpers ----

  private static com.typesafe.config.Config config(String origins) {
    return ConfigFactory.parseString("mcp.api.cors.origins = \"" + origins + "\"")
        .withFallback(ConfigFactory.defaultReference());
  }

  private static HttpResponse<String> preflight(
      ApiFixture api, String path, String origin, String method, String requestHeaders) throws Exception {
    HttpRequest.Builder b =
        api.request(path, "Origin", origin, "Access-Control-Request-Method", method)
            .method("OPTIONS", HttpRequest.BodyPublishers.noBody());
    if (requestHeaders != null) {
      b.header("Access-Control-Request-Headers", requestHeaders);
    }
    return api.send(b.build());
  }

  private static void assertRefused(HttpResponse<String> r, String mentioned) throws Exception {
    assertEquals(403, r.statusCode(), r.body());
    JsonNode error = json(r).path("error");
    assertEquals("permission_error", error.path("type").asText(), r.body());
    assertEquals("permission_denied", error.path("code").asText(), r.body());
    assertTrue(error.has("param"), r.body());
    assertEquals(header(r, "X-Request-Id"), error.path("request_id").asText(), r.body());
    assertTrue(error.path("message").asText().contains(mentioned), r.body());
    assertNoCorsHeaders(r);
    assertTrue(r.headers().firstValue("Access-Control-Allow-Methods").isEmpty(), r.headers().toString());
  }

  private static void assertAllowed(HttpResponse<String> r, String origin) {
    assertEquals(origin, header(r, "Access-Control-Allow-Origin"), r.headers().toString());
    assertTrue(values(r, "Vary").contains("origin"), r.headers().toString());
    assertTrue(values(r, "Access-Control-Expose-Headers").containsAll(EXPOSED), r.headers().toString());
    assertTrue(r.headers().firstValue("Access-Control-Allow-Credentials").isEmpty(), r.headers().toString());
  }

  private static void assertNoCorsHeaders(HttpResponse<String> r) {
    for (String name :
        List.of("Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials")) {
      assertTrue(r.headers().firstValue(name).isEmpty(), name + " in " + r.headers());
    }
  }

  private static String header(HttpResponse<String> r, String name) {
    return r.headers().firstValue(name).orElse("");
  }

  /** A comma-separated header's values, lower-cased, over all its occurrences. */
  private static Set<String> values(HttpResponse<String> r, String name) {
    return values(String.join(",", r.headers().allValues(name)));
  }

  private static Set<String> values(String list) {
    return Arrays.stream(list.split(","))
        .map(s -> s.trim().toLowerCase(Locale.ROOT))
        .filter(s -> !s.isEmpty())
        .collect(Collectors.toSet());
  }
}
