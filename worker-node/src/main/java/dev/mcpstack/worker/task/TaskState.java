package dev.mcpstack.worker.task;

import com.fasterxml.jackson.annotation.JsonIgnore;
import dev.mcpstack.shared.CborSerializable;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.TaskView;
import dev.mcpstack.worker.task.TaskEntity.AttemptFailed;
import dev.mcpstack.worker.task.TaskEntity.AttemptStarted;
import dev.mcpstack.worker.task.TaskEntity.OutputStarted;
import dev.mcpstack.worker.task.TaskEntity.TaskCancelled;
import dev.mcpstack.worker.task.TaskEntity.TaskFailed;
import dev.mcpstack.worker.task.TaskEntity.TaskSubmitted;
import dev.mcpstack.worker.task.TaskEntity.TaskSucceeded;
import java.time.Instant;

/**
 * A task's durable state, rebuilt from its events. Blank ({@code spec == null}) until submitted.
 * Immutable: every event yields a new state. {@code outputAttempt}: the last attempt whose output
 * reached a client (a streamed chat's first delta), 0 if none. {@code background}: an async task
 * of POST /v1/tasks, which waits for a runner with room without spending attempts (false in
 * snapshots written before it existed). {@code trace}: the submission's trace context, which every
 * attempt's runner calls continue (null for tasks submitted before it existed, and by senders of an
 * older version).
 */
public record TaskState(
    String id,
    TaskSpec spec,
    String owner,
    String keyId,
    String holdId,
    TaskStatus status,
    int attempts,
    Instant createdAt,
    Instant updatedAt,
    Instant deadline,
    Instant nextAttemptAt,
    TaskResult result,
    TaskError error,
    int outputAttempt,
    boolean background,
    TraceContext trace)
    implements CborSerializable {

  /** A state that is not {@code background}. */
  public TaskState(
      String id,
      TaskSpec spec,
      String owner,
      String keyId,
      String holdId,
      TaskStatus status,
      int attempts,
      Instant createdAt,
      Instant updatedAt,
      Instant deadline,
      Instant nextAttemptAt,
      TaskResult result,
      TaskError error,
      int outputAttempt) {
    this(id, spec, owner, keyId, holdId, status, attempts, createdAt, updatedAt, deadline, nextAttemptAt, result,
        error, outputAttempt, false, null);
  }

  public static TaskState blank(String id) {
    return new TaskState(id, null, null, null, null, null, 0, null, null, null, null, null, null, 0, false, null);
  }

  @JsonIgnore
  public boolean isBlank() {
    return spec == null;
  }

  @JsonIgnore
  public boolean isActive() {
    return spec != null && !status.isTerminal();
  }

  @JsonIgnore
  public boolean isFinished() {
    return spec != null && status.isTerminal();
  }

  public boolean ownedBy(String who) {
    return owner != null && owner.equals(who);
  }

  public TaskView toView() {
    return new TaskView(
        id,
        spec == null ? null : spec.kind(),
        spec == null ? null : spec.model(),
        owner,
        status,
        attempts,
        createdAt,
        updatedAt,
        deadline,
        nextAttemptAt,
        result,
        error);
  }

  TaskState submitted(TaskSubmitted e) {
    return new TaskState(
        id, e.spec(), e.owner(), e.keyId(), e.holdId(), TaskStatus.QUEUED, 0, e.at(), e.at(), e.deadline(), null, null,
        null, 0, e.background(), e.trace());
  }

  TaskState attemptStarted(AttemptStarted e) {
    return new TaskState(
        id, spec, owner, keyId, holdId, TaskStatus.RUNNING, e.attempt(), createdAt, e.at(), deadline, null, null,
        error, outputAttempt, background, trace);
  }

  TaskState attemptFailed(AttemptFailed e) {
    TaskStatus next = e.nextAttemptAt() == null ? status : TaskStatus.RETRY_SCHEDULED;
    return new TaskState(
        id, spec, owner, keyId, holdId, next, attempts, createdAt, e.at(), deadline, e.nextAttemptAt(), null,
        e.error(), outputAttempt, background, trace);
  }

  TaskState succeeded(TaskSucceeded e) {
    return new TaskState(
        id, spec, owner, keyId, holdId, TaskStatus.SUCCEEDED, attempts, createdAt, e.at(), deadline, null,
        e.result(), null, outputAttempt, background, trace);
  }

  TaskState failed(TaskFailed e) {
    return new TaskState(
        id, spec, owner, keyId, holdId, TaskStatus.FAILED, attempts, createdAt, e.at(), deadline, null, null,
        e.error(), outputAttempt, background, trace);
  }

  TaskState cancelled(TaskCancelled e) {
    return new TaskState(
        id, spec, owner, keyId, holdId, TaskStatus.CANCELLED, attempts, createdAt, e.at(), deadline, null, null,
        error, outputAttempt, background, trace);
  }

  TaskState outputStarted(OutputStarted e) {
    return new TaskState(
        id, spec, owner, keyId, holdId, status, attempts, createdAt, updatedAt, deadline, nextAttemptAt, result,
        error, e.attempt(), background, trace);
  }

  /** Whether the attempt running now has sent output to a client (then it must not be re-run). */
  @JsonIgnore
  public boolean outputSent() {
    return outputAttempt > 0 && outputAttempt == attempts;
  }
}
