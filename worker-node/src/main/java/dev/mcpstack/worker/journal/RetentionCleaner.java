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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Deletes the events and snapshots of tasks that finished longer than {@code
 * mcp.worker.retention.finished-after} ago (the seed's data_cleanup), every {@code interval}.
 * Finished tasks are found by their terminal event's tag. Deleting is idempotent, so several
 * workers running it at once do no harm.
 */
public final class RetentionCleaner {
  private final Config config;
  private final Duration finishedAfter;
  private final int batchSize;
  private final Clock clock;

  public RetentionCleaner(Config config, Clock clock) {
    this.config = config;
    Config c = config.getConfig("mcp.worker.retention");
    this.finishedAfter = c.getDuration("finished-after");
    this.batchSize = c.getInt("batch-size");
    this.clock = clock;
  }

  private enum Tick {
    INSTANCE
  }

  /** An actor that runs {@link #cleanOnce()} every interval, on the blocking-IO dispatcher. */
  public static Behavior<Object> periodic(Config config) {
    Duration interval = config.getDuration("mcp.worker.retention.interval");
    RetentionCleaner cleaner = new RetentionCleaner(config, Clock.systemUTC());
    return Behaviors.setup(
        ctx -> {
          Executor blocking =
              ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking());
          return Behaviors.withTimers(
              timers -> {
                timers.startTimerWithFixedDelay(Tick.INSTANCE, interval);
                return Behaviors.receiveMessage(
                    msg -> {
                      CompletableFuture.supplyAsync(cleaner::cleanOnce, blocking)
                          .whenComplete(
                              (n, e) -> {
                                if (e != null) {
                                  ctx.getLog().warn("retention cleaning failed: {}", e.toString());
                                } else if (n > 0) {
                                  ctx.getLog().info("retention deleted {} finished task(s)", n);
                                }
                              });
                      return Behaviors.same();
                    });
              });
        });
  }

  /** Deletes one batch of expired tasks; returns how many. */
  public int cleanOnce() {
    long cutoff = clock.millis() - finishedAfter.toMillis();
    try (Connection connection = Journal.connect(config)) {
      List<String> expired = new ArrayList<>();
      try (PreparedStatement find =
          connection.prepareStatement(
              "SELECT DISTINCT j.\"persistence_id\" FROM \"event_journal\" j"
                  + " JOIN \"event_tag\" t ON t.\"event_id\" = j.\"ordering\""
                  + " WHERE t.\"tag\" = ? AND j.\"write_timestamp\" < ? AND j.\"persistence_id\" LIKE ?"
                  + " LIMIT ?")) {
        find.setString(1, TaskEntity.FINISHED_TAG);
        find.setLong(2, cutoff);
        find.setString(3, TaskProtocol.TYPE_KEY.name() + "|%");
        find.setInt(4, batchSize);
        try (ResultSet rows = find.executeQuery()) {
          while (rows.next()) {
            expired.add(rows.getString(1));
          }
        }
      }
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
}
