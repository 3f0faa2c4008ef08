package dev.mcpstack.worker.task;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import java.time.Duration;

/**
 * Why one attempt failed, as the task entity needs to know it: what to tell the client, whether a
 * new attempt may help, and how long the runner asked us to wait ({@code Retry-After}, or null).
 */
public class AttemptFailure extends RuntimeException {
  private final TaskError error;
  private final boolean retryable;
  private final Duration retryAfter;

  public AttemptFailure(TaskError error, boolean retryable, Duration retryAfter) {
    super(error.message(), null, false, false);
    this.error = error;
    this.retryable = retryable;
    this.retryAfter = retryAfter;
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
