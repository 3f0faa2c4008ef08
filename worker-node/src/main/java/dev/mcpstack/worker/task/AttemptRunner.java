package dev.mcpstack.worker.task;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import java.util.concurrent.CompletionStage;

/**
 * Runs one attempt of a task against the model runners. The task entity owns the life cycle
 * (retries, deadline, cancel); the runner only does the call. A failed result carries an {@link
 * AttemptFailure}.
 */
public interface AttemptRunner {

  Attempt start(String taskId, TaskSpec spec, int attempt, DeltaListener onDelta);

  /**
   * Receives the pieces of a streamed chat answer, on any thread: each runner chunk's {@code
   * choices} array as sent (content, tool calls, refusal, reasoning, logprobs, finish reasons).
   */
  @FunctionalInterface
  interface DeltaListener {
    void onDelta(JsonNode choices);
  }

  /** One running call. {@link #cancel()} aborts it (a streamed call closes its connection). */
  interface Attempt {
    CompletionStage<TaskResult> result();

    void cancel();
  }
}
