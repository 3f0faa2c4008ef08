package dev.mcpstack.worker.task;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskProtocol.Cancel;
import dev.mcpstack.shared.TaskProtocol.Command;
import dev.mcpstack.shared.TaskProtocol.Get;
import dev.mcpstack.shared.TaskProtocol.Submit;
import dev.mcpstack.shared.TaskProtocol.Subscribe;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskRetention;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.task.TaskEntity.AttemptStarted;
import dev.mcpstack.worker.task.TaskEntity.TaskSubmitted;
import dev.mcpstack.worker.journal.MemoryJournal;
import dev.mcpstack.worker.testkit.MutableClock;
import dev.mcpstack.worker.testkit.ScriptedRunner;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ManualTime;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit.CommandResultWithReply;
import org.junit.jupiter.api.AfterAll;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Every transition of the task entity, with manual time, a hand-moved clock and scripted attempts. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TaskEntityTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  static final TaskSettings SETTINGS =
      new TaskSettings(
          3,
          new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(10)),
          Duration.ofSeconds(60),
          Duration.ofMinutes(10),
          Duration.ofSeconds(30),
          Duration.ofSeconds(1),
          100,
          Duration.ofMillis(100),
          Duration.ofSeconds(1),
          32,
          Duration.ofSeconds(30),
          new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(8)));

  private final ActorTestKit testKit =
      ActorTestKit.create(ManualTime.config().withFallback(EventSourcedBehaviorTestKit.config()));
  private final ManualTime manualTime = ManualTime.get(testKit.system());

  private MutableClock clock;
  private ScriptedRunner runner;
  private EventSourcedBehaviorTestKit<Command, TaskEntity.Event, TaskState> kit;
  private TestProbe<TaskUpdate> updates;

  @BeforeEach
  void setUp() {
    clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    runner = new ScriptedRunner();
    updates = testKit.createTestProbe();
    kit =
        EventSourcedBehaviorTestKit.create(
            testKit.system(),
            TaskEntity.create(
                "task-" + UUID.randomUUID(), SETTINGS, runner, clock, () -> 1.0, null));
  }

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private void pass(Duration d) {
    clock.advance(d);
    manualTime.timePasses(d);
  }

  private static TaskSpec chat(boolean stream) {
    ObjectNode request = JSON.createObjectNode().put("model", "m").put("stream", stream);
    request.putArray("messages").addObject().put("role", "user").put("content", "hi");
    return new TaskSpec(TaskKind.CHAT, "m", request);
  }

  private static TaskResult result(String text) {
    ObjectNode body = JSON.createObjectNode().put("object", "chat.completion");
    body.putArray("choices").addObject().putObject("message").put("content", text);
    return new TaskResult(body, new Usage(1, 2, 3), "sim");
  }

  private static AttemptFailure transient503() {
    return new AttemptFailure(
        new TaskError(ErrorCode.UPSTREAM_ERROR, "runner answered 503", 503), true, null);
  }

  private CommandResultWithReply<Command, TaskEntity.Event, TaskState, TaskReply> submit(
      TaskSpec spec, Instant deadline) {
    CommandResultWithReply<Command, TaskEntity.Event, TaskState, TaskReply> submitted =
        kit.runCommand(replyTo -> new Submit(spec, "alice", deadline, true, replyTo));
    follow(submitted.reply(), updates);
    return submitted;
  }

  /**
   * The next attempt finds every runner's queue full; returns once the entity has handled that (a
   * state read is a round trip through its mailbox), so that time passed afterwards reaches the
   * wait it scheduled.
   */
  private void queueFullNow() {
    runner.next().result().completeExceptionally(queueFull());
    kit.getState();
  }

  /** A streamed chat submitted with a follower the test reads by hand: its demand, its leaving. */
  private org.apache.pekko.stream.testkit.TestSubscriber.Probe<TaskUpdate> submitStreamedWithReader() {
    var submitted = kit.<TaskReply>runCommand(r -> new Submit(chat(true), "alice", null, true, r));
    return ((TaskReply.Ok) submitted.reply())
        .updates()
        .getSource()
        .runWith(
            org.apache.pekko.stream.testkit.javadsl.TestSink.probe(testKit.system().classicSystem()),
            testKit.system());
  }

  /** Tells {@code probe} every update a follower's ref carries. */
  private void follow(TaskReply reply, TestProbe<TaskUpdate> probe) {
    if (reply instanceof TaskReply.Ok ok && ok.updates() != null) {
      ok.updates().getSource().mapConcat(TaskUpdate.Batch::unpack).runWith(Sink.foreach(probe.ref()::tell), testKit.system());
    }
  }

  private TaskUpdate.StatusChanged awaitStatus(TaskStatus status) {
    while (true) {
      TaskUpdate u = updates.receiveMessage(Duration.ofSeconds(10));
      if (u instanceof TaskUpdate.StatusChanged s && s.view().status() == status) {
        return s;
      }
    }
  }

  @Test
  void submitRunsOneAttemptAndSucceeds() {
    var submitted = submit(chat(false), null);
    assertEquals(2, submitted.events().size());
    assertInstanceOf(TaskSubmitted.class, submitted.events().get(0));
    assertEquals(new AttemptStarted(1, clock.instant()), submitted.events().get(1));
    assertEquals(TaskStatus.RUNNING, ((TaskReply.Ok) submitted.reply()).view().status());
    assertEquals(
        clock.instant().plus(SETTINGS.defaultTimeout()), submitted.state().deadline());

    runner.next().result().complete(result("hello"));
    var done = awaitStatus(TaskStatus.SUCCEEDED).view();
    assertEquals("hello", done.result().body().at("/choices/0/message/content").asText());
    assertEquals(1, done.attempts());

    var got = kit.<TaskReply>runCommand(r -> new Get("alice", r));
    assertEquals(TaskStatus.SUCCEEDED, ((TaskReply.Ok) got.reply()).view().status());
    assertTrue(got.hasNoEvents());
  }

  @Test
  void theSubmissionRecordsItsRetention() {
    var standard = submit(chat(false), null);
    assertEquals(TaskRetention.STANDARD, ((TaskSubmitted) standard.events().get(0)).retention());

    var other =
        EventSourcedBehaviorTestKit.<Command, TaskEntity.Event, TaskState>create(
            testKit.system(),
            TaskEntity.create("chatcmpl-" + UUID.randomUUID(), SETTINGS, runner, clock, () -> 1.0, null));
    var submitted =
        other.<TaskReply>runCommand(
            replyTo ->
                new Submit(chat(false), "alice", null, null, null, TaskRetention.TRANSIENT, false, null, null, replyTo));
    assertEquals(TaskRetention.TRANSIENT, ((TaskSubmitted) submitted.events().get(0)).retention());
  }

  @Test
  void transientFailureIsRetriedAfterBackoff() {
    submit(chat(false), null);
    ch.qos.logback.classic.Logger log =
        (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger("dev.mcpstack.worker.task");
    ch.qos.logback.classic.Level level = log.getLevel();
    var lines = new ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent>();
    lines.start();
    log.setLevel(ch.qos.logback.classic.Level.INFO); // the tests' configuration keeps the root at WARN
    log.addAppender(lines);
    dev.mcpstack.shared.TaskView scheduled;
    try {
      runner.next().result().completeExceptionally(transient503());
      scheduled = awaitStatus(TaskStatus.RETRY_SCHEDULED).view();
    } finally {
      log.detachAppender(lines);
      log.setLevel(level);
    }
    // the failed attempt is logged: which task, which attempt, the code and why
    assertTrue(
        lines.list.stream()
            .map(ch.qos.logback.classic.spi.ILoggingEvent::getFormattedMessage)
            .anyMatch(m -> m.matches("task .+: attempt 1 failed: upstream_error .+")),
        lines.list.toString());
    assertEquals(clock.instant().plusSeconds(1), scheduled.nextAttemptAt());
    assertEquals(ErrorCode.UPSTREAM_ERROR, scheduled.error().code());

    pass(Duration.ofMillis(999));
    assertEquals(TaskStatus.RETRY_SCHEDULED, kit.getState().status());
    assertTrue(runner.idle());

    pass(Duration.ofMillis(1));
    ScriptedRunner.Call second = runner.next();
    assertEquals(2, second.attempt());
    second.result().complete(result("ok"));
    assertEquals(2, awaitStatus(TaskStatus.SUCCEEDED).view().attempts());
    assertNull(kit.getState().error());
  }

  @Test
  void backoffDoublesUntilMaxAttemptsThenFailsWithLastError() {
    submit(chat(false), null);
    runner.next().result().completeExceptionally(transient503());
    awaitStatus(TaskStatus.RETRY_SCHEDULED);
    pass(Duration.ofSeconds(1));
    runner.next().result().completeExceptionally(transient503());
    var second = awaitStatus(TaskStatus.RETRY_SCHEDULED).view();
    assertEquals(clock.instant().plusSeconds(2), second.nextAttemptAt());
    pass(Duration.ofMillis(1999));
    assertEquals(TaskStatus.RETRY_SCHEDULED, kit.getState().status());
    pass(Duration.ofMillis(1));
    ScriptedRunner.Call third = runner.next();
    assertEquals(3, third.attempt());
    third.result().completeExceptionally(transient503());

    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertEquals(3, failed.attempts());
    assertEquals(ErrorCode.UPSTREAM_ERROR, failed.error().code());
    assertEquals(503, failed.error().upstreamStatus());
  }

  @Test
  void permanentErrorFailsAtOnce() {
    submit(chat(false), null);
    runner
        .next()
        .result()
        .completeExceptionally(
            new AttemptFailure(
                new TaskError(ErrorCode.MODEL_NOT_FOUND, "no such model", 404), false, null));
    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertEquals(1, failed.attempts());
    assertEquals(ErrorCode.MODEL_NOT_FOUND, failed.error().code());
    assertTrue(runner.idle());
  }

  @Test
  void retryAfterLongerThanBackoffIsHonoured() {
    submit(chat(false), null);
    runner
        .next()
        .result()
        .completeExceptionally(
            new AttemptFailure(
                new TaskError(ErrorCode.UNAVAILABLE, "busy", 429), true, Duration.ofSeconds(5)));
    assertEquals(
        clock.instant().plusSeconds(5), awaitStatus(TaskStatus.RETRY_SCHEDULED).view().nextAttemptAt());
    pass(Duration.ofMillis(4999));
    assertEquals(TaskStatus.RETRY_SCHEDULED, kit.getState().status());
    pass(Duration.ofMillis(1));
    assertEquals(2, runner.next().attempt());
  }

  /** What ModelRunnerClient.route gives when every runner's queue was full: never sent. */
  private static AttemptFailure queueFull() {
    return new AttemptFailure(
        TaskError.of(ErrorCode.UNAVAILABLE, "model runner 'sim' is overloaded: its queue is full"),
        true,
        Duration.ofSeconds(1),
        true);
  }

  private CommandResultWithReply<Command, TaskEntity.Event, TaskState, TaskReply> submitBackground(
      Instant deadline) {
    CommandResultWithReply<Command, TaskEntity.Event, TaskState, TaskReply> submitted =
        kit.runCommand(
            replyTo ->
                new Submit(chat(false), "alice", null, null, deadline, TaskRetention.STANDARD, true, null, null, replyTo, true));
    follow(submitted.reply(), updates);
    return submitted;
  }

  /** The waits the deferral backoff gives with jitter 1.0: 1, 2, 4, 8, 8, ... s. */
  private static Duration deferralWait(int n) {
    return SETTINGS.deferral().delayAfter(n, Duration.ofSeconds(1), 1.0);
  }

  @Test
  void aBackgroundTaskWaitsForRoomWithoutSpendingAttempts() {
    var submitted = submitBackground(clock.instant().plus(Duration.ofMinutes(10)));
    assertTrue(((TaskSubmitted) submitted.events().get(0)).background());
    assertTrue(submitted.state().background());
    for (int n = 1; n <= 20; n++) {
      ScriptedRunner.Call call = runner.next();
      assertEquals(1, call.attempt());
      call.result().completeExceptionally(queueFull());
      kit.getState(); // a round trip: the wait is scheduled before time passes
      Duration wait = deferralWait(n);
      pass(wait.minusMillis(1));
      assertTrue(runner.idle(), "deferral " + n + " ran early");
      assertEquals(TaskStatus.RUNNING, kit.getState().status());
      assertEquals(1, kit.getState().attempts());
      pass(Duration.ofMillis(1));
    }
    runner.next().result().complete(result("finally"));
    var done = awaitStatus(TaskStatus.SUCCEEDED).view();
    assertEquals(1, done.attempts());
    assertNull(done.error());
    // 20 deferrals, not one event: submitted, attempt 1 started, succeeded
    kit.restart();
    assertEquals(TaskStatus.SUCCEEDED, kit.getState().status());
    assertEquals(1, kit.getState().attempts());
  }

  @Test
  void aNonBackgroundTaskSpendsItsAttemptsOnFullQueues() {
    submit(chat(false), clock.instant().plus(Duration.ofMinutes(10)));
    for (int attempt = 1; attempt < SETTINGS.maxAttempts(); attempt++) {
      ScriptedRunner.Call call = runner.next();
      assertEquals(attempt, call.attempt());
      call.result().completeExceptionally(queueFull());
      awaitStatus(TaskStatus.RETRY_SCHEDULED);
      pass(SETTINGS.backoff().max());
    }
    ScriptedRunner.Call last = runner.next();
    assertEquals(SETTINGS.maxAttempts(), last.attempt());
    last.result().completeExceptionally(queueFull());
    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertEquals(ErrorCode.UNAVAILABLE, failed.error().code());
    assertEquals(SETTINGS.maxAttempts(), failed.attempts());
  }

  @Test
  void aBackgroundTaskWaitingForRoomTimesOutAtItsDeadlineNotBefore() {
    Instant deadline = clock.instant().plusSeconds(20);
    submitBackground(deadline);
    // waits of 1, 2, 4, 8 s: the fifth (8 s, from t = 15 s) would end past the deadline
    for (int n = 1; n <= 4; n++) {
      queueFullNow();
      pass(deferralWait(n));
    }
    queueFullNow();
    assertEquals(Duration.ofSeconds(15), Duration.between(deadline.minusSeconds(20), clock.instant()));
    pass(Duration.ofMillis(4999));
    assertEquals(TaskStatus.RUNNING, kit.getState().status());
    assertTrue(runner.idle());
    pass(Duration.ofMillis(1));
    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertEquals(ErrorCode.TIMEOUT, failed.error().code());
    assertEquals(1, failed.attempts());
    assertTrue(failed.error().message().contains("waited for a model runner with room"), failed.error().message());
    assertTrue(runner.idle());
  }

  @Test
  void aBackgroundTaskSpendsAttemptsOnRealFailures() {
    submitBackground(null);
    queueFullNow();
    pass(deferralWait(1));
    runner.next().result().completeExceptionally(transient503());
    awaitStatus(TaskStatus.RETRY_SCHEDULED);
    pass(SETTINGS.backoff().max());
    assertEquals(2, runner.next().attempt());
  }

  @Test
  void deadlineFailsTheTaskAndAbortsTheAttempt() {
    submit(chat(false), clock.instant().plusSeconds(3));
    ScriptedRunner.Call hanging = runner.next();
    pass(Duration.ofSeconds(3));
    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertEquals(ErrorCode.TIMEOUT, failed.error().code());
    assertTrue(hanging.cancelled().get());
    hanging.result().complete(result("too late"));
    assertEquals(TaskStatus.FAILED, kit.getState().status());
  }

  @Test
  void aRetryThatWouldMissTheDeadlineIsNotScheduled() {
    submit(chat(false), clock.instant().plusMillis(800));
    runner.next().result().completeExceptionally(transient503());
    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertEquals(ErrorCode.UPSTREAM_ERROR, failed.error().code());
    assertEquals(1, failed.attempts());
  }

  @Test
  void aDeadlineInThePastIsRejected() {
    var reply = submit(chat(false), clock.instant().minusSeconds(1));
    assertTrue(reply.hasNoEvents());
    assertEquals(ErrorCode.TIMEOUT, ((TaskReply.Rejected) reply.reply()).error().code());
  }

  @Test
  void cancelDuringAnAttemptAbortsItAndIgnoresItsLateResult() {
    submit(chat(false), null);
    ScriptedRunner.Call call = runner.next();
    var cancelled = kit.<TaskReply>runCommand(r -> new Cancel("alice", r));
    assertEquals(TaskStatus.CANCELLED, ((TaskReply.Ok) cancelled.reply()).view().status());
    assertTrue(call.cancelled().get());
    call.result().complete(result("late"));
    assertEquals(TaskStatus.CANCELLED, kit.getState().status());
    assertNull(kit.getState().result());
    // cancelling again is harmless and changes nothing
    var again = kit.<TaskReply>runCommand(r -> new Cancel("alice", r));
    assertTrue(again.hasNoEvents());
  }

  @Test
  void cancelDuringBackoffStopsTheRetry() {
    submit(chat(false), null);
    runner.next().result().completeExceptionally(transient503());
    awaitStatus(TaskStatus.RETRY_SCHEDULED);
    kit.<TaskReply>runCommand(r -> new Cancel("alice", r));
    pass(Duration.ofSeconds(5));
    assertEquals(TaskStatus.CANCELLED, kit.getState().status());
    assertTrue(runner.idle());
  }

  @Test
  void theTraceOfTheSubmissionSurvivesARestartAndReachesEveryAttempt() {
    dev.mcpstack.shared.TraceContext trace =
        new dev.mcpstack.shared.TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", null, "req-7");
    kit.<TaskReply>runCommand(
        r -> new Submit(chat(false), "alice", null, null, null, TaskRetention.STANDARD, true, null, null, r, false, trace));
    assertEquals(trace, runner.next().trace());
    kit.restart(); // a fail-over: the attempt in flight is lost, the next one continues the trace
    assertEquals(trace, kit.getState().trace());
    ScriptedRunner.Call resumed = runner.next();
    assertEquals(2, resumed.attempt());
    assertEquals(trace, resumed.trace());
    resumed.result().complete(result("resumed"));
  }

  @Test
  void aTaskSubmittedWithoutATraceStillGivesItsAttemptsOne() {
    submit(chat(false), null);
    dev.mcpstack.shared.TraceContext own = runner.next().trace();
    org.junit.jupiter.api.Assertions.assertNotNull(own);
    assertTrue(dev.mcpstack.shared.TraceContext.valid(own.traceparent()), own.traceparent());
  }

  @Test
  void recoveryMidAttemptStartsANewAttempt() {
    submit(chat(false), null);
    runner.next(); // in flight when the "node" restarts
    kit.restart();
    ScriptedRunner.Call resumed = runner.next();
    assertEquals(2, resumed.attempt());
    resumed.result().complete(result("resumed"));
    TestProbe<Object> probe = testKit.createTestProbe();
    probe.awaitAssert(
        () -> {
          assertEquals(TaskStatus.SUCCEEDED, kit.getState().status());
          return null;
        });
    assertEquals(2, kit.getState().attempts());
  }

  @Test
  void recoveryWithARetryScheduledRearmsTheTimer() {
    submit(chat(false), null);
    runner.next().result().completeExceptionally(transient503());
    awaitStatus(TaskStatus.RETRY_SCHEDULED);
    pass(Duration.ofMillis(400));
    var restarted = kit.restart();
    assertEquals(TaskStatus.RETRY_SCHEDULED, restarted.state().status());
    // the entity re-arms its timer on a message to itself after recovery: let it run first
    assertEquals(TaskStatus.RETRY_SCHEDULED, kit.getState().status());
    pass(Duration.ofMillis(599));
    assertEquals(TaskStatus.RETRY_SCHEDULED, kit.getState().status());
    pass(Duration.ofMillis(1));
    assertEquals(2, runner.next().attempt());
  }

  @Test
  void submitIsIdempotentForTheSameSpecAndRejectsADifferentOne() {
    var first = submit(chat(false), null);
    var again = submit(chat(false), null);
    assertTrue(again.hasNoEvents());
    assertEquals(
        ((TaskReply.Ok) first.reply()).view().id(), ((TaskReply.Ok) again.reply()).view().id());
    var other = submit(chat(true), null);
    assertEquals(ErrorCode.CONFLICT, ((TaskReply.Rejected) other.reply()).error().code());
    runner.next();
    assertTrue(runner.idle());
  }

  @Test
  void anotherOwnerCannotSeeOrCancelTheTask() {
    submit(chat(false), null);
    var got = kit.<TaskReply>runCommand(r -> new Get("mallory", r));
    assertEquals(ErrorCode.NOT_FOUND, ((TaskReply.Rejected) got.reply()).error().code());
    var cancel = kit.<TaskReply>runCommand(r -> new Cancel("mallory", r));
    assertEquals(ErrorCode.NOT_FOUND, ((TaskReply.Rejected) cancel.reply()).error().code());
    assertTrue(cancel.hasNoEvents());
  }

  @Test
  void operatorsCanInspectAnyOwnersTask() {
    submit(chat(false), null);
    var inspected = kit.<TaskReply>runCommand(r -> new TaskProtocol.Inspect(r));
    assertEquals("alice", ((TaskReply.Ok) inspected.reply()).view().owner());
  }

  @Test
  void aTaskInMemoryKeepsItsEventsOnlyWhileItsEntityLives() {
    String id = "chatcmpl-m" + UUID.randomUUID().toString().replace("-", "");
    String persistenceId = TaskProtocol.MEMORY_TYPE_KEY.name() + "|" + id;
    MemoryJournal.Events kept = MemoryJournal.Events.get(testKit.system());
    TestProbe<TaskReply> replies = testKit.createTestProbe();
    var entity =
        testKit.spawn(
            TaskEntity.create(
                id, TaskEntity.Durability.MEMORY, SETTINGS, runner, clock, () -> 1.0, null, (state, recovered) -> {}));
    entity.tell(new Submit(chat(false), "alice", null, true, replies.ref()));
    follow(replies.receiveMessage(), updates);
    assertTrue(kept.has(persistenceId), "the submission is in this JVM's memory");

    runner.next().result().complete(result("hello"));
    assertEquals("hello", awaitStatus(TaskStatus.SUCCEEDED).view().result().body().at("/choices/0/message/content").asText());
    replies.expectNoMessage(Duration.ZERO);
    TestProbe<Object> watcher = testKit.createTestProbe();
    pass(SETTINGS.memoryPassivateFinishedAfter());
    watcher.expectTerminated(entity, Duration.ofSeconds(10));
    assertFalse(kept.has(persistenceId), "a stopped task leaves nothing in memory");

    // the same id again (what a restart on another node would see): nothing is known of it
    var again =
        testKit.spawn(
            TaskEntity.create(
                id, TaskEntity.Durability.MEMORY, SETTINGS, runner, clock, () -> 1.0, null, (state, recovered) -> {}));
    again.tell(new Get("alice", replies.ref()));
    assertEquals(ErrorCode.NOT_FOUND, ((TaskReply.Rejected) replies.receiveMessage()).error().code());
  }

  @Test
  void followersOfATaskWithoutDeltasSeeItsStatusChangesAndBreakWhenItsEntityStops() {
    TestProbe<TaskReply> replies = testKit.createTestProbe();
    var entity =
        testKit.spawn(
            TaskEntity.create(
                "task-" + UUID.randomUUID(), TaskEntity.Durability.MEMORY, SETTINGS, runner, clock, () -> 1.0, null,
                (state, recovered) -> {}));
    entity.tell(new Submit(chat(false), "alice", null, true, replies.ref()));
    var follower =
        ((TaskReply.Ok) replies.receiveMessage())
            .updates()
            .getSource()
            .runWith(org.apache.pekko.stream.testkit.javadsl.TestSink.probe(testKit.system().classicSystem()), testKit.system());
    follower.request(10);
    assertEquals(TaskStatus.RUNNING, ((TaskUpdate.StatusChanged) follower.expectNext()).view().status());

    // a retry: the follower sees it
    runner.next().result().completeExceptionally(transient503());
    assertEquals(TaskStatus.RETRY_SCHEDULED, ((TaskUpdate.StatusChanged) follower.expectNext()).view().status());

    // the entity stops (passivated, rebalanced): the stream breaks, so its follower follows again
    testKit.stop(entity);
    follower.expectError();
  }

  @Test
  void anUnknownTaskIsNotFound() {
    var got = kit.<TaskReply>runCommand(r -> new Get("alice", r));
    assertEquals(ErrorCode.NOT_FOUND, ((TaskReply.Rejected) got.reply()).error().code());
  }

  @Test
  void streamedDeltasReachSubscribersInOrder() {
    TestProbe<TaskUpdate> late = testKit.createTestProbe();
    submit(chat(true), null);
    ScriptedRunner.Call call = runner.next();
    kit.<TaskReply>runCommand(r -> new Subscribe("alice", late.ref(), r));
    assertEquals(TaskStatus.RUNNING, ((TaskUpdate.StatusChanged) late.receiveMessage()).view().status());
    ScriptedRunner.emit(call, ScriptedRunner.textChoices("Hel", null));
    ScriptedRunner.emit(call, ScriptedRunner.textChoices("lo", "stop"));
    awaitDelta(updates, "Hel");
    awaitDelta(updates, "lo");
    awaitDelta(late, "Hel");
    call.result().complete(result("Hello"));
    awaitStatus(TaskStatus.SUCCEEDED);
  }

  @Test
  void deltasReachSubscribersAsTheRunnerSentThem() throws Exception {
    submit(chat(true), null);
    ScriptedRunner.Call call = runner.next();
    JsonNode choices =
        new ObjectMapper()
            .readTree(
                "[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\",\"tool_calls\":[{\"index\":1,"
                    + "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]},"
                    + "\"logprobs\":null,\"finish_reason\":null},"
                    + "{\"index\":1,\"delta\":{\"content\":\"other\"},\"finish_reason\":\"stop\"}]");
    ScriptedRunner.emit(call, choices);
    while (true) {
      TaskUpdate u = updates.receiveMessage(Duration.ofSeconds(10));
      if (u instanceof TaskUpdate.ContentDelta d) {
        assertEquals(choices, d.choices());
        assertEquals("", d.content(), "choice 0 has no text");
        assertNull(d.finishReason(), "choice 0 has not finished");
        break;
      }
    }
    call.result().complete(result("x"));
    awaitStatus(TaskStatus.SUCCEEDED);
  }

  private static void awaitDelta(TestProbe<TaskUpdate> probe, String content) {
    while (true) {
      TaskUpdate u = probe.receiveMessage(Duration.ofSeconds(10));
      if (u instanceof TaskUpdate.ContentDelta d) {
        assertEquals(content, d.content());
        return;
      }
    }
  }

  @Test
  void aStreamThatFailsAfterPartialOutputIsNotRetried() {
    submit(chat(true), null);
    ScriptedRunner.Call call = runner.next();
    ScriptedRunner.emit(call, ScriptedRunner.textChoices("Hel", null));
    awaitDelta(updates, "Hel");
    call.result().completeExceptionally(transient503());
    var failed = awaitStatus(TaskStatus.FAILED).view();
    assertTrue(failed.error().message().contains("partial output"), failed.error().message());
    assertTrue(runner.idle());
  }

  @Test
  void theFailedAttemptIsRecordedWithItsReason() {
    submit(chat(false), null);
    runner.next().result().completeExceptionally(transient503());
    awaitStatus(TaskStatus.RETRY_SCHEDULED);
    var state = kit.getState();
    assertEquals(1, state.attempts());
    assertEquals("runner answered 503", state.error().message());
    pass(Duration.ofSeconds(1));
    assertEquals(2, runner.next().attempt());
  }

  @Test
  void theFirstDeltaIsRecordedBeforeItIsRelayed() {
    submit(chat(true), null);
    ScriptedRunner.Call call = runner.next();
    assertEquals(0, kit.getState().outputAttempt());
    ScriptedRunner.emit(call, ScriptedRunner.textChoices("Hel", null));
    // emit returned: the delta was accepted, so the event that says so is already written
    assertEquals(1, kit.getState().outputAttempt());
    assertTrue(kit.getState().outputSent());
    awaitDelta(updates, "Hel");
  }

  @Test
  void aStreamRecoveredAfterPartialOutputEndsWithAnErrorInsteadOfRunningAgain() {
    submit(chat(true), null);
    ScriptedRunner.Call call = runner.next();
    ScriptedRunner.emit(call, ScriptedRunner.textChoices("Hel", null));
    kit.restart(); // the worker died mid-stream; the task comes back elsewhere
    TestProbe<Object> probe = testKit.createTestProbe();
    probe.awaitAssert(
        () -> {
          assertEquals(TaskStatus.FAILED, kit.getState().status());
          return null;
        });
    assertTrue(kit.getState().error().message().contains("partial output"), kit.getState().error().message());
    assertEquals(1, kit.getState().attempts(), "no second attempt");
    assertTrue(runner.idle());
  }

  @Test
  void aStreamRecoveredBeforeAnyOutputContinuesTransparently() {
    submit(chat(true), null);
    runner.next(); // no delta yet
    kit.restart();
    ScriptedRunner.Call resumed = runner.next();
    assertEquals(2, resumed.attempt());
    TestProbe<TaskUpdate> follower = testKit.createTestProbe();
    follow(kit.<TaskReply>runCommand(r -> new TaskProtocol.Follow("alice", r)).reply(), follower);
    ScriptedRunner.emit(resumed, ScriptedRunner.textChoices("Hi", "stop"));
    awaitDelta(follower, "Hi");
    resumed.result().complete(result("Hi"));
    while (true) {
      TaskUpdate u = follower.receiveMessage(Duration.ofSeconds(10));
      if (u instanceof TaskUpdate.StatusChanged sc && sc.view().status().isTerminal()) {
        assertEquals(TaskStatus.SUCCEEDED, sc.view().status());
        break;
      }
    }
  }

  @Test
  void aStreamWhoseLastFollowerLeavesAfterPartialOutputFailsAndStopsTheCall() {
    var reader = submitStreamedWithReader();
    reader.request(100);
    ScriptedRunner.Call call = runner.next();
    ScriptedRunner.emit(call, ScriptedRunner.textChoices("Hel", null));
    reader.cancel(); // the client went away
    TestProbe<Object> probe = testKit.createTestProbe();
    probe.awaitAssert(
        () -> {
          assertEquals(TaskStatus.FAILED, kit.getState().status());
          return null;
        });
    assertTrue(call.cancelled().get(), "the runner's call is aborted");
  }

  @Test
  void aStreamWithoutFollowersBeforeOutputIsCancelledAfterTheOrphanTimeout() {
    var reader = submitStreamedWithReader();
    ScriptedRunner.Call call = runner.next();
    reader.request(1);
    reader.expectNext(Duration.ofSeconds(10));
    reader.cancel(); // the client went away before the first delta
    TestProbe<Object> probe = testKit.createTestProbe();
    // a follower may come back within the orphan timeout (its api-node re-follows after a fail-over)
    probe.awaitAssert(
        Duration.ofSeconds(20),
        () -> {
          pass(Duration.ofSeconds(1));
          assertEquals(TaskStatus.CANCELLED, kit.getState().status());
          return null;
        });
    assertTrue(clock.instant().isAfter(Instant.parse("2026-01-01T00:00:29Z")), "not before the orphan timeout");
    assertTrue(call.cancelled().get());
  }

  @Test
  void aSlowFollowerHoldsTheRunnersStreamBack() {
    var reader = submitStreamedWithReader();
    ScriptedRunner.Call call = runner.next();
    reader.request(1);
    // the follower reads nothing more: deltas are taken until the buffers are full, then no more
    int accepted = 0;
    java.util.concurrent.CompletableFuture<org.apache.pekko.Done> pending = null;
    while (accepted < 1000) {
      pending = call.output().emit(ScriptedRunner.textChoices("x", null)).toCompletableFuture();
      try {
        pending.get(2, java.util.concurrent.TimeUnit.SECONDS);
      } catch (java.util.concurrent.TimeoutException e) {
        break;
      } catch (Exception e) {
        throw new AssertionError(e);
      }
      accepted++;
    }
    // queue 32 + broadcast 32 + a batch of 16 + the stream ref's window of 32 batches of 16
    assertTrue(accepted < 700, "deltas held for a follower that does not read: " + accepted);
    assertTrue(accepted >= 32, "the buffers take some: " + accepted);
    reader.request(1000);
    pending.orTimeout(10, java.util.concurrent.TimeUnit.SECONDS).join(); // reading on lets the runner go on
  }

  @Test
  void aResultTooBigForOneMessageTravelsAsChunks() {
    submit(chat(false), null);
    ObjectNode body = JSON.createObjectNode().put("object", "chat.completion");
    body.putArray("choices").addObject().putObject("message").put("content", "y".repeat(300_000));
    runner.next().result().complete(new TaskResult(body, new Usage(1, 2, 3), "sim"));
    TaskUpdate.StatusChanged done = awaitStatus(TaskStatus.SUCCEEDED);
    assertTrue(done.view().result().body().isNull(), "not inline");
    JsonNode read =
        dev.mcpstack.shared.LargeJson.read(done.resultChunks(), org.apache.pekko.stream.Materializer.matFromSystem(testKit.system()))
            .toCompletableFuture()
            .orTimeout(10, java.util.concurrent.TimeUnit.SECONDS)
            .join();
    assertEquals(body, read);
    TaskReply.Ok got = (TaskReply.Ok) kit.<TaskReply>runCommand(r -> new Get("alice", r)).reply();
    assertTrue(got.view().result().body().isNull());
    assertEquals(
        body,
        dev.mcpstack.shared.LargeJson.read(got.resultChunks(), org.apache.pekko.stream.Materializer.matFromSystem(testKit.system()))
            .toCompletableFuture()
            .orTimeout(10, java.util.concurrent.TimeUnit.SECONDS)
            .join());
  }
}
