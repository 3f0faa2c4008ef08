package dev.mcpstack.standalone;

import static dev.mcpstack.standalone.SimulatedEnvironment.nodeConfig;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * What production requires of the transport between nodes, checked before a node starts: mutual
 * TLS with readable stores, else a refusal that names the variable to set. Development keeps
 * plain tcp.
 */
class ClusterTransportTest {
  private static final String ENGINE = "pekko.remote.artery.ssl.config-ssl-engine.";

  private static Map<String, String> production(TestCertificates certs, Path keyStore) {
    Map<String, String> env = new HashMap<>();
    env.put("ENVIRONMENT", "production");
    env.put("ARTERY_TLS_KEYSTORE", keyStore.toString());
    env.put("ARTERY_TLS_KEYSTORE_PASSWORD", TestCertificates.PASSWORD);
    env.put("ARTERY_TLS_TRUSTSTORE", certs.trustStore().toString());
    env.put("ARTERY_TLS_TRUSTSTORE_PASSWORD", TestCertificates.PASSWORD);
    return env;
  }

  @Test
  void developmentStaysOnPlainTcp() {
    Config config = nodeConfig(Map.of());
    assertEquals("tcp", config.getString("pekko.remote.artery.transport"));
    assertEquals(List.of(), ClusterTransport.problems(config));
  }

  @Test
  void productionWithoutStoresIsRefusedNamingEachMissingVariable() {
    Config config = nodeConfig(Map.of("ENVIRONMENT", "production"));
    assertEquals("tls-tcp", config.getString("pekko.remote.artery.transport"), "production defaults to TLS");
    List<String> problems = ClusterTransport.problems(config);
    assertEquals(4, problems.size(), problems.toString());
    for (String variable :
        List.of("ARTERY_TLS_KEYSTORE", "ARTERY_TLS_KEYSTORE_PASSWORD", "ARTERY_TLS_TRUSTSTORE", "ARTERY_TLS_TRUSTSTORE_PASSWORD")) {
      assertTrue(
          problems.stream().anyMatch(p -> p.startsWith(variable + " is not set")), variable + " in " + problems);
    }
    IllegalStateException refused =
        assertThrows(IllegalStateException.class, () -> Node.start(config), "Node.start refuses too");
    assertTrue(refused.getMessage().contains("ARTERY_TLS_KEYSTORE is not set"), refused.getMessage());
  }

  @Test
  void productionWithTheStoresConfiguredIsMutualTls() throws Exception {
    TestCertificates certs = TestCertificates.get();
    Config config = nodeConfig(production(certs, certs.node1()));
    assertEquals(List.of(), ClusterTransport.problems(config));
    assertEquals("tls-tcp", config.getString("pekko.remote.artery.transport"));
    assertTrue(config.getBoolean(ENGINE + "require-mutual-authentication"));
    assertEquals(certs.node1().toString(), config.getString(ENGINE + "key-store"));
    assertEquals(certs.trustStore().toString(), config.getString(ENGINE + "trust-store"));
    assertEquals(TestCertificates.PASSWORD, config.getString(ENGINE + "key-password"), "key password defaults to the store's");
  }

  @Test
  void productionRefusesPlainTcp() throws Exception {
    TestCertificates certs = TestCertificates.get();
    Map<String, String> env = production(certs, certs.node1());
    env.put("ARTERY_TRANSPORT", "tcp");
    List<String> problems = ClusterTransport.problems(nodeConfig(env));
    assertEquals(1, problems.size(), problems.toString());
    assertTrue(problems.get(0).contains("needs ARTERY_TRANSPORT=tls-tcp"), problems.get(0));
  }

  @Test
  void anEnvironmentOtherThanDevelopmentCountsAsProduction() {
    assertEquals(
        "tls-tcp", nodeConfig(Map.of("ENVIRONMENT", "staging")).getString("pekko.remote.artery.transport"));
  }

  @Test
  void wrongPasswordsAndMissingFilesAreRefusedAtStartNotAtTheFirstConnection() throws Exception {
    TestCertificates certs = TestCertificates.get();
    Map<String, String> wrongStorePassword = production(certs, certs.node1());
    wrongStorePassword.put("ARTERY_TLS_KEYSTORE_PASSWORD", "not-the-password");
    wrongStorePassword.put("ARTERY_TLS_KEY_PASSWORD", TestCertificates.PASSWORD);
    assertProblem(wrongStorePassword, "ARTERY_TLS_KEYSTORE_PASSWORD does not open");

    Map<String, String> wrongKeyPassword = production(certs, certs.node1());
    wrongKeyPassword.put("ARTERY_TLS_KEY_PASSWORD", "not-the-password");
    assertProblem(wrongKeyPassword, "ARTERY_TLS_KEY_PASSWORD does not unlock");

    Map<String, String> missingTrustStore = production(certs, certs.node1());
    missingTrustStore.put("ARTERY_TLS_TRUSTSTORE", certs.trustStore().resolveSibling("absent.p12").toString());
    assertProblem(missingTrustStore, "ARTERY_TLS_TRUSTSTORE: no readable file");

    Map<String, String> keyStoreAsTrustStore = production(certs, certs.node1());
    keyStoreAsTrustStore.put("ARTERY_TLS_KEYSTORE", certs.trustStore().toString());
    assertProblem(keyStoreAsTrustStore, "holds no private key");
  }

  @Test
  void developmentMayChooseTlsButThenNeedsTheStoresToo() {
    List<String> problems = ClusterTransport.problems(nodeConfig(Map.of("ARTERY_TRANSPORT", "tls-tcp")));
    assertEquals(4, problems.size(), problems.toString());
    assertEquals(
        List.of("ARTERY_TRANSPORT must be tcp or tls-tcp, not 'udp'"),
        ClusterTransport.problems(nodeConfig(Map.of("ARTERY_TRANSPORT", "udp"))));
  }

  /**
   * The launcher as an operator meets it: a production node without stores prints one line naming
   * the variable, no stack trace, and exits non-zero.
   */
  @Test
  void theLauncherRefusesWithOneLineAndANonZeroExit() throws Exception {
    Path dir = Files.createTempDirectory("mcp-refused-node");
    ProcessBuilder pb =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                System.getProperty("java.class.path"),
                Node.class.getName())
            .directory(dir.toFile()) // no application.conf there
            .redirectOutput(dir.resolve("out.txt").toFile())
            .redirectError(dir.resolve("err.txt").toFile());
    Map<String, String> env = pb.environment();
    SimulatedEnvironment.TRANSPORT_VARIABLES.forEach(env::remove);
    env.remove("JAVA_TOOL_OPTIONS");
    env.put("ENVIRONMENT", "production");
    env.put("METRICS_ENABLED", "off");
    Process process = pb.start();
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the node neither started nor refused in 60 s");
    String err = Files.readString(dir.resolve("err.txt"), StandardCharsets.UTF_8);
    String out = Files.readString(dir.resolve("out.txt"), StandardCharsets.UTF_8);
    assertEquals(2, process.exitValue(), "exit status; stderr:\n" + err + "\nstdout:\n" + out);
    List<String> refusals = err.lines().filter(l -> l.startsWith("MCP Stack node refused to start: ")).toList();
    assertEquals(1, refusals.size(), err);
    assertTrue(refusals.get(0).contains("ARTERY_TLS_KEYSTORE is not set"), refusals.get(0));
    assertFalse(err.contains("Exception") || err.contains("\tat "), "no stack trace:\n" + err);
  }

  private static void assertProblem(Map<String, String> env, String expected) {
    List<String> problems = ClusterTransport.problems(nodeConfig(env));
    assertEquals(1, problems.size(), problems.toString());
    assertTrue(problems.get(0).contains(expected), problems.get(0));
  }
}
