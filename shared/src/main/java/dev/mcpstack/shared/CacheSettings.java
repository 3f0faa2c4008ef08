package dev.mcpstack.shared;

import com.typesafe.config.Config;
import java.time.Duration;

/**
 * The {@code mcp.cache} block (shared/reference.conf): the response cache of docs/adr/0009. Read by
 * api-nodes (whether to use it, which partition) and workers (the partitions' bounds).
 */
public record CacheSettings(
    boolean enabled,
    Duration ttl,
    long maxBytes,
    int maxEntries,
    long maxEntryBytes,
    int partitions,
    Duration sweepInterval,
    Duration askTimeout) {

  public CacheSettings {
    if (partitions < 1) {
      throw new IllegalArgumentException("CACHE_PARTITIONS must be at least 1");
    }
    if (ttl.isNegative() || ttl.isZero()) {
      throw new IllegalArgumentException("CACHE_TTL must be positive");
    }
    if (maxBytes < 0 || maxEntries < 0 || maxEntryBytes < 0) {
      throw new IllegalArgumentException("cache bounds must be 0 (none) or positive");
    }
  }

  public static CacheSettings fromConfig(Config root) {
    Config c = root.getConfig("mcp.cache");
    return new CacheSettings(
        c.getBoolean("enabled"),
        c.getDuration("ttl"),
        c.getBytes("max-bytes"),
        c.getInt("max-entries"),
        c.getBytes("max-entry-bytes"),
        c.getInt("partitions"),
        c.getDuration("sweep-interval"),
        c.getDuration("ask-timeout"));
  }

  /** One partition's share of {@code max-bytes} (0 = no bound). */
  public long partitionBytes() {
    return maxBytes == 0 ? 0 : Math.max(1, maxBytes / partitions);
  }

  /** One partition's share of {@code max-entries}, rounded up (0 = no bound). */
  public int partitionEntries() {
    return maxEntries == 0 ? 0 : (maxEntries + partitions - 1) / partitions;
  }
}
