package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.sim.Faults;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.SimulatorSettings;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.ShardRegion.CurrentShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import dev.mcpstack.shared.TaskProtocol;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A real three-node cluster in one JVM: an api-only node in front, two workers hosting the
 * sharded tasks, one shared journal. Tasks submitted through the api node spread over both
 * workers; one worker crashes (no leave, no hand-off) while its tasks are in flight, and every
 * task still reaches exactly one terminal state on the survivor.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterFailoverTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final ActorTestKit simKit = ActorTestKit.create("cluster-sim");
  private final HttpClient http = HttpClient.newHttpClient();
  private final List<Node> nodes = new ArrayList<>();
  private ModelRunnerSimulator sim;
  private final String journal = "jdbc:h2:mem:cluster-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1";
  private int seedPort;

  @BeforeAll
  void start() throws Exception {
    sim =
        ModelRunnerSimulator.start(
                simKit.system(),
                new SimulatorSettings("127.0.0.1", 0, List.of("sim-small"), 4, Faults.none()))
            .toCompletableFuture()
            .get(20, TimeUnit.SECONDS);
    seedPort = freePort();
  }

  @AfterAll
  void stop() throws Exception {
    for (Node node : nodes) {
      if (!node.system().whenTerminated().isCompleted()) {
        node.stop(Duration.ofSeconds(60));
      }
    }
    simKit.shutdownTestKit();
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private Node startNode(String roles, int port, boolean crashable) throws Exception {
    Map<String, Object> settings = new HashMap<>();
    settings.put("mcp.node.roles", roles);
    settings.put("mcp.node.seed-nodes", "pekko://mcp-stack@127.0.0.1:" + seedPort);
    settings.put("mcp.node.management.enabled", "off");
    settings.put("mcp.node.embedded-simulator", "off");
    settings.put("mcp.api.port", 0);
    settings.put("mcp.api.host", "127.0.0.1");
    settings.put("mcp.journal.url", journal);
    settings.put("mcp.worker.upstreams.default.base-url", sim.baseUrl() + "/v1");
    settings.put("mcp.worker.retention.enabled", "off");
    settings.put("pekko.remote.artery.canonical.port", port);
    settings.put("pekko.coordinated-shutdown.exit-jvm", "off");
    settings.put("pekko.cluster.jmx.multi-mbeans-in-same-jvm", "on");
    settings.put("pekko.loglevel", "WARNING");
    // a crash: the system dies without leaving the cluster or handing off its shards
    settings.put("pekko.coordinated-shutdown.run-by-actor-system-terminate", crashable ? "off" : "on");
    Node node = Node.start(Node.config(ConfigFactory.parseMap(settings)));
    nodes.add(node);
    return node;
  }

  private JsonNode call(String method, int port, String path, String body) throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30));
    b = body == null
        ? b.method(method, HttpRequest.BodyPublishers.noBody())
        : b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
    HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    assertTrue(r.statusCode() < 300, r.statusCode() + " " + r.body());
    return JSON.readTree(r.body());
  }

  private static long upMembers(Node node) {
    return java.util.stream.StreamSupport.stream(
            Cluster.get(node.system()).state().getMembers().spliterator(), false)
        .filter(m -> m.status() == MemberStatus.up())
        .count();
  }

  private static Set<?> shardsOf(Node worker) {
    TestProbe<CurrentShardRegionState> probe = TestProbe.create(worker.system());
    ClusterSharding.get(worker.system())
        .shardState()
        .tell(new GetShardRegionState(TaskProtocol.TYPE_KEY, probe.ref()));
    return probe.receiveMessage(Duration.ofSeconds(10)).getShards();
  }

  @Test
  void aCrashedWorkersTasksFinishOnTheSurvivor() throws Exception {
    Node api = startNode("api", seedPort, false);
    WorkerReadinessCheck readiness = new WorkerReadinessCheck(api.system().classicSystem());
    assertFalse(readiness.get().toCompletableFuture().get(10, TimeUnit.SECONDS), "no worker yet: not ready");
    Node workerA = startNode("worker", 0, true);
    Node workerB = startNode("worker", 0, false);
    TestProbe<Object> probe = TestProbe.create(api.system());
    probe.awaitAssert(
        Duration.ofSeconds(30),
        () -> {
          assertEquals(3, upMembers(api));
          return null;
        });

    probe.awaitAssert(
        Duration.ofSeconds(30),
        () -> {
          try {
            assertTrue(readiness.get().toCompletableFuture().get(10, TimeUnit.SECONDS), "workers up: ready");
          } catch (Exception e) {
            throw new AssertionError(e);
          }
          return null;
        });

    sim.setDefaults(Faults.none().withLatency(Duration.ofSeconds(2)));
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      JsonNode task =
          call(
              "POST",
              api.port(),
              "/v1/tasks",
              "{\"kind\":\"chat\",\"request\":{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"task "
                  + i
                  + "\"}]}}");
      ids.add(task.path("id").asText());
    }
    probe.awaitAssert(
        Duration.ofSeconds(20),
        () -> {
          assertFalse(shardsOf(workerA).isEmpty(), "worker A hosts shards");
          assertFalse(shardsOf(workerB).isEmpty(), "worker B hosts shards");
          return null;
        });

    long crashedAt = System.nanoTime();
    workerA.system().terminate();
    workerA.system().getWhenTerminated().toCompletableFuture().get(30, TimeUnit.SECONDS);

    probe.awaitAssert(
        Duration.ofSeconds(90),
        Duration.ofMillis(250),
        () -> {
          for (String id : ids) {
            JsonNode task;
            try {
              task = call("GET", api.port(), "/v1/tasks/" + id, null);
            } catch (Exception e) {
              throw new AssertionError(e);
            }
            assertEquals("succeeded", task.path("status").asText(), id + ": " + task);
          }
          return null;
        });
    long allDone = (System.nanoTime() - crashedAt) / 1_000_000;
    System.out.println("fail-over: all 40 tasks succeeded " + allDone + " ms after the worker crash");

    for (String id : ids) {
      JsonNode task = call("GET", api.port(), "/v1/tasks/" + id, null);
      String expected = "Simulated reply to: task " + ids.indexOf(id);
      assertEquals(expected, task.at("/result/choices/0/message/content").asText());
    }
    assertEquals(2, upMembers(api), "the crashed worker was downed");
  }
}
