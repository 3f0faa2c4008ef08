package dev.mcpstack.worker;

import com.typesafe.config.Config;
import dev.mcpstack.shared.WorkerInfoProtocol;
import dev.mcpstack.shared.WorkerInfoProtocol.CheckHealth;
import dev.mcpstack.shared.WorkerInfoProtocol.Command;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.WorkerInfoProtocol.ListModels;
import dev.mcpstack.shared.WorkerInfoProtocol.ListShards;
import dev.mcpstack.shared.WorkerInfoProtocol.NodeShards;
import dev.mcpstack.shared.WorkerInfoProtocol.ListUpstreams;
import dev.mcpstack.shared.WorkerInfoProtocol.ResetBreaker;
import dev.mcpstack.shared.WorkerInfoProtocol.UpstreamList;
import dev.mcpstack.shared.WorkerInfoProtocol.UpstreamStatus;
import dev.mcpstack.shared.WorkerInfoProtocol.ModelInfo;
import dev.mcpstack.shared.WorkerInfoProtocol.ModelList;
import dev.mcpstack.shared.WorkerInfoProtocol.WorkerHealth;
import dev.mcpstack.worker.journal.JournalHealth;
import dev.mcpstack.worker.runner.ModelRunnerClient;
import dev.mcpstack.worker.runner.Upstream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.cluster.sharding.ShardRegion.CurrentShardRegionState;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingQuery;
import org.apache.pekko.cluster.sharding.typed.GetShardRegionState;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

/** Answers api-nodes about this worker: its models and its health. Registered with the receptionist. */
final class WorkerInfo {
  private WorkerInfo() {}

  static Behavior<Command> create(ModelRunnerClient client, Config config) {
    return Behaviors.setup(
        ctx -> {
          ctx.getSystem()
              .receptionist()
              .tell(Receptionist.register(WorkerInfoProtocol.SERVICE_KEY, ctx.getSelf()));
          JournalHealth journal = JournalHealth.get(ctx.getSystem());
          return Behaviors.receive(Command.class)
              .onMessage(
                  ListModels.class,
                  msg -> {
                    client
                        .listModels()
                        .thenApply(WorkerInfo::byModel)
                        .whenComplete(
                            (list, e) -> msg.replyTo().tell(e == null ? list : new ModelList(List.of())));
                    return Behaviors.same();
                  })
              .onMessage(
                  ListUpstreams.class,
                  msg -> {
                    msg.replyTo().tell(upstreams(ctx.getSystem(), client));
                    return Behaviors.same();
                  })
              .onMessage(
                  ResetBreaker.class,
                  msg -> {
                    client.upstreams().stream()
                        .filter(u -> u.name().equals(msg.upstream()))
                        .forEach(
                            u -> {
                              u.resetBreaker();
                              ctx.getLog().info("circuit breaker of upstream '{}' reset by an operator", u.name());
                            });
                    msg.replyTo().tell(upstreams(ctx.getSystem(), client));
                    return Behaviors.same();
                  })
              .onMessage(
                  ListShards.class,
                  msg -> {
                    shards(ctx.getSystem()).thenAccept(msg.replyTo()::tell);
                    return Behaviors.same();
                  })
              .onMessage(
                  CheckHealth.class,
                  msg -> {
                    msg.replyTo().tell(health(client, journal.reachable()));
                    return Behaviors.same();
                  })
              .build();
        });
  }

  private static UpstreamList upstreams(ActorSystem<?> system, ModelRunnerClient client) {
    List<UpstreamStatus> list =
        client.upstreams().stream()
            .map(
                u ->
                    new UpstreamStatus(
                        u.name(),
                        u.settings().baseUrl(),
                        u.settings().models(),
                        u.settings().priority(),
                        u.settings().weight(),
                        u.breakerState().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'),
                        u.queueDepth(),
                        u.inFlight(),
                        u.recentErrors().stream()
                            .map(e -> new WorkerInfoProtocol.RecentError(e.at(), e.code(), e.message()))
                            .toList(),
                        u.probe().state().name().toLowerCase(java.util.Locale.ROOT),
                        u.probe().at(),
                        u.probe().detail()))
            .toList();
    return new UpstreamList(system.address().toString(), list);
  }

  /**
   * The shards and entities of both task kinds in this node's own shard regions (asked locally:
   * sharding's cluster-wide statistics come back empty when asked through an api-only node's proxy).
   */
  private static CompletionStage<NodeShards> shards(ActorSystem<?> system) {
    CompletionStage<CurrentShardRegionState> journaled = regionState(system, TaskProtocol.TYPE_KEY);
    return journaled.thenCombine(
        regionState(system, TaskProtocol.MEMORY_TYPE_KEY),
        (a, b) -> {
          int shards = a.getShards().size() + b.getShards().size();
          long entities =
              java.util.stream.Stream.concat(a.getShards().stream(), b.getShards().stream())
                  .mapToLong(shard -> shard.getEntityIds().size())
                  .sum();
          return new NodeShards(system.address().toString(), shards, entities);
        });
  }

  /** A shard region's state; none when it does not answer in time. */
  private static CompletionStage<CurrentShardRegionState> regionState(
      ActorSystem<?> system, EntityTypeKey<TaskProtocol.Command> type) {
    return AskPattern.<ClusterShardingQuery, CurrentShardRegionState>ask(
            ClusterSharding.get(system).shardState(),
            replyTo -> new GetShardRegionState(type, replyTo),
            Duration.ofSeconds(3),
            system.scheduler())
        .exceptionally(e -> new CurrentShardRegionState(scala.collection.immutable.Set$.MODULE$.empty()));
  }

  private static WorkerHealth health(ModelRunnerClient client, boolean journalOk) {
    List<Upstream> all = client.upstreams();
    int usable = (int) all.stream().filter(Upstream::available).count();
    List<String> problems = new ArrayList<>();
    if (!journalOk) {
      problems.add("journal unreachable");
    }
    if (all.isEmpty()) {
      problems.add("no model runner configured");
    } else if (usable == 0) {
      problems.add("every model runner is down (probes) or its circuit breaker open");
    }
    return new WorkerHealth(journalOk, usable, all.size(), String.join("; ", problems));
  }

  private static ModelList byModel(Map<String, List<String>> modelsByUpstream) {
    Map<String, List<String>> upstreamsByModel = new TreeMap<>();
    modelsByUpstream.forEach(
        (upstream, models) ->
            models.forEach(m -> upstreamsByModel.computeIfAbsent(m, k -> new ArrayList<>()).add(upstream)));
    List<ModelInfo> models = new ArrayList<>();
    upstreamsByModel.forEach((id, ups) -> models.add(new ModelInfo(id, "mcp-stack", List.copyOf(ups))));
    return new ModelList(models);
  }
}
