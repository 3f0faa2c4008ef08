package dev.mcpstack.worker.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import java.util.Map;
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
  private final ActorTestKit testKit = ActorTestKit.create();
  private MutableClock clock;
  private ActorRef<LimiterProtocol.Command> limiter;
  private TestProbe<Decision> replies;
  private String keyId;

  private TestProbe<ActorRef<LimiterProtocol.Command>> spendAsks;

  /** A limiter whose account answers at once that nothing was spent ({@code answering}) or never. */
  private ActorRef<LimiterProtocol.Command> spawn(boolean answering) {
    return testKit.spawn(
        KeyLimiter.create(
            keyId,
            clock,
            Duration.ofMinutes(5),
            Duration.ofMillis(300),
            self -> {
              spendAsks.ref().tell(self);
              if (answering) {
                self.tell(new LimiterProtocol.SpendChanged(Map.of()));
              }
            },
            null));
  }

  @BeforeEach
  void setUp() {
    clock = new MutableClock(Instant.parse("2026-01-01T00:00:00.250Z"));
    keyId = "key-" + UUID.randomUUID();
    spendAsks = testKit.createTestProbe();
    limiter = spawn(true);
    replies = testKit.createTestProbe();
  }

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private Decision acquire(String hold, HoldKind kind, long tokens, KeyLimits limits) {
    limiter.tell(new Acquire(hold + "/h", hold, kind, tokens, limits, clock.instant().plusSeconds(600), replies.ref()));
    return replies.receiveMessage();
  }

  @Test
  void admitsRequestsPerMinuteExactlyAndSaysWhenToComeBack() {
    KeyLimits limits = new KeyLimits(3, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
      Decision d = acquire("r" + i, HoldKind.REQUEST, 1, limits);
      assertInstanceOf(LimiterProtocol.Granted.class, d);
      assertEquals(2 - i, d.standing().remainingRequests());
      limiter.tell(new Release("r" + i + "/h", 1));
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
    limiter.tell(new Release("a/h", 100)); // it used 100 of the 800 reserved
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
    limiter.tell(new Release("r1/h", -1));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("r3", HoldKind.REQUEST, 1, limits));
  }

  @Test
  void aRepeatForATaskThatHoldsASlotSharesItAndItsReleaseFreesTheSlot() {
    KeyLimits limits = new KeyLimits(2, 0, 1, 0);
    LimiterProtocol.Granted first = assertInstanceOf(LimiterProtocol.Granted.class, acquire("same", HoldKind.REQUEST, 1, limits));
    assertFalse(first.shared());
    // another request for the same task (an idempotent retry, or a conflicting body) takes nothing
    limiter.tell(new Acquire("same/other", "same", HoldKind.REQUEST, 1, limits, clock.instant().plusSeconds(600), replies.ref()));
    LimiterProtocol.Granted again = assertInstanceOf(LimiterProtocol.Granted.class, replies.receiveMessage());
    assertTrue(again.shared());
    assertEquals(1, again.standing().remainingRequests());
    // so its sender has nothing to give back, and a release of its own id changes nothing
    limiter.tell(new Release("same/other", 0));
    assertInstanceOf(LimiterProtocol.Denied.class, acquire("next", HoldKind.REQUEST, 1, limits));
    limiter.tell(new Release("same/h", 1));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("next", HoldKind.REQUEST, 1, limits));
  }

  @Test
  void aHoldWhoseReleaseWasLostExpiresAtItsDeadline() {
    KeyLimits limits = new KeyLimits(0, 0, 1, 0);
    limiter.tell(new Acquire("lost/h", "lost", HoldKind.REQUEST, 1, limits, clock.instant().plusSeconds(30), replies.ref()));
    assertInstanceOf(LimiterProtocol.Granted.class, replies.receiveMessage());
    assertInstanceOf(LimiterProtocol.Denied.class, acquire("next", HoldKind.REQUEST, 1, limits));
    clock.advance(Duration.ofSeconds(31));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("next", HoldKind.REQUEST, 1, limits));
  }

  @Test
  void refusesWithInsufficientQuotaOnceTheAccountSaysTheBudgetIsSpent() {
    Budget budget = new Budget(1_000, Budget.Period.MONTH, 0.5);
    KeyLimits limits = new KeyLimits(0, 0, 0, 0, budget);
    LocalDate today = LocalDate.of(2026, 1, 1);
    limiter.tell(new LimiterProtocol.SpendChanged(Map.of(today, 600L, today.minusMonths(1), 5_000L)));
    assertInstanceOf(LimiterProtocol.Granted.class, acquire("under", HoldKind.REQUEST, 1, limits));
    limiter.tell(new LimiterProtocol.SpendChanged(Map.of(today, 1_000L)));
    LimiterProtocol.Denied denied = assertInstanceOf(LimiterProtocol.Denied.class, acquire("over", HoldKind.REQUEST, 1, limits));
    assertTrue(denied.quota());
    assertTrue(denied.reason().contains("quota"), denied.reason());
    // a bigger budget admits again at once
    assertInstanceOf(
        LimiterProtocol.Granted.class,
        acquire("raised", HoldKind.REQUEST, 1, limits.withBudget(new Budget(2_000, Budget.Period.MONTH, 0))));
  }

  @Test
  void aBudgetedCallWaitsUntilTheAccountHasAnsweredAndAsksAgainMeanwhile() {
    KeyLimits limits = new KeyLimits(0, 0, 0, 0, new Budget(1_000, Budget.Period.DAY, 0));
    spendAsks = testKit.createTestProbe();
    ActorRef<LimiterProtocol.Command> fresh = spawn(false);
    assertEquals(fresh, spendAsks.receiveMessage(), "asked on start");
    // the account is away: the call waits, the limiter asks again
    fresh.tell(new Acquire("waiting/h", "waiting", HoldKind.REQUEST, 1, limits, clock.instant().plusSeconds(600), replies.ref()));
    replies.expectNoMessage(Duration.ofMillis(100));
    assertEquals(fresh, spendAsks.receiveMessage(Duration.ofSeconds(5)));
    // keys without a budget never wait
    fresh.tell(new Acquire("free/h", "free", HoldKind.REQUEST, 1, new KeyLimits(5, 0, 0, 0), clock.instant().plusSeconds(600), replies.ref()));
    assertInstanceOf(LimiterProtocol.Granted.class, replies.receiveMessage());
    fresh.tell(new LimiterProtocol.SpendChanged(Map.of()));
    assertInstanceOf(LimiterProtocol.Granted.class, replies.receiveMessage());
  }
}
