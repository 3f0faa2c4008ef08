package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.WorkerInfoProtocol;
import dev.mcpstack.shared.WorkerInfoProtocol.ModelList;
import dev.mcpstack.shared.WorkerInfoProtocol.UpstreamList;
import dev.mcpstack.shared.WorkerInfoProtocol.WorkerHealth;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import com.typesafe.config.Config;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

/**
 * The worker nodes this api-node can see, found through the receptionist: their model catalogue
 * (asked of one worker, the next one when it does not answer; kept for {@code
 * mcp.api.models-cache.ttl}), their health and their upstreams (asked of all).
 */
final class Workers {
  private final ActorSystem<?> system;
  private final ApiSettings settings;
  private final long modelsTtlNanos;
  private final long keepLastGoodNanos;
  /** The last non-empty catalogue and when it arrived ({@link System#nanoTime()}); null before the first. */
  private final AtomicReference<Catalogue> catalogue = new AtomicReference<>();
  /** The one fetch in flight, if any: callers that must wait share it. */
  private final AtomicReference<CompletableFuture<ModelList>> fetching = new AtomicReference<>();

  private record Catalogue(ModelList list, long fetchedAt) {}

  Workers(ActorSystem<?> system, ApiSettings settings) {
    this.system = system;
    this.settings = settings;
    Config models = system.settings().config().getConfig("mcp.api.models-cache");
    this.modelsTtlNanos = models.getDuration("ttl").toNanos();
    this.keepLastGoodNanos = models.getDuration("keep-last-good-for").toNanos();
  }

  CompletionStage<List<ActorRef<WorkerInfoProtocol.Command>>> find() {
    return AskPattern.<Receptionist.Command, Receptionist.Listing>ask(
            system.receptionist(),
            replyTo -> Receptionist.find(WorkerInfoProtocol.SERVICE_KEY, replyTo),
            settings.askTimeout(),
            system.scheduler())
        .thenApply(
            listing -> {
              List<ActorRef<WorkerInfoProtocol.Command>> all =
                  new ArrayList<>(listing.getServiceInstances(WorkerInfoProtocol.SERVICE_KEY));
              Collections.shuffle(all);
              return all;
            });
  }

  /**
   * The model catalogue. Within the TTL of the last one, that one; after it, still that one while a
   * fresh one is fetched in the background, for up to {@code keep-last-good-for} (so a runner that
   * fails or answers nothing keeps the last good list meanwhile); without a usable one, a fresh one
   * (503 when no worker answers).
   */
  CompletionStage<ModelList> models() {
    if (modelsTtlNanos <= 0) {
      return fetchModels();
    }
    Catalogue last = catalogue.get();
    if (last != null) {
      long age = System.nanoTime() - last.fetchedAt();
      if (age < modelsTtlNanos) {
        return CompletableFuture.completedFuture(last.list());
      }
      if (age < modelsTtlNanos + keepLastGoodNanos) {
        refresh();
        return CompletableFuture.completedFuture(last.list());
      }
    }
    return refresh();
  }

  /** Fetches the catalogue unless a fetch is under way (then that one); keeps it when it is not empty. */
  private CompletionStage<ModelList> refresh() {
    CompletableFuture<ModelList> mine = new CompletableFuture<>();
    CompletableFuture<ModelList> running = fetching.compareAndExchange(null, mine);
    if (running != null) {
      return running;
    }
    fetchModels()
        .whenComplete(
            (list, e) -> {
              if (e == null && !list.models().isEmpty()) {
                catalogue.set(new Catalogue(list, System.nanoTime()));
              } else {
                system.log().debug("model catalogue refresh failed or was empty; keeping the last good one");
              }
              fetching.set(null);
              if (e == null) {
                mine.complete(list);
              } else {
                mine.completeExceptionally(e);
              }
            });
    return mine;
  }

  /** The models of one worker that answers with a non-empty list; 503 when no worker answers. */
  private CompletionStage<ModelList> fetchModels() {
    return find()
        .thenCompose(
            workers -> {
              if (workers.isEmpty()) {
                throw noWorker();
              }
              return modelsFrom(workers, 0, Optional.empty());
            });
  }

  private CompletionStage<ModelList> modelsFrom(
      List<ActorRef<WorkerInfoProtocol.Command>> workers, int index, Optional<ModelList> emptyAnswer) {
    if (index >= workers.size()) {
      return emptyAnswer
          .map(CompletableFuture::completedFuture)
          .orElseGet(() -> CompletableFuture.failedFuture(noWorker()));
    }
    return AskPattern.<WorkerInfoProtocol.Command, ModelList>ask(
            workers.get(index), WorkerInfoProtocol.ListModels::new, settings.askTimeout(), system.scheduler())
        .handle(
            (list, e) -> {
              if (e == null && !list.models().isEmpty()) {
                return CompletableFuture.completedFuture(list);
              }
              return modelsFrom(workers, index + 1, e == null ? Optional.of(list) : emptyAnswer);
            })
        .thenCompose(f -> f);
  }

  /** Every worker's health that arrived within the ask timeout (an empty list when none did). */
  CompletionStage<List<WorkerHealth>> health() {
    return find().thenCompose(workers -> askAll(workers, WorkerInfoProtocol.CheckHealth::new));
  }

  /** Every worker's task shards and entities that arrived within the ask timeout (none: an empty list). */
  CompletionStage<List<WorkerInfoProtocol.NodeShards>> shards() {
    return find().thenCompose(workers -> askAll(workers, WorkerInfoProtocol.ListShards::new));
  }

  /** Every worker's upstreams that arrived within the ask timeout; 503 when no worker answers. */
  CompletionStage<List<UpstreamList>> upstreams() {
    return fromEvery(WorkerInfoProtocol.ListUpstreams::new);
  }

  /**
   * Tells every worker to close the named upstream's circuit breaker; their upstreams afterwards,
   * as far as they arrived within the ask timeout; 503 when no worker answers.
   */
  CompletionStage<List<UpstreamList>> resetBreaker(String upstream) {
    return fromEvery(replyTo -> new WorkerInfoProtocol.ResetBreaker(upstream, replyTo));
  }

  private <T> CompletionStage<List<T>> fromEvery(Function<ActorRef<T>, WorkerInfoProtocol.Command> question) {
    return find()
        .thenCompose(
            workers -> {
              if (workers.isEmpty()) {
                throw noWorker();
              }
              return askAll(workers, question);
            })
        .thenApply(
            answers -> {
              if (answers.isEmpty()) {
                throw noWorker();
              }
              return answers;
            });
  }

  /** Asks every worker at once; the answers that arrived within the ask timeout, in no order. */
  private <T> CompletionStage<List<T>> askAll(
      List<ActorRef<WorkerInfoProtocol.Command>> workers,
      Function<ActorRef<T>, WorkerInfoProtocol.Command> question) {
    List<CompletableFuture<T>> asks =
        workers.stream()
            .map(
                w ->
                    AskPattern.<WorkerInfoProtocol.Command, T>ask(
                            w, question::apply, settings.askTimeout(), system.scheduler())
                        .toCompletableFuture()
                        .exceptionally(e -> null))
            .toList();
    return CompletableFuture.allOf(asks.toArray(CompletableFuture[]::new))
        .thenApply(done -> asks.stream().map(CompletableFuture::join).filter(a -> a != null).toList());
  }

  private static ApiError noWorker() {
    return ApiError.of(ErrorCode.UNAVAILABLE, "No worker node is available right now; try again shortly.");
  }
}
