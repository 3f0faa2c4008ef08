package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.Failures;
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
  private final Admission admission;

  TaskClient(ActorSystem<?> system, ApiSettings settings, Admission admission) {
    this.system = system;
    this.admission = admission;
    this.sharding = ClusterSharding.get(system);
    this.settings = settings;
  }

  EntityRef<TaskProtocol.Command> entity(String id) {
    return sharding.entityRefFor(TaskProtocol.TYPE_KEY, id);
  }

  /**
   * Submits a task for {@code caller} under the limiter's {@code holdId} (null without one). The
   * task entity frees the hold when the task it created ends; when this submit created no task
   * (refused, or a repeat of an existing task with its own hold), the hold is freed here.
   */
  CompletionStage<TaskView> submit(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline, ActorRef<TaskUpdate> subscriber) {
    return attempt(
            id,
            replyTo ->
                new TaskProtocol.Submit(
                    spec, caller.tenant(), caller.account(), holdId, deadline, TaskIds.retention(id), subscriber, replyTo),
            settings.submitRetries())
        .whenComplete(
            (reply, e) -> {
              if (holdId == null) {
                return;
              }
              if (e != null) {
                // refused: nothing ran; no answer: it may run, so its estimate stays counted
                boolean refused = Failures.unwrap(e) instanceof ApiError api && api.code() != ErrorCode.UNAVAILABLE;
                admission.release(caller, holdId, refused ? 0 : -1);
              } else if (reply instanceof TaskReply.Ok ok && !ok.created()) {
                admission.release(caller, holdId, 0);
              } else if (reply instanceof TaskReply.Rejected) {
                admission.release(caller, holdId, 0);
              }
            })
        .thenApply(TaskClient::viewOf);
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
  CompletionStage<TaskView> run(String id, TaskSpec spec, Caller caller, String holdId, Instant deadline) {
    TaskWatch watch = watch(id, caller.tenant(), Duration.between(Instant.now(), deadline).plus(settings.waitGrace()));
    return submit(id, spec, caller, holdId, deadline, watch.subscriber())
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
    return attempt(id, command, settings.submitRetries()).thenApply(TaskClient::viewOf);
  }

  /** The entity's answer, asked again after a timeout; a 503 when it never answers. */
  private CompletionStage<TaskReply> attempt(
      String id, Function<ActorRef<TaskReply>, TaskProtocol.Command> command, int retriesLeft) {
    EntityRef<TaskProtocol.Command> entity = entity(id);
    return entity
        .<TaskReply>ask(command::apply, settings.askTimeout())
        .handle(
            (reply, e) -> {
              if (e == null) {
                return CompletableFuture.completedFuture(reply);
              }
              Throwable cause = Failures.unwrap(e);
              if (cause instanceof TimeoutException && retriesLeft > 0) {
                system.log().info("task {} did not answer within {}; asking again", id, settings.askTimeout());
                return attempt(id, command, retriesLeft - 1);
              }
              if (cause instanceof TimeoutException) {
                return CompletableFuture.<TaskReply>failedFuture(
                    ApiError.of(ErrorCode.UNAVAILABLE, "the task service did not answer in time; try again"));
              }
              return CompletableFuture.<TaskReply>failedFuture(cause);
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
