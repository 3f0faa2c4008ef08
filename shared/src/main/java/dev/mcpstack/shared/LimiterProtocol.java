package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.time.Instant;
import java.time.LocalDate;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The per-key limiter: one sharded entity per key account on the worker role, the single
 * authority for that key's requests and tokens per minute, concurrent requests, active tasks and
 * budget, whichever api-node the calls arrive on. In memory (see docs/adr/0005 for what a
 * fail-over forgets); what the key spent comes from its {@link AccountProtocol usage account}.
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
   * Admit one request for task {@code taskId} costing {@code tokens} (an estimate, settled on
   * {@link Release}) under {@code limits}, and hold a concurrency slot named {@code holdId} until
   * released or until {@code holdUntil} (a lost release never leaks a slot for longer than the task
   * could run). A request for a task that already holds a slot (an idempotent repeat) is admitted
   * without a hold of its own: {@link Granted#shared}.
   */
  record Acquire(
      String holdId,
      String taskId,
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
   * From the key's usage account: what the key spent per UTC day lately, after every recorded
   * task and when the limiter asks on start. Budgets are checked against it.
   */
  record SpendChanged(Map<LocalDate, Long> costByDay) implements Command {
    public SpendChanged {
      costByDay = Map.copyOf(costByDay);
    }
  }

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

  /** {@code shared}: the task already held a slot; this request took none (nothing to release). */
  record Granted(Standing standing, boolean shared) implements Decision {}

  /**
   * {@code retryAfterMillis}: when trying again can succeed (0 when it cannot tell); {@code quota}:
   * the budget is spent (OpenAI's {@code insufficient_quota}), not a rate.
   */
  record Denied(String reason, long retryAfterMillis, boolean quota, Standing standing) implements Decision {}
}
