package dev.mcpstack.standalone;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Key material for Artery over TLS, made at test time with the JDK's keytool (the commands
 * docs/security-cluster.md gives operators): a cluster CA, a trust store holding only its
 * certificate, two node key stores signed by it, and a foreign self-signed key store the cluster
 * does not trust. PKCS12 throughout, one password for every store and key. Made once per JVM.
 */
record TestCertificates(Path trustStore, Path node1, Path node2, Path foreign) {
  static final String PASSWORD = "test-store-secret";

  private static TestCertificates created;

  static synchronized TestCertificates get() throws Exception {
    if (created == null) {
      Path dir = Files.createTempDirectory("mcp-artery-tls");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(dir)));
      created = create(dir);
    }
    return created;
  }

  private static TestCertificates create(Path dir) throws Exception {
    Path ca = dir.resolve("ca.p12");
    Path caPem = dir.resolve("ca.pem");
    Path trust = dir.resolve("truststore.p12");
    keytool(dir, "-genkeypair", "-alias", "ca", "-dname", "CN=MCP Stack test cluster CA", "-ext", "bc:c",
        "-keystore", ca.toString());
    keytool(dir, "-exportcert", "-alias", "ca", "-rfc", "-file", caPem.toString(), "-keystore", ca.toString());
    keytool(dir, "-importcert", "-noprompt", "-alias", "mcp-stack-ca", "-file", caPem.toString(),
        "-keystore", trust.toString());
    Path node1 = signedNode(dir, "node-1", ca, caPem);
    Path node2 = signedNode(dir, "node-2", ca, caPem);
    Path foreign = dir.resolve("foreign.p12");
    keytool(dir, "-genkeypair", "-alias", "node", "-dname", "CN=intruder", "-keystore", foreign.toString());
    return new TestCertificates(trust, node1, node2, foreign);
  }

  /** A key pair, a signing request, the CA's certificate for it, imported as the key's chain. */
  private static Path signedNode(Path dir, String name, Path ca, Path caPem) throws Exception {
    Path store = dir.resolve(name + ".p12");
    Path csr = dir.resolve(name + ".csr");
    Path pem = dir.resolve(name + ".pem");
    keytool(dir, "-genkeypair", "-alias", "node", "-dname", "CN=" + name, "-keystore", store.toString());
    keytool(dir, "-certreq", "-alias", "node", "-file", csr.toString(), "-keystore", store.toString());
    keytool(dir, "-gencert", "-alias", "ca", "-infile", csr.toString(), "-outfile", pem.toString(), "-rfc",
        "-ext", "ku:c=digitalSignature", "-ext", "eku=serverAuth,clientAuth", "-keystore", ca.toString());
    keytool(dir, "-importcert", "-noprompt", "-alias", "ca", "-file", caPem.toString(), "-keystore", store.toString());
    keytool(dir, "-importcert", "-alias", "node", "-file", pem.toString(), "-keystore", store.toString());
    return store;
  }

  private static void delete(Path dir) {
    try (var files = Files.list(dir)) {
      for (Path file : files.toList()) {
        Files.deleteIfExists(file);
      }
      Files.deleteIfExists(dir);
    } catch (IOException ignored) {
      // a temporary directory: the system cleans up what is left
    }
  }

  private static void keytool(Path dir, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
    command.addAll(List.of(args));
    String first = args[0];
    if (first.equals("-genkeypair")) {
      command.addAll(List.of("-keyalg", "EC", "-groupname", "secp256r1"));
    }
    if (first.equals("-genkeypair") || first.equals("-gencert")) {
      command.addAll(List.of("-validity", "2"));
    }
    command.addAll(List.of("-storetype", "PKCS12", "-storepass", PASSWORD));
    Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
      throw new IllegalStateException("keytool " + String.join(" ", args) + " failed:\n" + output);
    }
  }
}
