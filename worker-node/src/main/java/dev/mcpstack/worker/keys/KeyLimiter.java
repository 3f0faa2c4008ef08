package dev.mcpstack.worker.keys;

import dev.mcpstack.shared.AccountProtocol;
import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.LimiterProtocol.Acquire;
import dev.mcpstack.shared.LimiterProtocol.Command;
import dev.mcpstack.shared.LimiterProtocol.Decision;
import dev.mcpstack.shared.LimiterProtocol.HoldKind;
import dev.mcpstack.shared.LimiterProtocol.Release;
import dev.mcpstack.shared.LimiterProtocol.SpendChanged;
import dev.mcpstack.shared.LimiterProtocol.Standing;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.StashBuffer;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;

/**
 * One API key's limits, decided in one place for the whole cluster (a sharded entity per key
 * account): requests and tokens per rolling minute, concurrent requests, active tasks and the
 * budget. Tokens are reserved on {@link Acquire} from the caller's estimate and settled on
 * {@link Release} with the real usage.
 *
 * <p>Everything here lives in memory, so no admission waits for the journal; a fail-over forgets
 * the last minute and the open holds (the bound is in docs/adr/0005). What the key spent comes from
 * its usage account: asked when the limiter starts, then pushed after every recorded task. Until the
 * first answer, calls of a key with a budget wait (their callers time out with a 503 if the account
 * stays unreachable); calls of keys without one never wait.
 */
public final class KeyLimiter extends AbstractBehavior<Command> {
  static final int SLOTS = 60;
  static final long SLOT_MILLIS = 1_000;
  private static final int STASH = 1_000;
  private static final String ASK_SPEND = "ask-spend";

  private record Hold(String taskId, HoldKind kind, long epoch, long tokens, Instant until) {}

  private enum Idle implements Command {
    INSTANCE
  }

  private enum AskSpend implements Command {
    INSTANCE
  }

  /** Where limiters live: worker nodes, like tasks; not remembered (nothing to resume). */
  public static void init(ActorSystem<?> system, Duration idleStop, Duration askTimeout) {
    ClusterSharding sharding = ClusterSharding.get(system);
    sharding.init(
        Entity.of(
                LimiterProtocol.TYPE_KEY,
                ctx ->
                    create(
                        ctx.getEntityId(),
                        Clock.systemUTC(),
                        idleStop,
                        askTimeout,
                        self ->
                            sharding
                                .entityRefFor(AccountProtocol.TYPE_KEY, ctx.getEntityId())
                                .tell(new AccountProtocol.ReportSpend(self)),
                        ctx.getShard()))
            .withRole(TaskProtocol.WORKER_ROLE)
            .withSettings(ClusterShardingSettings.create(system).withRememberEntities(false)));
  }

  /**
   * @param askSpend asks the key's account to send its spending to the given limiter
   * @param shard where to ask for passivation when idle; null stops the actor itself
   */
  public static Behavior<Command> create(
      String account,
      Clock clock,
      Duration idleStop,
      Duration askTimeout,
      java.util.function.Consumer<ActorRef<Command>> askSpend,
      ActorRef<ClusterSharding.ShardCommand> shard) {
    return Behaviors.setup(
        ctx ->
            Behaviors.withStash(
                STASH,
                stash ->
                    Behaviors.withTimers(
                        timers -> {
                          ctx.setReceiveTimeout(idleStop, Idle.INSTANCE);
                          return new KeyLimiter(account, ctx, clock, askTimeout, askSpend, shard, stash, timers);
                        })));
  }

  private final String account;
  private final Clock clock;
  private final Duration askTimeout;
  private final java.util.function.Consumer<ActorRef<Command>> askSpend;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final StashBuffer<Command> stash;
  private final TimerScheduler<Command> timers;
  private final SlidingWindow requests = new SlidingWindow(SLOTS, SLOT_MILLIS);
  private final SlidingWindow tokens = new SlidingWindow(SLOTS, SLOT_MILLIS);
  private final Map<String, Hold> holds = new HashMap<>();
  /** Cost per UTC day from the account; null until it has answered. */
  private Map<LocalDate, Long> spend;
  private Budget lastBudget;

  private KeyLimiter(
      String account,
      ActorContext<Command> ctx,
      Clock clock,
      Duration askTimeout,
      java.util.function.Consumer<ActorRef<Command>> askSpend,
      ActorRef<ClusterSharding.ShardCommand> shard,
      StashBuffer<Command> stash,
      TimerScheduler<Command> timers) {
    super(ctx);
    this.account = account;
    this.clock = clock;
    this.askTimeout = askTimeout;
    this.askSpend = askSpend;
    this.shard = shard;
    this.stash = stash;
    this.timers = timers;
    askSpend.accept(ctx.getSelf());
    timers.startSingleTimer(ASK_SPEND, AskSpend.INSTANCE, askTimeout);
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Acquire.class, this::onAcquire)
        .onMessage(Release.class, this::onRelease)
        .onMessage(SpendChanged.class, this::onSpend)
        .onMessageEquals(AskSpend.INSTANCE, this::onAskSpend)
        .onMessageEquals(Idle.INSTANCE, this::onIdle)
        .build();
  }

  private Behavior<Command> onAcquire(Acquire cmd) {
    KeyLimits limits = cmd.limits();
    if (limits.budget() != null && spend == null) {
      if (!stash.isFull()) {
        stash.stash(cmd); // answered once the account has said what the key spent
      }
      return this;
    }
    Instant now = clock.instant();
    long t = now.toEpochMilli();
    expireHolds(now);
    lastBudget = limits.budget();
    if (holds.values().stream().anyMatch(h -> h.taskId().equals(cmd.taskId()))) {
      // a repeat for a task that holds a slot (idempotent retry): it costs nothing new
      cmd.replyTo().tell(new LimiterProtocol.Granted(standing(limits, t), true));
      return this;
    }
    Decision denied = check(cmd, limits, now);
    if (denied != null) {
      cmd.replyTo().tell(denied);
      return this;
    }
    long epoch = requests.add(t, 1);
    tokens.add(t, cmd.tokens());
    holds.put(cmd.holdId(), new Hold(cmd.taskId(), cmd.kind(), epoch, cmd.tokens(), cmd.holdUntil()));
    cmd.replyTo().tell(new LimiterProtocol.Granted(standing(limits, t), false));
    return this;
  }

  /** The first limit the request would break, as a denial; null when it fits all of them. */
  private Decision check(Acquire cmd, KeyLimits limits, Instant now) {
    long t = now.toEpochMilli();
    Budget budget = limits.budget();
    if (budget != null) {
      long spent = AccountProtocol.spentSince(spend, budget.periodStart(today(now)));
      if (spent >= budget.amountMicros()) {
        return new LimiterProtocol.Denied(
            "You exceeded your current quota: this key spent "
                + money(spent)
                + " of its "
                + (budget.period() == Budget.Period.DAY ? "daily" : "monthly")
                + " budget of "
                + money(budget.amountMicros())
                + ". Ask your operator to raise it, or wait for the next period (UTC).",
            0,
            true,
            standing(limits, t));
      }
    }
    if (limits.requestsPerMinute() > 0) {
      long wait = requests.millisUntilFits(t, 1, limits.requestsPerMinute());
      if (wait > 0) {
        return denied(
            "Rate limit reached for requests: limit " + limits.requestsPerMinute() + " per minute.", wait, limits, t);
      }
    }
    if (limits.tokensPerMinute() > 0) {
      long wait = tokens.millisUntilFits(t, cmd.tokens(), limits.tokensPerMinute());
      if (wait < 0) {
        return denied(
            "Request too large for tokens per minute: it may use up to "
                + cmd.tokens()
                + " tokens, the limit is "
                + limits.tokensPerMinute()
                + " per minute. Shorten the prompt.",
            0,
            limits,
            t);
      }
      if (wait > 0) {
        return denied(
            "Rate limit reached for tokens: limit "
                + limits.tokensPerMinute()
                + " per minute, this request may use up to "
                + cmd.tokens()
                + ".",
            wait,
            limits,
            t);
      }
    }
    int cap = cmd.kind() == HoldKind.REQUEST ? limits.maxConcurrentRequests() : limits.maxActiveTasks();
    if (cap > 0 && held(cmd.kind()) >= cap) {
      String what = cmd.kind() == HoldKind.REQUEST ? "concurrent requests" : "active tasks";
      return denied("Rate limit reached for " + what + ": limit " + cap + ".", 0, limits, t);
    }
    return null;
  }

  private Decision denied(String reason, long wait, KeyLimits limits, long t) {
    return new LimiterProtocol.Denied(reason, wait, false, standing(limits, t));
  }

  private long held(HoldKind kind) {
    return holds.values().stream().filter(h -> h.kind() == kind).count();
  }

  private Behavior<Command> onRelease(Release cmd) {
    Hold hold = holds.remove(cmd.holdId());
    if (hold != null && cmd.actualTokens() >= 0) {
      tokens.adjust(clock.millis(), hold.epoch(), cmd.actualTokens() - hold.tokens());
    }
    return this;
  }

  private Behavior<Command> onSpend(SpendChanged cmd) {
    spend = cmd.costByDay();
    timers.cancel(ASK_SPEND);
    Budget budget = lastBudget;
    if (budget != null && budget.alertAt() > 0) {
      long spent = AccountProtocol.spentSince(spend, budget.periodStart(today(clock.instant())));
      WorkerMetrics.budget(account, (double) spent / budget.amountMicros(), budget.alertAt());
    }
    return stash.unstashAll(this);
  }

  /** The account has not answered yet: ask again (it may be failing over). */
  private Behavior<Command> onAskSpend() {
    if (spend == null) {
      askSpend.accept(getContext().getSelf());
      timers.startSingleTimer(ASK_SPEND, AskSpend.INSTANCE, askTimeout);
    }
    return this;
  }

  private Behavior<Command> onIdle() {
    long t = clock.millis();
    expireHolds(clock.instant());
    if (!holds.isEmpty() || !requests.isEmpty(t) || !tokens.isEmpty(t) || !stash.isEmpty()) {
      return this;
    }
    if (shard == null) {
      return Behaviors.stopped();
    }
    shard.tell(new ClusterSharding.Passivate<>(getContext().getSelf()));
    return this;
  }

  private void expireHolds(Instant now) {
    holds.values().removeIf(h -> h.until() != null && h.until().isBefore(now));
  }

  private Standing standing(KeyLimits limits, long t) {
    long rpm = limits.requestsPerMinute();
    long tpm = limits.tokensPerMinute();
    return new Standing(
        (int) rpm,
        rpm == 0 ? 0 : (int) Math.max(0, rpm - requests.sum(t)),
        rpm == 0 ? 0 : Math.max(0, requests.millisUntilFits(t, rpm, rpm)),
        tpm,
        tpm == 0 ? 0 : Math.max(0, tpm - tokens.sum(t)),
        tpm == 0 ? 0 : Math.max(0, tokens.millisUntilFits(t, tpm, tpm)));
  }

  private static LocalDate today(Instant at) {
    return LocalDate.ofInstant(at, ZoneOffset.UTC);
  }

  private static String money(long micros) {
    return String.format(Locale.ROOT, "%.2f", micros / 1_000_000.0);
  }
}
