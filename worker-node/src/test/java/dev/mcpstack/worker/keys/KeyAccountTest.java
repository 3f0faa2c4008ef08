package dev.mcpstack.worker.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mcpstack.shared.AccountProtocol;
import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.testkit.MutableClock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.Map;
import java.util.UUID;
import org.apache.pekko.Done;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** A key's usage account: each task once, across a restart, and the spending it tells the limiter. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KeyAccountTest {
  private final ActorTestKit testKit = ActorTestKit.create(EventSourcedBehaviorTestKit.config());
  private final MutableClock clock = new MutableClock(Instant.parse("2026-01-15T12:00:00Z"));
  private final LocalDate today = LocalDate.of(2026, 1, 15);
  private String id;
  private TestProbe<LimiterProtocol.SpendChanged> limiter;
  private ActorRef<AccountProtocol.Command> account;

  @BeforeEach
  void setUp() {
    id = "acct-" + UUID.randomUUID();
    limiter = testKit.createTestProbe();
    account = spawn();
  }

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private ActorRef<AccountProtocol.Command> spawn() {
    return testKit.spawn(
        KeyAccount.create(id, clock, Duration.ofHours(1), Duration.ofMillis(100), Duration.ofSeconds(1), limiter.ref()::tell));
  }

  private void record(String taskId, long prompt, long completion, long cost) {
    TestProbe<Done> done = testKit.createTestProbe();
    account.tell(
        new AccountProtocol.RecordUsage(
            taskId, "m", new Usage(prompt, completion, prompt + completion), cost, clock.instant(), done.ref()));
    done.receiveMessage();
  }

  private AccountProtocol.UsageReport usage(Budget budget) {
    TestProbe<AccountProtocol.UsageReport> probe = testKit.createTestProbe();
    account.tell(new AccountProtocol.GetUsage(today.minusDays(30), today, budget, probe.ref()));
    return probe.receiveMessage();
  }

  @Test
  void recordsEachTasksUsageOnceAndKeepsItAcrossARestart() {
    record("task-a", 10, 20, 300);
    record("task-b", 1, 2, 30);
    record("task-a", 10, 20, 300); // a re-sent report of the same task
    AccountProtocol.UsageReport report = usage(null);
    assertEquals(1, report.lines().size());
    AccountProtocol.UsageLine line = report.lines().get(0);
    assertEquals(2, line.requests());
    assertEquals(11, line.promptTokens());
    assertEquals(22, line.completionTokens());
    assertEquals(330, line.costMicros());

    testKit.stop(account);
    account = spawn();
    record("task-a", 10, 20, 300); // still recognised after recovery
    assertEquals(2, usage(null).lines().get(0).requests());
  }

  @Test
  void tellsTheLimiterWhatTheKeySpentAfterEachRecordAndWhenAsked() {
    record("task-1", 1, 1, 400);
    assertEquals(Map.of(today, 400L), limiter.receiveMessage().costByDay());
    record("task-2", 1, 1, 250);
    assertEquals(Map.of(today, 650L), limiter.receiveMessage().costByDay());
    record("task-2", 1, 1, 250); // a repeat is not news
    limiter.expectNoMessage(Duration.ofMillis(100));

    TestProbe<LimiterProtocol.Command> asker = testKit.createTestProbe();
    account.tell(new AccountProtocol.ReportSpend(asker.ref()));
    assertEquals(new LimiterProtocol.SpendChanged(Map.of(today, 650L)), asker.receiveMessage());
    assertEquals(650, usage(new Budget(1_000, Budget.Period.MONTH, 0)).spentMicros());
  }
}
