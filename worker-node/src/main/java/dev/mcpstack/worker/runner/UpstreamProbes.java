package dev.mcpstack.worker.runner;

import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Duration;
import java.util.List;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * Probes every upstream of this worker (docs/adr/0012), so that a dead runner is marked down while
 * it is idle, before a client's call pays a connect error or a timeout for it. One probe per
 * upstream at a time: the next is scheduled {@code interval} after the previous one ended, however
 * slow the runner. The first probe of each upstream goes out at once.
 */
public final class UpstreamProbes {
  private UpstreamProbes() {}

  public sealed interface Command permits ProbeNow, Probed {}

  private record ProbeNow(int index) implements Command {}

  private record Probed(int index, String failure, Duration took) implements Command {}

  public static Behavior<Command> create(List<Upstream> upstreams, ProbeSettings settings) {
    return Behaviors.setup(
        ctx ->
            Behaviors.withTimers(
                timers -> {
                  for (int i = 0; i < upstreams.size(); i++) {
                    ctx.getSelf().tell(new ProbeNow(i));
                  }
                  return Behaviors.receive(Command.class)
                      .onMessage(
                          ProbeNow.class,
                          msg -> {
                            long start = System.nanoTime();
                            ctx.pipeToSelf(
                                upstreams.get(msg.index()).sendProbe(settings.path(), settings.timeout()),
                                (failure, e) ->
                                    new Probed(
                                        msg.index(),
                                        e != null ? "probe failed: " + e : failure,
                                        Duration.ofNanos(System.nanoTime() - start)));
                            return Behaviors.same();
                          })
                      .onMessage(
                          Probed.class,
                          msg -> {
                            Upstream upstream = upstreams.get(msg.index());
                            Upstream.ProbeState before = upstream.probe().state();
                            Upstream.Probe after = upstream.recordProbe(msg.failure(), settings.downAfter());
                            WorkerMetrics.upstreamProbe(upstream.name(), msg.took(), msg.failure() == null);
                            if (after.state() != before) {
                              if (after.state() == Upstream.ProbeState.DOWN) {
                                ctx.getLog()
                                    .warn(
                                        "upstream '{}' is down after {} failed probes ({}): calls go to other upstreams first",
                                        upstream.name(), after.failuresInARow(), after.detail());
                              } else if (before == Upstream.ProbeState.DOWN) {
                                ctx.getLog().info("upstream '{}' answers its probe again: up", upstream.name());
                              }
                            }
                            timers.startSingleTimer(msg.index(), new ProbeNow(msg.index()), settings.interval());
                            return Behaviors.same();
                          })
                      .build();
                }));
  }
}
