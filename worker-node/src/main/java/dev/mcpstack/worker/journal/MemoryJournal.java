package dev.mcpstack.worker.journal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.dispatch.Futures;
import org.apache.pekko.persistence.AtomicWrite;
import org.apache.pekko.persistence.PersistentRepr;
import org.apache.pekko.persistence.journal.Tagged;
import org.apache.pekko.persistence.journal.japi.AsyncWriteJournal;
import scala.concurrent.Future;
import scala.jdk.javaapi.CollectionConverters;

/**
 * A journal plugin that keeps events in this JVM's memory only: the journal of tasks whose client
 * holds the connection and sent no {@code Idempotency-Key} (docs/adr/0007). A crash loses them, by
 * design: the api-node holding the request submits it again when nothing had reached its client,
 * and ends the response with an error otherwise. The events of a task are forgotten when its entity
 * stops ({@link Events#forget}), so memory holds only the tasks alive on this node.
 *
 * <p>Configured as {@code mcp.memory-journal} (reference.conf); no snapshots go with it.
 */
public final class MemoryJournal extends AsyncWriteJournal {
  private static final Future<Void> DONE = Futures.successful(null);

  private final Events events =
      Events.get(org.apache.pekko.actor.typed.javadsl.Adapter.toTyped(context().system()));

  @Override
  public Future<Iterable<Optional<Exception>>> doAsyncWriteMessages(Iterable<AtomicWrite> writes) {
    List<Optional<Exception>> results = new ArrayList<>();
    for (AtomicWrite write : writes) {
      Kept kept = events.byId.computeIfAbsent(write.persistenceId(), id -> new Kept());
      synchronized (kept) {
        for (PersistentRepr repr : CollectionConverters.asJava(write.payload())) {
          kept.events.add(repr.payload() instanceof Tagged tagged ? repr.withPayload(tagged.payload()) : repr);
          kept.highest = repr.sequenceNr();
        }
      }
      results.add(Optional.empty());
    }
    return Futures.successful(results);
  }

  @Override
  public Future<Void> doAsyncDeleteMessagesTo(String persistenceId, long toSequenceNr) {
    Kept kept = events.byId.get(persistenceId);
    if (kept != null) {
      synchronized (kept) {
        kept.events.removeIf(repr -> repr.sequenceNr() <= toSequenceNr);
      }
    }
    return DONE;
  }

  @Override
  public Future<Void> doAsyncReplayMessages(
      String persistenceId, long from, long to, long max, Consumer<PersistentRepr> replay) {
    Kept kept = events.byId.get(persistenceId);
    if (kept != null) {
      synchronized (kept) {
        long sent = 0;
        for (PersistentRepr repr : kept.events) {
          if (sent >= max) {
            break;
          }
          if (repr.sequenceNr() >= from && repr.sequenceNr() <= to) {
            replay.accept(repr);
            sent++;
          }
        }
      }
    }
    return DONE;
  }

  @Override
  public Future<Long> doAsyncReadHighestSequenceNr(String persistenceId, long from) {
    Kept kept = events.byId.get(persistenceId);
    if (kept == null) {
      return Futures.successful(0L);
    }
    synchronized (kept) {
      return Futures.successful(kept.highest); // deleting events keeps the highest number
    }
  }

  /** One persistence id's events, and the highest sequence number it ever wrote. */
  private static final class Kept {
    final List<PersistentRepr> events = new ArrayList<>(4);
    long highest;
  }

  /** The events this node keeps in memory, by persistence id. */
  public static final class Events implements Extension {
    static final ExtensionId<Events> ID =
        new ExtensionId<>() {
          @Override
          public Events createExtension(ActorSystem<?> system) {
            return new Events();
          }
        };

    private final ConcurrentHashMap<String, Kept> byId = new ConcurrentHashMap<>();

    public static Events get(ActorSystem<?> system) {
      return ID.apply(system);
    }

    /** Drops a task's events: its entity stopped, and nothing will read them again. */
    public void forget(String persistenceId) {
      byId.remove(persistenceId);
    }

    /** Whether events of {@code persistenceId} are kept here. */
    public boolean has(String persistenceId) {
      return byId.containsKey(persistenceId);
    }
  }
}
