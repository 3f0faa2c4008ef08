package dev.mcpstack.api;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.List;

/** The {@code mcp.api} block of the configuration (see reference.conf for every key). */
public record ApiSettings(
    String host,
    int port,
    String environment,
    long maxBodySize,
    Duration bodyReadTimeout,
    int maxMessages,
    int maxEmbeddingInputs,
    int maxTokensCap,
    int defaultMaxTokens,
    Duration askTimeout,
    int submitRetries,
    Duration chatTimeout,
    Duration maxTaskTimeout,
    Duration keepaliveInterval,
    Duration retryAfter,
    Duration shutdownDeadline,
    AdminToken adminToken,
    int adminTokenLength,
    Duration adminFailureDelay,
    String keysRequiredMode,
    int maxInFlight) {

  public ApiSettings {
    if (!List.of("auto", "on", "off").contains(keysRequiredMode)) {
      throw new IllegalArgumentException("API_KEYS_REQUIRED must be auto, on or off, not '" + keysRequiredMode + "'");
    }
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("API_MAX_IN_FLIGHT must be at least 1");
    }
  }

  public static ApiSettings fromConfig(Config root) {
    Config c = root.getConfig("mcp.api");
    return new ApiSettings(
        c.getString("host"),
        c.getInt("port"),
        c.getString("environment"),
        c.getBytes("max-body-size"),
        c.getDuration("body-read-timeout"),
        c.getInt("max-messages"),
        c.getInt("max-embedding-inputs"),
        c.getInt("max-tokens-cap"),
        c.getInt("default-max-tokens"),
        c.getDuration("ask-timeout"),
        c.getInt("submit-retries"),
        c.getDuration("chat-timeout"),
        c.getDuration("max-task-timeout"),
        c.getDuration("keepalive-interval"),
        c.getDuration("retry-after"),
        c.getDuration("shutdown-deadline"),
        AdminToken.of(c.getString("admin-token")),
        c.getString("admin-token").length(),
        c.getDuration("admin-failure-delay"),
        c.getString("keys.required").trim().toLowerCase(java.util.Locale.ROOT),
        c.getInt("max-in-flight"));
  }

  /** Whether every request needs an API key: always in production, in development only if asked. */
  public boolean keysRequired() {
    return keysRequiredMode.equals("on") || (keysRequiredMode.equals("auto") && !development());
  }

  /**
   * What production mode refuses to start with, one reason per line; empty when this node may
   * start (development refuses nothing).
   */
  public List<String> productionProblems() {
    if (development()) {
      return List.of();
    }
    List<String> problems = new java.util.ArrayList<>();
    if (!keysRequired()) {
      problems.add("API_KEYS_REQUIRED=off is not allowed when ENVIRONMENT=" + environment + ": every caller would be anonymous");
    }
    if (adminTokenLength < 32) {
      problems.add(
          "ADMIN_TOKEN must be set to at least 32 characters when ENVIRONMENT=" + environment
              + " (it has " + adminTokenLength + "); e.g. `openssl rand -hex 32`");
    }
    return problems;
  }

  public boolean development() {
    return "development".equalsIgnoreCase(environment);
  }

  /** How long a client may wait for a task beyond its deadline before giving up on the entity. */
  Duration waitGrace() {
    return askTimeout.multipliedBy(2);
  }
}
