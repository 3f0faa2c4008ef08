package dev.mcpstack.worker.runner;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * One model runner, from {@code mcp.worker.upstreams.<name>} over {@code
 * mcp.worker.upstream-defaults}. {@code baseUrl} is the OpenAI base URL including its version path
 * ({@code http://host:port/v1}, or Docker Model Runner's {@code .../engines/v1}). An empty {@code
 * models} list means the runner serves whatever model it is asked for.
 */
public record UpstreamSettings(
    String name,
    String baseUrl,
    String apiKey,
    List<String> models,
    int weight,
    int priority,
    double requestsPerSecond,
    int burst,
    int maxConcurrency,
    int queueSize,
    Duration connectTimeout,
    Duration requestTimeout,
    Duration firstTokenTimeout,
    Duration idleTimeout,
    int breakerMaxFailures,
    Duration breakerResetTimeout) {

  public UpstreamSettings {
    require(requestsPerSecond >= 0, name, "requests-per-second must be >= 0 (0: no rate limit)");
    require(burst >= 1, name, "burst must be >= 1");
    require(maxConcurrency >= 1, name, "max-concurrency must be >= 1");
    require(queueSize >= 1, name, "queue-size must be >= 1");
    require(breakerMaxFailures >= 1, name, "breaker.max-failures must be >= 1");
    require(
        baseUrl.startsWith("http://") || baseUrl.startsWith("https://"),
        name,
        "base-url must start with http:// or https://, not '" + baseUrl + "'");
  }

  private static void require(boolean ok, String upstream, String message) {
    if (!ok) {
      throw new IllegalArgumentException("mcp.worker.upstreams." + upstream + ": " + message);
    }
  }

  public boolean serves(String model) {
    return models.isEmpty() || models.contains(model);
  }

  /** Every upstream with a non-empty base URL, in configuration order. */
  public static List<UpstreamSettings> fromConfig(Config root) {
    Config worker = root.getConfig("mcp.worker");
    Config defaults = worker.getConfig("upstream-defaults");
    Config all = worker.getConfig("upstreams");
    List<UpstreamSettings> result = new ArrayList<>();
    for (String name : all.root().keySet().stream().sorted().toList()) {
      Config c = all.getConfig(name).withFallback(defaults);
      String baseUrl = c.getString("base-url").trim();
      if (baseUrl.isEmpty()) {
        continue;
      }
      result.add(
          new UpstreamSettings(
              name,
              baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl,
              c.getString("api-key"),
              List.copyOf(c.getStringList("models")),
              c.getInt("weight"),
              c.getInt("priority"),
              c.getDouble("requests-per-second"),
              c.getInt("burst"),
              c.getInt("max-concurrency"),
              c.getInt("queue-size"),
              c.getDuration("connect-timeout"),
              c.getDuration("request-timeout"),
              c.getDuration("first-token-timeout"),
              c.getDuration("idle-timeout"),
              c.getInt("breaker.max-failures"),
              c.getDuration("breaker.reset-timeout")));
    }
    return List.copyOf(result);
  }
}
