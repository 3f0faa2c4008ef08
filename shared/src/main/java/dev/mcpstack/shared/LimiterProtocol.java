package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.time.Instant;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The per-key limiter: one sharded entity per API key id on the worker role, the single authority
 * for that key's requests and tokens per minute, concurrent requests and active tasks, whichever
 * api-node the calls arrive on. Not persisted: see docs/adr/0005 for what a fail-over forgets.
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

  /** {@code retryAfterMillis}: when trying again can succeed (0 when it cannot tell). */
  record Denied(String reason, long retryAfterMillis, Standing standing) implements Decision {}
}
