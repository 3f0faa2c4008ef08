package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.chatBody;
import static dev.mcpstack.api.ApiFixture.json;
import static dev.mcpstack.api.ChatApiTest.unchecked;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The operations API under /admin on a real one-node cluster, with an admin token set. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AdminApiTest {
  private static final String TOKEN = "secret";
  private static final String[] AUTH = {"Authorization", "Bearer " + TOKEN};
  private static final Duration WAIT = Duration.ofSeconds(20);

  private ApiFixture api;

  @BeforeAll
  void start() throws Exception {
    // a breaker that opens after two failures and stays open for the test; one attempt per task
    api =
        ApiFixture.start(
            "AdminApiTest",
            "mcp.api.admin-token = \"" + TOKEN + "\"\n"
                + "mcp.worker.tasks.max-attempts = 1\n"
                + "mcp.worker.upstream-defaults.breaker { max-failures = 2, reset-timeout = 10m }\n"
                + "mcp.worker.upstreams.default.breaker { max-failures = 2, reset-timeout = 10m }");
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

  private HttpResponse<String> adminPost(String path, String... headers) throws Exception {
    return api.send(api.request(path, headers).POST(HttpRequest.BodyPublishers.noBody()).build());
  }

  private static void assertError(HttpResponse<String> response, int status, String type) throws Exception {
    assertEquals(status, response.statusCode(), response.body());
    JsonNode error = json(response).path("error");
    assertEquals(type, error.path("type").asText(), response.body());
    assertTrue(error.path("message").isTextual(), response.body());
    assertTrue(error.has("param") && error.has("code"), response.body());
    assertFalse(error.path("request_id").asText().isEmpty(), response.body());
  }

  @Test
  void requestsNeedTheAdminToken() throws Exception {
    for (HttpResponse<String> denied :
        List.of(
            api.get("/admin/cluster"),
            api.get("/admin/cluster", "Authorization", "Bearer wrong"),
            api.get("/admin/cluster", "Authorization", "Bearer " + TOKEN + "x"),
            api.get("/admin/upstreams", "Authorization", "Basic " + TOKEN),
            adminPost("/admin/upstreams/default/reset"),
            api.get("/admin/tasks/task-unknown123"),
            api.get("/admin/no-such-thing"))) {
      assertError(denied, 401, "authentication_error");
      assertEquals("Bearer", denied.headers().firstValue("WWW-Authenticate").orElse(""));
    }
    assertEquals(200, api.get("/admin/cluster", AUTH).statusCode());
    assertError(api.get("/admin/no-such-thing", AUTH), 404, "not_found_error");
    HttpResponse<String> wrongMethod = api.send(api.request("/admin/cluster", AUTH).DELETE().build());
    assertEquals(405, wrongMethod.statusCode(), wrongMethod.body());
  }

  @Test
  void clusterOverviewListsThisNodeWithItsShards() throws Exception {
    // the task's shard is allocated whether or not the chat succeeds
    api.post("/v1/chat/completions", chatBody("make a shard"));
    JsonNode overview =
        api.await(
            WAIT,
            () -> {
              HttpResponse<String> r = unchecked(() -> api.get("/admin/cluster", AUTH));
              assertEquals(200, r.statusCode(), r.body());
              JsonNode body = unchecked(() -> json(r));
              assertTrue(body.at("/members/0/shards").asInt() >= 1, body.toString());
              return body;
            });
    String self = overview.path("self").asText();
    assertTrue(self.startsWith("pekko://AdminApiTest@127.0.0.1:"), overview.toString());
    assertEquals(self, overview.path("leader").asText());
    assertEquals(1, overview.path("members").size(), overview.toString());
    JsonNode member = overview.at("/members/0");
    assertEquals(self, member.path("address").asText());
    assertEquals("up", member.path("status").asText());
    assertTrue(member.path("reachable").asBoolean());
    List<String> roles = new ArrayList<>();
    member.path("roles").forEach(r -> roles.add(r.asText()));
    assertEquals(List.of("api", "worker"), roles);
    assertTrue(member.path("entities").isIntegralNumber(), member.toString());
    assertTrue(overview.path("unreachable").isArray());
    assertEquals(0, overview.path("unreachable").size());

    // the same from an api-only node (production's topology), which hosts no shard itself and
    // learns of the worker through the receptionist once it has joined
    try (ApiFixture front = api.joinApiNode("mcp.api.admin-token = \"" + TOKEN + "\"")) {
      front.await(
          WAIT,
          () -> {
            JsonNode body = unchecked(() -> json(front.get("/admin/cluster", AUTH)));
            assertEquals(2, body.path("members").size(), body.toString());
            for (JsonNode m : body.path("members")) {
              if (m.path("address").asText().equals(self)) {
                assertTrue(m.path("shards").asInt() >= 1, "the worker's shards: " + body);
              } else {
                assertEquals(0, m.path("shards").asInt(), "an api-only node hosts none: " + body);
                assertEquals(0, m.path("entities").asInt(), body.toString());
                assertEquals("[\"api\"]", m.path("roles").toString(), body.toString());
              }
            }
            return body;
          });
    }
  }

  @Test
  void anyTaskCanBeInspectedWithItsOwner() throws Exception {
    HttpResponse<String> submitted = api.post("/v1/tasks", "{\"kind\":\"chat\",\"request\":" + chatBody("inspect me") + "}");
    assertEquals(202, submitted.statusCode(), submitted.body());
    String id = json(submitted).path("id").asText();

    HttpResponse<String> inspected = api.get("/admin/tasks/" + id, AUTH);
    assertEquals(200, inspected.statusCode(), inspected.body());
    JsonNode task = json(inspected);
    assertEquals(id, task.path("id").asText());
    assertEquals("task", task.path("object").asText());
    assertEquals("chat", task.path("kind").asText());
    assertEquals(Caller.ANONYMOUS_TENANT, task.path("owner").asText());
    assertTrue(task.has("status") && task.has("result") && task.has("error"), task.toString());
    // where it lives: its shard, on the one node of this cluster
    int shards = api.node.settings().config().getInt("pekko.cluster.sharding.number-of-shards");
    assertEquals(String.valueOf(Math.abs(id.hashCode() % shards)), task.path("shard").asText(), task.toString());
    api.eventually(
        java.time.Duration.ofSeconds(10),
        () -> assertEquals(
            org.apache.pekko.cluster.Cluster.get(api.node).selfMember().address().toString(),
            json(api.get("/admin/tasks/" + id, AUTH)).path("node").asText()));
    // also from an api-only node, which hosts no shard and asks the cluster where it is
    try (ApiFixture front = api.joinApiNode("mcp.api.admin-token = \"" + TOKEN + "\"")) {
      front.eventually(
          java.time.Duration.ofSeconds(15),
          () -> assertEquals(
              org.apache.pekko.cluster.Cluster.get(api.node).selfMember().address().toString(),
              json(front.get("/admin/tasks/" + id, AUTH)).path("node").asText()));
    }

    assertError(api.get("/admin/tasks/task-unknown123", AUTH), 404, "not_found_error");
    assertError(api.get("/admin/tasks/not%20an%20id", AUTH), 404, "not_found_error");
  }

  @Test
  void failingUpstreamOpensItsBreakerAndAResetClosesIt() throws Exception {
    api.sim.setDefaults(Faults.none().withFailStatus(500));
    JsonNode open =
        api.await(
            WAIT,
            () -> {
              // each round fails one more call until the breaker has opened
              unchecked(() -> api.post("/v1/chat/completions", chatBody("fail")));
              HttpResponse<String> r = unchecked(() -> api.get("/admin/upstreams", AUTH));
              assertEquals(200, r.statusCode(), r.body());
              JsonNode upstream = unchecked(() -> json(r)).at("/workers/0/upstreams/0");
              assertEquals("open", upstream.path("breaker").asText(), r.body());
              return unchecked(() -> json(r));
            });
    assertEquals(1, open.path("workers").size(), open.toString());
    assertTrue(open.at("/workers/0/node").asText().startsWith("pekko://AdminApiTest@"), open.toString());
    JsonNode upstream = open.at("/workers/0/upstreams/0");
    assertEquals("default", upstream.path("name").asText());
    assertEquals(api.sim.baseUrl() + "/v1", upstream.path("base_url").asText());
    assertTrue(upstream.path("models").isArray());
    assertTrue(upstream.path("priority").isIntegralNumber() && upstream.path("weight").isIntegralNumber());
    assertTrue(upstream.path("queue_depth").isIntegralNumber() && upstream.path("in_flight").isIntegralNumber());
    JsonNode recent = upstream.path("recent_errors");
    assertTrue(recent.size() >= 2, upstream.toString());
    assertTrue(recent.at("/0/at").asLong() > 1_600_000_000L, recent.toString());
    assertFalse(recent.at("/0/code").asText().isEmpty(), recent.toString());
    assertTrue(recent.at("/0/message").isTextual(), recent.toString());

    api.resetSimulator();
    HttpResponse<String> reset = adminPost("/admin/upstreams/default/reset", AUTH);
    assertEquals(200, reset.statusCode(), reset.body());
    assertEquals("closed", json(reset).at("/workers/0/upstreams/0/breaker").asText(), reset.body());
    assertEquals("closed", json(api.get("/admin/upstreams", AUTH)).at("/workers/0/upstreams/0/breaker").asText());
    assertEquals(200, api.post("/v1/chat/completions", chatBody("back again")).statusCode());

    assertError(adminPost("/admin/upstreams/no-such-upstream/reset", AUTH), 404, "not_found_error");
    assertEquals(405, api.get("/admin/upstreams/default/reset", AUTH).statusCode());
  }

  @Test
  void drainRejectsMalformedAndUnknownAddresses() throws Exception {
    assertError(adminPost("/admin/cluster/members/not%20an%20address/leave", AUTH), 400, "invalid_request_error");
    assertError(adminPost("/admin/cluster/members/just-a-name/leave", AUTH), 400, "invalid_request_error");
    assertError(
        adminPost("/admin/cluster/members/" + encode("pekko://AdminApiTest") + "/leave", AUTH),
        400,
        "invalid_request_error");
    assertError(
        adminPost("/admin/cluster/members/" + encode("pekko://AdminApiTest@127.0.0.1:1") + "/leave", AUTH),
        404,
        "not_found_error");
    assertError(adminPost("/admin/cluster/members/AdminApiTest@127.0.0.1:1/leave", AUTH), 404, "not_found_error");
    // the node is still a member, and Up
    JsonNode overview = json(api.get("/admin/cluster", AUTH));
    assertEquals("up", overview.at("/members/0/status").asText(), overview.toString());
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
