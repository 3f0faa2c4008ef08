package dev.mcpstack.worker.keys;

import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.CborSerializable;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.LimiterProtocol.Acquire;
import dev.mcpstack.shared.LimiterProtocol.Command;
import dev.mcpstack.shared.LimiterProtocol.Decision;
import dev.mcpstack.shared.LimiterProtocol.GetUsage;
import dev.mcpstack.shared.LimiterProtocol.HoldKind;
import dev.mcpstack.shared.LimiterProtocol.RecordUsage;
import dev.mcpstack.shared.LimiterProtocol.Release;
import dev.mcpstack.shared.LimiterProtocol.Standing;
import dev.mcpstack.shared.LimiterProtocol.UsageLine;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;

/**
 * One API key's limits and usage, decided in one place for the whole cluster (a sharded entity
 * per key id).
 *
 * <p>Rates (requests and tokens per rolling minute) and holds (concurrent requests, active tasks)
 * live in memory: tokens are reserved on {@link Acquire} from the caller's estimate and settled on
 * {@link Release} with the real usage. A fail-over of this entity forgets the last minute and the
 * open holds (the bound is in docs/adr/0005), which keeps the per-request check off the journal.
 *
 * <p>Usage is durable: each finished task's {@link RecordUsage} is an event, recorded once per
 * task id (re-sent reports of the last {@code dedupe-window} are recognised), summed per model and
 * UTC day; the key's budget is checked against the current period's sum before work starts.
 */
public final class KeyLimiter
    extends EventSourcedBehaviorWithEnforcedReplies<Command, KeyLimiter.Event, KeyLimiter.Account> {
  static final int SLOTS = 60;
  static final long SLOT_MILLIS = 1_000;

  // ---- events and state ----

  public sealed interface Event extends CborSerializable permits UsageRecorded {}

  public record UsageRecorded(
      String taskId, String model, LocalDate day, long promptTokens, long completionTokens, long costMicros, Instant finishedAt)
      implements Event {}

  /**
   * Usage per "day/model", and the tasks recorded lately (id → finished at) to recognise a
   * repeated report; those older than the dedupe window behind the newest are dropped.
   */
  public record Account(Map<String, UsageLine> lines, Map<String, Instant> recent) implements CborSerializable {
    public Account {
      lines = Map.copyOf(lines);
      recent = Map.copyOf(recent);
    }

    Account apply(UsageRecorded e, Duration dedupeWindow) {
      Map<String, UsageLine> nextLines = new HashMap<>(lines);
      nextLines.merge(
          e.day() + "/" + e.model(),
          new UsageLine(e.day(), e.model(), 1, e.promptTokens(), e.completionTokens(), e.costMicros()),
          (old, add) -> old.plus(add.promptTokens(), add.completionTokens(), add.costMicros()));
      Instant horizon = e.finishedAt().minus(dedupeWindow);
      Map<String, Instant> nextRecent = new LinkedHashMap<>();
      recent.forEach(
          (id, at) -> {
            if (at.isAfter(horizon)) {
              nextRecent.put(id, at);
            }
          });
      nextRecent.put(e.taskId(), e.finishedAt());
      return new Account(nextLines, nextRecent);
    }

    long spentSince(LocalDate start) {
      return lines.values().stream().filter(l -> !l.day().isBefore(start)).mapToLong(UsageLine::costMicros).sum();
    }
  }

  // ---- private commands ----

  private enum Idle implements Command {
    INSTANCE
  }

  /** Where limiters and accounts live: worker nodes, like tasks; not remembered (nothing to resume). */
  public static void init(ActorSystem<?> system, Duration idleStop, Duration dedupeWindow) {
    ClusterSharding.get(system)
        .init(
            Entity.of(
                    LimiterProtocol.TYPE_KEY,
                    ctx -> create(ctx.getEntityId(), Clock.systemUTC(), idleStop, dedupeWindow, ctx.getShard()))
                .withRole(TaskProtocol.WORKER_ROLE)
                .withSettings(ClusterShardingSettings.create(system).withRememberEntities(false)));
  }

  /** @param shard where to ask for passivation when idle; null stops the actor itself */
  public static Behavior<Command> create(
      String keyId, Clock clock, Duration idleStop, Duration dedupeWindow, ActorRef<ClusterSharding.ShardCommand> shard) {
    return Behaviors.setup(
        ctx -> {
          ctx.setReceiveTimeout(idleStop, Idle.INSTANCE);
          return new KeyLimiter(keyId, ctx, clock, dedupeWindow, shard);
        });
  }

  private record Hold(HoldKind kind, long epoch, long tokens, Instant until) {}

  private final String keyId;
  private final ActorContext<Command> ctx;
  private final Clock clock;
  private final Duration dedupeWindow;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  // in memory only (see the class comment)
  private final SlidingWindow requests = new SlidingWindow(SLOTS, SLOT_MILLIS);
  private final SlidingWindow tokens = new SlidingWindow(SLOTS, SLOT_MILLIS);
  private final Map<String, Hold> holds = new HashMap<>();
  private Budget lastBudget;

  private KeyLimiter(
      String keyId,
      ActorContext<Command> ctx,
      Clock clock,
      Duration dedupeWindow,
      ActorRef<ClusterSharding.ShardCommand> shard) {
    super(
        PersistenceId.of(LimiterProtocol.TYPE_KEY.name(), keyId),
        SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(10), 0.2));
    this.keyId = keyId;
    this.ctx = ctx;
    this.clock = clock;
    this.dedupeWindow = dedupeWindow;
    this.shard = shard;
  }

  @Override
  public Account emptyState() {
    return new Account(Map.of(), Map.of());
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(100, 2);
  }

  @Override
  public CommandHandlerWithReply<Command, Event, Account> commandHandler() {
    return newCommandHandlerWithReplyBuilder()
        .forAnyState()
        .onCommand(Acquire.class, this::onAcquire)
        .onCommand(Release.class, this::onRelease)
        .onCommand(RecordUsage.class, this::onRecordUsage)
        .onCommand(GetUsage.class, this::onGetUsage)
        .onCommand(Idle.class, this::onIdle)
        .build();
  }

  private ReplyEffect<Event, Account> onAcquire(Account account, Acquire cmd) {
    Instant now = clock.instant();
    long t = now.toEpochMilli();
    expireHolds(now);
    KeyLimits limits = cmd.limits();
    lastBudget = limits.budget();
    if (holds.containsKey(cmd.holdId())) {
      // a retried ask for the same hold: already admitted, do not count it twice
      return Effect().reply(cmd.replyTo(), new LimiterProtocol.Granted(standing(limits, t)));
    }
    Decision denied = check(account, cmd, limits, now);
    if (denied != null) {
      return Effect().reply(cmd.replyTo(), denied);
    }
    long epoch = requests.add(t, 1);
    tokens.add(t, cmd.tokens());
    holds.put(cmd.holdId(), new Hold(cmd.kind(), epoch, cmd.tokens(), cmd.holdUntil()));
    return Effect().reply(cmd.replyTo(), new LimiterProtocol.Granted(standing(limits, t)));
  }

  /** The first limit the request would break, as a denial; null when it fits all of them. */
  private Decision check(Account account, Acquire cmd, KeyLimits limits, Instant now) {
    long t = now.toEpochMilli();
    Budget budget = limits.budget();
    if (budget != null) {
      LocalDate start = budget.periodStart(today(now));
      long spent = account.spentSince(start);
      if (spent >= budget.amountMicros()) {
        return new LimiterProtocol.Denied(
            "You exceeded your current quota: this key spent "
                + money(spent)
                + " of its "
                + budget.period().name().toLowerCase(java.util.Locale.ROOT)
                + "ly budget of "
                + money(budget.amountMicros())
                + ". Ask your operator to raise it, or wait for the next period.",
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
                + " per minute. Lower max_tokens or the prompt's size.",
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

  private ReplyEffect<Event, Account> onRelease(Account account, Release cmd) {
    Hold hold = holds.remove(cmd.holdId());
    if (hold != null && cmd.actualTokens() >= 0) {
      tokens.adjust(clock.millis(), hold.epoch(), cmd.actualTokens() - hold.tokens());
    }
    return Effect().noReply();
  }

  private ReplyEffect<Event, Account> onRecordUsage(Account account, RecordUsage cmd) {
    if (account.recent().containsKey(cmd.taskId())) {
      return Effect().reply(cmd.replyTo(), Done.getInstance());
    }
    UsageRecorded event =
        new UsageRecorded(
            cmd.taskId(),
            cmd.model(),
            today(cmd.finishedAt()),
            cmd.usage().promptTokens(),
            cmd.usage().completionTokens(),
            cmd.costMicros(),
            cmd.finishedAt());
    return Effect()
        .persist(event)
        .thenRun(this::reportBudget)
        .thenReply(cmd.replyTo(), a -> Done.getInstance());
  }

  private void reportBudget(Account account) {
    Budget budget = lastBudget;
    if (budget != null && budget.alertAt() > 0) {
      long spent = account.spentSince(budget.periodStart(today(clock.instant())));
      WorkerMetrics.budget(keyId, (double) spent / budget.amountMicros(), budget.alertAt());
    }
  }

  private ReplyEffect<Event, Account> onGetUsage(Account account, GetUsage cmd) {
    List<UsageLine> lines =
        account.lines().values().stream()
            .filter(l -> !l.day().isBefore(cmd.from()) && !l.day().isAfter(cmd.to()))
            .sorted(Comparator.comparing(UsageLine::day).thenComparing(UsageLine::model))
            .toList();
    LocalDate start = cmd.budget() == null ? null : cmd.budget().periodStart(today(clock.instant()));
    long spent = start == null ? 0 : account.spentSince(start);
    return Effect().reply(cmd.replyTo(), new LimiterProtocol.UsageReport(lines, spent, start));
  }

  private ReplyEffect<Event, Account> onIdle(Account account, Idle cmd) {
    long t = clock.millis();
    expireHolds(clock.instant());
    if (!holds.isEmpty() || !requests.isEmpty(t) || !tokens.isEmpty(t)) {
      return Effect().noReply();
    }
    if (shard == null) {
      return Effect().stop().thenNoReply();
    }
    shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
    return Effect().noReply();
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
    return String.format(java.util.Locale.ROOT, "%.2f", micros / 1_000_000.0);
  }

  @Override
  public EventHandler<Account, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(UsageRecorded.class, (account, e) -> account.apply(e, dedupeWindow))
        .build();
  }
}
