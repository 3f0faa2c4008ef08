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
  private NodeConfig() {}

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
