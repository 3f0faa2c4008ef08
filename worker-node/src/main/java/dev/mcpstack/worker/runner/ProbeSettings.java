package dev.mcpstack.worker.runner;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * Active upstream probes, from {@code mcp.worker.upstream-probes} (docs/adr/0012): every {@code
 * interval} after the previous probe ended, each worker sends one {@code GET {base-url}{path}} to
 * each upstream; {@code down-after} failed probes in a row mark it down, one answer marks it up.
 */
public record ProbeSettings(boolean enabled, Duration interval, Duration timeout, int downAfter, String path) {

  public ProbeSettings {
    if (interval.isNegative() || interval.isZero()) {
      throw new IllegalArgumentException("mcp.worker.upstream-probes.interval must be > 0");
    }
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("mcp.worker.upstream-probes.timeout must be > 0");
    }
    if (downAfter < 1) {
      throw new IllegalArgumentException("mcp.worker.upstream-probes.down-after must be >= 1");
    }
    if (!path.startsWith("/")) {
      throw new IllegalArgumentException("mcp.worker.upstream-probes.path must start with '/': " + path);
    }
  }

  public static ProbeSettings fromConfig(Config root) {
    Config c = root.getConfig("mcp.worker.upstream-probes");
    return new ProbeSettings(
        c.getBoolean("enabled"),
        c.getDuration("interval"),
        c.getDuration("timeout"),
        c.getInt("down-after"),
        c.getString("path"));
  }
}
