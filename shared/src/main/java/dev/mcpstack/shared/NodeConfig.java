package dev.mcpstack.shared;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How a node finds its configuration: {@code -Dconfig.file} (or {@code config.resource}/{@code
 * config.url}) when given, else {@code application.conf} in the working directory when present,
 * else {@code application.conf} on the classpath. The result is unresolved, to be layered over
 * the node's defaults and the modules' {@code reference.conf} files.
 */
public final class NodeConfig {
  /**
   * The settings of libraries (Pekko, pekko-http, persistence, Kamon) that a module changes. They
   * cannot live in reference.conf: concatenated into one file in the fat jar, a library's own
   * reference.conf may come later and win. Every module may ship one; all are merged.
   */
  public static final String LIBRARY_DEFAULTS = "mcp-defaults.conf";

  private NodeConfig() {}

  /**
   * System properties over {@code overrides} over {@code nodeDefaults} over every module's {@link
   * #LIBRARY_DEFAULTS} over every reference.conf, resolved (so substitutions see the overrides).
   */
  public static Config layered(Config overrides, Config nodeDefaults) {
    return ConfigFactory.defaultOverrides()
        .withFallback(overrides)
        .withFallback(nodeDefaults)
        .withFallback(ConfigFactory.parseResources(LIBRARY_DEFAULTS))
        .withFallback(ConfigFactory.defaultReferenceUnresolved())
        .resolve();
  }

  public static Config application() {
    if (System.getProperty("config.file") == null
        && System.getProperty("config.resource") == null
        && System.getProperty("config.url") == null) {
      Path local = Path.of("application.conf");
      if (Files.isRegularFile(local)) {
        return ConfigFactory.parseFile(local.toFile());
      }
    }
    return ConfigFactory.defaultApplication();
  }
}
