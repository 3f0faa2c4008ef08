package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.time.Instant;
import java.time.LocalDate;
import java.util.List;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The per-key limiter and usage account: one sharded entity per API key id on the worker role,
 * the single authority for that key's requests and tokens per minute, concurrent requests and
 * active tasks (in memory: see docs/adr/0005 for what a fail-over forgets), and the durable record
 * of its usage and spending per model and day, against which its budget is checked.
 */
public interface LimiterProtocol {
  EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "KeyLimiter");

  interface Command extends CborSerializable {}

  /** What a hold counts against: a call whose client waits, or an asynchronous task. */
  enum HoldKind {
    REQUEST,
    TASK
  }

  /**
   * Admit one request costing {@code tokens} (an estimate, settled on {@link Release}) under
   * {@code limits}, and hold a concurrency slot named {@code holdId} until released or until
   * {@code holdUntil} (a lost release never leaks a slot for longer than the task could run).
   */
  record Acquire(
      String holdId,
      HoldKind kind,
      long tokens,
      KeyLimits limits,
      Instant holdUntil,
      ActorRef<Decision> replyTo)
      implements Command {}

  /**
   * Frees the hold and settles its tokens: {@code actualTokens} replaces the estimate (negative =
   * unknown, keep the estimate). Idempotent: an unknown hold is ignored.
   */
  record Release(String holdId, long actualTokens) implements Command {}

  /**
   * Records a finished task's usage and cost once: a repeated record of the same task (a re-sent
   * report after a fail-over) changes nothing. Answers when it is persisted.
   */
  record RecordUsage(
      String taskId, String model, Usage usage, long costMicros, Instant finishedAt, ActorRef<Done> replyTo)
      implements Command {}

  /** The key's usage on the UTC days {@code from} to {@code to}, both included. */
  record GetUsage(LocalDate from, LocalDate to, Budget budget, ActorRef<UsageReport> replyTo) implements Command {}

  /** One model's usage on one day. */
  record UsageLine(
      LocalDate day, String model, long requests, long promptTokens, long completionTokens, long costMicros)
      implements CborSerializable {
    public UsageLine plus(long prompt, long completion, long cost) {
      return new UsageLine(day, model, requests + 1, promptTokens + prompt, completionTokens + completion, costMicros + cost);
    }
  }

  /** {@code spentMicros}: spent in the budget's current period (0 without a budget). */
  record UsageReport(List<UsageLine> lines, long spentMicros, LocalDate periodStart) implements CborSerializable {}

  /** The key's standing after a decision, for OpenAI's {@code x-ratelimit-*} headers. */
  record Standing(
      int limitRequests,
      int remainingRequests,
      long resetRequestsMillis,
      long limitTokens,
      long remainingTokens,
      long resetTokensMillis)
      implements CborSerializable {}

  @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
  @JsonSubTypes({
    @JsonSubTypes.Type(value = LimiterProtocol.Granted.class, name = "granted"),
    @JsonSubTypes.Type(value = LimiterProtocol.Denied.class, name = "denied")
  })
  sealed interface Decision extends CborSerializable {
    Standing standing();
  }

  record Granted(Standing standing) implements Decision {}

  /**
   * {@code retryAfterMillis}: when trying again can succeed (0 when it cannot tell); {@code quota}:
   * the budget is spent (OpenAI's {@code insufficient_quota}), not a rate.
   */
  record Denied(String reason, long retryAfterMillis, boolean quota, Standing standing) implements Decision {}
}
