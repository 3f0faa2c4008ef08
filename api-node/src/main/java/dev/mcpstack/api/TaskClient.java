package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.Failures;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.stream.javadsl.Sink;

/**
 * The api-node's side of the task protocol: asks sharded task entities with the configured
 * timeout, retries an unanswered ask with the same task id (every command is idempotent), and
 * turns refusals and timeouts into {@link ApiError}s.
 */
final class TaskClient {
  private final ActorSystem<?> system;
  private final ClusterSharding sharding;
  private final ApiSettings settings;

  TaskClient(ActorSystem<?> system, ApiSettings settings) {
    this.system = system;
    this.sharding = ClusterSharding.get(system);
    this.settings = settings;
  }

  EntityRef<TaskProtocol.Command> entity(String id) {
    return sharding.entityRefFor(TaskProtocol.TYPE_KEY, id);
  }

  /**
   * Submits a task for {@code caller}. When the task does not start from this submit (refused, or
   * an idempotent repeat of a task that has already ended), the key's hold taken for it is given
   * back here: otherwise the task entity gives it back when the task ends.
   */
  CompletionStage<TaskView> submit(
      String id, TaskSpec spec, Caller caller, Instant deadline, ActorRef<TaskUpdate> subscriber) {
    return ask(id, replyTo -> new TaskProtocol.Submit(spec, caller.tenant(), caller.keyId(), deadline, TaskIds.retention(id), subscriber, replyTo))
        .whenComplete(
            (view, e) -> {
              if (!caller.limits().unlimited() && (e != null || view.status().isTerminal())) {
                sharding
                    .entityRefFor(LimiterProtocol.TYPE_KEY, caller.keyId())
                    .tell(new LimiterProtocol.Release(id, e != null ? 0 : -1));
              }
            });
  }

  CompletionStage<TaskView> get(String id, String owner) {
    return ask(id, replyTo -> new TaskProtocol.Get(owner, replyTo));
  }

  /** The task whoever owns it (operators only: the admin API). */
  CompletionStage<TaskView> inspect(String id) {
    return ask(id, TaskProtocol.Inspect::new);
  }

  CompletionStage<TaskView> cancel(String id, String owner) {
    return ask(id, replyTo -> new TaskProtocol.Cancel(owner, replyTo));
  }

  CompletionStage<TaskView> subscribe(String id, String owner, ActorRef<TaskUpdate> subscriber) {
    return ask(id, replyTo -> new TaskProtocol.Subscribe(owner, subscriber, replyTo));
  }

  /** Starts watching a task; give up (504) when it has not finished after {@code giveUpAfter}. */
  TaskWatch watch(String id, String owner, Duration giveUpAfter) {
    return new TaskWatch(system, entity(id), owner, settings, giveUpAfter);
  }

  /**
   * Submits a task and waits for its end: the terminal view (succeeded, failed or cancelled). The
   * wait gives up (504) a little after the task's {@code deadline}.
   */
  CompletionStage<TaskView> run(String id, TaskSpec spec, Caller caller, Instant deadline) {
    TaskWatch watch = watch(id, caller.tenant(), Duration.between(Instant.now(), deadline).plus(settings.waitGrace()));
    return submit(id, spec, caller, deadline, watch.subscriber())
        .whenComplete(
            (view, e) -> {
              if (e != null) {
                watch.close();
              }
            })
        .thenCompose(view -> watch.updates().runWith(Sink.last(), system))
        .thenApply(update -> ((TaskUpdate.StatusChanged) update).view());
  }

  /** Tells the entity to cancel, not waiting for the answer (the client has gone). */
  void cancelQuietly(String id, String owner) {
    entity(id).tell(new TaskProtocol.Cancel(owner, system.ignoreRef()));
  }

  private CompletionStage<TaskView> ask(
      String id, Function<ActorRef<TaskReply>, TaskProtocol.Command> command) {
    return attempt(id, command, settings.submitRetries());
  }

  private CompletionStage<TaskView> attempt(
      String id, Function<ActorRef<TaskReply>, TaskProtocol.Command> command, int retriesLeft) {
    EntityRef<TaskProtocol.Command> entity = entity(id);
    return entity
        .<TaskReply>ask(command::apply, settings.askTimeout())
        .handle(
            (reply, e) -> {
              if (e == null) {
                return CompletableFuture.completedFuture(viewOf(reply));
              }
              Throwable cause = Failures.unwrap(e);
              if (cause instanceof TimeoutException && retriesLeft > 0) {
                system.log().info("task {} did not answer within {}; asking again", id, settings.askTimeout());
                return attempt(id, command, retriesLeft - 1);
              }
              if (cause instanceof TimeoutException) {
                return CompletableFuture.<TaskView>failedFuture(
                    ApiError.of(ErrorCode.UNAVAILABLE, "the task service did not answer in time; try again"));
              }
              return CompletableFuture.<TaskView>failedFuture(cause);
            })
        .thenCompose(Function.identity());
  }

  private static TaskView viewOf(TaskReply reply) {
    if (reply instanceof TaskReply.Ok ok) {
      return ok.view();
    }
    throw ApiError.from(((TaskReply.Rejected) reply).error());
  }
}
