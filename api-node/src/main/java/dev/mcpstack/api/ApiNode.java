package dev.mcpstack.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mcpstack.shared.AccountProtocol;
import dev.mcpstack.shared.KeyProtocol;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.TaskProtocol;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import com.typesafe.config.Config;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.serialization.jackson.JacksonObjectMapperProvider;

/**
 * The api role on one node: the OpenAI-compatible HTTP API on {@code mcp.api.host:port}. On a node
 * without the worker role it starts sharding of tasks, the key registry, the key limiters and the
 * usage accounts and the response cache partitions as proxies (on a node with both roles the worker, started first, already did). The binding is registered with CoordinatedShutdown: on
 * SIGTERM the port is unbound first and in-flight requests get {@code mcp.api.shutdown-deadline}.
 */
public final class ApiNode {
  private ApiNode() {}

  /**
   * Starts the API. Fails at once, with one line per reason, when production mode's requirements
   * are not met (docs/security.md), or when declared keys are malformed.
   */
  public static CompletionStage<ServerBinding> start(ActorSystem<?> system) {
    Config config = system.settings().config();
    List<String> problems = startupProblems(config);
    if (!problems.isEmpty()) {
      throw new IllegalStateException("refusing to start: " + String.join("; ", problems));
    }
    ApiSettings settings = ApiSettings.fromConfig(config);
    if (!Cluster.get(system).selfMember().hasRole(TaskProtocol.WORKER_ROLE)) {
      proxy(system, TaskProtocol.TYPE_KEY);
      proxy(system, TaskProtocol.MEMORY_TYPE_KEY);
      proxy(system, KeyProtocol.TYPE_KEY);
      proxy(system, LimiterProtocol.TYPE_KEY);
      proxy(system, AccountProtocol.TYPE_KEY);
      proxy(system, dev.mcpstack.shared.CacheProtocol.TYPE_KEY);
    }
    KeyStore keys = KeyStore.start(system, config.getConfig("mcp.api"));
    Authenticator authenticator = new Authenticator(keys, settings.keysRequired());
    if (!authenticator.required()) {
      system
          .log()
          .warn(
              "API keys are not required (ENVIRONMENT={}): callers without a known key are the tenant '{}', without"
                  + " limits. Never expose this node beyond your machine; set ENVIRONMENT=production or"
                  + " API_KEYS_REQUIRED=on.",
              settings.environment(),
              Caller.ANONYMOUS_TENANT);
    }
    ObjectMapper json = JacksonObjectMapperProvider.get(system).getOrCreate("jackson-json", Optional.empty());
    HttpSupport http = new HttpSupport(system, settings, json, authenticator);
    JournalGate.get(system); // subscribes now: a journal outage is known before the first request needs it
    ApiRoutes routes =
        new ApiRoutes(http, new TaskClient(system, settings, http.admission), new Workers(system, settings), keys);
    return Http.get(system)
        .newServerAt(settings.host(), settings.port())
        // every connection watched, so that a waiting call learns that its client left (ClientConnection)
        .bindFlow(ClientConnection.watching(routes.route(), system))
        .thenApply(
            binding -> {
              system.getWhenTerminated().thenRun(keys::stop);
              system.log().info("OpenAI-compatible API listening on {}", binding.localAddress());
              return binding.addToCoordinatedShutdown(settings.shutdownDeadline(), system);
            });
  }

  /**
   * Why the API must not start with {@code config}, one reason each (empty when it may): what
   * production mode requires (keys, an admin token of 32+ characters, exact CORS origins), and
   * settings that cannot work (malformed declared keys, a default max_tokens above the cap).
   */
  public static List<String> startupProblems(Config config) {
    List<String> problems = new ArrayList<>();
    ApiSettings settings;
    try {
      settings = ApiSettings.fromConfig(config);
    } catch (RuntimeException e) {
      return List.of(e.getMessage());
    }
    problems.addAll(settings.productionProblems());
    for (Runnable check :
        List.<Runnable>of(
            () -> CorsSettings.fromConfig(config, settings.environment()),
            () -> KeyStore.declared(config.getConfig("mcp.api")),
            () -> dev.mcpstack.shared.CacheSettings.fromConfig(config),
            () -> new RequestValidation(settings))) {
      try {
        check.run();
      } catch (RuntimeException e) {
        problems.add(e.getMessage());
      }
    }
    return problems;
  }

  /** Sharding of {@code type} on a node that hosts none of its entities (they live on workers). */
  private static <M> void proxy(ActorSystem<?> system, EntityTypeKey<M> type) {
    ClusterSharding.get(system)
        .init(Entity.of(type, ctx -> Behaviors.<M>empty()).withRole(TaskProtocol.WORKER_ROLE));
  }

  /** {@code keygen [tenant]}: prints a new API key and its {@code API_KEYS} entry. */
  public static void keygen(String[] args) {
    ApiKeys.main(args);
  }
}
