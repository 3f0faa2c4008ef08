package dev.mcpstack.worker.task;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskProtocol.Command;
import dev.mcpstack.shared.TaskProtocol.Submit;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.testkit.MutableClock;
import dev.mcpstack.worker.testkit.ScriptedRunner;
import java.time.Duration;
import java.time.Instant;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** A worker holds at most mcp.worker.tasks.max-active unfinished tasks; recovered ones always count. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ActiveTasksTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final ActorTestKit testKit =
      ActorTestKit.create(
          ConfigFactory.parseString("mcp.worker.tasks.max-active = 2").withFallback(EventSourcedBehaviorTestKit.config()));
  private final MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
  private final ScriptedRunner runner = new ScriptedRunner();

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private EventSourcedBehaviorTestKit<Command, TaskEntity.Event, TaskState> entity(String id) {
    return EventSourcedBehaviorTestKit.create(
        testKit.system(), TaskEntity.create(id, TaskEntityTest.SETTINGS, runner, clock, () -> 1.0, null));
  }

  private static TaskReply submit(EventSourcedBehaviorTestKit<Command, TaskEntity.Event, TaskState> kit) {
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, "m", JSON.createObjectNode().put("model", "m"));
    return kit.<TaskReply>runCommand(replyTo -> new Submit(spec, "alice", null, false, replyTo)).reply();
  }

  @Test
  void refusesNewTasksAtTheBoundAndTakesThemAgainOnceOneEnds() {
    ActiveTasks active = ActiveTasks.get(testKit.system());
    var first = entity("task-a");
    var second = entity("task-b");
    assertInstanceOf(TaskReply.Ok.class, submit(first));
    assertInstanceOf(TaskReply.Ok.class, submit(second));
    assertEquals(2, active.count());

    TaskReply.Rejected full = assertInstanceOf(TaskReply.Rejected.class, submit(entity("task-c")));
    assertEquals(ErrorCode.UNAVAILABLE, full.error().code());
    assertEquals(2, active.count(), "a refused task takes no place");

    ScriptedRunner.Call call = runner.next();
    runner.next();
    call.result().complete(new TaskResult(JSON.createObjectNode(), Usage.ZERO, "sim"));
    testKit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
      assertEquals(1, active.count(), "a finished task frees its place");
      return null;
    });
    assertInstanceOf(TaskReply.Ok.class, submit(entity("task-d")));
    assertEquals(2, active.count());

    second.<TaskReply>runCommand(r -> new dev.mcpstack.shared.TaskProtocol.Cancel("alice", r));
    testKit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
      assertEquals(1, active.count());
      return null;
    });
  }

  @Test
  void aRecoveredUnfinishedTaskTakesItsPlaceAgain() {
    ActiveTasks active = ActiveTasks.get(testKit.system());
    // (the test kit clears its journal whenever a kit is created: one kit here)
    var task = entity("task-recovered");
    int before = active.count();
    assertInstanceOf(TaskReply.Ok.class, submit(task));
    assertEquals(before + 1, active.count());
    task.restart();
    testKit.createTestProbe().awaitAssert(Duration.ofSeconds(10), () -> {
      assertEquals(before + 1, active.count(), "the stopped incarnation gave its place back, the recovered one took it");
      return null;
    });
    task.<TaskReply>runCommand(r -> new dev.mcpstack.shared.TaskProtocol.Cancel("alice", r));
    assertEquals(before, active.count(), "cancelled: its place is free for the other test");
  }
}
