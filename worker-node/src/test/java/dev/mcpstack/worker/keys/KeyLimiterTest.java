package dev.mcpstack.worker.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.LimiterProtocol.Acquire;
import dev.mcpstack.shared.LimiterProtocol.Decision;
import dev.mcpstack.shared.LimiterProtocol.HoldKind;
import dev.mcpstack.shared.LimiterProtocol.Release;
import dev.mcpstack.worker.testkit.MutableClock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.UUID;
import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.Usage;
import org.apache.pekko.Done;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The per-key limiter's decisions, on a clock moved by hand. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KeyLimiterTest {
  private final ActorTestKit testKit = ActorTestKit.create(EventSourcedBehaviorTestKit.config());
  private MutableClock clock;
  private ActorRef<LimiterProtocol.Command> limiter;
  private TestProbe<Decision> replies;
  private String keyId;

  private ActorRef<LimiterProtocol.Command> spawn() {
    return testKit.spawn(KeyLimiter.create(keyId, clock, Duration.ofMinutes(5), Duration.ofHours(1), null));
  }

  @BeforeEach
  void setUp() {
    clock = new MutableClock(Instant.parse("2026-01-01T00:00:00.250Z"));
    keyId = "key-" + UUID.randomUUID();
    limiter = spawn();
    replies = testKit.createTestProbe();
  }

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private Decision acquire(String hold, HoldKind kind, long tokens, KeyLimits limits) {
    limiter.tell(new Acquire(hold, kind, tokens, limits, clock.instant().plusSeconds(600), replies.ref()));
    return replies.receiveMessage();
  }

  @Test
  void admitsRequestsPerMinuteExactlyAndSaysWhenToComeBack() {
    KeyLimits limits = new KeyLimits(3, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
      Decision d = acquire("r" + i, HoldKind.REQUEST, 1, limits);
      assertInstanceOf(LimiterProtocol.Granted.class, d);
      assertEquals(2 - i, d.standing().remainingRequests());
      limiter.tell(new Release("r" + i, 1));
    }
    clock.advance(Duration.ofSeconds(10));
    LimiterProtocol.Denied denied = assertInstanceOf(LimiterProtocol.Denied.class, acquire("r3", HoldKind.REQUEST, 1, limits));
    assertTrue(denied.reason().contains("requests"), denied.reason());
    // the three were counted in second 0 of the window: they leave it at 60 s
    assertEquals(49_750, denied.retryAfterMillis());
    assertEquals(0, denied.standing().remainingRequests());
    assertEquals(3, denied.standing().limitRequests());
    clock.advance(Duration.ofMillis(denied.retryAfterMillis()));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("r4", HoldKind.REQUEST, 1, limits));
  }

  @Test
  void reservesTokensUpFrontAndSettlesThemWithTheRealUsage() {
    KeyLimits limits = new KeyLimits(0, 1000, 0, 0);
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("a", HoldKind.REQUEST, 800, limits));
    assertInstanceOf(LimiterProtocol.Denied.class, acquire("b", HoldKind.REQUEST, 300, limits));
    limiter.tell(new Release("a", 100)); // it used 100 of the 800 reserved
    Decision d = acquire("c", HoldKind.REQUEST, 300, limits);
    assertInstanceOf(LimiterProtocol.Granted.class, d);
    assertEquals(600, d.standing().remainingTokens());
  }

  @Test
  void refusesARequestLargerThanTheWholeMinuteWithoutARetryHint() {
    LimiterProtocol.Denied denied =
        assertInstanceOf(LimiterProtocol.Denied.class, acquire("big", HoldKind.REQUEST, 5000, new KeyLimits(0, 1000, 0, 0)));
    assertEquals(0, denied.retryAfterMillis());
    assertTrue(denied.reason().contains("too large"), denied.reason());
  }

  @Test
  void capsConcurrentRequestsAndActiveTasksSeparately() {
    KeyLimits limits = new KeyLimits(0, 0, 2, 1);
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("r1", HoldKind.REQUEST, 1, limits));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("r2", HoldKind.REQUEST, 1, limits));
    LimiterProtocol.Denied third = assertInstanceOf(LimiterProtocol.Denied.class, acquire("r3", HoldKind.REQUEST, 1, limits));
    assertTrue(third.reason().contains("concurrent requests"), third.reason());
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("t1", HoldKind.TASK, 1, limits));
    LimiterProtocol.Denied task = assertInstanceOf(LimiterProtocol.Denied.class, acquire("t2", HoldKind.TASK, 1, limits));
    assertTrue(task.reason().contains("active tasks"), task.reason());
    limiter.tell(new Release("r1", -1));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("r3", HoldKind.REQUEST, 1, limits));
  }

  @Test
  void aRepeatedAcquireOfTheSameHoldCountsOnce() {
    KeyLimits limits = new KeyLimits(2, 0, 1, 0);
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("same", HoldKind.REQUEST, 1, limits));
    Decision again = acquire("same", HoldKind.REQUEST, 1, limits);
    assertInstanceOf(LimiterProtocol.Granted.class, again);
    assertEquals(1, again.standing().remainingRequests());
  }

  @Test
  void aHoldWhoseReleaseWasLostExpiresAtItsDeadline() {
    KeyLimits limits = new KeyLimits(0, 0, 1, 0);
    limiter.tell(new Acquire("lost", HoldKind.REQUEST, 1, limits, clock.instant().plusSeconds(30), replies.ref()));
    assertInstanceOf(LimiterProtocol.Granted.class, replies.receiveMessage());
    assertInstanceOf(LimiterProtocol.Denied.class, acquire("next", HoldKind.REQUEST, 1, limits));
    clock.advance(Duration.ofSeconds(31));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("next", HoldKind.REQUEST, 1, limits));
  }

  private void record(String taskId, long prompt, long completion, long cost) {
    TestProbe<Done> done = testKit.createTestProbe();
    limiter.tell(new LimiterProtocol.RecordUsage(taskId, "m", new Usage(prompt, completion, prompt + completion), cost, clock.instant(), done.ref()));
    done.receiveMessage();
  }

  private LimiterProtocol.UsageReport usage(Budget budget) {
    TestProbe<LimiterProtocol.UsageReport> probe = testKit.createTestProbe();
    LocalDate today = LocalDate.of(2026, 1, 1);
    limiter.tell(new LimiterProtocol.GetUsage(today.minusDays(30), today, budget, probe.ref()));
    return probe.receiveMessage();
  }

  @Test
  void recordsEachTasksUsageOnceAndKeepsItAcrossARestart() {
    record("task-a", 10, 20, 300);
    record("task-b", 1, 2, 30);
    record("task-a", 10, 20, 300); // a re-sent report of the same task
    LimiterProtocol.UsageReport report = usage(null);
    assertEquals(1, report.lines().size());
    LimiterProtocol.UsageLine line = report.lines().get(0);
    assertEquals(2, line.requests());
    assertEquals(11, line.promptTokens());
    assertEquals(22, line.completionTokens());
    assertEquals(330, line.costMicros());

    testKit.stop(limiter);
    limiter = spawn();
    record("task-a", 10, 20, 300); // still recognised after recovery
    assertEquals(2, usage(null).lines().get(0).requests());
  }

  @Test
  void refusesWithInsufficientQuotaOnceTheBudgetIsSpent() {
    Budget budget = new Budget(1_000, Budget.Period.MONTH, 0.5);
    KeyLimits limits = new KeyLimits(0, 0, 0, 0, budget);
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("before", HoldKind.REQUEST, 1, limits));
    record("task-1", 100, 100, 600);
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("under", HoldKind.REQUEST, 1, limits));
    record("task-2", 100, 100, 400);
    LimiterProtocol.Denied denied = assertInstanceOf(LimiterProtocol.Denied.class, acquire("over", HoldKind.REQUEST, 1, limits));
    assertTrue(denied.quota());
    assertTrue(denied.reason().contains("quota"), denied.reason());
    assertEquals(1_000, usage(budget).spentMicros());
    // a bigger budget admits again at once
    assertInstanceOf(
        LimiterProtocol.Granted.class,
        acquire("raised", HoldKind.REQUEST, 1, limits.withBudget(new Budget(2_000, Budget.Period.MONTH, 0))));
  }
}
