package dev.mcpstack.sim;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;

/**
 * OpenAI-compatible model-runner simulator: a real pekko-http server with deterministic replies and
 * latency, pacing and fault knobs. See the module README for endpoints, knobs and headers.
 */
public final class ModelRunnerSimulator {

  private final ActorSystem<?> system;
  private final SimulatorSettings settings;
  private final ServerBinding binding;
  private final SimulatorState state;

  private ModelRunnerSimulator(ActorSystem<?> system, SimulatorSettings settings, ServerBinding binding,
      SimulatorState state) {
    this.system = system;
    this.settings = settings;
    this.binding = binding;
    this.state = state;
  }

  /** Binds host:port (port 0 = ephemeral) with the given actor system; completes when bound. */
  public static CompletionStage<ModelRunnerSimulator> start(ActorSystem<?> system, SimulatorSettings settings) {
    SimulatorState state = new SimulatorState(settings.defaults());
    SimulatorRoutes routes = new SimulatorRoutes(system, settings, state);
    return Http.get(system)
        .newServerAt(settings.host(), settings.port())
        // each connection watched: a call whose client leaves is abandoned (SimulatorConnection)
        .bindFlow(SimulatorConnection.watching(routes.route().flow(system), state))
        .thenApply(binding -> new ModelRunnerSimulator(system, settings, binding, state));
  }

  public int port() {
    return binding.localAddress().getPort();
  }

  /** {@code http://<host>:<port>} without trailing slash and without {@code /v1}. */
  public String baseUrl() {
    String host = settings.host();
    if (host.equals("0.0.0.0") || host.equals("::") || host.equals("[::]")) host = "127.0.0.1";
    else if (host.contains(":") && !host.startsWith("[")) host = "[" + host + "]";
    return "http://" + host + ":" + port();
  }

  public SimulatorStats stats() {
    return state.stats();
  }

  /**
   * Calls in flight that carry the header {@code name} (any case) with {@code value}: which calls the
   * runner has now, e.g. by the {@code X-Request-Id} the stack passes on.
   */
  public int inFlightWith(String name, String value) {
    return state.inFlightWith(name.toLowerCase(java.util.Locale.ROOT), value);
  }

  /**
   * Calls among the recent ones that carried the header {@code name} (any case) with {@code value}
   * and were abandoned: their client closed the connection before the answer was complete.
   */
  public long abandonedWith(String name, String value) {
    String header = name.toLowerCase(java.util.Locale.ROOT);
    return state.stats().recent().stream()
        .filter(r -> r.status() == SimulatorState.CLIENT_CLOSED_REQUEST && value.equals(r.headers().get(header)))
        .count();
  }

  /**
   * Clears stats and the fault request counter; keeps the defaults. Requests in flight at the time
   * of the reset are not counted in the new stats.
   */
  public void reset() {
    state.reset();
  }

  /** Replaces the default knobs used when a request has no {@code X-Sim-*} headers. */
  public void setDefaults(Faults faults) {
    state.setDefaults(faults);
  }

  /** The current default knobs. */
  public Faults defaults() {
    return state.defaults();
  }

  /**
   * Unbinds and terminates connections; requests still running after {@code
   * mcp.simulator.stop-hard-deadline} are aborted.
   */
  public CompletionStage<Done> stop() {
    return binding.terminate(stopDeadline(system.settings().config())).thenApply(terminated -> Done.getInstance());
  }

  static Duration stopDeadline(Config config) {
    return config.withFallback(ConfigFactory.defaultReference()).getDuration("mcp.simulator.stop-hard-deadline");
  }

  /** Standalone: own ActorSystem "model-runner-sim", settings from config, prints the URL. */
  public static void main(String[] args) {
    ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "model-runner-sim");
    Config config = system.settings().config();
    SimulatorSettings settings = SimulatorSettings.fromConfig(config);
    start(system, settings).whenComplete((sim, failure) -> {
      if (failure != null) {
        system.log().error("Model runner simulator failed to bind {}:{}", settings.host(), settings.port(), failure);
        system.terminate();
      } else {
        sim.binding.addToCoordinatedShutdown(stopDeadline(config), system);
        System.out.println("Model runner simulator listening on " + sim.baseUrl()
            + " (OpenAI base URL " + sim.baseUrl() + "/v1, models " + settings.models() + ")");
      }
    });
  }
}
