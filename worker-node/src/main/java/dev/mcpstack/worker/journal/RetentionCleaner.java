package dev.mcpstack.worker.journal;

import com.typesafe.config.Config;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.worker.task.TaskEntity;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Deletes the events and snapshots of finished tasks (the seed's data_cleanup), every {@code
 * interval}: tasks that finished longer than {@code mcp.worker.retention.finished-after} ago, and
 * transient ones (synchronous chats and embeddings, tagged {@link TaskEntity#TRANSIENT_TAG}) that
 * finished longer than {@code transient-after} ago. Finished tasks are found by their terminal
 * event's tag, a task's end by that event's write time. Deleting is idempotent, so several workers
 * running it at once do no harm.
 */
public final class RetentionCleaner {
  private static final String FINISHED_BEFORE =
      "SELECT DISTINCT j.\"persistence_id\" FROM \"event_journal\" j"
          + " JOIN \"event_tag\" t ON t.\"event_id\" = j.\"ordering\""
          + " WHERE t.\"tag\" = ? AND j.\"write_timestamp\" < ? AND j.\"persistence_id\" LIKE ?";
  private static final String AND_TRANSIENT =
      " AND EXISTS (SELECT 1 FROM \"event_journal\" s"
          + " JOIN \"event_tag\" st ON st.\"event_id\" = s.\"ordering\""
          + " WHERE s.\"persistence_id\" = j.\"persistence_id\" AND st.\"tag\" = ?)";

  private final Config config;
  private final Duration finishedAfter;
  private final Duration transientAfter;
  private final int batchSize;
  private final Clock clock;

  public RetentionCleaner(Config config, Clock clock) {
    this.config = config;
    Config c = config.getConfig("mcp.worker.retention");
    this.finishedAfter = c.getDuration("finished-after");
    this.transientAfter = c.getDuration("transient-after");
    this.batchSize = c.getInt("batch-size");
    this.clock = clock;
    if (finishedAfter.isNegative() || transientAfter.isNegative() || batchSize < 1) {
      throw new IllegalArgumentException(
          "mcp.worker.retention: finished-after and transient-after must not be negative, batch-size must be positive");
    }
  }

  private sealed interface Msg {}

  private enum Tick implements Msg {
    INSTANCE
  }

  private record Done(int deleted, Throwable failure) implements Msg {}

  /**
   * An actor that runs {@link #cleanAll()} every interval on the blocking-IO dispatcher; a tick
   * that comes while the previous run still works is skipped.
   */
  public static Behavior<?> periodic(Config config) {
    Duration interval = config.getDuration("mcp.worker.retention.interval");
    RetentionCleaner cleaner = new RetentionCleaner(config, Clock.systemUTC());
    return Behaviors.<Msg>setup(
        ctx -> {
          Executor blocking = ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking());
          return Behaviors.withTimers(
              timers -> {
                timers.startTimerWithFixedDelay(Tick.INSTANCE, interval);
                return cleaner.idle(ctx, blocking);
              });
        });
  }

  private Behavior<Msg> idle(ActorContext<Msg> ctx, Executor blocking) {
    return Behaviors.receive(Msg.class)
        .onMessage(
            Tick.class,
            tick -> {
              ctx.pipeToSelf(
                  CompletableFuture.supplyAsync(this::cleanAll, blocking),
                  (n, e) -> new Done(n == null ? 0 : n, e));
              return running(ctx, blocking);
            })
        .onMessage(Done.class, done -> Behaviors.same())
        .build();
  }

  private Behavior<Msg> running(ActorContext<Msg> ctx, Executor blocking) {
    return Behaviors.receive(Msg.class)
        .onMessage(Tick.class, tick -> Behaviors.same())
        .onMessage(
            Done.class,
            done -> {
              if (done.failure() != null) {
                ctx.getLog().warn("retention cleaning failed: {}", done.failure().toString());
              } else if (done.deleted() > 0) {
                ctx.getLog().info("retention deleted {} finished task(s)", done.deleted());
              }
              return idle(ctx, blocking);
            })
        .build();
  }

  /** Deletes batches until nothing has expired; returns how many tasks it deleted. */
  public int cleanAll() {
    int total = 0;
    int deleted;
    do {
      deleted = cleanOnce();
      total += deleted;
    } while (deleted > 0);
    return total;
  }

  /**
   * Deletes one batch of expired tasks: up to {@code batch-size} transient ones and up to {@code
   * batch-size} others; returns how many.
   */
  public int cleanOnce() {
    long now = clock.millis();
    try (Connection connection = Journal.connect(config)) {
      Set<String> expired = new LinkedHashSet<>();
      expired.addAll(finishedBefore(connection, now - transientAfter.toMillis(), true));
      expired.addAll(finishedBefore(connection, now - finishedAfter.toMillis(), false));
      try (PreparedStatement snapshots =
              connection.prepareStatement("DELETE FROM \"snapshot\" WHERE \"persistence_id\" = ?");
          PreparedStatement events =
              connection.prepareStatement(
                  "DELETE FROM \"event_journal\" WHERE \"persistence_id\" = ?")) {
        for (String id : expired) {
          snapshots.setString(1, id);
          snapshots.executeUpdate();
          events.setString(1, id);
          events.executeUpdate();
        }
      }
      return expired.size();
    } catch (SQLException e) {
      throw new IllegalStateException("retention query failed: " + e.getMessage(), e);
    }
  }

  /** Persistence ids of tasks whose terminal event was written before {@code cutoff}. */
  private Set<String> finishedBefore(Connection connection, long cutoff, boolean onlyTransient)
      throws SQLException {
    Set<String> ids = new LinkedHashSet<>();
    try (PreparedStatement find =
        connection.prepareStatement(
            FINISHED_BEFORE + (onlyTransient ? AND_TRANSIENT : "") + " LIMIT ?")) {
      int i = 1;
      find.setString(i++, TaskEntity.FINISHED_TAG);
      find.setLong(i++, cutoff);
      find.setString(i++, TaskProtocol.TYPE_KEY.name() + "|%");
      if (onlyTransient) {
        find.setString(i++, TaskEntity.TRANSIENT_TAG);
      }
      find.setInt(i, batchSize);
      try (ResultSet rows = find.executeQuery()) {
        while (rows.next()) {
          ids.add(rows.getString(1));
        }
      }
    }
    return ids;
  }
}
