package dev.mcpstack.standalone;

import com.typesafe.config.Config;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.worker.journal.JournalHealth;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import dev.mcpstack.worker.task.ActiveTasks;
import java.time.Duration;
import java.util.Map;
import kamon.Kamon;
import kamon.metric.Gauge;
import kamon.metric.Metric;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.ClusterEvent.CurrentClusterState;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.ShardRegion.CurrentShardRegionState;
import org.apache.pekko.cluster.sharding.ShardRegion.ShardState;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingQuery;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * Gauges a node samples every {@code mcp.metrics.sample-interval} (docs/metrics.md): cluster
 * members by status and the unreachable ones, as this node sees them (every node); and on worker
 * nodes the task shards and entities it hosts and its unfinished tasks. Sampling reads in-memory
 * state. The journal's probe metrics come from {@link JournalHealth}, which probes on its own.
 */
final class NodeGauges {
  private static final Metric.Gauge MEMBERS =
      Kamon.gauge("mcp.cluster.members", "Cluster members as this node sees them, by status");
  private static final Gauge UNREACHABLE =
      Kamon.gauge("mcp.cluster.unreachable.members", "Members this node's failure detector marks unreachable")
          .withoutTags();
  private static final Metric.Gauge SHARDS =
      Kamon.gauge("mcp.sharding.shards", "Shards this node hosts, by entity type");
  private static final Metric.Gauge ENTITIES =
      Kamon.gauge("mcp.sharding.entities", "Entities running in this node's shards, by entity type");

  private NodeGauges() {}

  /** Starts sampling; stops with the system. */
  static void start(ActorSystem<?> system, Config config) {
    Duration interval = config.getDuration("mcp.metrics.sample-interval");
    boolean worker = Cluster.get(system).selfMember().hasRole(TaskProtocol.WORKER_ROLE);
    Map<MemberStatus, Gauge> byStatus = statusGauges();
    Gauge shards = SHARDS.withTag("type", TaskProtocol.TYPE_KEY.name());
    Gauge entities = ENTITIES.withTag("type", TaskProtocol.TYPE_KEY.name());
    Cancellable sampling =
        system
            .scheduler()
            .scheduleWithFixedDelay(
                Duration.ZERO,
                interval,
                () -> {
                  members(Cluster.get(system).state(), byStatus);
                  if (worker) {
                    ActiveTasks active = ActiveTasks.get(system);
                    WorkerMetrics.activeTasks(active.count(), active.max());
                    shards(system, interval, shards, entities);
                  }
                },
                system.executionContext());
    system.getWhenTerminated().thenRun(sampling::cancel);
  }

  private static void members(CurrentClusterState state, Map<MemberStatus, Gauge> byStatus) {
    Map<MemberStatus, Integer> counts = new java.util.HashMap<>();
    for (Member m : state.getMembers()) {
      counts.merge(m.status(), 1, Integer::sum);
    }
    byStatus.forEach((status, gauge) -> gauge.update(counts.getOrDefault(status, 0)));
    UNREACHABLE.update(state.getUnreachable().size());
  }

  private static void shards(ActorSystem<?> system, Duration timeout, Gauge shards, Gauge entities) {
    AskPattern.<ClusterShardingQuery, CurrentShardRegionState>ask(
            ClusterSharding.get(system).shardState(),
            replyTo -> new GetShardRegionState(TaskProtocol.TYPE_KEY, replyTo),
            timeout,
            system.scheduler())
        .thenAccept(
            state -> {
              int count = 0;
              for (ShardState shard : state.getShards()) {
                count += shard.getEntityIds().size();
              }
              shards.update(state.getShards().size());
              entities.update(count);
            });
  }

  /** A gauge per member status, named as the admin API names them (up, weakly-up, …). */
  private static Map<MemberStatus, Gauge> statusGauges() {
    Map<MemberStatus, Gauge> out = new java.util.LinkedHashMap<>();
    for (MemberStatus s :
        new MemberStatus[] {
          MemberStatus.joining(), MemberStatus.weaklyUp(), MemberStatus.up(), MemberStatus.leaving(),
          MemberStatus.exiting(), MemberStatus.down(), MemberStatus.removed()
        }) {
      out.put(s, MEMBERS.withTag("status", name(s)));
    }
    return out;
  }

  static String name(MemberStatus s) {
    String simple = s.toString().replace("$", "");
    StringBuilder out = new StringBuilder();
    for (char c : simple.toCharArray()) {
      if (Character.isUpperCase(c) && out.length() > 0) {
        out.append('-');
      }
      out.append(Character.toLowerCase(c));
    }
    return out.toString();
  }
}
