package dev.mcpstack.shared;

import java.time.Instant;

/**
 * A task as clients and other nodes see it. {@code result} is set once succeeded, {@code error}
 * once failed (or the last attempt's error while a retry is scheduled), {@code nextAttemptAt}
 * while a retry is scheduled.
 */
public record TaskView(
    String id,
    TaskKind kind,
    String model,
    String owner,
    TaskStatus status,
    int attempts,
    Instant createdAt,
    Instant updatedAt,
    Instant deadline,
    Instant nextAttemptAt,
    TaskResult result,
    TaskError error)
    implements CborSerializable {

  /** The same view with its result's body replaced (a body read back in, or a placeholder). */
  public TaskView withResultBody(com.fasterxml.jackson.databind.JsonNode body) {
    TaskResult r = new TaskResult(body, result.usage(), result.upstream());
    return new TaskView(
        id, kind, model, owner, status, attempts, createdAt, updatedAt, deadline, nextAttemptAt, r, error);
  }
}
