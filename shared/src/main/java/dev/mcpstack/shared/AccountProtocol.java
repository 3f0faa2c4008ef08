package dev.mcpstack.shared;

import java.time.Instant;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * A key's usage account: one event-sourced, sharded entity per key account (worker role), the
 * durable record of the key's usage and spending per model and UTC day. It tells the key's limiter
 * what it spent, so the limiter can check the budget without waiting for the journal.
 */
public interface AccountProtocol {
  EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "KeyAccount");

  interface Command extends CborSerializable {}

  /**
   * Records a finished task's usage and cost once: a repeated record of the same task (a re-sent
   * report after a fail-over) changes nothing. Answers when it is persisted.
   */
  record RecordUsage(
      String taskId, String model, Usage usage, long costMicros, Instant finishedAt, ActorRef<Done> replyTo)
      implements Command {}

  /** The usage on the UTC days {@code from} to {@code to}, both included. */
  record GetUsage(LocalDate from, LocalDate to, Budget budget, ActorRef<UsageReport> replyTo) implements Command {}

  /** Answers the spending per day of the last months as a {@link LimiterProtocol.SpendChanged}. */
  record ReportSpend(ActorRef<LimiterProtocol.Command> replyTo) implements Command {}

  /** One model's usage on one day. */
  record UsageLine(
      LocalDate day, String model, long requests, long promptTokens, long completionTokens, long costMicros)
      implements CborSerializable {
    /** This line and {@code other} together (the day and model stay this line's). */
    public UsageLine add(UsageLine other) {
      return new UsageLine(
          day,
          model,
          requests + other.requests,
          promptTokens + other.promptTokens,
          completionTokens + other.completionTokens,
          costMicros + other.costMicros);
    }
  }

  /** {@code spentMicros}: spent in the budget's current period (0 without a budget). */
  record UsageReport(List<UsageLine> lines, long spentMicros, LocalDate periodStart) implements CborSerializable {
    public UsageReport {
      lines = List.copyOf(lines);
    }
  }

  /** Cost per UTC day, in millionths (what budgets are checked against). */
  static long spentSince(Map<LocalDate, Long> costByDay, LocalDate start) {
    return costByDay.entrySet().stream().filter(e -> !e.getKey().isBefore(start)).mapToLong(Map.Entry::getValue).sum();
  }
}
