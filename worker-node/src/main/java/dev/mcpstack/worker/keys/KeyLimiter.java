package dev.mcpstack.worker.keys;

import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.LimiterProtocol.Acquire;
import dev.mcpstack.shared.LimiterProtocol.Command;
import dev.mcpstack.shared.LimiterProtocol.Decision;
import dev.mcpstack.shared.LimiterProtocol.HoldKind;
import dev.mcpstack.shared.LimiterProtocol.Release;
import dev.mcpstack.shared.LimiterProtocol.Standing;
import dev.mcpstack.shared.TaskProtocol;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;

/**
 * One API key's limits, decided in one place for the whole cluster (a sharded entity per key id):
 * requests and tokens per rolling minute, concurrent requests, active tasks. Tokens are reserved
 * on {@link Acquire} from the caller's estimate and settled on {@link Release} with the real usage.
 * The counts live in memory only: a fail-over of this entity forgets the last minute and the
 * open holds (the bound is in docs/adr/0005), which is what keeps the check off the journal.
 */
public final class KeyLimiter extends AbstractBehavior<Command> {
  static final int SLOTS = 60;
  static final long SLOT_MILLIS = 1_000;

  private record Hold(HoldKind kind, long epoch, long tokens, Instant until) {}

  private enum Idle implements Command {
    INSTANCE
  }

  /** Starts sharding of limiters; they live on worker nodes, like tasks, and are not remembered. */
  public static void init(ActorSystem<?> system, Duration idleStop) {
    ClusterSharding.get(system)
        .init(
            Entity.of(
                    LimiterProtocol.TYPE_KEY,
                    ctx -> create(Clock.systemUTC(), idleStop, ctx.getShard()))
                .withRole(TaskProtocol.WORKER_ROLE)
                .withSettings(ClusterShardingSettings.create(system).withRememberEntities(false)));
  }

  /** @param shard where to ask for passivation when idle; null stops the actor itself */
  public static Behavior<Command> create(
      Clock clock, Duration idleStop, ActorRef<ClusterSharding.ShardCommand> shard) {
    return Behaviors.setup(ctx -> new KeyLimiter(ctx, clock, idleStop, shard));
  }

  private final Clock clock;
  private final ActorRef<ClusterSharding.ShardCommand> shard;
  private final SlidingWindow requests = new SlidingWindow(SLOTS, SLOT_MILLIS);
  private final SlidingWindow tokens = new SlidingWindow(SLOTS, SLOT_MILLIS);
  private final Map<String, Hold> holds = new HashMap<>();

  private KeyLimiter(
      ActorContext<Command> ctx, Clock clock, Duration idleStop, ActorRef<ClusterSharding.ShardCommand> shard) {
    super(ctx);
    this.clock = clock;
    this.shard = shard;
    ctx.setReceiveTimeout(idleStop, Idle.INSTANCE);
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(Acquire.class, this::onAcquire)
        .onMessage(Release.class, this::onRelease)
        .onMessageEquals(Idle.INSTANCE, this::onIdle)
        .build();
  }

  private Behavior<Command> onAcquire(Acquire cmd) {
    Instant now = clock.instant();
    long t = now.toEpochMilli();
    expireHolds(now);
    KeyLimits limits = cmd.limits();
    if (holds.containsKey(cmd.holdId())) {
      // a retried ask for the same hold: already admitted, do not count it twice
      cmd.replyTo().tell(new LimiterProtocol.Granted(standing(limits, t)));
      return this;
    }
    Decision denied = check(cmd, limits, t);
    if (denied != null) {
      cmd.replyTo().tell(denied);
      return this;
    }
    long epoch = requests.add(t, 1);
    tokens.add(t, cmd.tokens());
    holds.put(cmd.holdId(), new Hold(cmd.kind(), epoch, cmd.tokens(), cmd.holdUntil()));
    cmd.replyTo().tell(new LimiterProtocol.Granted(standing(limits, t)));
    return this;
  }

  /** The first limit the request would break, as a denial; null when it fits all of them. */
  private Decision check(Acquire cmd, KeyLimits limits, long t) {
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
    return new LimiterProtocol.Denied(reason, wait, standing(limits, t));
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

  private Behavior<Command> onIdle() {
    long t = clock.millis();
    expireHolds(clock.instant());
    if (!holds.isEmpty() || !requests.isEmpty(t) || !tokens.isEmpty(t)) {
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
    long usedRequests = requests.sum(t);
    long usedTokens = tokens.sum(t);
    return new Standing(
        (int) rpm,
        rpm == 0 ? 0 : (int) Math.max(0, rpm - usedRequests),
        rpm == 0 ? 0 : Math.max(0, requests.millisUntilFits(t, rpm, rpm)),
        tpm,
        tpm == 0 ? 0 : Math.max(0, tpm - usedTokens),
        tpm == 0 ? 0 : Math.max(0, tokens.millisUntilFits(t, tpm, tpm)));
  }
}
