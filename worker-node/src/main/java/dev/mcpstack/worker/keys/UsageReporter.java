package dev.mcpstack.worker.keys;

import com.typesafe.config.Config;
import dev.mcpstack.shared.AccountProtocol;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import dev.mcpstack.worker.task.TaskEntity;
import dev.mcpstack.worker.task.TaskState;
import java.time.Clock;
import java.time.Duration;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.pattern.Patterns;

/**
 * What a task's end means for its key: the hold its limiter gave it is freed (its tokens settled
 * with the real usage), and a succeeded task's usage and cost are recorded in the key's usage
 * account, asked again a
 * few times if the account does not answer. A finished task recovered within
 * {@code resend-window} of its end reports again (the account recognises a repeat), so a
 * fail-over between the task's end and the report loses nothing. Tokens and cost by model go to
 * the metrics once, where the task ended.
 */
public final class UsageReporter implements TaskEntity.FinishListener {
  private final ActorSystem<?> system;
  private final ClusterSharding sharding;
  private final Prices prices;
  private final Clock clock;
  private final Duration resendWindow;
  private final Duration askTimeout;
  private final int attempts;

  public UsageReporter(ActorSystem<?> system, Config config, Clock clock) {
    this.system = system;
    this.sharding = ClusterSharding.get(system);
    this.prices = Prices.fromConfig(config);
    this.clock = clock;
    Config c = config.getConfig("mcp.worker.usage");
    this.resendWindow = c.getDuration("resend-window");
    this.askTimeout = c.getDuration("report-timeout");
    this.attempts = c.getInt("report-attempts");
    if (c.getDuration("dedupe-window").compareTo(resendWindow) <= 0) {
      throw new IllegalArgumentException("mcp.worker.usage.dedupe-window must be longer than resend-window");
    }
  }

  @Override
  public void finished(TaskState state, boolean recovered) {
    boolean succeeded = state.status() == TaskStatus.SUCCEEDED;
    Usage usage = succeeded && state.result() != null && state.result().usage() != null ? state.result().usage() : Usage.ZERO;
    String model = state.spec().model();
    long cost = prices.costMicros(model, usage);
    if (!recovered && succeeded) {
      WorkerMetrics.usage(model, usage.promptTokens(), usage.completionTokens(), cost);
    }
    if (state.keyId() == null || (recovered && state.updatedAt().plus(resendWindow).isBefore(clock.instant()))) {
      return;
    }
    if (state.holdId() != null) {
      // a failed or cancelled task keeps its reserved estimate: what it used upstream is unknown
      sharding
          .entityRefFor(LimiterProtocol.TYPE_KEY, state.keyId())
          .tell(new LimiterProtocol.Release(state.holdId(), succeeded ? usage.totalTokens() : -1));
    }
    if (!succeeded) {
      return;
    }
    EntityRef<AccountProtocol.Command> account = sharding.entityRefFor(AccountProtocol.TYPE_KEY, state.keyId());
    Patterns.retry(
            () ->
                account.<Done>ask(
                    replyTo ->
                        new AccountProtocol.RecordUsage(state.id(), model, usage, cost, state.updatedAt(), replyTo),
                    askTimeout),
            attempts,
            askTimeout,
            system.classicSystem().scheduler(),
            system.executionContext())
        .whenComplete(
            (done, e) -> {
              if (e != null) {
                system.log().warn("usage of task {} could not be recorded for key {}: {}", state.id(), state.keyId(), e.toString());
              }
            });
  }
}
