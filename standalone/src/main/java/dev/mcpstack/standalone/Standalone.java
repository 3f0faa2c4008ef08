package dev.mcpstack.standalone;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.api.ApiNode;
import dev.mcpstack.shared.NodeConfig;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.SimulatorSettings;
import dev.mcpstack.worker.WorkerNode;
import dev.mcpstack.worker.journal.Journal;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import kamon.Kamon;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.http.javadsl.ServerBinding;

/**
 * The whole stack in one JVM: both roles, the journal (H2 file by default), and, unless a model
 * runner is configured, the built-in simulator as the model runner. {@code java -jar} and go.
 */
public final class Standalone {
  private final ActorSystem<Void> system;
  private final ServerBinding binding;
  private final ModelRunnerSimulator simulator;

  private Standalone(ActorSystem<Void> system, ServerBinding binding, ModelRunnerSimulator simulator) {
    this.system = system;
    this.binding = binding;
    this.simulator = simulator;
  }

  public static void main(String[] args) throws Exception {
    Config config = NodeConfig.load();
    if (config.getBoolean("mcp.metrics.enabled")) {
      Kamon.init(config);
    }
    Standalone stack = start(config);
    InetSocketAddress address = stack.binding.localAddress();
    String host = address.getAddress().isAnyLocalAddress() ? "localhost" : address.getHostString();
    System.out.println();
    System.out.println("MCP Stack is up: http://" + host + ":" + address.getPort() + "/v1 (OpenAI-compatible)");
    System.out.println(
        stack.simulator == null
            ? "Model runner: " + config.getString("mcp.worker.upstreams.default.base-url")
            : "Model runner: built-in simulator at " + stack.simulator.baseUrl() + "/v1 (set MODEL_RUNNER_URL for a real one)");
    System.out.println("Journal: " + config.getString("mcp.journal.url"));
    System.out.println("Stop with Ctrl+C.");
  }

  /** Starts the stack and waits until it serves HTTP. */
  public static Standalone start(Config loaded) throws Exception {
    Config config = Journal.configure(loaded);
    Journal.ensureSchema(config);
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "mcp-stack", config);
    try {
      if (config.getStringList("pekko.cluster.seed-nodes").isEmpty()) {
        Cluster cluster = Cluster.get(system);
        cluster.manager().tell(Join.create(cluster.selfMember().address()));
      }
      ModelRunnerSimulator simulator = null;
      Config workerConfig = config;
      if (config.getString("mcp.worker.upstreams.default.base-url").isBlank()
          && config.getBoolean("mcp.standalone.embedded-simulator")) {
        simulator = startSimulator(system, config);
        workerConfig =
            ConfigFactory.parseMap(
                    Map.of("mcp.worker.upstreams.default.base-url", simulator.baseUrl() + "/v1"))
                .withFallback(config);
      }
      WorkerNode.start(system, workerConfig);
      ServerBinding binding = await(ApiNode.start(system), config.getDuration("mcp.standalone.startup-timeout"));
      return new Standalone(system, binding, simulator);
    } catch (Exception e) {
      system.terminate();
      throw e;
    }
  }

  private static ModelRunnerSimulator startSimulator(ActorSystem<?> system, Config config) throws Exception {
    SimulatorSettings settings = SimulatorSettings.fromConfig(config);
    Duration timeout = config.getDuration("mcp.standalone.startup-timeout");
    try {
      return await(ModelRunnerSimulator.start(system, settings), timeout);
    } catch (Exception portTaken) {
      system.log().warn("simulator port {} is taken; using a free port instead", settings.port());
      SimulatorSettings anyPort =
          new SimulatorSettings(settings.host(), 0, settings.models(), settings.embeddingDimensions(), settings.defaults());
      return await(ModelRunnerSimulator.start(system, anyPort), timeout);
    }
  }

  private static <T> T await(CompletionStage<T> stage, Duration timeout) throws Exception {
    return stage.toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

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
