package dev.mcpstack.worker.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import dev.mcpstack.worker.task.AttemptFailure;
import dev.mcpstack.worker.task.AttemptRunner;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;

/**
 * The worker's client for model runners: routes a model to its upstreams (priority first, a
 * weighted split among equals, the next one when an upstream is down or its breaker open) and runs
 * the three task kinds against them. It is the {@link AttemptRunner} of the task entities.
 */
public final class ModelRunnerClient implements AttemptRunner {
  static final ObjectMapper JSON = new ObjectMapper();

  private final List<Upstream> upstreams;
  private final int embeddingsBatchSize;
  private final ChatCalls chat;

  public ModelRunnerClient(ActorSystem<?> system, List<UpstreamSettings> settings, int embeddingsBatchSize) {
    this.upstreams = settings.stream().map(s -> new Upstream(system, s)).toList();
    this.embeddingsBatchSize = embeddingsBatchSize;
    this.chat = new ChatCalls(system);
  }

  public static ModelRunnerClient fromConfig(ActorSystem<?> system, Config root) {
    return new ModelRunnerClient(
        system,
        UpstreamSettings.fromConfig(root),
        root.getInt("mcp.worker.embeddings.batch-size"));
  }

  public List<Upstream> upstreams() {
    return upstreams;
  }

  @Override
  public Attempt start(String taskId, TaskSpec spec, int attempt, Output output) {
    return start(taskId, spec, attempt, null, output);
  }

  @Override
  public Attempt start(String taskId, TaskSpec spec, int attempt, TraceContext trace, Output output) {
    AttemptCancel cancel = new AttemptCancel();
    CompletionStage<TaskResult> result =
        switch (spec.kind()) {
          case CHAT ->
              spec.streaming()
                  ? route(spec.model(), u -> chat.stream(u, spec.model(), spec.request(), output, cancel, trace))
                  : route(spec.model(), u -> chat.complete(u, spec.model(), spec.request(), trace, cancel));
          case EMBEDDINGS -> embeddings(spec.model(), spec.request(), trace, cancel);
          case MODEL_WARMUP -> warmup(spec.model(), trace, cancel);
        };
    return attempt(result, cancel::cancel);
  }

  private static Attempt attempt(CompletionStage<TaskResult> result, Runnable cancel) {
    return new Attempt() {
      @Override
      public CompletionStage<TaskResult> result() {
        return result;
      }

      @Override
      public void cancel() {
        cancel.run();
      }
    };
  }

  /**
   * Upstreams that serve {@code model}, best first: lower priority number first; among equals a
   * weighted random order (so traffic splits by weight); then those that failed recently (so a
   * retry goes elsewhere when it can); unavailable ones (breaker open) last.
   */
  List<Upstream> candidates(String model) {
    Map<Integer, List<Upstream>> byPriority =
        upstreams.stream()
            .filter(u -> u.settings().serves(model))
            .collect(Collectors.groupingBy(u -> u.settings().priority(), TreeMap::new, Collectors.toList()));
    List<Upstream> healthy = new ArrayList<>();
    List<Upstream> failing = new ArrayList<>();
    List<Upstream> down = new ArrayList<>();
    for (List<Upstream> group : byPriority.values()) {
      for (Upstream u : weightedOrder(group)) {
        (!u.available() ? down : u.failedRecently() ? failing : healthy).add(u);
      }
    }
    healthy.addAll(failing);
    healthy.addAll(down);
    return healthy;
  }

  private static List<Upstream> weightedOrder(List<Upstream> group) {
    List<Upstream> left = new ArrayList<>(group);
    List<Upstream> out = new ArrayList<>(group.size());
    while (!left.isEmpty()) {
      int total = left.stream().mapToInt(u -> Math.max(0, u.settings().weight())).sum();
      int pick = 0;
      if (total > 0) {
        int r = ThreadLocalRandom.current().nextInt(total);
        while (r >= Math.max(0, left.get(pick).settings().weight())) {
          r -= Math.max(0, left.get(pick).settings().weight());
          pick++;
        }
      }
      out.add(left.remove(pick));
    }
    return out;
  }

  /** Runs {@code call} on the best upstream; moves on while the failure says the request never left. */
  <T> CompletionStage<T> route(String model, Function<Upstream, CompletionStage<T>> call) {
    List<Upstream> candidates = candidates(model);
    if (candidates.isEmpty()) {
      return CompletableFuture.failedFuture(UpstreamFailure.noUpstream(model));
    }
    return tryFrom(candidates, 0, call, true);
  }

  /**
   * @param allFull whether every candidate before {@code index} failed only because its queue was
   *     full: the final failure is deferred (not an attempt for a background task) only if all were
   */
  private <T> CompletionStage<T> tryFrom(
      List<Upstream> candidates, int index, Function<Upstream, CompletionStage<T>> call, boolean allFull) {
    Upstream upstream = candidates.get(index);
    CompletionStage<T> outcome;
    try {
      outcome = call.apply(upstream);
    } catch (RuntimeException e) {
      outcome = CompletableFuture.failedFuture(e);
    }
    return outcome
        .toCompletableFuture()
        .exceptionallyCompose(
            e -> {
              Throwable cause = dev.mcpstack.shared.Failures.unwrap(e);
              if (cause instanceof UpstreamFailure f) {
                WorkerMetrics.upstreamError(upstream.name(), f.error().code());
                upstream.recordError(f);
                boolean full = allFull && f.deferred();
                if (f.notSent() && index + 1 < candidates.size()) {
                  return tryFrom(candidates, index + 1, call, full);
                }
                return CompletableFuture.failedFuture(full ? f : f.notDeferred());
              }
              return CompletableFuture.failedFuture(cause);
            });
  }

  // ---- embeddings: inputs grouped into batches, one upstream call per batch ----

  CompletionStage<TaskResult> embeddings(String model, JsonNode request, TraceContext trace, AttemptCancel cancel) {
    JsonNode input = request.path("input");
    List<JsonNode> inputs = new ArrayList<>();
    boolean listOfTexts = input.isArray() && input.size() > 0 && input.get(0).isTextual();
    if (listOfTexts) {
      input.forEach(inputs::add);
    } else {
      inputs.add(input);
    }
    List<CompletionStage<ChatCalls.Served>> batches = new ArrayList<>();
    for (int from = 0; from < inputs.size(); from += embeddingsBatchSize) {
      List<JsonNode> slice = inputs.subList(from, Math.min(inputs.size(), from + embeddingsBatchSize));
      ObjectNode body = ((ObjectNode) request.deepCopy()).put("model", model);
      if (listOfTexts) {
        ArrayNode arr = body.putArray("input");
        slice.forEach(arr::add);
      }
      batches.add(route(model, u -> chat.postJson(u, model, "/embeddings", body, trace, cancel)));
    }
    return CompletableFuture.allOf(batches.stream().map(CompletionStage::toCompletableFuture).toArray(CompletableFuture[]::new))
        .thenApply(
            done -> {
              ObjectNode merged = JSON.createObjectNode().put("object", "list").put("model", model);
              ArrayNode data = merged.putArray("data");
              Usage usage = Usage.ZERO;
              int offset = 0;
              String servedBy = null;
              for (CompletionStage<ChatCalls.Served> b : batches) {
                ChatCalls.Served served = b.toCompletableFuture().join();
                JsonNode part = served.body();
                List<JsonNode> items = new ArrayList<>();
                part.path("data").forEach(items::add);
                items.sort(Comparator.comparingInt(n -> n.path("index").asInt()));
                for (JsonNode item : items) {
                  // the batch's answer is not used again: renumber its items in place (a copy
                  // would double the memory of a large answer, 2,000 x 1,536 floats and more)
                  ((ObjectNode) item).put("index", offset + item.path("index").asInt());
                  data.add(item);
                }
                offset += items.size();
                usage = usage.plus(ChatCalls.usageOf(part));
                servedBy = servedBy == null ? served.upstream() : servedBy;
              }
              merged.putObject("usage")
                  .put("prompt_tokens", usage.promptTokens())
                  .put("total_tokens", usage.totalTokens());
              return new TaskResult(merged, usage, servedBy);
            });
  }

  // ---- model warm-up: a one-token request to every upstream that serves the model ----

  CompletionStage<TaskResult> warmup(String model, TraceContext trace, AttemptCancel cancel) {
    List<Upstream> serving = candidates(model);
    if (serving.isEmpty()) {
      return CompletableFuture.failedFuture(UpstreamFailure.noUpstream(model));
    }
    ObjectNode ping = JSON.createObjectNode().put("model", model).put("max_tokens", 1);
    ping.putArray("messages").addObject().put("role", "user").put("content", "ping");
    List<CompletableFuture<ChatCalls.Served>> calls =
        serving.stream()
            .map(u -> chat.postJson(u, model, "/chat/completions", ping, trace, cancel).toCompletableFuture())
            .toList();
    return CompletableFuture.allOf(
            calls.stream().map(c -> c.handle((v, e) -> v)).toArray(CompletableFuture[]::new))
        .thenCompose(
            done -> {
              ObjectNode body = JSON.createObjectNode().put("object", "model.warmup").put("model", model);
              ArrayNode results = body.putArray("upstreams");
              AttemptFailure firstFailure = null;
              int loaded = 0;
              for (int i = 0; i < calls.size(); i++) {
                ObjectNode r = results.addObject().put("upstream", serving.get(i).name());
                CompletableFuture<ChatCalls.Served> call = calls.get(i);
                if (call.isCompletedExceptionally()) {
                  AttemptFailure f = AttemptFailure.of(call.handle((v, e) -> e).join());
                  firstFailure = firstFailure == null ? f : firstFailure;
                  r.put("loaded", false).put("error", f.error().message());
                } else {
                  loaded++;
                  r.put("loaded", true);
                }
              }
              if (loaded == 0) {
                return CompletableFuture.failedFuture(firstFailure);
              }
              body.put("loaded", loaded);
              return CompletableFuture.completedFuture(new TaskResult(body, Usage.ZERO, serving.get(0).name()));
            });
  }

  /**
   * Model ids per upstream: the configured list, or what the runner's {@code GET /models} reports
   * when none is configured. Upstreams that cannot answer are left out.
   */
  public CompletionStage<Map<String, List<String>>> listModels() {
    List<CompletableFuture<Map.Entry<String, List<String>>>> perUpstream =
        upstreams.stream()
            .map(
                u -> {
                  if (!u.settings().models().isEmpty()) {
                    return CompletableFuture.completedFuture(Map.entry(u.name(), u.settings().models()));
                  }
                  return chat.getJson(u, "/models")
                      .thenApply(
                          json -> {
                            List<String> ids = new ArrayList<>();
                            json.path("data").forEach(m -> ids.add(m.path("id").asText()));
                            return Map.entry(u.name(), List.copyOf(ids));
                          })
                      .toCompletableFuture()
                      .exceptionally(e -> Map.entry(u.name(), List.<String>of()));
                })
            .toList();
    return CompletableFuture.allOf(perUpstream.toArray(CompletableFuture[]::new))
        .thenApply(
            done -> {
              Map<String, List<String>> byUpstream = new TreeMap<>();
              perUpstream.forEach(f -> byUpstream.put(f.join().getKey(), f.join().getValue()));
              return byUpstream;
            });
  }

  static HttpRequest jsonPost(String url, JsonNode body) {
    try {
      return HttpRequest.POST(url)
          .withEntity(ContentTypes.APPLICATION_JSON, JSON.writeValueAsBytes(body));
    } catch (Exception e) {
      throw new AttemptFailure(
          dev.mcpstack.shared.TaskError.of(ErrorCode.INTERNAL, "could not encode request"), false, null);
    }
  }

  static Duration elapsedSince(long startNanos) {
    return Duration.ofNanos(System.nanoTime() - startNanos);
  }

  static boolean isSuccess(HttpResponse r) {
    return r.status().isSuccess();
  }
}
