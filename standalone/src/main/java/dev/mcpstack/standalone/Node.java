package dev.mcpstack.standalone;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import dev.mcpstack.api.ApiNode;
import dev.mcpstack.shared.NodeConfig;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.SimulatorSettings;
import dev.mcpstack.worker.WorkerNode;
import dev.mcpstack.worker.journal.Journal;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import kamon.Kamon;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap;
import org.apache.pekko.management.javadsl.PekkoManagement;

/**
 * One MCP Stack node, whatever its roles ({@code NODE_ROLES}: api, worker or both). With both
 * roles, no seed nodes and no model runner configured it is the embedded default: a one-node
 * cluster with the H2 journal and the built-in simulator. {@code java -jar mcp-stack.jar}.
 */
public final class Node {
  private final ActorSystem<Void> system;
  private final ServerBinding binding;
  private final ModelRunnerSimulator simulator;

  private Node(ActorSystem<Void> system, ServerBinding binding, ModelRunnerSimulator simulator) {
    this.system = system;
    this.binding = binding;
    this.simulator = simulator;
  }

  /**
   * Every stage Pekko's Java API returns (an ask, a queue offer, a stream's completion) is a Scala
   * future seen as a CompletableFuture whose callbacks run on the JDK's default async executor.
   * That is the common fork-join pool, unless its parallelism is below 2 (one less than the cores:
   * any 2-core machine), where the JDK starts a new thread for every callback instead. Measured:
   * a thread created per streamed token on the worker. At least 2 keeps callbacks on the pool.
   * Must run before anything touches the common pool; an operator's own setting wins.
   */
  static void asyncCallbacksOnAPool() {
    String key = "java.util.concurrent.ForkJoinPool.common.parallelism";
    if (System.getProperty(key) == null) {
      System.setProperty(key, String.valueOf(Math.max(2, Runtime.getRuntime().availableProcessors() - 1)));
    }
  }

  public static void main(String[] args) throws Exception {
    asyncCallbacksOnAPool();
    if (args.length > 0 && args[0].equals("keygen")) {
      ApiNode.keygen(Arrays.copyOfRange(args, 1, args.length));
      return;
    }
    Config config = config(NodeConfig.application());
    List<String> refused = new java.util.ArrayList<>(ClusterTransport.problems(config));
    if (config.getString("mcp.node.roles").contains("api")) {
      refused.addAll(ApiNode.startupProblems(config));
    }
    if (!refused.isEmpty()) {
      // One line an operator can act on: what to set, no stack trace.
      System.err.println("MCP Stack node refused to start: " + String.join("; ", refused));
      System.exit(2);
    }
    if (config.getBoolean("mcp.metrics.enabled")) {
      Kamon.init(config);
    }
    Node node = start(config);
    System.out.println();
    System.out.println("MCP Stack node up, roles " + config.getStringList("pekko.cluster.roles"));
    if (node.binding != null) {
      InetSocketAddress address = node.binding.localAddress();
      String host = address.getAddress().isAnyLocalAddress() ? "localhost" : address.getHostString();
      System.out.println("OpenAI-compatible API: http://" + host + ":" + address.getPort() + "/v1");
    }
    if (node.simulator != null) {
      System.out.println(
          "Model runner: built-in simulator at " + node.simulator.baseUrl()
              + "/v1 (set MODEL_RUNNER_URL for a real one)");
    }
    System.out.println("Journal: " + config.getString("mcp.journal.url"));
    System.out.println("Cluster transport: " + ClusterTransport.describe(config));
    System.out.println("Stop with Ctrl+C (SIGTERM: leaves the cluster, hands off shards, finishes in-flight requests).");
  }

  /**
   * A node's configuration: system properties over {@code overrides} (the operator's
   * application.conf, or a test's settings) over the node's Pekko settings ({@code mcp-node.conf})
   * over the modules' library defaults and reference.conf files, with roles, seeds and the Artery
   * transport applied.
   */
  public static Config config(Config overrides) {
    return withNodeSettings(
        NodeConfig.layered(overrides, ConfigFactory.parseResources("mcp-node.conf")));
  }

  /**
   * Applies {@code mcp.node.roles} and {@code mcp.node.seed-nodes} (comma-separated, from {@code
   * NODE_ROLES} and {@code SEED_NODES}) to Pekko's list settings, and {@code
   * mcp.node.artery-transport} ({@code ARTERY_TRANSPORT}, tls-tcp by default in production) to
   * Artery's (see {@link ClusterTransport}).
   */
  private static Config withNodeSettings(Config config) {
    List<String> roles = commaList(config.getString("mcp.node.roles"));
    List<String> seeds = commaList(config.getString("mcp.node.seed-nodes"));
    return ConfigFactory.empty()
        .withValue("pekko.cluster.roles", ConfigValueFactory.fromIterable(roles))
        .withValue("pekko.cluster.seed-nodes", ConfigValueFactory.fromIterable(seeds))
        .withFallback(ClusterTransport.settings(config))
        .withFallback(config);
  }

  private static List<String> commaList(String value) {
    return Arrays.stream(value.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
  }

  /**
   * Starts the node and waits until it serves (HTTP bound on api nodes). Refuses a configuration
   * that production forbids (plain transport, missing TLS stores) with an IllegalStateException.
   */
  public static Node start(Config loaded) throws Exception {
    List<String> refused = ClusterTransport.problems(loaded);
    if (!refused.isEmpty()) {
      throw new IllegalStateException("refused to start: " + String.join("; ", refused));
    }
    Config config = Journal.configure(loaded);
    List<String> roles = config.getStringList("pekko.cluster.roles");
    boolean worker = roles.contains(TaskProtocol.WORKER_ROLE);
    boolean api = roles.contains("api");
    if (!worker && !api) {
      throw new IllegalArgumentException("NODE_ROLES must name api, worker or both, not " + roles);
    }
    if (worker) {
      Journal.ensureSchema(config);
    }
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "mcp-stack", config);
    Duration timeout = config.getDuration("mcp.node.startup-timeout");
    try {
      joinCluster(system, config);
      ModelRunnerSimulator simulator = null;
      if (worker) {
        Config workerConfig = config;
        if (config.getString("mcp.worker.upstreams.default.base-url").isBlank()
            && config.getBoolean("mcp.node.embedded-simulator")) {
          simulator = startSimulator(system, config, timeout);
          workerConfig =
              ConfigFactory.parseMap(
                      Map.of("mcp.worker.upstreams.default.base-url", simulator.baseUrl() + "/v1"))
                  .withFallback(config);
        }
        WorkerNode.start(system, workerConfig);
      }
      ServerBinding binding = api ? await(ApiNode.start(system), timeout) : null;
      NodeGauges.start(system, config);
      return new Node(system, binding, simulator);
    } catch (Exception e) {
      system.terminate();
      throw e;
    }
  }

  private static void joinCluster(ActorSystem<?> system, Config config) throws Exception {
    boolean bootstrap = config.getBoolean("mcp.node.cluster-bootstrap");
    if (config.getBoolean("mcp.node.management.enabled") || bootstrap) {
      await(PekkoManagement.get(system.classicSystem()).start(), config.getDuration("mcp.node.startup-timeout"));
    }
    if (bootstrap) {
      ClusterBootstrap.get(system.classicSystem()).start();
    } else if (config.getStringList("pekko.cluster.seed-nodes").isEmpty()) {
      Cluster cluster = Cluster.get(system);
      cluster.manager().tell(Join.create(cluster.selfMember().address()));
    }
  }

  private static ModelRunnerSimulator startSimulator(ActorSystem<?> system, Config config, Duration timeout)
      throws Exception {
    SimulatorSettings settings = SimulatorSettings.fromConfig(config);
    try {
      return await(ModelRunnerSimulator.start(system, settings), timeout);
    } catch (Exception portTaken) {
      system.log().warn("simulator port {} is taken; using a free port instead", settings.port());
      SimulatorSettings anyPort =
          new SimulatorSettings(
              settings.host(), 0, settings.models(), settings.embeddingDimensions(), settings.defaults());
      return await(ModelRunnerSimulator.start(system, anyPort), timeout);
    }
  }

  private static <T> T await(CompletionStage<T> stage, Duration timeout) throws Exception {
    return stage.toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The HTTP port (api nodes). */
  public int port() {
    return binding.localAddress().getPort();
  }

  public ActorSystem<Void> system() {
    return system;
  }

  public ModelRunnerSimulator simulator() {
    return simulator;
  }

  /** Runs the coordinated shutdown (leave, hand-off, unbind after in-flight requests) and waits. */
  public void stop(Duration timeout) throws Exception {
    system.terminate();
    system.getWhenTerminated().toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }
}
