package dev.mcpstack.worker.cache;

import dev.mcpstack.shared.CacheProtocol;
import dev.mcpstack.shared.CacheProtocol.Command;
import dev.mcpstack.shared.CacheProtocol.Found;
import dev.mcpstack.shared.CacheProtocol.Lookup;
import dev.mcpstack.shared.CacheProtocol.Store;
import dev.mcpstack.shared.CacheSettings;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Clock;
import java.time.Instant;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;

/**
 * One partition of the response cache (docs/adr/0009): answers by cache key, least recently used
 * first, each with its expiry. In memory on purpose: a cache that a fail-over empties costs misses,
 * never wrong answers, and writing it to the journal would cost what it saves. The map is this
 * actor's alone and never leaves it; messages carry only immutable records.
 */
public final class ResponseCacheEntity extends AbstractBehavior<Command> {
  /** A rough per-entry overhead (key, map node, record) added to the body's length. */
  private static final int ENTRY_OVERHEAD = 200;

  private record Entry(String tenant, String body, Usage usage, Instant expiresAt, long bytes) {}

  private enum Sweep implements Command {
    INSTANCE
  }

  /** Starts sharding of the cache partitions on this node (hosting them if it is a worker). */
  public static void init(ActorSystem<?> system, CacheSettings settings) {
    ClusterSharding.get(system)
        .init(
            Entity.of(CacheProtocol.TYPE_KEY, ctx -> create(settings, Clock.systemUTC()))
                .withRole(TaskProtocol.WORKER_ROLE)
                // a passivated partition would forget its answers: partitions live until their node stops
                .withSettings(ClusterShardingSettings.create(system).withNoPassivationStrategy()));
  }

  public static Behavior<Command> create(CacheSettings settings, Clock clock) {
    return Behaviors.setup(
        ctx ->
            Behaviors.withTimers(
                timers -> {
                  timers.startTimerWithFixedDelay(Sweep.INSTANCE, settings.sweepInterval());
                  return new ResponseCacheEntity(ctx, settings, clock);
                }));
  }

  private final CacheSettings settings;
  private final Clock clock;
  private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(64, 0.75f, true);
  private long bytes;

  private ResponseCacheEntity(ActorContext<Command> ctx, CacheSettings settings, Clock clock) {
    super(ctx);
    this.settings = settings;
    this.clock = clock;
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Lookup.class, this::onLookup)
        .onMessage(Store.class, this::onStore)
        .onMessageEquals(Sweep.INSTANCE, this::onSweep)
        .onSignal(PostStop.class, s -> onStop())
        .build();
  }

  private Behavior<Command> onLookup(Lookup cmd) {
    Entry e = entries.get(cmd.key());
    if (e != null && !e.expiresAt().isAfter(clock.instant())) {
      remove(cmd.key(), e);
      WorkerMetrics.cacheEvicted("expired", 1);
      e = null;
    }
    boolean hit = e != null && e.tenant().equals(cmd.tenant());
    cmd.replyTo().tell(hit ? new Found(e.body(), e.usage()) : Found.MISS);
    return this;
  }

  private Behavior<Command> onStore(Store cmd) {
    long size = (long) cmd.body().length() + cmd.key().length() + ENTRY_OVERHEAD;
    if (settings.maxEntryBytes() > 0 && cmd.body().length() > settings.maxEntryBytes()) {
      return this;
    }
    Entry old = entries.get(cmd.key());
    if (old != null) {
      remove(cmd.key(), old);
    }
    entries.put(cmd.key(), new Entry(cmd.tenant(), cmd.body(), cmd.usage(), clock.instant().plus(settings.ttl()), size));
    bytes += size;
    WorkerMetrics.cacheHeld(1, size);
    evictBeyondBounds();
    return this;
  }

  /** Drops the least recently used entries until both bounds hold (the newest entry always stays). */
  private void evictBeyondBounds() {
    long maxBytes = settings.partitionBytes();
    int maxEntries = settings.partitionEntries();
    Iterator<Map.Entry<String, Entry>> oldestFirst = entries.entrySet().iterator();
    long evicted = 0;
    while (entries.size() > 1
        && ((maxBytes > 0 && bytes > maxBytes) || (maxEntries > 0 && entries.size() > maxEntries))) {
      Entry e = oldestFirst.next().getValue();
      oldestFirst.remove();
      bytes -= e.bytes();
      WorkerMetrics.cacheHeld(-1, -e.bytes());
      evicted++;
    }
    WorkerMetrics.cacheEvicted("size", evicted);
  }

  private Behavior<Command> onSweep() {
    Instant now = clock.instant();
    long expired = 0;
    Iterator<Map.Entry<String, Entry>> all = entries.entrySet().iterator();
    while (all.hasNext()) {
      Entry e = all.next().getValue();
      if (!e.expiresAt().isAfter(now)) {
        all.remove();
        bytes -= e.bytes();
        WorkerMetrics.cacheHeld(-1, -e.bytes());
        expired++;
      }
    }
    WorkerMetrics.cacheEvicted("expired", expired);
    return this;
  }

  private void remove(String key, Entry e) {
    entries.remove(key);
    bytes -= e.bytes();
    WorkerMetrics.cacheHeld(-1, -e.bytes());
  }

  private Behavior<Command> onStop() {
    WorkerMetrics.cacheHeld(-entries.size(), -bytes);
    entries.clear();
    bytes = 0;
    return this;
  }
}
