package dev.mcpstack.worker.task;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.CacheProtocol;
import dev.mcpstack.worker.keys.KeyAccount;
import dev.mcpstack.shared.AccountProtocol;
import java.time.LocalDate;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.KeyProtocol;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.worker.keys.KeyRegistry;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskRetention;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.shared.WorkerInfoProtocol;
import dev.mcpstack.worker.testkit.ScriptedRunner;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.Serializers;
import org.apache.pekko.serialization.jackson.JacksonObjectMapperProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every message, event and state round-trips through the configured (Jackson CBOR) serializer. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SerializationTest {
  private static final ActorTestKit testKit = ActorTestKit.create();

  @AfterAll
  void stop() {
    testKit.shutdownTestKit();
  }

  static Stream<Object> messages() {
    ObjectMapper json = new ObjectMapper();
    ObjectNode request = json.createObjectNode().put("model", "m").put("stream", true);
    request.putArray("messages").addObject().put("role", "user").put("content", "hi");
    request.putObject("response_format").put("type", "json_object");
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, "m", request);
    Instant t = Instant.parse("2026-11-28T10:15:30.123Z");
    TaskError error = new TaskError(ErrorCode.UPSTREAM_ERROR, "boom", 503);
    ObjectNode body = json.createObjectNode().put("object", "chat.completion");
    TaskResult result = new TaskResult(body, new Usage(1, 2, 3), "sim");
    TaskView view =
        new TaskView("task-1", TaskKind.CHAT, "m", "alice", TaskStatus.RETRY_SCHEDULED, 2, t, t, t, t, result, error);
    TestProbe<TaskReply> replies = testKit.createTestProbe();
    TestProbe<TaskUpdate> updates = testKit.createTestProbe();
    TestProbe<WorkerInfoProtocol.ModelList> models = testKit.createTestProbe();
    TestProbe<WorkerInfoProtocol.WorkerHealth> health = testKit.createTestProbe();
    TestProbe<WorkerInfoProtocol.UpstreamList> upstreams = testKit.createTestProbe();
    TestProbe<WorkerInfoProtocol.NodeShards> shards = testKit.createTestProbe();
    TestProbe<KeyProtocol.Reply> keyReplies = testKit.createTestProbe();
    TestProbe<LimiterProtocol.Decision> decisions = testKit.createTestProbe();
    TestProbe<org.apache.pekko.Done> done = testKit.createTestProbe();
    TestProbe<LimiterProtocol.Command> limiterRefs = testKit.createTestProbe();
    TestProbe<AccountProtocol.UsageReport> usage = testKit.createTestProbe();
    TestProbe<CacheProtocol.Found> found = testKit.createTestProbe();
    AccountProtocol.UsageLine line = new AccountProtocol.UsageLine(LocalDate.of(2026, 11, 28), "m", 3, 10, 20, 42);
    KeyLimits limits = new KeyLimits(60, 10_000, 4, 10);
    ApiKey key = new ApiKey("k1", "acme", "ci", "ab".repeat(32), limits, List.of("m"), t, null, null, 3, false);
    LimiterProtocol.Standing standing = new LimiterProtocol.Standing(60, 59, 1000, 10_000, 9_000, 6000);
    TaskState state =
        new TaskState("task-1", spec, "alice", "k1", "hold-1", TaskStatus.SUCCEEDED, 3, t, t, t, null, result, null, 3);
    return Stream.of(
        new TaskProtocol.Submit(spec, "alice", t, true, replies.ref()),
        new TaskProtocol.Submit(spec, "alice", null, false, replies.ref()),
        new TaskProtocol.Submit(spec, "alice", "k1", "hold-1", t, null, false, null, null, replies.ref()),
        new TaskProtocol.Submit(spec, "alice", "k1", null, t, TaskRetention.TRANSIENT, false, null, updates.ref(), replies.ref()),
        new TaskProtocol.Submit(spec, "alice", "k1", "hold-1", null, TaskRetention.STANDARD, false, null, null, replies.ref(), true),
        new TaskProtocol.Submit(spec, "alice", "k1", null, t, TaskRetention.STANDARD, true, null, null, replies.ref(), false, TRACE),
        new TaskProtocol.Follow("alice", replies.ref()),
        key,
        new KeyProtocol.Create(key, keyReplies.ref()),
        new KeyProtocol.Update("k1", "renamed", limits, List.of("m"), false, keyReplies.ref()),
        new KeyProtocol.Update("k1", null, null, null, null, keyReplies.ref()),
        new KeyProtocol.Revoke("k1", keyReplies.ref()),
        new KeyProtocol.Rotate("k1", "k2", "cd".repeat(32), keyReplies.ref()),
        new KeyProtocol.Get("k1", keyReplies.ref()),
        new KeyProtocol.ChangesSince(3, keyReplies.ref()),
        new KeyProtocol.One(key),
        new KeyProtocol.Many(List.of(key, key.revokedAt(t, 5)), 5),
        new KeyProtocol.Rejected(error),
        new KeyRegistry.KeyCreated(key),
        new KeyRegistry.KeyUpdated("k1", null, limits, null, false),
        new KeyRegistry.KeyRevoked("k1", t),
        new CacheProtocol.Lookup("ab".repeat(32), "acme", found.ref()),
        new CacheProtocol.Store("ab".repeat(32), "acme", "{\"id\":\"chatcmpl-1\"}", new Usage(1, 2, 3)),
        new CacheProtocol.Store("ab".repeat(32), "acme", "{}", null),
        new CacheProtocol.Found("{\"id\":\"chatcmpl-1\"}", new Usage(1, 2, 3)),
        CacheProtocol.Found.MISS,
        new KeyRegistry.State(java.util.Map.of("k1", key), 4),
        new LimiterProtocol.Acquire("task-1/h1", "task-1", LimiterProtocol.HoldKind.REQUEST, 120, limits, t, decisions.ref()),
        new LimiterProtocol.Acquire("task-2/h2", "task-2", LimiterProtocol.HoldKind.TASK, 0, KeyLimits.UNLIMITED, null, decisions.ref()),
        new LimiterProtocol.Release("task-1", 42),
        new LimiterProtocol.Granted(standing, false),
        new LimiterProtocol.Granted(standing, true),
        new LimiterProtocol.Denied("too many", 1500, false, standing),
        new LimiterProtocol.Denied("spent", 0, true, standing),
        new KeyLimits(1, 2, 3, 4, new Budget(5_000_000, Budget.Period.MONTH, 0.8)),
        new AccountProtocol.RecordUsage("task-1", "m", new Usage(1, 2, 3), 42, t, done.ref()),
        new AccountProtocol.GetUsage(LocalDate.of(2026, 11, 1), LocalDate.of(2026, 11, 28), new Budget(1, Budget.Period.DAY, 0), usage.ref()),
        new AccountProtocol.GetUsage(LocalDate.of(2026, 11, 1), LocalDate.of(2026, 11, 28), null, usage.ref()),
        new AccountProtocol.UsageReport(List.of(line), 42, LocalDate.of(2026, 11, 1)),
        new AccountProtocol.UsageReport(List.of(), 0, null),
        new AccountProtocol.ReportSpend(limiterRefs.ref()),
        new LimiterProtocol.SpendChanged(java.util.Map.of(LocalDate.of(2026, 11, 28), 42L)),
        new ApiKey("k2", "acme", "rotated", "cd".repeat(32), limits, List.of(), t, null, "k1", 7, null),
        new KeyAccount.UsageRecorded("task-1", "m", LocalDate.of(2026, 11, 28), 1, 2, 42, t),
        new KeyAccount.State(java.util.Map.of("2026-11-28/m", line), java.util.Map.of("task-1", t)),
        new TaskProtocol.Get("alice", replies.ref()),
        new TaskProtocol.Cancel("alice", replies.ref()),
        new TaskProtocol.Inspect(replies.ref()),
        new TaskProtocol.Subscribe("alice", updates.ref(), replies.ref()),
        new TaskReply.Ok(view),
        new TaskReply.Ok(view, true),
        new TaskReply.Rejected(error),
        new TaskUpdate.StatusChanged(view),
        TaskUpdate.ContentDelta.of("task-1", 1, ScriptedRunner.textChoices("Hel", null)),
        TaskUpdate.ContentDelta.of("task-1", 1, ScriptedRunner.textChoices("lo", "stop")),
        TaskUpdate.ContentDelta.of("task-1", 1, toolCallChoices()),
        new TaskUpdate.ContentDelta("task-1", 1, "from an older node", "stop", null),
        new TaskEntity.TaskSubmitted(spec, "alice", "k1", "hold-1", t, t, TaskRetention.STANDARD),
        new TaskEntity.TaskSubmitted(spec, "alice", null, null, t, t, TaskRetention.TRANSIENT),
        new TaskEntity.TaskSubmitted(spec, "alice", "k1", "hold-1", t, t, TaskRetention.STANDARD, true),
        new TaskEntity.TaskSubmitted(spec, "alice", "k1", null, t, t, TaskRetention.STANDARD, false, TRACE),
        new TaskState("task-1", spec, "alice", null, null, TaskStatus.RUNNING, 1, t, t, t, null, null, null, 0, false, TRACE),
        new TaskEntity.AttemptStarted(1, t),
        new TaskEntity.AttemptFailed(1, error, true, t, t),
        new TaskEntity.AttemptFailed(2, error, false, null, t),
        new TaskEntity.TaskSucceeded(result, t),
        new TaskEntity.TaskFailed(error, t),
        new TaskEntity.TaskCancelled(t),
        new TaskEntity.AttemptSucceeded(1, result),
        new TaskEntity.AttemptErrored(1, error, true, Duration.ofSeconds(3), false),
        new TaskEntity.AttemptErrored(1, error, true, Duration.ofSeconds(1), true),
        new TaskEntity.RunDeferred(1),
        new TaskEntity.StartAttempt(2),
        new TaskUpdate.ContentDelta("task-1", 1, "x", null, ScriptedRunner.textChoices("x", null)),
        new TaskUpdate.Batch(
            "task-1",
            List.of(TaskUpdate.ContentDelta.of("task-1", 1, ScriptedRunner.textChoices("a", null)), new TaskUpdate.StatusChanged(view))),
        TaskUpdate.ContentDelta.of("task-1", 1, toolCallChoices()),
        new TaskEntity.OutputStarted(2, t),
        TaskEntity.DeadlineReached.INSTANCE,
        TaskEntity.ResumeAfterRecovery.INSTANCE,
        TaskEntity.PassivateFinished.INSTANCE,
        state,
        new TaskState("task-1", spec, "alice", null, null, TaskStatus.RUNNING, 1, t, t, t, null, null, null, 0, true, null),
        TaskState.blank("task-2"),
        new WorkerInfoProtocol.ListModels(models.ref()),
        new WorkerInfoProtocol.CheckHealth(health.ref()),
        new WorkerInfoProtocol.ModelList(
            List.of(new WorkerInfoProtocol.ModelInfo("m", "mcp-stack", List.of("sim")))),
        new WorkerInfoProtocol.WorkerHealth(true, 1, 2, ""),
        new WorkerInfoProtocol.ListUpstreams(upstreams.ref()),
        new WorkerInfoProtocol.ResetBreaker("sim", upstreams.ref()),
        new WorkerInfoProtocol.ListShards(shards.ref()),
        new WorkerInfoProtocol.NodeShards("pekko://mcp-stack@127.0.0.1:25520", 12, 345L),
        new WorkerInfoProtocol.UpstreamList(
            "pekko://mcp-stack@127.0.0.1:25520",
            List.of(
                new WorkerInfoProtocol.UpstreamStatus(
                    "sim", "http://127.0.0.1:12434/v1", List.of("m"), 0, 1, "open", 2, 3,
                    List.of(new WorkerInfoProtocol.RecentError(t, "upstream_error", "boom")),
                    "down", t, "no answer within 2000 ms"))));
  }

  /** A runner chunk's choices with everything a delta may carry: tool calls, reasoning, logprobs, two choices. */
  static JsonNode toolCallChoices() {
    try {
      return new ObjectMapper()
          .readTree(
              """
              [{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"think",
                 "tool_calls":[{"index":0,"id":"call_0","type":"function",
                                "function":{"name":"get_weather","arguments":"{\\"q\\":"}}]},
                "logprobs":{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[]}]},
                "finish_reason":null},
               {"index":1,"delta":{"refusal":"no"},"logprobs":null,"finish_reason":"stop"}]""");
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** A delta sent by a node that predates {@code choices} still reads, with its text. */
  @Test
  void aDeltaWithoutChoicesKeepsItsText() throws Exception {
    TaskUpdate.ContentDelta old =
        (TaskUpdate.ContentDelta)
            withoutField(TaskUpdate.ContentDelta.of("task-1", 1, ScriptedRunner.textChoices("Hel", "stop")), "choices");
    assertEquals(new TaskUpdate.ContentDelta("task-1", 1, "Hel", "stop", null), old);
  }

  @ParameterizedTest
  @MethodSource("messages")
  void roundTrips(Object message) {
    Object back = testKit.serializationTestKit().verifySerialization(message, false);
    assertEquals(message, back);
  }

  /**
   * Keys and key events written before the per-key cache switch existed: a key reads as allowed
   * to use the cache, an update as leaving the switch unchanged.
   */
  @Test
  void aKeyWithoutTheCacheSwitchMayUseTheCache() throws Exception {
    ApiKey key = new ApiKey("k1", "acme", "ci", "ab".repeat(32), KeyLimits.UNLIMITED, List.of(), null, null, null, 1, false);
    ApiKey old = (ApiKey) withoutField(key, "cache");
    assertTrue(old.cacheAllowed());
    assertFalse(key.cacheAllowed());
    KeyRegistry.KeyUpdated update = new KeyRegistry.KeyUpdated("k1", "n", null, null, false);
    assertEquals(new KeyRegistry.KeyUpdated("k1", "n", null, null, null), withoutField(update, "cache"));
    assertFalse(old.updated(null, null, null, false, 2).cacheAllowed());
    assertTrue(key.updated(null, null, null, null, 2).cacheAllowed() == key.cacheAllowed());
  }

  /** Events and commands written before retention existed read as the standard retention. */
  @Test
  void aMessageWithoutRetentionIsStandard() throws Exception {
    ObjectNode request = new ObjectMapper().createObjectNode().put("model", "m");
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, "m", request);
    Instant t = Instant.parse("2026-11-28T10:15:30Z");
    TestProbe<TaskReply> replies = testKit.createTestProbe();
    for (Object message :
        List.of(
            new TaskEntity.TaskSubmitted(spec, "alice", null, null, t, t, TaskRetention.TRANSIENT),
            new TaskProtocol.Submit(spec, "alice", null, null, t, TaskRetention.TRANSIENT, false, null, null, replies.ref()))) {
      assertEquals(TaskRetention.TRANSIENT, retentionOf(message));
      assertEquals(TaskRetention.STANDARD, retentionOf(withoutField(message, "retention")));
    }
  }

  /**
   * Events, commands and snapshots written before {@code background} existed read as not
   * background (a synchronous call's behaviour: a full runner queue is a failed attempt).
   */
  @Test
  void aMessageWithoutBackgroundIsNotBackground() throws Exception {
    ObjectNode request = new ObjectMapper().createObjectNode().put("model", "m");
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, "m", request);
    Instant t = Instant.parse("2026-11-28T10:15:30Z");
    TestProbe<TaskReply> replies = testKit.createTestProbe();
    List<Object> messages =
        List.of(
            new TaskEntity.TaskSubmitted(spec, "alice", null, null, t, t, TaskRetention.STANDARD, true),
            new TaskProtocol.Submit(spec, "alice", null, null, t, TaskRetention.STANDARD, false, null, null, replies.ref(), true),
            new TaskState("task-1", spec, "alice", null, null, TaskStatus.RUNNING, 1, t, t, t, null, null, null, 0, true, null));
    for (Object message : messages) {
      assertTrue(backgroundOf(message), message.toString());
      Object old = withoutField(message, "background");
      assertFalse(backgroundOf(old), old.toString());
    }
  }

  private static final dev.mcpstack.shared.TraceContext TRACE =
      new dev.mcpstack.shared.TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=abc", "req-1");

  /**
   * Events, commands and snapshots written before {@code trace} existed read with none (the task
   * then makes a trace of its own): a fail-over onto a newer worker still reads older tasks.
   */
  @Test
  void aMessageWithoutTraceHasNone() throws Exception {
    ObjectNode request = new ObjectMapper().createObjectNode().put("model", "m");
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, "m", request);
    Instant t = Instant.parse("2026-11-28T10:15:30Z");
    TestProbe<TaskReply> replies = testKit.createTestProbe();
    List<Object> messages =
        List.of(
            new TaskEntity.TaskSubmitted(spec, "alice", null, null, t, t, TaskRetention.STANDARD, false, TRACE),
            new TaskProtocol.Submit(spec, "alice", null, null, t, TaskRetention.STANDARD, false, null, null, replies.ref(), false, TRACE),
            new TaskState("task-1", spec, "alice", null, null, TaskStatus.RUNNING, 1, t, t, t, null, null, null, 0, false, TRACE));
    for (Object message : messages) {
      assertEquals(TRACE, traceOf(message), message.toString());
      Object old = withoutField(message, "trace");
      org.junit.jupiter.api.Assertions.assertNull(traceOf(old), old.toString());
    }
  }

  private static dev.mcpstack.shared.TraceContext traceOf(Object message) {
    if (message instanceof TaskEntity.TaskSubmitted submitted) {
      return submitted.trace();
    }
    if (message instanceof TaskState state) {
      return state.trace();
    }
    return ((TaskProtocol.Submit) message).trace();
  }

  private static boolean backgroundOf(Object message) {
    if (message instanceof TaskEntity.TaskSubmitted submitted) {
      return submitted.background();
    }
    if (message instanceof TaskState state) {
      return state.background();
    }
    return ((TaskProtocol.Submit) message).background();
  }

  private static TaskRetention retentionOf(Object message) {
    return message instanceof TaskEntity.TaskSubmitted submitted
        ? submitted.retention()
        : ((TaskProtocol.Submit) message).retention();
  }

  /** {@code message} as an older version wrote it, without {@code field}, read back. */
  private static Object withoutField(Object message, String field) throws Exception {
    Serialization serialization = SerializationExtension.get(testKit.system());
    Serializer serializer = serialization.findSerializerFor(message);
    String manifest = Serializers.manifestFor(serializer, message);
    ObjectMapper cbor =
        JacksonObjectMapperProvider.get(testKit.system()).getOrCreate("jackson-cbor", Optional.empty());
    JsonNode tree = cbor.readTree(serialization.serialize(message).get());
    assertTrue(tree.has(field), tree.toString());
    ((ObjectNode) tree).remove(field);
    return serialization
        .deserialize(cbor.writeValueAsBytes(tree), serializer.identifier(), manifest)
        .get();
  }
}
