package dev.mcpstack.standalone;

import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.WorkerInfoProtocol;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * pekko-management readiness check ({@code /ready} on the management port, what Kubernetes
 * probes): a worker node is ready when its own journal is reachable and one of its upstreams is
 * usable; an api-only node when some worker is. Cluster membership is checked by
 * pekko-management's own check beside this one.
 */
public final class WorkerReadinessCheck implements Supplier<CompletionStage<Boolean>> {
  private static final Duration TIMEOUT = Duration.ofSeconds(3);
  private final org.apache.pekko.actor.typed.ActorSystem<?> system;

  public WorkerReadinessCheck(ActorSystem classic) {
    this.system = Adapter.toTyped(classic);
  }

  @Override
  public CompletionStage<Boolean> get() {
    boolean worker = Cluster.get(system).selfMember().hasRole(TaskProtocol.WORKER_ROLE);
    return AskPattern.<Receptionist.Command, Receptionist.Listing>ask(
            system.receptionist(),
            replyTo -> Receptionist.find(WorkerInfoProtocol.SERVICE_KEY, replyTo),
            TIMEOUT,
            system.scheduler())
        .thenCompose(
            listing -> {
              List<ActorRef<WorkerInfoProtocol.Command>> candidates =
                  listing.getServiceInstances(WorkerInfoProtocol.SERVICE_KEY).stream()
                      .filter(ref -> !worker || ref.path().address().hasLocalScope())
                      .toList();
              List<CompletableFuture<Boolean>> answers =
                  candidates.stream()
                      .map(
                          ref ->
                              AskPattern.<WorkerInfoProtocol.Command, WorkerInfoProtocol.WorkerHealth>ask(
                                      ref, WorkerInfoProtocol.CheckHealth::new, TIMEOUT, system.scheduler())
                                  .thenApply(WorkerInfoProtocol.WorkerHealth::ready)
                                  .exceptionally(e -> false)
                                  .toCompletableFuture())
                      .toList();
              return CompletableFuture.allOf(answers.toArray(CompletableFuture[]::new))
                  .thenApply(done -> answers.stream().anyMatch(CompletableFuture::join));
            });
  }
}
