package dev.mcpstack.worker.testkit;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.NodeConfig;
import dev.mcpstack.shared.TaskProtocol;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import dev.mcpstack.worker.WorkerNode;
import dev.mcpstack.worker.journal.Journal;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;

/**
 * Real one-node clusters for tests: cluster provider on a loopback port, both roles, an H2
 * in-memory journal unless told otherwise, and the worker role started against the given model
 * runner. Shared by the worker's, the api-node's and the standalone module's tests.
 */
public final class TestNode {
  private TestNode() {}

  /** The base test config: one-node cluster, fast retries, no retention, H2 in memory. */
  public static Config config(String modelRunnerBaseUrl) {
    return config(modelRunnerBaseUrl, ConfigFactory.empty());
  }

  /** The base test config under {@code overrides} (which may set {@code mcp.journal.url}). */
  public static Config config(String modelRunnerBaseUrl, Config overrides) {
    String db = "jdbc:h2:mem:test-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1";
    return NodeConfig.layered(
        overrides
            .withFallback(
                ConfigFactory.parseMap(
                    Map.of(
                        "mcp.journal.url", db,
                        "mcp.worker.upstreams.default.base-url", modelRunnerBaseUrl)))
            .withFallback(ConfigFactory.parseResources("mcp-test-node.conf")),
        ConfigFactory.empty());
  }

  /** Creates the schema, starts an ActorSystem, joins it to itself, starts the worker role. */
  public static ActorSystem<Void> start(String name, Config config) {
    Config resolved = Journal.configure(config);
    Journal.ensureSchema(resolved);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), name, resolved);
    Cluster cluster = Cluster.get(system);
    cluster.manager().tell(Join.create(cluster.selfMember().address()));
    WorkerNode.start(system);
    return system;
  }

  /**
   * Rows of task {@code taskId} in the journal table {@code table} ({@code event_journal},
   * {@code snapshot}) of the database {@code config} names: what retention left of it.
   */
  public static int journalRows(Config config, String table, String taskId) {
    try (Connection c =
            DriverManager.getConnection(
                config.getString("mcp.journal.url"),
                config.getString("mcp.journal.user"),
                config.getString("mcp.journal.password"));
        PreparedStatement q =
            c.prepareStatement("SELECT COUNT(*) FROM \"" + table + "\" WHERE \"persistence_id\" = ?")) {
      q.setString(1, TaskProtocol.TYPE_KEY.name() + "|" + taskId);
      try (ResultSet rs = q.executeQuery()) {
        rs.next();
        return rs.getInt(1);
      }
    } catch (SQLException e) {
      throw new AssertionError(e);
    }
  }

  /** Waits until the node's own member is Up. */
  public static void awaitUp(ActorSystem<?> system) {
    TestProbe<Object> probe = TestProbe.create(system);
    probe.awaitAssert(
        Duration.ofSeconds(20),
        () -> {
          if (Cluster.get(system).selfMember().status() != MemberStatus.up()) {
            throw new AssertionError("not up yet");
          }
          return null;
        });
  }
}
