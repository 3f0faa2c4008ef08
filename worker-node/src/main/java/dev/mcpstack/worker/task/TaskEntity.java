package dev.mcpstack.worker.task;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.shared.CborSerializable;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskProtocol.Cancel;
import dev.mcpstack.shared.TaskProtocol.Command;
import dev.mcpstack.shared.TaskProtocol.Get;
import dev.mcpstack.shared.TaskProtocol.Inspect;
import dev.mcpstack.shared.TaskProtocol.Submit;
import dev.mcpstack.shared.TaskProtocol.Subscribe;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskRetention;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.DoubleSupplier;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.PreRestart;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReplyBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;

/**
 * One task, sharded by id and event-sourced: submitted → attempt started → (attempt failed →
 * retry scheduled)* → succeeded | failed | cancelled. The entity owns retries (exponential backoff
 * with full jitter, {@code Retry-After}, max attempts, deadline), cancellation and resumption after
 * a restart; the {@link AttemptRunner} only makes calls.
 */
public final class TaskEntity
    extends EventSourcedBehaviorWithEnforcedReplies<Command, TaskEntity.Event, TaskState> {

  /** Tag on terminal events; the retention cleaner finds finished tasks by it. */
  public static final String FINISHED_TAG = "task-finished";

  /**
   * Tag on the {@link TaskSubmitted} event of a {@link TaskRetention#TRANSIENT} task: the retention
   * cleaner deletes such a task once its terminal event is older than {@code transient-after}. (The
   * tag sits on the one event that carries the retention: tags are chosen per event, without the
   * state.)
   */
  public static final String TRANSIENT_TAG = "task-transient";

  // ---- private commands: outcomes of this entity's own work ----

  record AttemptSucceeded(int attempt, TaskResult result) implements Command {}

  record AttemptErrored(int attempt, TaskError error, boolean retryable, Duration retryAfter)
      implements Command {}

  record StartAttempt(int attempt) implements Command {}

  record DeltaReceived(int attempt, JsonNode choices) implements Command {}

  enum DeadlineReached implements Command {
    INSTANCE
  }

  enum ResumeAfterRecovery implements Command {
    INSTANCE
  }

  /** Stops an entity that has no work left (finished, or blank). */
  enum PassivateFinished implements Command {
    INSTANCE
  }

  // ---- events ----

  public sealed interface Event extends CborSerializable
      permits TaskSubmitted, AttemptStarted, AttemptFailed, TaskSucceeded, TaskFailed,
          TaskCancelled {}

  /**
   * {@code keyId}: the usage account of the API key it was submitted with, null for anonymous
   * callers; {@code holdId}: the key limiter's hold to free when the task ends, null if none. {@code
   * retention}: null in events written before it existed, read as {@link TaskRetention#STANDARD}.
   */
  public record TaskSubmitted(
      TaskSpec spec,
      String owner,
      String keyId,
      String holdId,
      Instant deadline,
      Instant at,
      TaskRetention retention)
      implements Event {
    public TaskSubmitted {
      retention = retention == null ? TaskRetention.STANDARD : retention;
    }
  }

  public record AttemptStarted(int attempt, Instant at) implements Event {}

  /** {@code nextAttemptAt} is set when a retry was scheduled, null when the task gives up. */
  public record AttemptFailed(
      int attempt, TaskError error, boolean retryable, Instant nextAttemptAt, Instant at)
      implements Event {}

  public record TaskSucceeded(TaskResult result, Instant at) implements Event {}

  public record TaskFailed(TaskError error, Instant at) implements Event {}

  public record TaskCancelled(Instant at) implements Event {}

  // ---- wiring ----

  private static final String RETRY_TIMER = "retry";
  private static final String DEADLINE_TIMER = "deadline";
  private static final String PASSIVATE_TIMER = "passivate";

  /** Starts sharding of tasks on this node; entities live only on nodes with the worker role. */
  public static void init(
      ActorSystem<?> system, TaskSettings settings, AttemptRunner runner, FinishListener onFinished) {
    ClusterSharding.get(system)
        .init(
            Entity.of(
                    TaskProtocol.TYPE_KEY,
                    ctx ->
                        create(
                            ctx.getEntityId(),
                            settings,
                            runner,
                            Clock.systemUTC(),
                            () -> ThreadLocalRandom.current().nextDouble(),
                            ctx.getShard(),
                            onFinished))
                .withRole(TaskProtocol.WORKER_ROLE));
  }

  /**
   * @param shard the sharding shard hosting the entity, to passivate finished tasks through; null
   *     when not sharded (the entity then stops itself)
   */
  public static Behavior<Command> create(
      String taskId,
      TaskSettings settings,
      AttemptRunner runner,
      Clock clock,
      DoubleSupplier jitter,
      ActorRef<ClusterSharding.ShardCommand> shard) {
    return create(taskId, settings, runner, clock, jitter, shard, (state, recovered) -> {});
  }

  /** Told when a task has ended: its key's hold is freed and its usage recorded. */
  @FunctionalInterface
  public interface FinishListener {
    /**
     * @param recovered false when the terminal event was just persisted; true when a finished
     *     task was recovered (after a fail-over the report may not have arrived)
     */
    void finished(TaskState state, boolean recovered);
  }

  /** @param onFinished told when the task ends, and when a finished task is recovered */
  public static Behavior<Command> create(
      String taskId,
      TaskSettings settings,
      AttemptRunner runner,
      Clock clock,
      DoubleSupplier jitter,
      ActorRef<ClusterSharding.ShardCommand> shard,
      FinishListener onFinished) {
    return Behaviors.setup(
        ctx ->
            Behaviors.withTimers(
                timers ->
                    new TaskEntity(
                        taskId, settings, runner, clock, jitter, shard, onFinished, ctx, timers)));
  }

  private final String taskId;
  private final TaskSettings settings;
  private final AttemptRunner runner;
  private final Clock clock;
  private final DoubleSupplier jitter;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final FinishListener onFinished;
  private final ActorContext<Command> ctx;
  private final TimerScheduler<Command> timers;

  // Runtime only, never persisted: who listens, and the call in flight.
  private final Set<ActorRef<TaskUpdate>> subscribers = new LinkedHashSet<>();
  private AttemptRunner.Attempt inFlight;
  private boolean deltasSent;
  // whether this task holds one of the worker's places for unfinished tasks
  private final ActiveTasks active;
  private boolean counted;

  private TaskEntity(
      String taskId,
      TaskSettings settings,
      AttemptRunner runner,
      Clock clock,
      DoubleSupplier jitter,
      ActorRef<ClusterSharding.ShardCommand> shard,
      FinishListener onFinished,
      ActorContext<Command> ctx,
      TimerScheduler<Command> timers) {
    super(
        PersistenceId.of(TaskProtocol.TYPE_KEY.name(), taskId),
        SupervisorStrategy.restartWithBackoff(
            settings.journalRestartMin(), settings.journalRestartMax(), 0.2));
    this.taskId = taskId;
    this.settings = settings;
    this.runner = runner;
    this.clock = clock;
    this.jitter = jitter;
    this.shard = shard;
    this.onFinished = onFinished;
    this.active = ActiveTasks.get(ctx.getSystem());
    this.ctx = ctx;
    this.timers = timers;
  }

  @Override
  public TaskState emptyState() {
    return TaskState.blank(taskId);
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2);
  }

  @Override
  public Set<String> tagsFor(Event event) {
    if (event instanceof TaskSubmitted submitted) {
      return submitted.retention() == TaskRetention.TRANSIENT ? Set.of(TRANSIENT_TAG) : Set.of();
    }
    return event instanceof TaskSucceeded
            || event instanceof TaskFailed
            || event instanceof TaskCancelled
        ? Set.of(FINISHED_TAG)
        : Set.of();
  }

  // ---- commands ----

  @Override
  public CommandHandlerWithReply<Command, Event, TaskState> commandHandler() {
    CommandHandlerWithReplyBuilder<Command, Event, TaskState> builder =
        newCommandHandlerWithReplyBuilder();
    builder
        .forState(TaskState::isBlank)
        .onCommand(Submit.class, this::onSubmitNew)
        .onCommand(Get.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Inspect.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Cancel.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Subscribe.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(PassivateFinished.class, this::onPassivate)
        .onAnyCommand(c -> Effect().noReply());
    builder
        .forState(TaskState::isActive)
        .onCommand(Submit.class, this::onSubmitExisting)
        .onCommand(Get.class, this::onGet)
        .onCommand(Inspect.class, (s, c) -> Effect().reply(c.replyTo(), new TaskReply.Ok(s.toView())))
        .onCommand(Subscribe.class, this::onSubscribe)
        .onCommand(Cancel.class, this::onCancel)
        .onCommand(DeltaReceived.class, this::onDelta)
        .onCommand(AttemptSucceeded.class, this::onAttemptSucceeded)
        .onCommand(AttemptErrored.class, this::onAttemptErrored)
        .onCommand(StartAttempt.class, this::onStartAttempt)
        .onCommand(DeadlineReached.class, this::onDeadline)
        .onCommand(ResumeAfterRecovery.class, this::onResume)
        .onAnyCommand(c -> Effect().noReply());
    builder
        .forState(TaskState::isFinished)
        .onCommand(Submit.class, this::onSubmitExisting)
        .onCommand(Get.class, this::onGet)
        .onCommand(Inspect.class, (s, c) -> Effect().reply(c.replyTo(), new TaskReply.Ok(s.toView())))
        .onCommand(Subscribe.class, this::onSubscribe)
        .onCommand(Cancel.class, (s, c) -> answer(s, c.owner(), c.replyTo()))
        .onCommand(PassivateFinished.class, this::onPassivate)
        .onAnyCommand(c -> Effect().noReply());
    return builder.build();
  }

  private ReplyEffect<Event, TaskState> onSubmitNew(TaskState state, Submit cmd) {
    Instant now = clock.instant();
    Instant deadline = effectiveDeadline(cmd.deadline(), now);
    if (!deadline.isAfter(now)) {
      return Effect()
          .reply(
              cmd.replyTo(),
              new TaskReply.Rejected(
                  TaskError.of(ErrorCode.TIMEOUT, "the task's deadline has already passed")));
    }
    if (!active.tryTake()) {
      return Effect()
          .reply(
              cmd.replyTo(),
              new TaskReply.Rejected(
                  TaskError.of(
                      ErrorCode.UNAVAILABLE,
                      "the worker holds its limit of " + active.max() + " unfinished tasks; try again shortly")));
    }
    counted = true;
    if (cmd.subscriber() != null) {
      subscribers.add(cmd.subscriber());
    }
    return Effect()
        .persist(
            List.of(
                new TaskSubmitted(
                    cmd.spec(), cmd.owner(), cmd.keyId(), cmd.holdId(), deadline, now, cmd.retention()),
                new AttemptStarted(1, now)))
        .thenRun(
            s -> {
              armDeadline(s);
              launch(s);
              publish(s);
            })
        .thenReply(cmd.replyTo(), s -> new TaskReply.Ok(s.toView(), true));
  }

  private Instant effectiveDeadline(Instant requested, Instant now) {
    Instant latest = now.plus(settings.maxTimeout());
    if (requested == null) {
      return now.plus(settings.defaultTimeout());
    }
    return requested.isAfter(latest) ? latest : requested;
  }

  private ReplyEffect<Event, TaskState> onSubmitExisting(TaskState state, Submit cmd) {
    if (!state.ownedBy(cmd.owner()) || !state.spec().equals(cmd.spec())) {
      return Effect()
          .reply(
              cmd.replyTo(),
              new TaskReply.Rejected(
                  TaskError.of(
                      ErrorCode.CONFLICT,
                      "a different request already used this idempotency key or task id")));
    }
    if (cmd.subscriber() != null) {
      addSubscriber(state, cmd.subscriber());
    }
    // the same submit asked again (its answer was lost) created this task: tell it so, so that its
    // sender does not give back the hold the task will free
    boolean sameSubmit = cmd.holdId() != null && cmd.holdId().equals(state.holdId());
    return Effect().reply(cmd.replyTo(), new TaskReply.Ok(state.toView(), sameSubmit));
  }

  private ReplyEffect<Event, TaskState> onGet(TaskState state, Get cmd) {
    return answer(state, cmd.owner(), cmd.replyTo());
  }

  private ReplyEffect<Event, TaskState> onSubscribe(TaskState state, Subscribe cmd) {
    if (!state.ownedBy(cmd.owner())) {
      return unknownTask(cmd.replyTo());
    }
    addSubscriber(state, cmd.subscriber());
    return Effect().reply(cmd.replyTo(), new TaskReply.Ok(state.toView()));
  }

  private void addSubscriber(TaskState state, ActorRef<TaskUpdate> subscriber) {
    subscriber.tell(new TaskUpdate.StatusChanged(state.toView()));
    if (state.isActive()) {
      subscribers.add(subscriber);
    }
  }

  private ReplyEffect<Event, TaskState> onCancel(TaskState state, Cancel cmd) {
    if (!state.ownedBy(cmd.owner())) {
      return unknownTask(cmd.replyTo());
    }
    abortInFlight();
    timers.cancel(RETRY_TIMER);
    return Effect()
        .persist(new TaskCancelled(clock.instant()))
        .thenRun(this::finish)
        .thenReply(cmd.replyTo(), s -> new TaskReply.Ok(s.toView()));
  }

  private ReplyEffect<Event, TaskState> onDelta(TaskState state, DeltaReceived cmd) {
    if (isCurrent(state, cmd.attempt())) {
      deltasSent = true;
      TaskUpdate delta =
          TaskUpdate.ContentDelta.of(taskId, cmd.attempt(), cmd.choices());
      subscribers.forEach(s -> s.tell(delta));
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, TaskState> onAttemptSucceeded(
      TaskState state, AttemptSucceeded cmd) {
    if (!isCurrent(state, cmd.attempt())) {
      return Effect().noReply();
    }
    inFlight = null;
    return Effect()
        .persist(new TaskSucceeded(cmd.result(), clock.instant()))
        .thenRun(this::finish)
        .thenNoReply();
  }

  private ReplyEffect<Event, TaskState> onAttemptErrored(TaskState state, AttemptErrored cmd) {
    if (!isCurrent(state, cmd.attempt())) {
      return Effect().noReply();
    }
    inFlight = null;
    Instant now = clock.instant();
    boolean partial = deltasSent;
    if (cmd.retryable() && !partial && state.attempts() < settings.maxAttempts()) {
      Duration delay =
          settings.backoff().delayAfter(cmd.attempt(), cmd.retryAfter(), jitter.getAsDouble());
      Instant next = now.plus(delay);
      if (next.isBefore(state.deadline())) {
        WorkerMetrics.retryScheduled(state.spec().kind(), cmd.error().code());
        return Effect()
            .persist(new AttemptFailed(cmd.attempt(), cmd.error(), true, next, now))
            .thenRun(
                s -> {
                  timers.startSingleTimer(RETRY_TIMER, new StartAttempt(cmd.attempt() + 1), delay);
                  publish(s);
                })
            .thenNoReply();
      }
    }
    TaskError finalError =
        partial
            ? new TaskError(
                cmd.error().code(),
                "the stream was interrupted after partial output: " + cmd.error().message(),
                cmd.error().upstreamStatus())
            : cmd.error();
    return Effect()
        .persist(
            List.of(
                new AttemptFailed(cmd.attempt(), cmd.error(), cmd.retryable(), null, now),
                new TaskFailed(finalError, now)))
        .thenRun(this::finish)
        .thenNoReply();
  }

  private ReplyEffect<Event, TaskState> onStartAttempt(TaskState state, StartAttempt cmd) {
    if (state.status() != TaskStatus.RETRY_SCHEDULED || cmd.attempt() != state.attempts() + 1) {
      return Effect().noReply();
    }
    return Effect()
        .persist(new AttemptStarted(cmd.attempt(), clock.instant()))
        .thenRun(
            s -> {
              launch(s);
              publish(s);
            })
        .thenNoReply();
  }

  private ReplyEffect<Event, TaskState> onDeadline(TaskState state, DeadlineReached cmd) {
    abortInFlight();
    timers.cancel(RETRY_TIMER);
    String last = state.error() == null ? "" : " (last error: " + state.error().message() + ")";
    TaskError timeout =
        TaskError.of(
            ErrorCode.TIMEOUT,
            "the task's deadline passed after " + state.attempts() + " attempt(s)" + last);
    return Effect()
        .persist(new TaskFailed(timeout, clock.instant()))
        .thenRun(this::finish)
        .thenNoReply();
  }

  /** After recovery in a non-terminal state: pick the work up where the crash left it. */
  private ReplyEffect<Event, TaskState> onResume(TaskState state, ResumeAfterRecovery cmd) {
    Instant now = clock.instant();
    armDeadline(state);
    if (!now.isBefore(state.deadline())) {
      return Effect().noReply(); // the deadline timer, armed at zero delay, fails the task
    }
    if (state.status() == TaskStatus.RETRY_SCHEDULED) {
      Duration wait = Duration.between(now, state.nextAttemptAt());
      timers.startSingleTimer(
          RETRY_TIMER,
          new StartAttempt(state.attempts() + 1),
          wait.isNegative() ? Duration.ZERO : wait);
      return Effect().noReply();
    }
    // RUNNING: the attempt in flight when the node stopped never reported back.
    TaskError interrupted =
        TaskError.of(ErrorCode.UNAVAILABLE, "attempt interrupted by a worker restart");
    AttemptFailed failed = new AttemptFailed(state.attempts(), interrupted, true, now, now);
    if (state.attempts() >= settings.maxAttempts()) {
      return Effect()
          .persist(
              List.of(
                  new AttemptFailed(state.attempts(), interrupted, true, null, now),
                  new TaskFailed(interrupted, now)))
          .thenRun(this::finish)
          .thenNoReply();
    }
    return Effect()
        .persist(List.of(failed, new AttemptStarted(state.attempts() + 1, now)))
        .thenRun(
            s -> {
              launch(s);
              publish(s);
            })
        .thenNoReply();
  }

  private ReplyEffect<Event, TaskState> onPassivate(TaskState state, PassivateFinished cmd) {
    if (shard == null) {
      return Effect().stop().thenNoReply();
    }
    shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
    return Effect().noReply();
  }

  private ReplyEffect<Event, TaskState> answer(
      TaskState state, String owner, ActorRef<TaskReply> replyTo) {
    if (!state.ownedBy(owner)) {
      return unknownTask(replyTo);
    }
    return Effect().reply(replyTo, new TaskReply.Ok(state.toView()));
  }

  private ReplyEffect<Event, TaskState> unknownTask(ActorRef<TaskReply> replyTo) {
    return Effect()
        .reply(
            replyTo,
            new TaskReply.Rejected(TaskError.unknownTask(taskId)));
  }

  // ---- side effects ----

  private boolean isCurrent(TaskState state, int attempt) {
    return state.status() == TaskStatus.RUNNING && state.attempts() == attempt;
  }

  private void launch(TaskState state) {
    int attempt = state.attempts();
    deltasSent = false;
    WorkerMetrics.attemptStarted(state.spec().kind());
    try {
      inFlight =
          runner.start(
              taskId,
              state.spec(),
              attempt,
              choices -> ctx.getSelf().tell(new DeltaReceived(attempt, choices)));
    } catch (RuntimeException e) {
      ctx.getSelf().tell(errored(attempt, AttemptFailure.of(e)));
      return;
    }
    ctx.pipeToSelf(
        inFlight.result(),
        (result, failure) ->
            failure == null
                ? new AttemptSucceeded(attempt, result)
                : errored(attempt, AttemptFailure.of(failure)));
  }

  private static AttemptErrored errored(int attempt, AttemptFailure failure) {
    return new AttemptErrored(
        attempt, failure.error(), failure.retryable(), failure.retryAfter());
  }

  private void abortInFlight() {
    if (inFlight != null) {
      inFlight.cancel();
      inFlight = null;
    }
  }

  private void armDeadline(TaskState state) {
    Duration left = Duration.between(clock.instant(), state.deadline());
    timers.startSingleTimer(
        DEADLINE_TIMER, DeadlineReached.INSTANCE, left.isNegative() ? Duration.ZERO : left);
  }

  private void publish(TaskState state) {
    TaskUpdate update = new TaskUpdate.StatusChanged(state.toView());
    subscribers.forEach(s -> s.tell(update));
  }

  private void finish(TaskState state) {
    releasePlace();
    inFlight = null;
    timers.cancel(DEADLINE_TIMER);
    timers.cancel(RETRY_TIMER);
    publish(state);
    subscribers.clear();
    onFinished.finished(state, false);
    WorkerMetrics.taskFinished(state.spec().kind(), state.status());
    timers.startSingleTimer(
        PASSIVATE_TIMER, PassivateFinished.INSTANCE, settings.passivateFinishedAfter());
  }

  private void releasePlace() {
    if (counted) {
      counted = false;
      active.release();
    }
  }

  // ---- events ----

  @Override
  public EventHandler<TaskState, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(TaskSubmitted.class, TaskState::submitted)
        .onEvent(AttemptStarted.class, TaskState::attemptStarted)
        .onEvent(AttemptFailed.class, TaskState::attemptFailed)
        .onEvent(TaskSucceeded.class, TaskState::succeeded)
        .onEvent(TaskFailed.class, TaskState::failed)
        .onEvent(TaskCancelled.class, TaskState::cancelled)
        .build();
  }

  @Override
  public SignalHandler<TaskState> signalHandler() {
    return newSignalHandlerBuilder()
        .onSignal(
            RecoveryCompleted.instance(),
            state -> {
              if (state.isActive()) {
                active.take(); // accepted work, whatever the bound
                counted = true;
                ctx.getSelf().tell(ResumeAfterRecovery.INSTANCE);
              } else {
                if (state.isFinished()) {
                  onFinished.finished(state, true);
                }
                // finished, or never submitted (a look-up of an unknown id): stop after a while
                timers.startSingleTimer(
                    PASSIVATE_TIMER, PassivateFinished.INSTANCE, settings.passivateFinishedAfter());
              }
            })
        .onSignal(PostStop.instance(), state -> releasePlace())
        .onSignal(PreRestart.instance(), state -> releasePlace())
        .build();
  }
}
