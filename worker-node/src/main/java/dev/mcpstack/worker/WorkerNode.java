package dev.mcpstack.worker;

import com.typesafe.config.Config;
import dev.mcpstack.shared.CacheSettings;
import dev.mcpstack.worker.cache.ResponseCacheEntity;
import dev.mcpstack.worker.journal.Journal;
import dev.mcpstack.worker.journal.JournalHealth;
import dev.mcpstack.worker.keys.KeyAccount;
import dev.mcpstack.worker.keys.KeyLimiter;
import dev.mcpstack.worker.keys.KeyRegistry;
import dev.mcpstack.worker.keys.UsageReporter;
import java.time.Clock;
import dev.mcpstack.worker.journal.RetentionCleaner;
import dev.mcpstack.worker.runner.ModelRunnerClient;
import dev.mcpstack.worker.runner.ProbeSettings;
import dev.mcpstack.worker.runner.UpstreamProbes;
import dev.mcpstack.worker.task.TaskEntity;
import dev.mcpstack.worker.task.TaskSettings;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;

/**
 * The worker role on one node: the model-runner client and its upstream probes, sharded task entities, the key registry
 * and per-key limiters, the response cache partitions, and the retention cleaner. The journal schema must exist first ({@link Journal#ensureSchema}).
 */
public final class WorkerNode {
  private final ModelRunnerClient client;

  private WorkerNode(ModelRunnerClient client) {
    this.client = client;
  }

  public static WorkerNode start(ActorSystem<?> system) {
    return start(system, system.settings().config());
  }

  /**
   * @param config the worker's settings, when they differ from the system's (the standalone node
   *     points its upstream at the simulator it started on the same system)
   */
  public static WorkerNode start(ActorSystem<?> system, Config config) {
    ModelRunnerClient client = ModelRunnerClient.fromConfig(system, config);
    if (client.upstreams().isEmpty()) {
      system
          .log()
          .warn("no model runner configured (MODEL_RUNNER_URL or mcp.worker.upstreams): every task will fail");
    }
    ProbeSettings probes = ProbeSettings.fromConfig(config);
    if (probes.enabled() && !client.upstreams().isEmpty()) {
      system.systemActorOf(UpstreamProbes.create(client.upstreams(), probes), "upstream-probes", Props.empty());
    }
    JournalHealth.get(system).start();
    TaskSettings taskSettings = TaskSettings.fromConfig(config);
    TaskEntity.init(system, taskSettings, client, new UsageReporter(system, config, Clock.systemUTC()));
    KeyRegistry.init(system, taskSettings.journalRestartMin(), taskSettings.journalRestartMax());
    KeyLimiter.init(
        system, config.getDuration("mcp.worker.limiter.idle-stop"), config.getDuration("mcp.worker.usage.report-timeout"));
    KeyAccount.init(
        system,
        config.getDuration("mcp.worker.usage.dedupe-window"),
        taskSettings.journalRestartMin(),
        taskSettings.journalRestartMax());
    // always started, so that api-nodes with the cache on find its partitions whatever this node's switch says
    ResponseCacheEntity.init(system, CacheSettings.fromConfig(config));
    system.systemActorOf(WorkerInfo.create(client, config), "worker-info", Props.empty());
    if (config.getBoolean("mcp.worker.retention.enabled")) {
      system.systemActorOf(RetentionCleaner.periodic(config), "task-retention", Props.empty());
    }
    return new WorkerNode(client);
  }

  public ModelRunnerClient client() {
    return client;
  }
}
