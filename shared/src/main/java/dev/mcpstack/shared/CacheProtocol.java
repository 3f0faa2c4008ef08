package dev.mcpstack.shared;

import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The response cache (docs/adr/0009): a fixed number of in-memory partitions, each a sharded entity
 * on the worker role, so one worker owns every cache key. The api-node computes the key (a SHA-256
 * over tenant, model and the canonical request) and picks the partition from it; the partition
 * keeps the answers with a TTL and a size bound (LRU eviction). Nothing is persisted: a partition
 * that moves or restarts starts empty, which only costs misses.
 */
public interface CacheProtocol {
  EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "ResponseCache");

  interface Command extends CborSerializable {}

  /**
   * The answer kept under {@code key} for {@code tenant}, if any and not expired. A found entry of
   * another tenant (which a SHA-256 collision alone could produce) is a miss.
   */
  record Lookup(String key, String tenant, ActorRef<Found> replyTo) implements Command {}

  /**
   * Keeps {@code body} (the whole JSON answer) under {@code key}; its usage is what the answer cost
   * when the runner made it. Replaces an existing entry.
   */
  record Store(String key, String tenant, String body, Usage usage) implements Command {}

  /** {@code body} null: a miss. */
  record Found(String body, Usage usage) implements CborSerializable {
    public static final Found MISS = new Found(null, null);

    public boolean hit() {
      return body != null;
    }
  }

  /** The entity id of the partition that owns {@code key} (hex digits) among {@code partitions}. */
  static String partitionOf(String key, int partitions) {
    long h = Long.parseUnsignedLong(key.substring(0, 15), 16);
    return "p" + (h % partitions);
  }
}
