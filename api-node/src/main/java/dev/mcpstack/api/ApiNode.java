package dev.mcpstack.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mcpstack.shared.TaskProtocol;
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
 * without the worker role it starts sharding of tasks as a proxy (on a node with both roles the
 * worker, started first, already did). The binding is registered with CoordinatedShutdown: on
 * SIGTERM the port is unbound first and in-flight requests get {@code mcp.api.shutdown-deadline}.
 */
public final class ApiNode {
  private ApiNode() {}

  public static CompletionStage<ServerBinding> start(ActorSystem<?> system) {
    return start(system, Authenticator.anonymous());
  }

  /** Starts the API with a given way to map bearer tokens to owners. */
  public static CompletionStage<ServerBinding> start(ActorSystem<?> system, Authenticator authenticator) {
    ApiSettings settings = ApiSettings.fromConfig(system.settings().config());
    if (!Cluster.get(system).selfMember().hasRole(TaskProtocol.WORKER_ROLE)) {
      ClusterSharding.get(system)
          .init(
              Entity.of(TaskProtocol.TYPE_KEY, ctx -> Behaviors.<TaskProtocol.Command>empty())
                  .withRole(TaskProtocol.WORKER_ROLE));
    }
    if (!settings.development()) {
      system
          .log()
          .warn(
              "mcp.api.environment is '{}' but API keys are not implemented yet: every caller is '{}'",
              settings.environment(),
              Authenticator.ANONYMOUS);
    }
    ObjectMapper json = JacksonObjectMapperProvider.get(system).getOrCreate("jackson-json", Optional.empty());
    HttpSupport http = new HttpSupport(system, settings, json, authenticator);
    ApiRoutes routes = new ApiRoutes(http, new TaskClient(system, settings), new Workers(system, settings));
    return Http.get(system)
        .newServerAt(settings.host(), settings.port())
        .bind(routes.route())
        .thenApply(
            binding -> {
              system.log().info("OpenAI-compatible API listening on {}", binding.localAddress());
              return binding.addToCoordinatedShutdown(settings.shutdownDeadline(), system);
            });
  }
}
