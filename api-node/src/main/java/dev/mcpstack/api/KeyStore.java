package dev.mcpstack.api;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.KeyProtocol;
import java.io.File;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This api-node's copy of the cluster's API keys, looked up by the SHA-256 of a presented key:
 * the keys declared in configuration ({@code API_KEYS}, {@code API_KEYS_FILE}), and those of the
 * key registry, which it asks every {@code refresh-interval} for what changed since the version it
 * has. A key revoked in the registry therefore stops working here within one refresh interval and
 * one round trip. Until the first answer arrives, a key that is not declared in configuration is
 * answered with 503 (try again), not 401: the node cannot tell yet.
 */
final class KeyStore {
  private static final Logger log = LoggerFactory.getLogger(KeyStore.class);
  private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
  private static final Pattern TENANT = Pattern.compile("[A-Za-z0-9_.\\-]{1,64}");

  /** What a presented key turned out to be. */
  sealed interface Lookup {}

  record Found(ApiKey key) implements Lookup {}

  record Revoked(ApiKey key) implements Lookup {}

  enum Unknown implements Lookup {
    INSTANCE
  }

  enum NotLoaded implements Lookup {
    INSTANCE
  }

  private final Map<String, ApiKey> declared;
  private volatile Map<String, ApiKey> byHash;
  private volatile long version = -1;
  private final AtomicBoolean asking = new AtomicBoolean();
  private Cancellable poller;

  private KeyStore(Map<String, ApiKey> declared) {
    this.declared = Map.copyOf(declared);
    this.byHash = this.declared;
  }

  /** The declared keys, and a poller that follows the registry for as long as the system runs. */
  static KeyStore start(ActorSystem<?> system, Config api) {
    KeyStore store = new KeyStore(declared(api));
    Duration every = api.getDuration("keys.refresh-interval");
    Duration timeout = api.getDuration("ask-timeout");
    EntityRef<KeyProtocol.Command> registry =
        ClusterSharding.get(system).entityRefFor(KeyProtocol.TYPE_KEY, KeyProtocol.REGISTRY_ID);
    store.poller =
        system
            .scheduler()
            .scheduleWithFixedDelay(Duration.ZERO, every, () -> store.refresh(registry, timeout), system.executionContext());
    return store;
  }

  Lookup find(String presented) {
    ApiKey key = byHash.get(Sha256.hex(presented));
    if (key == null) {
      return version < 0 ? NotLoaded.INSTANCE : Unknown.INSTANCE;
    }
    return key.revoked() ? new Revoked(key) : new Found(key);
  }

  /** Every key of {@code tenant} this node knows, revoked ones included (their usage stays). */
  List<ApiKey> keysOf(String tenant) {
    return byHash.values().stream().filter(k -> k.tenant().equals(tenant)).toList();
  }

  /**
   * Takes in a key this node changed through the admin API, at once; the version stays, so the
   * next refresh still fetches every change made elsewhere meanwhile.
   */
  void applyLocal(ApiKey key) {
    apply(List.of(key), version);
  }

  /** Takes a registry answer in: the keys changed since this copy's version, and the new version. */
  synchronized void apply(List<ApiKey> changed, long atVersion) {
    Map<String, ApiKey> next = new HashMap<>(byHash);
    for (ApiKey key : changed) {
      ApiKey known = next.get(key.sha256());
      // declared keys win; an answer already on its way never undoes a newer change
      if (!declared.containsKey(key.sha256()) && (known == null || known.version() < key.version())) {
        next.put(key.sha256(), key);
      }
    }
    byHash = Map.copyOf(next);
    version = Math.max(version, atVersion);
  }

  private void refresh(EntityRef<KeyProtocol.Command> registry, Duration timeout) {
    if (!asking.compareAndSet(false, true)) {
      return;
    }
    long since = Math.max(0, version);
    registry
        .<KeyProtocol.Reply>ask(replyTo -> new KeyProtocol.ChangesSince(since, replyTo), timeout)
        .whenComplete(
            (reply, e) -> {
              asking.set(false);
              if (reply instanceof KeyProtocol.Many many) {
                apply(many.keys(), many.version());
              } else if (e != null) {
                log.debug("the key registry did not answer: {}", e.toString());
              }
            });
  }

  void stop() {
    if (poller != null) {
      poller.cancel();
    }
  }

  // ---- keys declared in configuration ----

  /**
   * {@code keys.declared}: comma-separated {@code tenant:sha256} entries ({@code API_KEYS}); and
   * {@code keys.file}: a HOCON or JSON file with {@code keys = [{tenant, sha256, name, models,
   * limits {...}}]} ({@code API_KEYS_FILE}). Anything malformed stops the node with its reason.
   */
  static Map<String, ApiKey> declared(Config api) {
    Map<String, ApiKey> keys = new HashMap<>();
    KeyLimits defaults = limits(api.getConfig("keys.default-limits"));
    for (String entry : api.getString("keys.declared").split(",")) {
      String e = entry.trim();
      if (e.isEmpty()) {
        continue;
      }
      int colon = e.indexOf(':');
      if (colon < 0) {
        throw new IllegalArgumentException("API_KEYS entry '" + e + "' is not tenant:sha256");
      }
      add(keys, e.substring(0, colon), e.substring(colon + 1), "", List.of(), defaults, null, "API_KEYS");
    }
    String file = api.getString("keys.file");
    if (!file.isBlank()) {
      File f = new File(file);
      if (!f.isFile()) {
        throw new IllegalArgumentException("API_KEYS_FILE '" + file + "' is not a readable file");
      }
      for (Config k : ConfigFactory.parseFile(f).getConfigList("keys")) {
        KeyLimits limits = k.hasPath("limits") ? limits(k.getConfig("limits").withFallback(api.getConfig("keys.default-limits"))) : defaults;
        add(
            keys,
            k.getString("tenant"),
            k.getString("sha256"),
            k.hasPath("name") ? k.getString("name") : "",
            k.hasPath("models") ? k.getStringList("models") : List.of(),
            limits,
            k.hasPath("cache") ? k.getBoolean("cache") : null,
            "API_KEYS_FILE");
      }
    }
    return keys;
  }

  private static void add(
      Map<String, ApiKey> keys,
      String tenant,
      String sha256,
      String name,
      List<String> models,
      KeyLimits limits,
      Boolean cache,
      String source) {
    String hash = sha256.trim().toLowerCase(java.util.Locale.ROOT);
    if (!validTenant(tenant.trim())) {
      throw new IllegalArgumentException(
          source + ": tenant '" + tenant + "' must be 1-64 letters, digits, '_', '.' or '-', and not 'anonymous' or 'operator'");
    }
    if (!SHA256.matcher(hash).matches()) {
      throw new IllegalArgumentException(source + ": '" + sha256 + "' is not a SHA-256 in hex (64 digits)");
    }
    String id = "cfg" + hash.substring(0, 9);
    keys.put(hash, new ApiKey(id, tenant.trim(), name, hash, limits, models, null, null, null, 0, cache));
  }

  static KeyLimits limits(Config c) {
    return new KeyLimits(
        c.getInt("requests-per-minute"),
        c.getLong("tokens-per-minute"),
        c.getInt("max-concurrent-requests"),
        c.getInt("max-active-tasks"));
  }

  /**
   * A tenant name a key may have: 1-64 letters, digits, '_', '.' or '-', and not one of the
   * names the stack gives its own callers (the anonymous caller, operators).
   */
  static boolean validTenant(String tenant) {
    return TENANT.matcher(tenant).matches()
        && !tenant.equalsIgnoreCase(Caller.ANONYMOUS_TENANT)
        && !tenant.equalsIgnoreCase(Caller.OPERATOR.tenant());
  }
}
