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
import java.util.function.Supplier;
import com.fasterxml.jackson.databind.node.NullNode;
import dev.mcpstack.shared.LargeJson;
import org.apache.pekko.NotUsed;
import org.apache.pekko.japi.pf.PFBuilder;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.OverflowStrategy;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
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
  private final Materializer mat;
  private final ClusterSharding sharding;
  private final ApiSettings settings;
  private final Admission admission;

  TaskClient(ActorSystem<?> system, ApiSettings settings, Admission admission) {
    this.system = system;
    this.mat = Materializer.matFromSystem(system);
    this.admission = admission;
    this.sharding = ClusterSharding.get(system);
    this.settings = settings;
  }

  EntityRef<TaskProtocol.Command> entity(String id) {
    return sharding.entityRefFor(TaskIds.inMemory(id) ? TaskProtocol.MEMORY_TYPE_KEY : TaskProtocol.TYPE_KEY, id);
  }

  /**
   * Submits a task for {@code caller} under the limiter's {@code holdId} (null without one); with
   * {@code follow} the answer carries its updates. The task entity frees the hold when the task it
   * created ends; when this submit created no task (refused, or a repeat of an existing task with
   * its own hold), the hold is freed here. A request too big for one cluster message travels out
   * of band ({@link LargeJson}), read anew for every retry of the ask.
   */
  CompletionStage<TaskReply.Ok> submitReply(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline, boolean follow, boolean background) {
    return submitReply(id, spec, caller, holdId, deadline, follow, background, ClientConnection.Pending.NONE, null);
  }

  /**
   * {@link #submitReply} for a {@code call} whose client may leave: not sent once it has left;
   * {@code cancel} (null for a call whose client cannot leave) is handed to it once the Submit was
   * answered ({@link #told}).
   */
  private CompletionStage<TaskReply.Ok> submitReply(
      String id,
      TaskSpec spec,
      Caller caller,
      String holdId,
      Instant deadline,
      boolean follow,
      boolean background,
      ClientConnection.Pending call,
      Runnable cancel) {
    if (call.gone()) {
      return refused(caller, holdId, clientLeft());
    }
    if (!TaskIds.inMemory(id) && !JournalGate.get(system).accepting()) {
      return refused(caller, holdId, JournalGate.get(system).refusal());
    }
    CompletionStage<TaskReply> replied =
        attempt(id, submitCommand(id, spec, caller, holdId, deadline, follow, background), settings.submitRetries());
    return told(call, cancel, replied)
        .whenComplete(
            (reply, e) -> {
              if (holdId == null) {
                return;
              }
              if (e != null) {
                // refused: nothing ran; no answer: it may run, so its estimate stays counted
                admission.release(caller, holdId, mayHaveStarted(e) ? -1 : 0);
              } else if (reply instanceof TaskReply.Ok ok && !ok.created()) {
                admission.release(caller, holdId, 0);
              } else if (reply instanceof TaskReply.Rejected) {
                admission.release(caller, holdId, 0);
              }
            })
        .thenApply(TaskClient::okOf);
  }

  /** Whether a Submit that failed may have started its task all the same: it was not answered, not refused. */
  private static boolean mayHaveStarted(Throwable failure) {
    return !(Failures.unwrap(failure) instanceof ApiError api) || api.code() == ErrorCode.UNAVAILABLE;
  }

  /**
   * Tells {@code call} of a Submit's answer: once the task exists (or may: no answer came), a client
   * that left cancels it with {@code cancel}. A refusal made no task: nothing to cancel.
   */
  private static CompletionStage<TaskReply> told(
      ClientConnection.Pending call, Runnable cancel, CompletionStage<TaskReply> replied) {
    if (cancel == null) {
      return replied;
    }
    return replied.whenComplete(
        (reply, e) -> {
          if (e == null ? reply instanceof TaskReply.Ok : mayHaveStarted(e)) {
            call.submitted(cancel);
          }
        });
  }

  /** A Submit not sent: the limiter's hold freed (nothing ran), the call failed with {@code why}. */
  private <T> CompletionStage<T> refused(Caller caller, String holdId, ApiError why) {
    if (holdId != null) {
      admission.release(caller, holdId, 0);
    }
    return CompletableFuture.failedFuture(why);
  }

  /** The Submit, made anew for every ask (a large request is offered out of band each time). */
  private Function<ActorRef<TaskReply>, TaskProtocol.Command> submitCommand(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline, boolean follow, boolean background) {
    return replyTo -> {
      SourceRef<ByteString> requestChunks = LargeJson.chunksIfLarge(spec.request(), mat);
      TaskSpec sent = requestChunks == null ? spec : new TaskSpec(spec.kind(), spec.model(), NullNode.getInstance());
      return new TaskProtocol.Submit(
          sent, caller.tenant(), caller.account(), holdId, deadline, TaskIds.retention(id), follow, requestChunks, null, replyTo,
          background, caller.trace());
    };
  }

  /**
   * Submits a task without following it. {@code background}: an async task of {@code POST
   * /v1/tasks}, which waits for a free runner without spending its attempts (TaskProtocol.Submit).
   */
  CompletionStage<TaskView> submit(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline, boolean background) {
    return submitReply(id, spec, caller, holdId, deadline, false, background).thenCompose(this::viewOf);
  }

  CompletionStage<TaskView> get(String id, String owner) {
    return ask(id, replyTo -> new TaskProtocol.Get(owner, replyTo));
  }

  /** A task and the cluster node hosting it. */
  record Located(TaskView view, String node) {}

  /** The task whoever owns it, and where it lives (operators only: the admin API). */
  CompletionStage<Located> inspect(String id) {
    return attempt(id, TaskProtocol.Inspect::new, settings.submitRetries())
        .thenApply(TaskClient::okOf)
        .thenCompose(ok -> viewOf(ok).thenApply(view -> new Located(view, ok.node())));
  }

  CompletionStage<TaskView> cancel(String id, String owner) {
    return ask(id, replyTo -> new TaskProtocol.Cancel(owner, replyTo));
  }

  /**
   * Submits a task and follows it ({@link #follow}): the updates start with its view as it stands.
   * The follower gives up (504) a little after {@code deadline}.
   */
  Source<TaskUpdate, NotUsed> submitAndFollow(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline) {
    return submitAndFollow(id, spec, caller, holdId, deadline, ClientConnection.Pending.NONE);
  }

  /**
   * {@link #submitAndFollow} for a {@code call} whose client may leave: nothing is submitted once it
   * has left (the call fails as {@code task_cancelled}); when it leaves later, the task is cancelled
   * as soon as a Submit has been answered (never before: a cancel that reached the entity before
   * its task existed would be lost), and the task is neither submitted nor followed again.
   */
  Source<TaskUpdate, NotUsed> submitAndFollow(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline, ClientConnection.Pending call) {
    Runnable cancel = call == ClientConnection.Pending.NONE ? null : () -> cancelForClientThatLeft(id, caller.tenant());
    // a task in memory is gone with its worker: following it again means submitting it again (the
    // same Submit follows the task when it still runs, and starts it anew when it was lost)
    Supplier<CompletionStage<TaskReply.Ok>> again =
        TaskIds.inMemory(id)
            ? () ->
                call.gone()
                    ? CompletableFuture.failedFuture(clientLeft())
                    : told(
                            call,
                            cancel,
                            attempt(
                                id, submitCommand(id, spec, caller, holdId, deadline, true, false), settings.submitRetries()))
                        .thenApply(TaskClient::okOf)
            : () -> call.gone() ? CompletableFuture.failedFuture(clientLeft()) : followReply(id, caller.tenant());
    return follow(
        id,
        () -> submitReply(id, spec, caller, holdId, deadline, true, false, call, cancel),
        again,
        Duration.between(Instant.now(), deadline).plus(settings.waitGrace()));
  }

  private static ApiError clientLeft() {
    return ApiError.of(ErrorCode.CANCELLED, "The client closed its connection before the answer.");
  }

  /**
   * Cancels the task of a client that left, asked again while its entity does not answer (a shard
   * moving); the answer is nobody's.
   */
  private void cancelForClientThatLeft(String id, String owner) {
    attempt(id, replyTo -> new TaskProtocol.Cancel(owner, replyTo), settings.submitRetries())
        .whenComplete(
            (reply, e) -> {
              if (e != null) {
                system.log().info("task {}: its client left, and the cancel failed: {}", id, Failures.unwrap(e).toString());
              }
            });
  }

  /** Follows an existing task ({@link #follow}), for up to {@code giveUpAfter}. */
  Source<TaskUpdate, NotUsed> follow(String id, String owner, Duration giveUpAfter) {
    Supplier<CompletionStage<TaskReply.Ok>> follow = () -> followReply(id, owner);
    return follow(id, follow, follow, giveUpAfter);
  }

  /**
   * Submits a task and waits for its end: the terminal view (succeeded, failed or cancelled). The
   * wait gives up (504) a little after the task's {@code deadline}. A client that leaves cancels it
   * ({@link #submitAndFollow(String, TaskSpec, Caller, String, Instant, ClientConnection.Pending)}).
   */
  CompletionStage<TaskView> run(
      String id, TaskSpec spec, Caller caller, String holdId, Instant deadline, ClientConnection.Pending call) {
    return submitAndFollow(id, spec, caller, holdId, deadline, call)
        .runWith(Sink.last(), system)
        .thenApply(update -> ((TaskUpdate.StatusChanged) update).view());
  }

  /**
   * The one way to follow a task: its updates, from the current view to the terminal status change
   * (included), read with backpressure from the entity wherever it lives. Lazy: nothing is asked
   * before the source runs; {@code open} (a Submit with follow, or a Follow) gives the first
   * subscription, {@code again} the next ones. When a subscription breaks (its worker stopped, the
   * shard moved) the follower follows again after a short pause, and goes on transparently if no
   * delta has reached it yet. Once deltas have, it ends with an error: deltas sent while it was away are lost, and so is a
   * delta of a new attempt (the client would see two different answers glued together). Fails with
   * a 504 when no terminal update arrives within {@code giveUpAfter}.
   */
  private Source<TaskUpdate, NotUsed> follow(
      String id,
      Supplier<CompletionStage<TaskReply.Ok>> open,
      Supplier<CompletionStage<TaskReply.Ok>> again,
      Duration giveUpAfter) {
    Progress progress = new Progress();
    return subscription(id, open, again, progress, 0)
        .completionTimeout(giveUpAfter)
        .mapError(
            new PFBuilder<Throwable, Throwable>()
                .match(
                    TimeoutException.class,
                    e -> ApiError.of(ErrorCode.TIMEOUT, "the task did not finish within " + giveUpAfter.toSeconds() + " s"))
                .build());
  }

  /** One subscription, then (unless it saw the end) the next one. */
  private Source<TaskUpdate, NotUsed> subscription(
      String id,
      Supplier<CompletionStage<TaskReply.Ok>> open,
      Supplier<CompletionStage<TaskReply.Ok>> again,
      Progress progress,
      int resumes) {
    Source<TaskUpdate, NotUsed> updates =
        Source.lazyCompletionStageSource(() -> open.get().thenApply(ok -> ok.updates().getSource()))
            .mapMaterializedValue(m -> NotUsed.getInstance())
            .mapConcat(TaskUpdate.Batch::unpack)
            .mapAsync(1, this::withResult)
            .map(progress::check)
            .recoverWithRetries(
                1,
                new PFBuilder<Throwable, Source<TaskUpdate, NotUsed>>()
                    .matchAny(
                        e -> {
                          if (!resumable(Failures.unwrap(e), resumes, progress)) {
                            return Source.failed(e);
                          }
                          system.log().info("following task {} again after: {}", id, e.toString());
                          return Source.empty();
                        })
                    .build());
    Source<TaskUpdate, NotUsed> next =
        Source.lazySource(
                () -> {
                  if (progress.terminal) {
                    return Source.<TaskUpdate>empty();
                  }
                  if (progress.outputAttempt > 0) {
                    return Source.<TaskUpdate>failed(progress.interrupted("its worker stopped"));
                  }
                  if (resumes >= MAX_RESUMES) {
                    return Source.<TaskUpdate>failed(
                        ApiError.of(ErrorCode.UNAVAILABLE, "the task service kept dropping this task's updates; try again"));
                  }
                  Duration pause = RESUME_PAUSE.multipliedBy(Math.min(resumes + 1, 10));
                  return Source.single(NotUsed.getInstance())
                      .delay(pause, OverflowStrategy.backpressure())
                      .flatMapConcat(
                          x -> subscription(id, again, again, progress, resumes + 1));
                })
            .mapMaterializedValue(m -> NotUsed.getInstance());
    return updates.concatLazy(next);
  }

  private static final int MAX_RESUMES = 60;
  private static final Duration RESUME_PAUSE = Duration.ofMillis(200);

  /**
   * Whether a broken subscription is followed again: not after the follower's own verdict, nor
   * when the task refused (not found, conflict, limits); yes when the stream broke or the task
   * service did not answer in time (the shard is moving).
   */
  private static boolean resumable(Throwable cause, int resumes, Progress progress) {
    if (progress.verdict) {
      return false;
    }
    if (cause instanceof ApiError api) {
      return resumes > 0 && api.code() == ErrorCode.UNAVAILABLE;
    }
    return true;
  }

  /** What a follower has seen: the attempt whose deltas it relayed, and whether the task ended. */
  private static final class Progress {
    int outputAttempt;
    boolean terminal;
    boolean verdict;

    TaskUpdate check(TaskUpdate update) {
      if (update instanceof TaskUpdate.ContentDelta delta) {
        if (outputAttempt == 0) {
          outputAttempt = delta.attempt();
        } else if (delta.attempt() != outputAttempt) {
          throw interrupted("a new attempt started");
        }
      } else if (update instanceof TaskUpdate.StatusChanged changed) {
        if (changed.view().status().isTerminal()) {
          terminal = true;
        } else if (outputAttempt > 0 && changed.view().attempts() > outputAttempt) {
          throw interrupted("a new attempt started");
        }
      }
      return update;
    }

    ApiError interrupted(String why) {
      verdict = true;
      return ApiError.of(
          ErrorCode.UNAVAILABLE,
          "The stream was interrupted after partial output (" + why + "); send the request again.");
    }
  }

  private CompletionStage<TaskReply.Ok> followReply(String id, String owner) {
    return attempt(id, replyTo -> new TaskProtocol.Follow(owner, replyTo), settings.submitRetries())
        .thenApply(TaskClient::okOf);
  }

  /** An update with its out-of-band result body read back in. */
  private CompletionStage<TaskUpdate> withResult(TaskUpdate update) {
    if (update instanceof TaskUpdate.StatusChanged changed && changed.resultChunks() != null) {
      return LargeJson.read(changed.resultChunks(), mat)
          .thenApply(body -> new TaskUpdate.StatusChanged(changed.view().withResultBody(body)));
    }
    return CompletableFuture.completedFuture(update);
  }

  /** Tells the entity to cancel, not waiting for the answer (the client has gone). */
  void cancelQuietly(String id, String owner) {
    entity(id).tell(new TaskProtocol.Cancel(owner, system.ignoreRef()));
  }

  private CompletionStage<TaskView> ask(
      String id, Function<ActorRef<TaskReply>, TaskProtocol.Command> command) {
    return attempt(id, command, settings.submitRetries()).thenApply(TaskClient::okOf).thenCompose(this::viewOf);
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
              if (cause instanceof TimeoutException && !TaskIds.inMemory(id) && !JournalGate.get(system).accepting()) {
                // the journal went down while this ask waited (it is why no answer came): no retry
                return CompletableFuture.<TaskReply>failedFuture(JournalGate.get(system).refusal());
              }
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

  private static TaskReply.Ok okOf(TaskReply reply) {
    if (reply instanceof TaskReply.Ok ok) {
      return ok;
    }
    throw ApiError.from(((TaskReply.Rejected) reply).error());
  }

  /** The answer's view, its result body read back in when it came out of band. */
  private CompletionStage<TaskView> viewOf(TaskReply.Ok ok) {
    if (ok.resultChunks() == null) {
      return CompletableFuture.completedFuture(ok.view());
    }
    return LargeJson.read(ok.resultChunks(), mat).thenApply(body -> ok.view().withResultBody(body));
  }
}
