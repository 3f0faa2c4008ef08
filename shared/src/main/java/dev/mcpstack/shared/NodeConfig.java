package dev.mcpstack.shared;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How a node finds its configuration: {@code -Dconfig.file} when given, else {@code
 * application.conf} in the working directory when present, else the classpath; always over the
 * modules' {@code reference.conf} defaults, with environment variables substituted.
 */
public final class NodeConfig {
  private NodeConfig() {}

  public static Config load() {
    if (System.getProperty("config.file") == null
        && System.getProperty("config.resource") == null
        && System.getProperty("config.url") == null) {
      Path local = Path.of("application.conf");
      if (Files.isRegularFile(local)) {
        return ConfigFactory.load(ConfigFactory.parseFile(local.toFile()));
      }
    }
    return ConfigFactory.load();
  }
}
