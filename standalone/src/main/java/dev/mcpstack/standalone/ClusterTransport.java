package dev.mcpstack.standalone;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import javax.net.ssl.KeyManagerFactory;

/**
 * Artery's transport between the nodes, and what production requires of it: TLS with mutual
 * authentication ({@code tls-tcp}), every node presenting a certificate signed by the cluster's CA
 * and accepting only peers that do. Development keeps plain {@code tcp}.
 *
 * <p>Production is any {@code mcp.api.environment} ({@code ENVIRONMENT}) but {@code development},
 * like the API's key mode: a misspelt environment fails closed.
 */
final class ClusterTransport {
  static final String TCP = "tcp";
  static final String TLS_TCP = "tls-tcp";

  private static final String TRANSPORT = "pekko.remote.artery.transport";
  private static final String SSL = "pekko.remote.artery.ssl.";
  private static final String ENGINE = SSL + "config-ssl-engine.";
  private static final String CONFIG_ENGINE_PROVIDER =
      "org.apache.pekko.remote.artery.tcp.ConfigSSLEngineProvider";

  private ClusterTransport() {}

  static boolean production(Config config) {
    return !"development".equalsIgnoreCase(config.getString("mcp.api.environment").trim());
  }

  /**
   * Pekko's transport settings from the node's: {@code mcp.node.artery-transport} ({@code
   * ARTERY_TRANSPORT}) when set, else {@code tls-tcp} in production; and a key password that is
   * left empty falls back to the key store's password (what keytool's PKCS12 stores use).
   */
  static Config settings(Config config) {
    Config result = ConfigFactory.empty();
    String transport = config.getString("mcp.node.artery-transport").trim();
    if (transport.isEmpty() && production(config)) {
      transport = TLS_TCP;
    }
    if (!transport.isEmpty()) {
      result = result.withValue(TRANSPORT, ConfigValueFactory.fromAnyRef(transport));
    }
    if (config.getString(ENGINE + "key-password").isEmpty()) {
      result =
          result.withValue(
              ENGINE + "key-password",
              ConfigValueFactory.fromAnyRef(config.getString(ENGINE + "key-store-password")));
    }
    return result;
  }

  /** A short description for the start-up banner. */
  static String describe(Config config) {
    String transport = config.getString(TRANSPORT);
    if (!transport.equals(TLS_TCP)) {
      return transport + " (plain, unauthenticated)";
    }
    return transport
        + (config.getBoolean(ENGINE + "require-mutual-authentication") ? " (mutual TLS)" : " (TLS, one-way)");
  }

  /**
   * Why this node must not start with its transport settings: one sentence per problem, naming the
   * environment variable to fix; empty when all is well. Reads the stores with their passwords, so
   * that a wrong path or password stops the node now rather than failing every connection later
   * (Pekko opens the stores only at the first connection).
   */
  static List<String> problems(Config config) {
    List<String> problems = new ArrayList<>();
    String transport = config.getString(TRANSPORT);
    if (!Set.of(TCP, TLS_TCP).contains(transport)) {
      return List.of("ARTERY_TRANSPORT must be tcp or tls-tcp, not '" + transport + "'");
    }
    boolean production = production(config);
    if (production && !transport.equals(TLS_TCP)) {
      problems.add(
          "ENVIRONMENT=" + config.getString("mcp.api.environment").trim()
              + " needs ARTERY_TRANSPORT=tls-tcp (or unset), not '" + transport
              + "': traffic between nodes must be encrypted and mutually authenticated");
      return problems;
    }
    if (!transport.equals(TLS_TCP)) {
      return problems;
    }
    if (production && !config.getBoolean(ENGINE + "require-mutual-authentication")) {
      problems.add(
          "production needs " + ENGINE + "require-mutual-authentication = on: every node must"
              + " present a certificate of the cluster's CA");
    }
    if (!CONFIG_ENGINE_PROVIDER.equals(config.getString(SSL + "ssl-engine-provider"))) {
      return problems; // another engine provider brings its own key material
    }
    String keyStore = config.getString(ENGINE + "key-store").trim();
    String keyStorePassword = config.getString(ENGINE + "key-store-password");
    String trustStore = config.getString(ENGINE + "trust-store").trim();
    String trustStorePassword = config.getString(ENGINE + "trust-store-password");
    requireSet(problems, keyStore, "ARTERY_TLS_KEYSTORE", "the node's PKCS12 key store: its certificate and private key");
    requireSet(problems, keyStorePassword, "ARTERY_TLS_KEYSTORE_PASSWORD", "the key store's password");
    requireSet(problems, trustStore, "ARTERY_TLS_TRUSTSTORE", "the PKCS12 trust store with the cluster's CA certificate");
    requireSet(problems, trustStorePassword, "ARTERY_TLS_TRUSTSTORE_PASSWORD", "the trust store's password");
    if (!keyStore.isEmpty() && !keyStorePassword.isEmpty()) {
      KeyStore keys = load(problems, keyStore, keyStorePassword, "ARTERY_TLS_KEYSTORE");
      if (keys != null) {
        checkKeys(problems, keys, keyStore, config.getString(ENGINE + "key-password"));
      }
    }
    if (!trustStore.isEmpty() && !trustStorePassword.isEmpty()) {
      KeyStore trust = load(problems, trustStore, trustStorePassword, "ARTERY_TLS_TRUSTSTORE");
      if (trust != null) {
        checkTrust(problems, trust, trustStore);
      }
    }
    return problems;
  }

  private static void requireSet(List<String> problems, String value, String variable, String what) {
    if (value.isEmpty()) {
      problems.add(variable + " is not set (" + what + ")");
    }
  }

  /** The store as Pekko loads it (the JVM's default type, PKCS12, which also reads JKS). */
  private static KeyStore load(List<String> problems, String file, String password, String variable) {
    Path path;
    try {
      path = Path.of(file);
    } catch (InvalidPathException e) {
      problems.add(variable + " is not a file path: '" + file + "'");
      return null;
    }
    if (!Files.isRegularFile(path) || !Files.isReadable(path)) {
      problems.add(variable + ": no readable file at " + file);
      return null;
    }
    try (InputStream in = Files.newInputStream(path)) {
      KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
      store.load(in, password.toCharArray());
      return store;
    } catch (IOException | GeneralSecurityException e) {
      problems.add(variable + "_PASSWORD does not open " + file + " (" + e.getMessage() + ")");
      return null;
    }
  }

  private static void checkKeys(List<String> problems, KeyStore store, String file, String keyPassword) {
    try {
      boolean hasKey = false;
      for (String alias : Collections.list(store.aliases())) {
        hasKey |= store.isKeyEntry(alias);
      }
      if (!hasKey) {
        problems.add("ARTERY_TLS_KEYSTORE " + file + " holds no private key");
        return;
      }
      KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm())
          .init(store, keyPassword.toCharArray());
    } catch (GeneralSecurityException e) {
      problems.add("ARTERY_TLS_KEY_PASSWORD does not unlock the private key in " + file + " (" + e.getMessage() + ")");
    }
  }

  private static void checkTrust(List<String> problems, KeyStore store, String file) {
    try {
      for (String alias : Collections.list(store.aliases())) {
        if (store.isCertificateEntry(alias)) {
          return;
        }
      }
      problems.add("ARTERY_TLS_TRUSTSTORE " + file + " holds no trusted certificate (import the cluster's CA)");
    } catch (GeneralSecurityException e) {
      problems.add("ARTERY_TLS_TRUSTSTORE " + file + " cannot be read (" + e.getMessage() + ")");
    }
  }
}
