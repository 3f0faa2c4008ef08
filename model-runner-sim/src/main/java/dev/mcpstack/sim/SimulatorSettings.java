package dev.mcpstack.sim;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.List;

/**
 * Where the simulator listens and what it serves.
 *
 * @param host interface to bind
 * @param port port to bind; 0 = ephemeral
 * @param models ids served by {@code /v1/models} and accepted by chat/embeddings
 * @param embeddingDimensions length of every embedding vector
 * @param defaults fault knobs used when a request carries no {@code X-Sim-*} headers
 */
public record SimulatorSettings(
    String host, int port, List<String> models, int embeddingDimensions, Faults defaults) {

  public SimulatorSettings {
    if (host == null || host.isBlank()) throw new IllegalArgumentException("host must be set");
    if (port < 0 || port > 65535) throw new IllegalArgumentException("invalid port: " + port);
    models = List.copyOf(models);
    if (models.isEmpty()) throw new IllegalArgumentException("at least one model is required");
    if (embeddingDimensions < 1)
      throw new IllegalArgumentException("embeddingDimensions must be >= 1: " + embeddingDimensions);
    if (defaults == null) defaults = Faults.none();
  }

  /** Reads the {@code mcp.simulator} block (see reference.conf). */
  public static SimulatorSettings fromConfig(Config c) {
    Config s = c.getConfig("mcp.simulator");
    return new SimulatorSettings(
        s.getString("host"),
        s.getInt("port"),
        s.getStringList("models"),
        s.getInt("embedding-dimensions"),
        faultsFromConfig(s.getConfig("faults")));
  }

  static Faults faultsFromConfig(Config f) {
    Duration retryAfter = f.hasPath("retry-after") ? f.getDuration("retry-after") : null;
    return new Faults(
        f.getDuration("latency"),
        f.getDuration("time-to-first-token"),
        f.getDouble("tokens-per-second"),
        f.getInt("fail-status"),
        f.getInt("fail-first"),
        f.getInt("fail-every"),
        f.getBoolean("plain-text-errors"),
        retryAfter,
        f.getBoolean("hang"),
        f.getInt("drop-after-chunks"),
        f.getDouble("fail-ratio"));
  }
}
