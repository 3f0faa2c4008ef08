package dev.mcpstack.api;

import com.typesafe.config.Config;
import java.time.Duration;

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
    Duration resubscribeInterval,
    int streamBufferSize,
    Duration retryAfter,
    Duration shutdownDeadline,
    AdminToken adminToken) {

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
        c.getDuration("resubscribe-interval"),
        c.getInt("stream-buffer-size"),
        c.getDuration("retry-after"),
        c.getDuration("shutdown-deadline"),
        AdminToken.of(c.getString("admin-token")));
  }

  public boolean development() {
    return "development".equalsIgnoreCase(environment);
  }

  /** How long a client may wait for a task beyond its deadline before giving up on the entity. */
  Duration waitGrace() {
    return askTimeout.multipliedBy(2);
  }
}
