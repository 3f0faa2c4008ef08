package dev.mcpstack.worker.keys;

import dev.mcpstack.shared.AccountProtocol;
import dev.mcpstack.shared.AccountProtocol.Command;
import dev.mcpstack.shared.AccountProtocol.GetUsage;
import dev.mcpstack.shared.AccountProtocol.RecordUsage;
import dev.mcpstack.shared.AccountProtocol.ReportSpend;
import dev.mcpstack.shared.AccountProtocol.UsageLine;
import dev.mcpstack.shared.CborSerializable;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.TaskProtocol;
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
import java.util.function.Consumer;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
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
 * A key's usage account (one per key account, sharded, event-sourced): each succeeded task's
 * {@link RecordUsage} is an event, recorded once per task id (reports re-sent within the dedupe
 * window are recognised), summed per model and UTC day. After each record it tells the key's
 * limiter what the key spent lately, so the limiter checks budgets without touching the journal.
 */
public final class KeyAccount
    extends EventSourcedBehaviorWithEnforcedReplies<Command, KeyAccount.Event, KeyAccount.State> {

  /** How far back the spending sent to the limiter goes: the longest budget period, and a day. */
  static final int SPEND_DAYS = 32;

  public sealed interface Event extends CborSerializable permits UsageRecorded {}

  public record UsageRecorded(
      String taskId, String model, LocalDate day, long promptTokens, long completionTokens, long costMicros, Instant finishedAt)
      implements Event {}

  /**
   * Usage per "day/model", and the tasks recorded lately (id → finished at) to recognise a
   * repeated report; those older than the dedupe window behind the newest are dropped.
   */
  public record State(Map<String, UsageLine> lines, Map<String, Instant> recent) implements CborSerializable {
    public State {
      lines = Map.copyOf(lines);
      recent = Map.copyOf(recent);
    }

    State apply(UsageRecorded e, Duration dedupeWindow) {
      Map<String, UsageLine> nextLines = new HashMap<>(lines);
      nextLines.merge(
          e.day() + "/" + e.model(),
          new UsageLine(e.day(), e.model(), 1, e.promptTokens(), e.completionTokens(), e.costMicros()),
          UsageLine::add);
      Instant horizon = e.finishedAt().minus(dedupeWindow);
      Map<String, Instant> nextRecent = new LinkedHashMap<>();
      recent.forEach(
          (id, at) -> {
            if (at.isAfter(horizon)) {
              nextRecent.put(id, at);
            }
          });
      nextRecent.put(e.taskId(), e.finishedAt());
      return new State(nextLines, nextRecent);
    }

    /** Cost per day from {@code since} on. */
    Map<LocalDate, Long> costByDay(LocalDate since) {
      Map<LocalDate, Long> cost = new HashMap<>();
      lines.values().stream()
          .filter(l -> !l.day().isBefore(since))
          .forEach(l -> cost.merge(l.day(), l.costMicros(), Long::sum));
      return cost;
    }
  }

  /** Accounts live on worker nodes; they are not remembered (they recover when asked). */
  public static void init(ActorSystem<?> system, Duration dedupeWindow, Duration restartMin, Duration restartMax) {
    ClusterSharding sharding = ClusterSharding.get(system);
    sharding.init(
        Entity.of(
                AccountProtocol.TYPE_KEY,
                ctx ->
                    create(
                        ctx.getEntityId(),
                        Clock.systemUTC(),
                        dedupeWindow,
                        restartMin,
                        restartMax,
                        spend -> sharding.entityRefFor(LimiterProtocol.TYPE_KEY, ctx.getEntityId()).tell(spend)))
            .withRole(TaskProtocol.WORKER_ROLE)
            .withSettings(ClusterShardingSettings.create(system).withRememberEntities(false)));
  }

  /** @param limiter where the spending goes after each record (the key's limiter) */
  public static Behavior<Command> create(
      String account,
      Clock clock,
      Duration dedupeWindow,
      Duration restartMin,
      Duration restartMax,
      Consumer<LimiterProtocol.SpendChanged> limiter) {
    return new KeyAccount(account, clock, dedupeWindow, restartMin, restartMax, limiter);
  }

  private final Clock clock;
  private final Duration dedupeWindow;
  private final Consumer<LimiterProtocol.SpendChanged> limiter;

  private KeyAccount(
      String account,
      Clock clock,
      Duration dedupeWindow,
      Duration restartMin,
      Duration restartMax,
      Consumer<LimiterProtocol.SpendChanged> limiter) {
    super(
        PersistenceId.of(AccountProtocol.TYPE_KEY.name(), account),
        SupervisorStrategy.restartWithBackoff(restartMin, restartMax, 0.2));
    this.clock = clock;
    this.dedupeWindow = dedupeWindow;
    this.limiter = limiter;
  }

  @Override
  public State emptyState() {
    return new State(Map.of(), Map.of());
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(100, 2);
  }

  @Override
  public CommandHandlerWithReply<Command, Event, State> commandHandler() {
    return newCommandHandlerWithReplyBuilder()
        .forAnyState()
        .onCommand(RecordUsage.class, this::onRecordUsage)
        .onCommand(GetUsage.class, this::onGetUsage)
        .onCommand(ReportSpend.class, (state, cmd) -> Effect().reply(cmd.replyTo(), spend(state)))
        .build();
  }

  private ReplyEffect<Event, State> onRecordUsage(State state, RecordUsage cmd) {
    if (state.recent().containsKey(cmd.taskId())) {
      return Effect().reply(cmd.replyTo(), Done.getInstance());
    }
    UsageRecorded event =
        new UsageRecorded(
            cmd.taskId(),
            cmd.model(),
            LocalDate.ofInstant(cmd.finishedAt(), ZoneOffset.UTC),
            cmd.usage().promptTokens(),
            cmd.usage().completionTokens(),
            cmd.costMicros(),
            cmd.finishedAt());
    return Effect()
        .persist(event)
        .thenRun(s -> limiter.accept(spend(s)))
        .thenReply(cmd.replyTo(), s -> Done.getInstance());
  }

  private LimiterProtocol.SpendChanged spend(State state) {
    return new LimiterProtocol.SpendChanged(state.costByDay(today().minusDays(SPEND_DAYS)));
  }

  private ReplyEffect<Event, State> onGetUsage(State state, GetUsage cmd) {
    List<UsageLine> lines =
        state.lines().values().stream()
            .filter(l -> !l.day().isBefore(cmd.from()) && !l.day().isAfter(cmd.to()))
            .sorted(Comparator.comparing(UsageLine::day).thenComparing(UsageLine::model))
            .toList();
    LocalDate start = cmd.budget() == null ? null : cmd.budget().periodStart(today());
    long spent = start == null ? 0 : AccountProtocol.spentSince(state.costByDay(start), start);
    return Effect().reply(cmd.replyTo(), new AccountProtocol.UsageReport(lines, spent, start));
  }

  private LocalDate today() {
    return LocalDate.ofInstant(clock.instant(), ZoneOffset.UTC);
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder()
        .forAnyState()
        .onEvent(UsageRecorded.class, (state, e) -> state.apply(e, dedupeWindow))
        .build();
  }
}
