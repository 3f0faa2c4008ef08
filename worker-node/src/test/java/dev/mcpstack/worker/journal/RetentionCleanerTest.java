package dev.mcpstack.worker.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskRetention;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.task.TaskEntity;
import dev.mcpstack.worker.task.TaskSettings;
import dev.mcpstack.worker.testkit.MutableClock;
import dev.mcpstack.worker.testkit.ScriptedRunner;
import dev.mcpstack.worker.testkit.TestNode;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.UUID;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The two retentions on a real H2 database and a real PostgreSQL server: a transient task (a
 * synchronous chat) is deleted, events and snapshots, {@code transient-after} after it ended; a
 * standard one (an async task, a stored chat) stays until {@code finished-after}; a task still
 * running is never deleted. The cleaner's clock is moved by hand.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RetentionCleanerTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private EmbeddedPostgres postgres;

  @BeforeAll
  void start() throws Exception {
    postgres = EmbeddedPostgres.builder().start();
  }

  @AfterAll
  void stop() throws Exception {
    postgres.close();
  }

  @Test
  void h2DeletesTransientTasksFirst() {
    transientTasksGoFirst("jdbc:h2:mem:retention-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1", "sa", "");
  }

  @Test
  void postgresDeletesTransientTasksFirst() {
    transientTasksGoFirst(postgres.getJdbcUrl("postgres", "postgres"), "postgres", "postgres");
  }

  @Test
  void thePeriodicCleanerDeletesWithoutBeingAsked() {
    Config config =
        config(
            "jdbc:h2:mem:retention-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1",
            "sa",
            "",
            Map.of("mcp.worker.retention.transient-after", "0s", "mcp.worker.retention.interval", "50ms"));
    ActorTestKit kit = ActorTestKit.create("retention-periodic", config);
    try {
      ScriptedRunner runner = new ScriptedRunner();
      String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
      runToEnd(kit, config, runner, id, TaskRetention.TRANSIENT);
      assertTrue(TestNode.journalRows(config, "event_journal", id) > 0);
      kit.spawn(RetentionCleaner.periodic(config));
      kit.createTestProbe()
          .awaitAssert(
              Duration.ofSeconds(10),
              () -> {
                assertEquals(0, TestNode.journalRows(config, "event_journal", id));
                return null;
              });
    } finally {
      kit.shutdownTestKit();
    }
  }

  private void transientTasksGoFirst(String url, String user, String password) {
    Config config = config(url, user, password, Map.of());
    ActorTestKit kit = ActorTestKit.create("retention", config);
    try {
      ScriptedRunner runner = new ScriptedRunner();
      String sync = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
      String async = "task-" + UUID.randomUUID().toString().replace("-", "");
      String running = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
      runToEnd(kit, config, runner, sync, TaskRetention.TRANSIENT);
      runToEnd(kit, config, runner, async, TaskRetention.STANDARD);
      submit(kit, config, runner, running, TaskRetention.TRANSIENT);
      runner.next(); // its attempt never ends
      TestProbe<Object> probe = kit.createTestProbe();
      for (String id : new String[] {sync, async}) {
        probe.awaitAssert(
            () -> {
              assertTrue(TestNode.journalRows(config, "snapshot", id) > 0, "snapshot of " + id);
              return null;
            });
      }

      MutableClock clock = new MutableClock(Instant.now());
      RetentionCleaner cleaner = new RetentionCleaner(config, clock);
      assertEquals(0, cleaner.cleanAll(), "nothing ended 15 minutes ago");
      assertTrue(TestNode.journalRows(config, "event_journal", sync) > 0);

      clock.advance(Duration.ofMinutes(15).plusSeconds(1));
      assertEquals(1, cleaner.cleanAll(), "the transient task, 15 minutes after it ended");
      assertEquals(0, TestNode.journalRows(config, "event_journal", sync));
      assertEquals(0, TestNode.journalRows(config, "snapshot", sync));
      assertTrue(TestNode.journalRows(config, "event_journal", async) > 0, "the async task stays");
      assertTrue(TestNode.journalRows(config, "snapshot", async) > 0);
      assertTrue(TestNode.journalRows(config, "event_journal", running) > 0, "a running task stays");

      clock.advance(Duration.ofDays(7));
      assertEquals(1, cleaner.cleanAll(), "the async task, 7 days after it ended");
      assertEquals(0, TestNode.journalRows(config, "event_journal", async));
      assertEquals(0, TestNode.journalRows(config, "snapshot", async));
      assertTrue(TestNode.journalRows(config, "event_journal", running) > 0, "a running task stays");
      assertEquals(0, cleaner.cleanAll());
    } finally {
      kit.shutdownTestKit();
    }
  }

  private static Config config(String url, String user, String password, Map<String, Object> extra) {
    Config config =
        Journal.configure(
            TestNode.config(
                "http://127.0.0.1:9/v1",
                ConfigFactory.parseMap(extra)
                    .withFallback(
                        ConfigFactory.parseMap(
                            Map.of(
                                "mcp.journal.url", url,
                                "mcp.journal.user", user,
                                "mcp.journal.password", password,
                                "pekko.actor.provider", "local",
                                // a snapshot after the submission, so there is one to delete
                                "mcp.worker.tasks.snapshot-every", 2,
                                "mcp.worker.retention.finished-after", "7d",
                                "mcp.worker.retention.transient-after", "15m")))));
    Journal.ensureSchema(config);
    return config;
  }

  private static ActorRef<TaskProtocol.Command> submit(
      ActorTestKit kit, Config config, ScriptedRunner runner, String id, TaskRetention retention) {
    ActorRef<TaskProtocol.Command> task =
        kit.spawn(
            TaskEntity.create(
                id, TaskSettings.fromConfig(config), runner, Clock.systemUTC(), () -> 1.0, null));
    ObjectNode request = JSON.createObjectNode().put("model", "m");
    request.putArray("messages").addObject().put("role", "user").put("content", "secret prompt");
    TestProbe<TaskReply> reply = kit.createTestProbe();
    task.tell(
        new TaskProtocol.Submit(
            new TaskSpec(TaskKind.CHAT, "m", request), "alice", null, null, null, retention, false, null, null, reply.ref()));
    // the first write of a fresh journal (schema, connection pool) can take seconds on a busy machine
    assertEquals(TaskStatus.RUNNING, ((TaskReply.Ok) reply.receiveMessage(Duration.ofSeconds(30))).view().status());
    return task;
  }

  private static void runToEnd(
      ActorTestKit kit, Config config, ScriptedRunner runner, String id, TaskRetention retention) {
    ActorRef<TaskProtocol.Command> task = submit(kit, config, runner, id, retention);
    ObjectNode body = JSON.createObjectNode().put("object", "chat.completion");
    body.putArray("choices").addObject().putObject("message").put("content", "secret answer");
    runner.next().result().complete(new TaskResult(body, new Usage(1, 2, 3), "sim"));
    TestProbe<TaskReply> reply = kit.createTestProbe();
    reply.awaitAssert(
        () -> {
          task.tell(new TaskProtocol.Get("alice", reply.ref()));
          assertEquals(TaskStatus.SUCCEEDED, ((TaskReply.Ok) reply.receiveMessage()).view().status());
          return null;
        });
  }
}
