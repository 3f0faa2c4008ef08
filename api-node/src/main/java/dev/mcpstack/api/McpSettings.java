package dev.mcpstack.api;

import com.typesafe.config.Config;
import java.time.Duration;

/** The {@code mcp.api.mcp} block: the MCP endpoint at {@code /mcp} (reference.conf has every key). */
record McpSettings(boolean enabled, int maxSessions, Duration sessionIdleTimeout, Duration progressInterval) {
  McpSettings {
    if (maxSessions < 1) {
      throw new IllegalArgumentException("mcp.api.mcp.max-sessions must be at least 1, not " + maxSessions);
    }
    if (sessionIdleTimeout.isNegative() || sessionIdleTimeout.isZero()) {
      throw new IllegalArgumentException("mcp.api.mcp.session-idle-timeout must be positive");
    }
    if (progressInterval.isNegative() || progressInterval.isZero()) {
      throw new IllegalArgumentException("mcp.api.mcp.progress-interval must be positive");
    }
  }

  static McpSettings fromConfig(Config config) {
    Config c = config.getConfig("mcp.api.mcp");
    return new McpSettings(
        c.getBoolean("enabled"),
        c.getInt("max-sessions"),
        c.getDuration("session-idle-timeout"),
        c.getDuration("progress-interval"));
  }
}
