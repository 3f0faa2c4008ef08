package dev.mcpstack.worker.task;

import com.typesafe.config.Config;
import java.time.Duration;

/** The task entity's limits, from {@code mcp.worker.tasks}. */
public record TaskSettings(
    int maxAttempts,
    Backoff backoff,
    Duration defaultTimeout,
    Duration maxTimeout,
    Duration passivateFinishedAfter,
    Duration memoryPassivateFinishedAfter,
    int snapshotEvery,
    Duration journalRestartMin,
    Duration journalRestartMax,
    int updateBuffer,
    Duration orphanTimeout,
    Backoff deferral) {

  public static TaskSettings fromConfig(Config root) {
    Config c = root.getConfig("mcp.worker.tasks");
    return new TaskSettings(
        c.getInt("max-attempts"),
        new Backoff(c.getDuration("backoff.min"), c.getDuration("backoff.max")),
        c.getDuration("default-timeout"),
        c.getDuration("max-timeout"),
        c.getDuration("passivate-finished-after"),
        c.getDuration("memory.passivate-finished-after"),
        c.getInt("snapshot-every"),
        c.getDuration("journal-failure-restart.min"),
        c.getDuration("journal-failure-restart.max"),
        c.getInt("follow.buffer"),
        c.getDuration("follow.orphan-timeout"),
        new Backoff(c.getDuration("deferral.min"), c.getDuration("deferral.max")));
  }
}
