package dev.mcpstack.worker.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.worker.task.AttemptRunner;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An {@link AttemptRunner} whose attempts the test finishes by hand, to drive the task entity
 * through every transition deterministically. (Calls against real HTTP are covered by the client
 * tests against the simulator.)
 */
public final class ScriptedRunner implements AttemptRunner {
  private final LinkedBlockingQueue<Call> calls = new LinkedBlockingQueue<>();

  public record Call(
      String taskId,
      TaskSpec spec,
      int attempt,
      Output output,
      CompletableFuture<TaskResult> result,
      AtomicBoolean cancelled,
      dev.mcpstack.shared.TraceContext trace) {}

  /** A runner chunk's {@code choices}: one choice 0 whose delta has {@code content}. */
  public static JsonNode textChoices(String content, String finishReason) {
    ArrayNode choices = JsonNodeFactory.instance.arrayNode();
    ObjectNode choice = choices.addObject().put("index", 0);
    choice.putObject("delta").put("content", content);
    choice.putNull("logprobs");
    if (finishReason == null) {
      choice.putNull("finish_reason");
    } else {
      choice.put("finish_reason", finishReason);
    }
    return choices;
  }

  @Override
  public Attempt start(String taskId, TaskSpec spec, int attempt, Output output) {
    return start(taskId, spec, attempt, null, output);
  }

  @Override
  public Attempt start(
      String taskId, TaskSpec spec, int attempt, dev.mcpstack.shared.TraceContext trace, Output output) {
    Call call =
        new Call(taskId, spec, attempt, output, new CompletableFuture<>(), new AtomicBoolean(), trace);
    calls.add(call);
    return new Attempt() {
      @Override
      public CompletionStage<TaskResult> result() {
        return call.result();
      }

      @Override
      public void cancel() {
        call.cancelled().set(true);
      }
    };
  }

  /** Emits one streamed delta as the runner's stream would, waiting until it is accepted. */
  public static void emit(Call call, JsonNode choices) {
    call.output().emit(choices).toCompletableFuture().orTimeout(10, TimeUnit.SECONDS).join();
  }

  /** The next attempt started, waiting up to 10 s for it. */
  public Call next() {
    try {
      Call call = calls.poll(10, TimeUnit.SECONDS);
      if (call == null) {
        throw new AssertionError("no attempt was started");
      }
      return call;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** True if no attempt has been started (and not yet taken by {@link #next()}). */
  public boolean idle() {
    return calls.isEmpty();
  }
}
