package dev.mcpstack.worker.task;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TraceContext;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;

/**
 * Runs one attempt of a task against the model runners. The task entity owns the life cycle
 * (retries, deadline, cancel); the runner only does the call. A failed result carries an {@link
 * AttemptFailure}.
 */
public interface AttemptRunner {

  Attempt start(String taskId, TaskSpec spec, int attempt, Output output);

  /**
   * Runs the attempt under {@code trace} (the attempt's span: its runner calls are its children,
   * and send it on as {@code traceparent} and {@code X-Request-Id}). Runners that send no headers
   * ignore it.
   */
  default Attempt start(String taskId, TaskSpec spec, int attempt, TraceContext trace, Output output) {
    return start(taskId, spec, attempt, output);
  }

  /**
   * Where the pieces of a streamed chat answer go: each runner chunk's {@code choices} array as
   * sent (content, tool calls, refusal, reasoning, logprobs, finish reasons), one at a time. The
   * next piece is read from the runner only when the returned stage completes (backpressure); a
   * failed stage aborts the attempt.
   */
  @FunctionalInterface
  interface Output {
    CompletionStage<Done> emit(JsonNode choices);
  }

  /** One running call. {@link #cancel()} aborts it (a streamed call closes its connection). */
  interface Attempt {
    CompletionStage<TaskResult> result();

    void cancel();
  }
}
