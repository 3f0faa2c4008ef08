package dev.mcpstack.standalone;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A node's configuration as {@link Node#config} builds it, with environment variables simulated:
 * a root-level key {@code ARTERY_TLS_KEYSTORE} satisfies the substitution {@code
 * ${?ARTERY_TLS_KEYSTORE}} before the real environment is consulted, so a test goes through the
 * same layering and variable mapping as a container. Every variable this feature reads starts
 * empty (unset) and ENVIRONMENT at development, whatever the machine's environment holds.
 */
final class SimulatedEnvironment {
  static final List<String> TRANSPORT_VARIABLES =
      List.of(
          "ARTERY_TRANSPORT",
          "ARTERY_TLS_KEYSTORE",
          "ARTERY_TLS_KEYSTORE_PASSWORD",
          "ARTERY_TLS_KEY_PASSWORD",
          "ARTERY_TLS_TRUSTSTORE",
          "ARTERY_TLS_TRUSTSTORE_PASSWORD");

  private SimulatedEnvironment() {}

  static Config nodeConfig(Map<String, String> environment) {
    Map<String, Object> root = new HashMap<>();
    TRANSPORT_VARIABLES.forEach(v -> root.put(v, ""));
    root.put("ENVIRONMENT", "development");
    root.put("ARTERY_HOST", "127.0.0.1");
    root.put("ARTERY_PORT", "0");
    root.put("SEED_NODES", "");
    root.putAll(environment);
    // several actor systems in one JVM that must not end it
    root.put("pekko.coordinated-shutdown.exit-jvm", "off");
    root.put("pekko.cluster.jmx.multi-mbeans-in-same-jvm", "on");
    return Node.config(ConfigFactory.parseMap(root));
  }
}
