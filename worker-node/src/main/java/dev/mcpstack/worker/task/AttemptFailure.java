package dev.mcpstack.worker.task;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import java.time.Duration;

/**
 * Why one attempt failed, as the task entity needs to know it: what to tell the client, whether a
 * new attempt may help, and how long the runner asked us to wait ({@code Retry-After}, or null).
 * {@code deferred}: no runner had room and the request was never sent (every candidate's queue was
 * full); a background task then waits and tries the same attempt again instead of spending one.
 */
public class AttemptFailure extends RuntimeException {
  private final TaskError error;
  private final boolean retryable;
  private final Duration retryAfter;
  private final boolean deferred;

  public AttemptFailure(TaskError error, boolean retryable, Duration retryAfter) {
    this(error, retryable, retryAfter, false);
  }

  public AttemptFailure(TaskError error, boolean retryable, Duration retryAfter, boolean deferred) {
    super(error.message(), null, false, false);
    this.error = error;
    this.retryable = retryable;
    this.retryAfter = retryAfter;
    this.deferred = deferred;
  }

  /** True when the request never reached a runner because none had room (not a real attempt). */
  public boolean deferred() {
    return deferred;
  }

  public TaskError error() {
    return error;
  }

  public boolean retryable() {
    return retryable;
  }

  public Duration retryAfter() {
    return retryAfter;
  }

  /** What went wrong, for operators' eyes (logs, the admin API); the client is told {@link #error()}. */
  public String detail() {
    return error.message();
  }

  /** Anything that is not an {@link AttemptFailure}: a bug or an unforeseen condition. */
  public static AttemptFailure of(Throwable t) {
    Throwable cause = dev.mcpstack.shared.Failures.unwrap(t);
    if (cause instanceof AttemptFailure failure) {
      return failure;
    }
    return new AttemptFailure(
        TaskError.of(ErrorCode.INTERNAL, "internal error: " + cause.getClass().getSimpleName()),
        true,
        null);
  }
}
