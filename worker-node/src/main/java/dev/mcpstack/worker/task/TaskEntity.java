package dev.mcpstack.worker.task;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.NullNode;
import dev.mcpstack.shared.CborSerializable;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.LargeJson;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskProtocol.Cancel;
import dev.mcpstack.shared.TaskProtocol.Command;
import dev.mcpstack.shared.TaskProtocol.Follow;
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
import dev.mcpstack.shared.TaskView;
import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.Tracing;
import io.opentelemetry.api.trace.Span;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.DoubleSupplier;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.PreRestart;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.persistence.typed.PersistenceId;
import dev.mcpstack.worker.journal.MemoryJournal;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.RecoveryFailed;
import dev.mcpstack.worker.journal.JournalHealth;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReplyBuilder;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.javadsl.StreamRefs;
import org.apache.pekko.util.ByteString;

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

  /** {@code deferred}: the request never reached a runner, none had room (AttemptFailure). */
  /** {@code detail}: what went wrong for operators (AttemptFailure#detail), never told to clients. */
  record AttemptErrored(
      int attempt, TaskError error, boolean retryable, Duration retryAfter, boolean deferred, String detail)
      implements Command {
    AttemptErrored(int attempt, TaskError error, boolean retryable, Duration retryAfter, boolean deferred) {
      this(attempt, error, retryable, retryAfter, deferred, error.message());
    }
  }

  /** A background task's attempt that found no runner with room: try the same attempt again. */
  record RunDeferred(int attempt) implements Command {}

  record StartAttempt(int attempt) implements Command {}

  /** The attempt's first piece of output is about to reach its followers: record that first. */
  record OutputStarting(int attempt, ActorRef<Boolean> replyTo) implements Command {}

  /** A Submit whose request came out of band, read back in (or failed to). */
  record RequestRead(Submit submit, Throwable failure) implements Command {}

  /** A follower's stream ended. */
  enum FollowerLeft implements Command {
    INSTANCE
  }

  /** A streamed chat has had no follower for the orphan timeout. */
  enum Orphaned implements Command {
    INSTANCE
  }

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
      permits TaskSubmitted, AttemptStarted, OutputStarted, AttemptFailed, TaskSucceeded, TaskFailed,
          TaskCancelled {}

  /**
   * {@code keyId}: the usage account of the API key it was submitted with, null for anonymous
   * callers; {@code holdId}: the key limiter's hold to free when the task ends, null if none. {@code
   * retention}: null in events written before it existed, read as {@link TaskRetention#STANDARD}.
   * {@code background}: an async task (TaskProtocol.Submit); false in events written before it
   * existed. {@code trace}: the request's trace context (TaskProtocol.Submit), kept so that every
   * attempt, on whichever worker, continues the client's trace; null in events written before it
   * existed and from older senders.
   */
  public record TaskSubmitted(
      TaskSpec spec,
      String owner,
      String keyId,
      String holdId,
      Instant deadline,
      Instant at,
      TaskRetention retention,
      boolean background,
      TraceContext trace)
      implements Event {
    public TaskSubmitted {
      retention = retention == null ? TaskRetention.STANDARD : retention;
    }

    /** A submission without a trace context (as written before it existed: the field is then missing). */
    public TaskSubmitted(
        TaskSpec spec,
        String owner,
        String keyId,
        String holdId,
        Instant deadline,
        Instant at,
        TaskRetention retention,
        boolean background) {
      this(spec, owner, keyId, holdId, deadline, at, retention, background, null);
    }

    /** A submission that is not {@code background}. */
    public TaskSubmitted(
        TaskSpec spec,
        String owner,
        String keyId,
        String holdId,
        Instant deadline,
        Instant at,
        TaskRetention retention) {
      this(spec, owner, keyId, holdId, deadline, at, retention, false);
    }
  }

  public record AttemptStarted(int attempt, Instant at) implements Event {}

  /**
   * The attempt's output started to reach a client (a streamed chat's first delta). Persisted
   * before that delta is relayed: a task that resumes elsewhere after a crash then knows its
   * client already has part of this attempt's answer, and ends with an error rather than
   * re-running into a second, different answer.
   */
  public record OutputStarted(int attempt, Instant at) implements Event {}

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
  private static final String ORPHAN_TIMER = "orphan";
  /** How long a delta may wait for its OutputStarted event to be written. */
  private static final Duration OUTPUT_GATE_TIMEOUT = Duration.ofSeconds(30);

  /**
   * Where a task's events are written (docs/adr/0007). Each kind is an entity type of its own, so an
   * id's kind is known wherever the id is (the api-node puts it in the id).
   */
  public enum Durability {
    /**
     * The journal's database: survives a crash, restarted on a survivor by remember-entities (when
     * configured, as the nodes' configuration does).
     */
    DATABASE(TaskProtocol.TYPE_KEY, "", "", true),
    /**
     * This JVM's memory ({@link MemoryJournal}): a crash loses the task, its client's api-node submits
     * it again or ends the response with an error. Not remembered, no snapshots.
     */
    MEMORY(TaskProtocol.MEMORY_TYPE_KEY, "mcp.memory-journal", "pekko.persistence.no-snapshot-store", false);

    final EntityTypeKey<Command> typeKey;
    final String journalPluginId;
    final String snapshotPluginId;
    final boolean remembered;

    Durability(EntityTypeKey<Command> typeKey, String journalPluginId, String snapshotPluginId, boolean remembered) {
      this.typeKey = typeKey;
      this.journalPluginId = journalPluginId;
      this.snapshotPluginId = snapshotPluginId;
      this.remembered = remembered;
    }
  }

  /** Starts sharding of tasks of both kinds on this node; entities live only on worker nodes. */
  public static void init(
      ActorSystem<?> system, TaskSettings settings, AttemptRunner runner, FinishListener onFinished) {
    for (Durability durability : Durability.values()) {
      ClusterSharding.get(system)
          .init(
              Entity.of(
                      durability.typeKey,
                      ctx ->
                          create(
                              ctx.getEntityId(),
                              durability,
                              settings,
                              runner,
                              Clock.systemUTC(),
                              () -> ThreadLocalRandom.current().nextDouble(),
                              ctx.getShard(),
                              onFinished))
                  .withSettings(settings(system, durability))
                  .withRole(TaskProtocol.WORKER_ROLE));
    }
  }

  /** The configured sharding settings; a task in memory is never remembered (nothing to resume). */
  private static ClusterShardingSettings settings(ActorSystem<?> system, Durability durability) {
    ClusterShardingSettings configured = ClusterShardingSettings.create(system);
    return durability.remembered ? configured : configured.withRememberEntities(false);
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
    return create(taskId, Durability.DATABASE, settings, runner, clock, jitter, shard, (state, recovered) -> {});
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
      Durability durability,
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
                        taskId, durability, settings, runner, clock, jitter, shard, onFinished, ctx, timers)));
  }

  private final String taskId;
  private final Durability durability;
  private final TaskSettings settings;
  private final AttemptRunner runner;
  private final Clock clock;
  private final DoubleSupplier jitter;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final FinishListener onFinished;
  private final ActorContext<Command> ctx;
  private final TimerScheduler<Command> timers;

  // Runtime only, never persisted: who follows, and the call in flight.
  /** Streams that end with the task (its followers' hub): created at the first one. */
  private Materializer bound;
  /** Streams that outlive it (one-shot chunk and single-update refs, reading a request). */
  private final Materializer mat;
  /** The updates followers read; created at the first follower or streamed attempt. */
  private TaskUpdates updates;
  /** The followers of a task without deltas (no hub needed): created at the first one. */
  private StatusFollowers statusFollowers;
  private int followers;
  /** Followers of the previous version's nodes, told each update (they never leave). */
  private final Set<ActorRef<TaskUpdate>> legacySubscribers = new LinkedHashSet<>();
  private AttemptRunner.Attempt inFlight;
  /** Spans, when tracing is on (docs/observability.md): the task's on this worker, until it ends or stops here. */
  private final Tracing tracing;
  private Span taskSpan;
  /** The trace of a task submitted without one (an older sender), made when first needed. */
  private TraceContext ownTrace;
  /**
   * A background task's waits in a row for a runner with room (none persisted: 10,000 waiting
   * tasks must not flood the journal); 0 while it is not waiting.
   */
  private int deferrals;
  // whether this task holds one of the worker's places for unfinished tasks
  private final ActiveTasks active;
  private boolean counted;

  private TaskEntity(
      String taskId,
      Durability durability,
      TaskSettings settings,
      AttemptRunner runner,
      Clock clock,
      DoubleSupplier jitter,
      ActorRef<ClusterSharding.ShardCommand> shard,
      FinishListener onFinished,
      ActorContext<Command> ctx,
      TimerScheduler<Command> timers) {
    super(
        PersistenceId.of(durability.typeKey.name(), taskId),
        // Restarts after a journal failure are logged by JournalHealth once per outage, not once
        // per task and try (a 30 s outage made hundreds of ERROR lines): docs/adr/0010.
        SupervisorStrategy.restartWithBackoff(
                settings.journalRestartMin(), settings.journalRestartMax(), 0.2)
            .withLogLevel(org.slf4j.event.Level.DEBUG));
    this.taskId = taskId;
    this.durability = durability;
    this.settings = settings;
    this.runner = runner;
    this.clock = clock;
    this.jitter = jitter;
    this.shard = shard;
    this.onFinished = onFinished;
    this.active = ActiveTasks.get(ctx.getSystem());
    this.tracing = Tracing.get(ctx.getSystem());
    this.ctx = ctx;
    this.timers = timers;
    // the bound materializer is an actor of its own: not made for tasks nobody follows (a look-up)
    this.mat = Materializer.matFromSystem(ctx.getSystem());
  }

  @Override
  public TaskState emptyState() {
    return TaskState.blank(taskId);
  }

  @Override
  public String journalPluginId() {
    return durability.journalPluginId;
  }

  @Override
  public String snapshotPluginId() {
    return durability.snapshotPluginId;
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return durability == Durability.MEMORY
        ? RetentionCriteria.disabled()
        : RetentionCriteria.snapshotEvery(settings.snapshotEvery(), 2);
  }

  @Override
  public Set<String> tagsFor(Event event) {
    if (durability == Durability.MEMORY) {
      return Set.of(); // tags serve the retention cleaner's queries of the database
    }
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
        .onCommand(Submit.class, (s, c) -> c.requestChunks() != null ? readRequest(c) : onSubmitNew(s, c))
        .onCommand(RequestRead.class, this::onRequestRead)
        .onCommand(Get.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Inspect.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Cancel.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Subscribe.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(Follow.class, (s, c) -> unknownTask(c.replyTo()))
        .onCommand(PassivateFinished.class, this::onPassivate)
        .onAnyCommand(c -> Effect().noReply());
    builder
        .forState(TaskState::isActive)
        .onCommand(Submit.class, (s, c) -> c.requestChunks() != null ? readRequest(c) : onSubmitExisting(s, c))
        .onCommand(RequestRead.class, this::onRequestRead)
        .onCommand(Get.class, this::onGet)
        .onCommand(Inspect.class, this::onInspect)
        .onCommand(Subscribe.class, this::onSubscribe)
        .onCommand(Follow.class, this::onFollow)
        .onCommand(Cancel.class, this::onCancel)
        .onCommand(OutputStarting.class, this::onOutputStarting)
        .onCommand(FollowerLeft.class, this::onFollowerLeft)
        .onCommand(Orphaned.class, this::onOrphaned)
        .onCommand(AttemptSucceeded.class, this::onAttemptSucceeded)
        .onCommand(AttemptErrored.class, this::onAttemptErrored)
        .onCommand(StartAttempt.class, this::onStartAttempt)
        .onCommand(RunDeferred.class, this::onRunDeferred)
        .onCommand(DeadlineReached.class, this::onDeadline)
        .onCommand(ResumeAfterRecovery.class, this::onResume)
        .onAnyCommand(c -> Effect().noReply());
    builder
        .forState(TaskState::isFinished)
        .onCommand(Submit.class, (s, c) -> c.requestChunks() != null ? readRequest(c) : onSubmitExisting(s, c))
        .onCommand(RequestRead.class, this::onRequestRead)
        .onCommand(Get.class, this::onGet)
        .onCommand(Inspect.class, this::onInspect)
        .onCommand(Subscribe.class, this::onSubscribe)
        .onCommand(Follow.class, this::onFollow)
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
    // a blank entity passivates after a while (a look-up of an unknown id): not once it has work
    timers.cancel(PASSIVATE_TIMER);
    return Effect()
        .persist(
            List.of(
                new TaskSubmitted(
                    cmd.spec(), cmd.owner(), cmd.keyId(), cmd.holdId(), deadline, now, cmd.retention(),
                    cmd.background(), cmd.trace()),
                new AttemptStarted(1, now)))
        .thenRun(
            s -> {
              armDeadline(s);
              launch(s);
              publish(s);
            })
        .thenReply(cmd.replyTo(), s -> followed(s, cmd, true));
  }

  /**
   * The answer to a Submit: the view, and for a follower its updates (opened before the first
   * attempt, so it sees every delta); a previous version's subscriber is told instead.
   */
  private TaskReply followed(TaskState state, Submit cmd, boolean created) {
    if (cmd.subscriber() != null) {
      addLegacySubscriber(state, cmd.subscriber());
    }
    return ok(state, created, cmd.follow() ? follower(state) : null);
  }

  /** Reads a Submit's out-of-band request, then handles the Submit as if it came whole. */
  private ReplyEffect<Event, TaskState> readRequest(Submit cmd) {
    ctx.pipeToSelf(
        LargeJson.read(cmd.requestChunks(), mat),
        (request, failure) -> new RequestRead(failure == null ? cmd.withRequest(request) : cmd, failure));
    return Effect().noReply();
  }

  private ReplyEffect<Event, TaskState> onRequestRead(TaskState state, RequestRead read) {
    if (read.failure() != null) {
      ctx.getLog().warn("task {}: the request body did not arrive: {}", taskId, read.failure().toString());
      return Effect()
          .reply(
              read.submit().replyTo(),
              new TaskReply.Rejected(
                  TaskError.of(ErrorCode.UNAVAILABLE, "the request body did not reach the worker; try again")));
    }
    return state.isBlank() ? onSubmitNew(state, read.submit()) : onSubmitExisting(state, read.submit());
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
    // the same submit asked again (its answer was lost) created this task: tell it so, so that its
    // sender does not give back the hold the task will free
    boolean sameSubmit = cmd.holdId() != null && cmd.holdId().equals(state.holdId());
    return Effect().reply(cmd.replyTo(), followed(state, cmd, sameSubmit));
  }

  private ReplyEffect<Event, TaskState> onGet(TaskState state, Get cmd) {
    return answer(state, cmd.owner(), cmd.replyTo());
  }

  private ReplyEffect<Event, TaskState> onSubscribe(TaskState state, Subscribe cmd) {
    if (!state.ownedBy(cmd.owner())) {
      return unknownTask(cmd.replyTo());
    }
    addLegacySubscriber(state, cmd.subscriber());
    return Effect().reply(cmd.replyTo(), ok(state, false, null));
  }

  /** For operators: the task whoever owns it, and the node it lives on. */
  private ReplyEffect<Event, TaskState> onInspect(TaskState state, Inspect cmd) {
    TaskReply.Ok ok = ok(state, false, null);
    String node = ctx.getSystem().address().toString(); // the cluster address on a cluster node
    return Effect()
        .reply(cmd.replyTo(), new TaskReply.Ok(ok.view(), false, null, ok.resultChunks(), node));
  }

  private ReplyEffect<Event, TaskState> onFollow(TaskState state, Follow cmd) {
    if (!state.ownedBy(cmd.owner())) {
      return unknownTask(cmd.replyTo());
    }
    return Effect().reply(cmd.replyTo(), ok(state, false, follower(state)));
  }

  /** A new follower's updates: the current view, then (while the task runs) every change. */
  private SourceRef<TaskUpdate> follower(TaskState state) {
    if (state.isFinished()) {
      return Source.<TaskUpdate>single(TaskUpdates.outOfBand(new TaskUpdate.StatusChanged(state.toView()), mat))
          .runWith(StreamRefs.sourceRef(), mat);
    }
    followers++;
    timers.cancel(ORPHAN_TIMER);
    Runnable left = () -> ctx.getSelf().tell(FollowerLeft.INSTANCE);
    if (!state.spec().streaming()) {
      if (statusFollowers == null) {
        statusFollowers = new StatusFollowers(mat, settings.updateBuffer());
      }
      return statusFollowers.follower(state.toView(), left);
    }
    return updates().follower(state.toView(), left);
  }

  private TaskUpdates updates() {
    if (updates == null) {
      if (bound == null) {
        bound = Materializer.createMaterializer(ctx);
      }
      updates = new TaskUpdates(bound, settings.updateBuffer());
    }
    return updates;
  }

  /** A follower of the previous version: told the current view, then every update. */
  private void addLegacySubscriber(TaskState state, ActorRef<TaskUpdate> subscriber) {
    if (!state.isActive()) {
      subscriber.tell(new TaskUpdate.StatusChanged(state.toView()));
    } else if (legacySubscribers.add(subscriber)) {
      followers++;
      updates()
          .follower(state.toView(), () -> {})
          .getSource()
          .mapConcat(TaskUpdate.Batch::unpack) // the previous version does not know batches
          .runWith(Sink.foreach(subscriber::tell), bound);
    }
  }

  /** Gives a finished task's result body out of band when it is too big for one message. */
  private TaskReply.Ok ok(TaskState state, boolean created, SourceRef<TaskUpdate> followed) {
    TaskView view = state.toView();
    SourceRef<ByteString> chunks = view.result() == null ? null : LargeJson.chunksIfLarge(view.result().body(), mat);
    return new TaskReply.Ok(
        chunks == null ? view : view.withResultBody(NullNode.getInstance()), created, followed, chunks, null);
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
        .thenReply(cmd.replyTo(), s -> ok(s, false, null));
  }

  private ReplyEffect<Event, TaskState> onOutputStarting(TaskState state, OutputStarting cmd) {
    if (!isCurrent(state, cmd.attempt())) {
      return Effect().reply(cmd.replyTo(), false);
    }
    if (state.outputSent()) {
      return Effect().reply(cmd.replyTo(), true);
    }
    return Effect().persist(new OutputStarted(cmd.attempt(), clock.instant())).thenReply(cmd.replyTo(), s -> true);
  }

  private ReplyEffect<Event, TaskState> onFollowerLeft(TaskState state, FollowerLeft cmd) {
    followers = Math.max(0, followers - 1);
    if (followers > 0 || !state.spec().streaming()) {
      return Effect().noReply();
    }
    if (state.outputSent() && state.status() == TaskStatus.RUNNING) {
      // nobody can be given the rest of this answer faithfully: the part already sent is gone
      abortInFlight();
      return failNow(
          TaskError.of(
              ErrorCode.UNAVAILABLE,
              "the stream's client left after partial output; the answer was not finished"));
    }
    timers.startSingleTimer(ORPHAN_TIMER, Orphaned.INSTANCE, settings.orphanTimeout());
    return Effect().noReply();
  }

  private ReplyEffect<Event, TaskState> onOrphaned(TaskState state, Orphaned cmd) {
    if (followers > 0) {
      return Effect().noReply();
    }
    abortInFlight();
    timers.cancel(RETRY_TIMER);
    return Effect().persist(new TaskCancelled(clock.instant())).thenRun(this::finish).thenNoReply();
  }

  private ReplyEffect<Event, TaskState> failNow(TaskError error) {
    timers.cancel(RETRY_TIMER);
    return Effect().persist(new TaskFailed(error, clock.instant())).thenRun(this::finish).thenNoReply();
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
    boolean partial = state.outputSent();
    if (cmd.deferred() && state.background() && !partial) {
      return defer(state, cmd, now);
    }
    deferrals = 0;
    // what went wrong, for operators: metrics count failures by code, this line says which and why
    ctx.getLog()
        .info(
            "task {}: attempt {} failed: {} {}",
            taskId,
            cmd.attempt(),
            cmd.error().code().code(),
            cmd.detail() == null ? cmd.error().message() : cmd.detail());
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

  /**
   * No runner had room for a background task's attempt; it was never sent, so it is not an
   * attempt: the same attempt runs again after a jittered wait, without an event (status stays
   * RUNNING). A wait that would end past the deadline is not scheduled: the deadline timer fails
   * the task then, with a timeout. A worker that stops during a wait leaves the task RUNNING in the
   * journal; its recovery (onResume) counts that as an interrupted attempt, at most one per crash.
   */
  private ReplyEffect<Event, TaskState> defer(TaskState state, AttemptErrored cmd, Instant now) {
    deferrals++;
    WorkerMetrics.attemptDeferred(state.spec().kind());
    Duration delay = settings.deferral().delayAfter(deferrals, cmd.retryAfter(), jitter.getAsDouble());
    if (now.plus(delay).isBefore(state.deadline())) {
      timers.startSingleTimer(RETRY_TIMER, new RunDeferred(cmd.attempt()), delay);
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, TaskState> onRunDeferred(TaskState state, RunDeferred cmd) {
    if (!isCurrent(state, cmd.attempt()) || inFlight != null) {
      return Effect().noReply();
    }
    launch(state, false);
    return Effect().noReply();
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
    boolean waiting = deferrals > 0 && inFlight == null;
    abortInFlight();
    String last =
        waiting
            ? " while it waited for a model runner with room"
            : state.error() == null ? "" : " (last error: " + state.error().message() + ")";
    return failNow(
        TaskError.of(
            ErrorCode.TIMEOUT,
            "the task's deadline passed after " + state.attempts() + " attempt(s)" + last));
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
    // RUNNING: the attempt in flight when the node stopped never reported back (or a background
    // task was waiting for a runner with room: such waits are not journaled, so it counts as an
    // interrupted attempt too; at most one per crash, which is acceptable).
    if (state.outputSent()) {
      // its client has part of the answer: running it again would give a second, different one
      return failNow(
          TaskError.of(
              ErrorCode.UNAVAILABLE,
              "the stream was interrupted after partial output: its worker stopped; send the request again"));
    }
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
    return Effect().reply(replyTo, ok(state, false, null));
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
    deferrals = 0;
    launch(state, true);
  }

  /** @param newAttempt false when a deferred attempt runs again (it was counted when it started) */
  private void launch(TaskState state, boolean newAttempt) {
    int attempt = state.attempts();
    if (newAttempt) {
      WorkerMetrics.attemptStarted(state.spec().kind());
    }
    TraceContext trace = traceOf(state);
    Span attemptSpan = null;
    if (tracing.enabled()) {
      if (taskSpan == null) {
        taskSpan = AttemptSpans.start(tracing, "task " + state.spec().kind().name().toLowerCase(java.util.Locale.ROOT), trace);
        taskSpan.setAttribute("mcp.task.id", taskId);
        taskSpan.setAttribute("gen_ai.request.model", state.spec().model());
      }
      attemptSpan = AttemptSpans.start(tracing, "attempt", Tracing.contextOf(taskSpan, trace.tracestate(), trace.requestId()));
      attemptSpan.setAttribute("mcp.attempt", attempt);
      trace = Tracing.contextOf(attemptSpan, trace.tracestate(), trace.requestId());
    }
    try {
      inFlight = runner.start(taskId, state.spec(), attempt, trace, output(state, attempt));
    } catch (RuntimeException e) {
      if (attemptSpan != null) {
        Tracing.end(attemptSpan, AttemptSpans.errorCode(e));
      }
      ctx.getSelf().tell(errored(attempt, AttemptFailure.of(e)));
      return;
    }
    if (attemptSpan != null) {
      Span span = attemptSpan;
      inFlight.result().whenComplete((r, e) -> Tracing.end(span, e == null ? null : AttemptSpans.errorCode(e)));
    }
    ctx.pipeToSelf(
        inFlight.result(),
        (result, failure) ->
            failure == null
                ? new AttemptSucceeded(attempt, result)
                : errored(attempt, AttemptFailure.of(failure)));
  }

  /**
   * Where the attempt's deltas go: to the followers, with backpressure. The first one waits until
   * {@link OutputStarted} is written (one journal write per streamed attempt).
   */
  private AttemptRunner.Output output(TaskState state, int attempt) {
    if (!state.spec().streaming()) {
      return choices -> CompletableFuture.failedFuture(new IllegalStateException("only a streamed chat has deltas"));
    }
    TaskUpdates relay = updates();
    AtomicBoolean started = new AtomicBoolean(); // read and set by the attempt's stream, one delta at a time
    ActorSystem<?> system = ctx.getSystem();
    return choices -> {
      TaskUpdate delta = TaskUpdate.ContentDelta.of(taskId, attempt, choices);
      if (started.get()) {
        return relay.offer(delta);
      }
      CompletionStage<Boolean> recorded =
          AskPattern.ask(
              ctx.getSelf(), replyTo -> new OutputStarting(attempt, replyTo), OUTPUT_GATE_TIMEOUT, system.scheduler());
      return recorded.thenCompose(
          current -> {
            if (!current) {
              return CompletableFuture.<Done>failedFuture(new IllegalStateException("the attempt is no longer current"));
            }
            started.set(true);
            return relay.offer(delta);
          });
    };
  }

  private static AttemptErrored errored(int attempt, AttemptFailure failure) {
    return new AttemptErrored(
        attempt, failure.error(), failure.retryable(), failure.retryAfter(), failure.deferred(), failure.detail());
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
    if (updates != null) {
      updates.offer(new TaskUpdate.StatusChanged(state.toView()));
    }
    if (statusFollowers != null) {
      statusFollowers.publish(new TaskUpdate.StatusChanged(state.toView()));
    }
  }

  /** The trace the task's calls continue: its submission's, or (submitted without one) its own. */
  private TraceContext traceOf(TaskState state) {
    if (state.trace() != null) {
      return state.trace();
    }
    if (ownTrace == null) {
      ownTrace = TraceContext.accept(null, null, taskId);
    }
    return ownTrace;
  }

  /** Ends the task's span here: it finished, or it stops on this worker (passivated, moved, crashed). */
  private void endTaskSpan(TaskState state, boolean stopped) {
    if (taskSpan == null) {
      return;
    }
    taskSpan.setAttribute("mcp.task.status", String.valueOf(state.status()));
    taskSpan.setAttribute("mcp.task.attempts", state.attempts());
    if (stopped) {
      taskSpan.setAttribute("mcp.task.stopped", true);
    }
    Tracing.end(taskSpan, state.error() != null && state.status() == TaskStatus.FAILED ? state.error().code().code() : null);
    taskSpan = null;
  }

  private void finish(TaskState state) {
    endTaskSpan(state, false);
    releasePlace();
    inFlight = null;
    timers.cancel(DEADLINE_TIMER);
    timers.cancel(RETRY_TIMER);
    publish(state);
    if (updates != null) {
      updates.complete();
    }
    if (statusFollowers != null) {
      statusFollowers.complete();
    }
    timers.cancel(ORPHAN_TIMER);
    onFinished.finished(state, false);
    WorkerMetrics.taskFinished(state.spec().kind(), state.status());
    timers.startSingleTimer(
        PASSIVATE_TIMER, PassivateFinished.INSTANCE, passivateFinishedAfter());
  }

  /** A task in memory serves no reads once its followers had the end: it goes soon. */
  private Duration passivateFinishedAfter() {
    return durability == Durability.MEMORY ? settings.memoryPassivateFinishedAfter() : settings.passivateFinishedAfter();
  }

  /** The entity stops or restarts: followers of status changes follow it again (the hub's end with it). */
  private void stopFollowers() {
    if (statusFollowers != null) {
      statusFollowers.fail(new IllegalStateException("the task's entity stopped"));
      statusFollowers = null;
    }
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
        .onEvent(OutputStarted.class, TaskState::outputStarted)
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
                    PASSIVATE_TIMER, PassivateFinished.INSTANCE, passivateFinishedAfter());
              }
            })
        .onSignal(
            PostStop.instance(),
            state -> {
              endTaskSpan(state, true);
              releasePlace();
              stopFollowers();
              if (durability == Durability.MEMORY) {
                MemoryJournal.Events.get(ctx.getSystem()).forget(persistenceId().id());
              }
            })
        .onSignal(
            PreRestart.instance(),
            state -> {
              endTaskSpan(state, true);
              releasePlace();
              stopFollowers();
            })
        .onSignal(
            RecoveryFailed.class,
            (state, failed) -> {
              // a database failure is the journal's outage, told once by JournalHealth; anything
              // else is this task's own and said here
              if (durability == Durability.MEMORY || !JournalHealth.get(ctx.getSystem()).failed(failed.getFailure())) {
                ctx.getLog().warn("task {}: its history could not be read: {}", taskId, failed.getFailure().toString());
              }
            })
        .build();
  }
}
