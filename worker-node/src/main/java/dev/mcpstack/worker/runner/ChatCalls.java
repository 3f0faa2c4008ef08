package dev.mcpstack.worker.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import dev.mcpstack.worker.task.AttemptRunner.DeltaListener;
import java.io.IOException;
import java.time.Instant;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.KillSwitches;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.UniqueKillSwitch;
import org.apache.pekko.stream.javadsl.Framing;
import org.apache.pekko.stream.javadsl.FramingTruncation;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.util.ByteString;

/** HTTP calls to one upstream: JSON in and out, and chat completions streamed as server-sent events. */
final class ChatCalls {
  private static final int MAX_SSE_LINE = 1 << 20;
  private static final ByteString NEWLINE = ByteString.fromString("\n");

  private final Materializer mat;

  ChatCalls(ActorSystem<?> system) {
    this.mat = Materializer.matFromSystem(system);
  }

  /** A runner's JSON answer and the upstream that gave it. */
  record Served(JsonNode body, String upstream) {}

  /** Lets the task entity abort a streamed call; the runner's connection is closed. */
  static final class StreamHandle {
    private volatile boolean cancelled;
    private volatile UniqueKillSwitch killSwitch;

    void cancel() {
      cancelled = true;
      UniqueKillSwitch ks = killSwitch;
      if (ks != null) {
        ks.abort(new CancellationException("cancelled"));
      }
    }

    void attach(UniqueKillSwitch ks) {
      killSwitch = ks;
      if (cancelled) {
        ks.abort(new CancellationException("cancelled"));
      }
    }
  }

  CompletionStage<TaskResult> complete(Upstream u, String model, JsonNode request) {
    ObjectNode body = ((ObjectNode) request.deepCopy()).put("model", model);
    body.remove("stream");
    body.remove("stream_options");
    return postJson(u, model, "/chat/completions", body)
        .thenApply(s -> new TaskResult(s.body(), usageOf(s.body()), s.upstream()));
  }

  CompletionStage<Served> postJson(Upstream u, String model, String path, JsonNode body) {
    return u.submit(
        () -> {
          long start = System.nanoTime();
          return u.send(ModelRunnerClient.jsonPost(u.url(path), body), u.settings().requestTimeout())
              .thenCompose(response -> readJson(u, response))
              .thenApply(
                  json -> {
                    WorkerMetrics.upstreamLatency(u.name(), model, ModelRunnerClient.elapsedSince(start));
                    return new Served(json, u.name());
                  });
        });
  }

  /** A GET outside the queue (catalog look-ups must not wait behind chat traffic). */
  CompletionStage<JsonNode> getJson(Upstream u, String path) {
    return u.send(org.apache.pekko.http.javadsl.model.HttpRequest.GET(u.url(path)), u.settings().connectTimeout().plusSeconds(3))
        .thenCompose(response -> readJson(u, response));
  }

  /** A whole JSON body; a non-2xx status becomes a classified {@link UpstreamFailure}. */
  private CompletionStage<JsonNode> readJson(Upstream u, HttpResponse response) {
    return response
        .entity()
        .toStrict(u.settings().requestTimeout().toMillis(), mat)
        .toCompletableFuture()
        .exceptionallyCompose(e -> CompletableFuture.failedFuture(midResponse(u, e)))
        .thenCompose(
            strict -> {
              String text = strict.getData().utf8String();
              if (!response.status().isSuccess()) {
                return CompletableFuture.failedFuture(
                    UpstreamFailure.fromStatus(
                        u.name(),
                        response.status().intValue(),
                        text,
                        response.getHeader("Retry-After").map(h -> h.value())));
              }
              try {
                return CompletableFuture.completedFuture(ModelRunnerClient.JSON.readTree(text));
              } catch (IOException e) {
                return CompletableFuture.failedFuture(
                    UpstreamFailure.broken(u.name(), "answered with a body that is not JSON"));
              }
            });
  }

  CompletionStage<TaskResult> stream(
      Upstream u, String model, JsonNode request, DeltaListener onDelta, StreamHandle handle) {
    ObjectNode body = ((ObjectNode) request.deepCopy()).put("model", model).put("stream", true);
    body.putObject("stream_options").put("include_usage", true);
    return u.submit(
        () -> {
          long start = System.nanoTime();
          return u.send(
                  ModelRunnerClient.jsonPost(u.url("/chat/completions"), body),
                  u.settings().firstTokenTimeout())
              .thenCompose(
                  response -> {
                    if (!response.status().isSuccess()) {
                      return readJson(u, response).thenApply(ignored -> (TaskResult) null);
                    }
                    StreamAccumulator acc = new StreamAccumulator(u.name(), model, start, onDelta);
                    Pair<UniqueKillSwitch, CompletionStage<Done>> running =
                        response
                            .entity()
                            .getDataBytes()
                            .viaMat(KillSwitches.single(), Keep.right())
                            .via(Framing.delimiter(NEWLINE, MAX_SSE_LINE, FramingTruncation.ALLOW))
                            .initialTimeout(u.settings().firstTokenTimeout())
                            .idleTimeout(u.settings().idleTimeout())
                            .completionTimeout(u.settings().requestTimeout())
                            .toMat(Sink.foreach(line -> acc.line(line.utf8String())), Keep.both())
                            .run(mat);
                    handle.attach(running.first());
                    return running
                        .second()
                        .toCompletableFuture()
                        .exceptionallyCompose(e -> CompletableFuture.failedFuture(midResponse(u, e)))
                        .thenCompose(
                            done -> {
                              if (!acc.done()) {
                                return CompletableFuture.failedFuture(
                                    UpstreamFailure.broken(u.name(), "ended the stream without [DONE]"));
                              }
                              WorkerMetrics.upstreamLatency(
                                  u.name(), model, ModelRunnerClient.elapsedSince(start));
                              return CompletableFuture.completedFuture(acc.result());
                            });
                  });
        });
  }

  /** What went wrong while a response was being read. */
  private static Throwable midResponse(Upstream u, Throwable e) {
    Throwable cause = dev.mcpstack.shared.Failures.unwrap(e);
    if (cause instanceof UpstreamFailure || cause instanceof CancellationException) {
      return cause;
    }
    if (cause instanceof TimeoutException) {
      return UpstreamFailure.timeout(u.name(), "reading the answer", u.settings().idleTimeout());
    }
    return UpstreamFailure.broken(u.name(), "dropped the connection mid-answer: " + cause.getClass().getSimpleName());
  }

  static Usage usageOf(JsonNode body) {
    JsonNode usage = body.path("usage");
    if (!usage.isObject()) {
      return Usage.ZERO;
    }
    long prompt = usage.path("prompt_tokens").asLong(0);
    long completion = usage.path("completion_tokens").asLong(0);
    return new Usage(prompt, completion, usage.path("total_tokens").asLong(prompt + completion));
  }

  /** Reassembles a streamed chat answer, relaying content as it arrives. */
  private static final class StreamAccumulator {
    private final String upstream;
    private final String model;
    private final long start;
    private final DeltaListener onDelta;
    private final StringBuilder content = new StringBuilder();
    private String id;
    private long created;
    private String finishReason;
    private Usage usage = Usage.ZERO;
    private boolean firstToken = true;
    private volatile boolean done;

    StreamAccumulator(String upstream, String model, long start, DeltaListener onDelta) {
      this.upstream = upstream;
      this.model = model;
      this.start = start;
      this.onDelta = onDelta;
    }

    boolean done() {
      return done;
    }

    void line(String raw) {
      String line = raw.endsWith("\r") ? raw.substring(0, raw.length() - 1) : raw;
      if (!line.startsWith("data:")) {
        return; // blank separators, comments, event: and id: fields
      }
      String data = line.substring(5).trim();
      if (data.equals("[DONE]")) {
        done = true;
        return;
      }
      if (data.isEmpty()) {
        return;
      }
      JsonNode chunk;
      try {
        chunk = ModelRunnerClient.JSON.readTree(data);
      } catch (IOException e) {
        throw UpstreamFailure.broken(upstream, "sent a stream chunk that is not JSON");
      }
      if (chunk.has("error")) {
        throw UpstreamFailure.broken(
            upstream, "reported an error mid-stream: " + UpstreamFailure.errorMessage(data));
      }
      if (id == null) {
        id = chunk.path("id").asText(null);
        created = chunk.path("created").asLong(Instant.now().getEpochSecond());
      }
      if (chunk.path("usage").isObject()) {
        usage = usageOf(chunk);
      }
      JsonNode choice = chunk.path("choices").path(0);
      if (choice.isMissingNode()) {
        return;
      }
      String piece = choice.path("delta").path("content").asText("");
      String finish = choice.path("finish_reason").isTextual() ? choice.path("finish_reason").asText() : null;
      if (finish != null) {
        finishReason = finish;
      }
      if (!piece.isEmpty() && firstToken) {
        firstToken = false;
        WorkerMetrics.timeToFirstToken(upstream, model, ModelRunnerClient.elapsedSince(start));
      }
      if (!piece.isEmpty() || finish != null) {
        content.append(piece);
        onDelta.onDelta(piece, finish);
      }
    }

    TaskResult result() {
      ObjectNode body =
          ModelRunnerClient.JSON
              .createObjectNode()
              .put("id", id == null ? "chatcmpl-stream" : id)
              .put("object", "chat.completion")
              .put("created", created)
              .put("model", model);
      ObjectNode choice = body.putArray("choices").addObject().put("index", 0);
      choice.putObject("message").put("role", "assistant").put("content", content.toString());
      choice.put("finish_reason", finishReason == null ? "stop" : finishReason);
      body.putObject("usage")
          .put("prompt_tokens", usage.promptTokens())
          .put("completion_tokens", usage.completionTokens())
          .put("total_tokens", usage.totalTokens());
      return new TaskResult(body, usage, upstream);
    }
  }
}
