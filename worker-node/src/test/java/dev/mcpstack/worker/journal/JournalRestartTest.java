package dev.mcpstack.worker.journal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskReply;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskView;
import dev.mcpstack.sim.Faults;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.SimulatorSettings;
import dev.mcpstack.worker.testkit.TestNode;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The journal on a real H2 file database and a real PostgreSQL server: tasks persist, the
 * ActorSystem is terminated, a new one starts on the same database, and finished tasks as well as
 * pending retries come back; the retention cleaner then deletes what has expired.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class JournalRestartTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final ActorTestKit simKit = ActorTestKit.create("journal-sim");
  private ModelRunnerSimulator sim;
  private EmbeddedPostgres postgres;
  private Path h2Dir;

  @BeforeAll
  void start() throws Exception {
    sim =
        ModelRunnerSimulator.start(
                simKit.system(),
                new SimulatorSettings("127.0.0.1", 0, List.of("sim-small"), 4, Faults.none()))
            .toCompletableFuture()
            .get(20, TimeUnit.SECONDS);
    postgres = EmbeddedPostgres.builder().start();
    h2Dir = Files.createTempDirectory("mcp-journal-test");
  }

  @AfterAll
  void stop() throws Exception {
    simKit.shutdownTestKit();
    postgres.close();
  }

  @Test
  void h2FileJournalSurvivesARestart() {
    restartKeepsTasks(
        "jdbc:h2:file:" + h2Dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_DELAY=-1", "sa", "");
  }

  @Test
  void postgresJournalSurvivesARestart() {
    restartKeepsTasks(postgres.getJdbcUrl("postgres", "postgres"), "postgres", "postgres");
  }

  private void restartKeepsTasks(String url, String user, String password) {
    sim.setDefaults(Faults.none());
    sim.reset();
    Config config =
        TestNode.config(
            sim.baseUrl() + "/v1",
            ConfigFactory.parseMap(
                Map.of(
                    "mcp.journal.url", url,
                    "mcp.journal.user", user,
                    "mcp.journal.password", password,
                    "mcp.worker.tasks.max-attempts", 50,
                    "mcp.worker.tasks.backoff.min", "300ms",
                    "mcp.worker.tasks.backoff.max", "300ms")));
    Journal.ensureSchema(Journal.configure(config)); // twice is harmless: the step is idempotent
    String done = "task-" + UUID.randomUUID();
    String pending = "task-" + UUID.randomUUID();

    ActorSystem<Void> first = TestNode.start("journal-a", config);
    try {
      TestNode.awaitUp(first);
      submit(first, done, "finish me");
      awaitStatus(first, done, TaskStatus.SUCCEEDED);
      sim.setDefaults(Faults.none().withFailStatus(503));
      submit(first, pending, "retry me");
      awaitStatus(first, pending, TaskStatus.RETRY_SCHEDULED);
    } finally {
      ActorTestKit.shutdown(first, Duration.ofSeconds(30));
    }

    sim.setDefaults(Faults.none());
    ActorSystem<Void> second = TestNode.start("journal-b", config);
    try {
      TestNode.awaitUp(second);
      TaskView finished = awaitStatus(second, done, TaskStatus.SUCCEEDED);
      assertEquals(
          "Simulated reply to: finish me",
          finished.result().body().at("/choices/0/message/content").asText());
      TaskView resumed = awaitStatus(second, pending, TaskStatus.SUCCEEDED);
      assertTrue(resumed.attempts() >= 2, "the pending retry ran after the restart");

      Config resolved = Journal.configure(config);
      assertTrue(TestNode.journalRows(resolved, "event_journal", done) > 0);
      RetentionCleaner cleaner =
          new RetentionCleaner(
              resolved, Clock.fixed(Instant.now().plus(Duration.ofDays(8)), ZoneOffset.UTC));
      assertTrue(cleaner.cleanOnce() >= 2);
      assertEquals(0, TestNode.journalRows(resolved, "event_journal", done));
      assertEquals(0, TestNode.journalRows(resolved, "event_journal", pending));
      RetentionCleaner notYet = new RetentionCleaner(resolved, Clock.systemUTC());
      assertEquals(0, notYet.cleanOnce(), "nothing finished 7 days ago");
    } finally {
      ActorTestKit.shutdown(second, Duration.ofSeconds(30));
    }
  }

  private static TaskView submit(ActorSystem<?> system, String id, String content) {
    ObjectNode request = JSON.createObjectNode().put("model", "sim-small");
    request.putArray("messages").addObject().put("role", "user").put("content", content);
    TestProbe<TaskReply> reply = TestProbe.create(system);
    ClusterSharding.get(system)
        .entityRefFor(TaskProtocol.TYPE_KEY, id)
        .tell(
            new TaskProtocol.Submit(
                new TaskSpec(TaskKind.CHAT, "sim-small", request), "alice", null, false, reply.ref()));
    return ((TaskReply.Ok) reply.receiveMessage(Duration.ofSeconds(20))).view();
  }

  private static TaskView awaitStatus(ActorSystem<?> system, String id, TaskStatus status) {
    TestProbe<TaskReply> reply = TestProbe.create(system);
    return reply.awaitAssert(
        Duration.ofSeconds(30),
        Duration.ofMillis(100),
        () -> {
          ClusterSharding.get(system)
              .entityRefFor(TaskProtocol.TYPE_KEY, id)
              .tell(new TaskProtocol.Get("alice", reply.ref()));
          TaskReply r = reply.receiveMessage(Duration.ofSeconds(5));
          if (r instanceof TaskReply.Rejected rejected) {
            assertEquals(ErrorCode.NOT_FOUND, rejected.error().code(), "unexpected rejection");
          }
          TaskView view = ((TaskReply.Ok) r).view();
          assertEquals(status, view.status());
          return view;
        });
  }
}
