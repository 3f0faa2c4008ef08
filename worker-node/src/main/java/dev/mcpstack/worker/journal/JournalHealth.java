package dev.mcpstack.worker.journal;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.pattern.Patterns;
import org.apache.pekko.persistence.JournalProtocol;
import org.apache.pekko.persistence.Persistence;
import org.apache.pekko.persistence.SnapshotProtocol;
import org.apache.pekko.persistence.SnapshotSelectionCriteria;
import dev.mcpstack.shared.JournalStatus;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.cluster.ddata.ORSet;
import org.apache.pekko.cluster.ddata.SelfUniqueAddress;
import org.apache.pekko.cluster.ddata.typed.javadsl.DistributedData;
import org.apache.pekko.cluster.ddata.typed.javadsl.Replicator;
import org.apache.pekko.pattern.CircuitBreakerOpenException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether this worker's journal database answers (docs/adr/0010). One per node. A probe on its own
 * connection runs every {@code mcp.journal.health.probe-interval} while the journal answers and
 * every {@code probe-interval-unreachable} while it does not; a task that fails to read its
 * history for a database reason ({@link #failed}) marks it unreachable at once, without waiting for
 * the next probe. Only a probe marks it reachable again.
 *
 * <p>Readiness reads {@link #reachable()}; api-nodes learn it through {@link JournalStatus} and
 * refuse journaled work with a fast 503 meanwhile. Each change is logged once (WARN when it stops
 * answering, INFO when it is back), with a reminder every {@code still-unreachable-log-interval}.
 */
public final class JournalHealth implements Extension {
  private static final Logger log = LoggerFactory.getLogger(JournalHealth.class);
  /** A persistence id with no events, read to try the journal plugin itself. */
  private static final String PROBE_ID = "mcp-journal-probe";

  public static final ExtensionId<JournalHealth> ID =
      new ExtensionId<>() {
        @Override
        public JournalHealth createExtension(ActorSystem<?> system) {
          return new JournalHealth(system);
        }
      };

  public static JournalHealth get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private final ActorSystem<?> system;
  private final Config config;
  private final Executor blocking;
  private final Duration interval;
  private final Duration intervalUnreachable;
  private final Duration probeTimeout;
  private final Duration reminder;
  private final Duration breakerReset;

  private volatile boolean reachable = true;
  private long unreachableSince;
  private long reachableSince = System.nanoTime() - Duration.ofDays(1).toNanos();
  private long lastReminder;
  private String cause = "";
  private boolean started;
  private int journalSuccesses;
  // used by the probe only; probes never overlap (each schedules the next)
  private Connection connection;

  private JournalHealth(ActorSystem<?> system) {
    this.system = system;
    this.config = system.settings().config();
    this.blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
    Config health = config.getConfig("mcp.journal.health");
    this.interval = health.getDuration("probe-interval");
    this.intervalUnreachable = health.getDuration("probe-interval-unreachable");
    this.probeTimeout = health.getDuration("probe-timeout");
    this.reminder = health.getDuration("still-unreachable-log-interval");
    this.breakerReset =
        config.hasPath("jdbc-journal.circuit-breaker.reset-timeout")
            ? config.getDuration("jdbc-journal.circuit-breaker.reset-timeout").plusSeconds(1)
            : Duration.ofSeconds(3);
  }

  /** Starts the probes (once; later calls do nothing). */
  public synchronized void start() {
    if (started) {
      return;
    }
    started = true;
    publish(true); // a previous run of this node may have left its address in the set
    blocking.execute(this::probe);
    system.getWhenTerminated().thenRun(this::closeConnection);
  }

  /** Whether the journal answered the last probe and no task failed on it since. */
  public boolean reachable() {
    return reachable;
  }

  /** {@link #reachable()} as a stage, for callers that used to wait for a check. */
  public CompletionStage<Boolean> check() {
    return CompletableFuture.completedFuture(reachable);
  }

  /**
   * A real read or write of the journal failed. A database cause (SQL error, the journal's open
   * circuit breaker, a timeout) marks the journal unreachable until the next probe says otherwise.
   *
   * @return true when the failure is the database's (the caller need not log it: this class did)
   */
  public boolean failed(Throwable failure) {
    String dbCause = databaseCause(failure);
    if (dbCause == null) {
      return false;
    }
    if (breakerLagging(failure)) {
      return true; // the database answers; the journal's breaker has not tried it again yet
    }
    changed(false, dbCause);
    return true;
  }

  /**
   * The journal's circuit breaker stays open up to its reset timeout after the database is back: a
   * task failing on it just after a probe said reachable is not a new outage (no flapping, no
   * second WARN line).
   */
  private synchronized boolean breakerLagging(Throwable failure) {
    boolean breaker = false;
    for (Throwable t = failure; t != null && !breaker; t = t.getCause() == t ? null : t.getCause()) {
      breaker = t instanceof CircuitBreakerOpenException;
    }
    return breaker && reachable && System.nanoTime() - reachableSince < breakerReset.toNanos();
  }

  private void probe() {
    long start = System.nanoTime();
    boolean ok;
    String why = null;
    try {
      if (connection == null) {
        connection = open();
      }
      ok = connection.isValid((int) Math.max(1, probeTimeout.toSeconds()));
      if (!ok) {
        why = "no answer within " + probeTimeout.toMillis() + " ms";
      }
    } catch (SQLException | RuntimeException e) {
      ok = false;
      why = String.valueOf(e.getMessage());
    }
    if (ok && !reachable) {
      why = throughJournal();
      ok = why == null;
      // the first success may be the half-open breaker's trial, closed just after it answered: a
      // second one, a probe later, shows the breaker closed for every caller
      journalSuccesses = ok ? journalSuccesses + 1 : 0;
      if (ok && journalSuccesses < 2) {
        scheduleNext(intervalUnreachable);
        return;
      }
    }
    if (!ok) {
      closeConnection();
    }
    WorkerMetrics.journalProbe(Duration.ofNanos(System.nanoTime() - start), ok);
    changed(ok, why);
    scheduleNext(ok ? interval : intervalUnreachable);
  }

  private void scheduleNext(Duration after) {
    if (!system.getWhenTerminated().toCompletableFuture().isDone()) {
      system.scheduler().scheduleOnce(after, () -> blocking.execute(this::probe), system.executionContext());
    }
  }

  /**
   * After an outage the database answering is not enough: the journal plugin's circuit breaker may
   * still be open and fail every task's call. One read through the plugin (the highest sequence
   * number of a probe id: one query, under the breaker) is the breaker's trial call; only when it
   * succeeds is the journal reachable for tasks. Null when it succeeded, else why not.
   */
  private String throughJournal() {
    try {
      org.apache.pekko.actor.ActorRef journal =
          Persistence.get(Adapter.toClassic(system))
              .journalFor(config.getString("pekko.persistence.journal.plugin"), ConfigFactory.empty());
      Object reply =
          Patterns.askWithReplyTo(
                  journal,
                  replyTo -> new JournalProtocol.ReplayMessages(1L, 0L, 0L, PROBE_ID, replyTo),
                  probeTimeout.plusSeconds(1))
              .toCompletableFuture()
              .get(probeTimeout.plusSeconds(2).toMillis(), TimeUnit.MILLISECONDS);
      if (reply instanceof JournalProtocol.ReplayMessagesFailure failure) {
        return "the journal still fails: " + failure.cause();
      }
      // every recovery loads its snapshot first, through the snapshot store's own breaker
      org.apache.pekko.actor.ActorRef snapshots =
          Persistence.get(Adapter.toClassic(system))
              .snapshotStoreFor(config.getString("pekko.persistence.snapshot-store.plugin"), ConfigFactory.empty());
      Object loaded =
          Patterns.ask(
                  snapshots,
                  new SnapshotProtocol.LoadSnapshot(PROBE_ID, SnapshotSelectionCriteria.latest(), Long.MAX_VALUE),
                  probeTimeout.plusSeconds(1))
              .toCompletableFuture()
              .get(probeTimeout.plusSeconds(2).toMillis(), TimeUnit.MILLISECONDS);
      return loaded instanceof SnapshotProtocol.LoadSnapshotFailed failed
          ? "the snapshot store still fails: " + failed.cause()
          : null;
    } catch (Exception e) {
      return "the journal still fails: " + e;
    }
  }

  private Connection open() throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", config.getString("mcp.journal.user"));
    props.setProperty("password", config.getString("mcp.journal.password"));
    String seconds = String.valueOf(Math.max(1, probeTimeout.toSeconds()));
    // PostgreSQL: fail a connect or a read after the probe timeout instead of the OS's minutes
    props.setProperty("connectTimeout", seconds);
    props.setProperty("loginTimeout", seconds);
    props.setProperty("socketTimeout", seconds);
    return DriverManager.getConnection(config.getString("mcp.journal.url"), props);
  }

  private synchronized void closeConnection() {
    if (connection != null) {
      try {
        connection.close();
      } catch (SQLException ignored) {
        // broken anyway
      }
      connection = null;
    }
  }

  private synchronized void changed(boolean ok, String why) {
    long now = System.nanoTime();
    if (ok && !reachable) {
      reachable = true;
      reachableSince = now;
      log.info(
          "journal database reachable again after {} s unreachable: journaled work is accepted again, waiting tasks resume",
          Duration.ofNanos(now - unreachableSince).toSeconds());
      publish(true);
    } else if (!ok && reachable) {
      reachable = false;
      unreachableSince = now;
      lastReminder = now;
      cause = why;
      log.warn(
          "journal database unreachable ({}): readiness is down; new async tasks, stored chats and calls with an"
              + " Idempotency-Key get 503 until it answers; in-memory chats go on; accepted tasks wait and resume",
          why);
      publish(false);
    } else if (!ok && now - lastReminder >= reminder.toNanos()) {
      lastReminder = now;
      log.warn(
          "journal database still unreachable after {} s ({})",
          Duration.ofNanos(now - unreachableSince).toSeconds(),
          why == null ? cause : why);
    }
  }

  private void publish(boolean ok) {
    try {
      SelfUniqueAddress self = DistributedData.get(system).selfUniqueAddress();
      String address = system.address().toString();
      DistributedData.get(system)
          .replicator()
          .tell(
              new Replicator.Update<ORSet<String>>(
                  JournalStatus.UNREACHABLE,
                  ORSet.empty(),
                  new Replicator.WriteAll(Duration.ofSeconds(2)),
                  system.ignoreRef(),
                  set -> ok ? set.remove(self, address) : set.add(self, address)));
      // subscribers (this node's api side among them) learn it now, not at the next notify tick
      DistributedData.get(system).replicator().tell(Replicator.flushChanges());
    } catch (RuntimeException e) {
      log.debug("could not publish the journal's status: {}", e.toString());
    }
  }

  /** What in {@code failure} says the database failed, or null when it is not the database. */
  static String databaseCause(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof SQLException
          || t instanceof CircuitBreakerOpenException
          || t instanceof TimeoutException
          || t instanceof java.sql.SQLTransientException) {
        return t.getClass().getSimpleName() + ": " + t.getMessage();
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return null;
  }
}
