package dev.mcpstack.worker.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.TaskResult;
import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.Tracing;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import dev.mcpstack.worker.task.AttemptRunner.Output;
import java.io.IOException;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
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
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import org.apache.pekko.http.javadsl.unmarshalling.sse.EventStreamUnmarshalling;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.javadsl.Sink;

/** HTTP calls to one upstream: JSON in and out, and chat completions streamed as server-sent events. */
final class ChatCalls {
  private final ActorSystem<?> system;
  private final Materializer mat;
  private final Tracing tracing;
  /** pekko-http's SSE parser; line and event limits from {@code pekko.http.sse} (worker reference.conf). */
  private final Unmarshaller<HttpEntity, Source<ServerSentEvent, NotUsed>> events;

  ChatCalls(ActorSystem<?> system) {
    this.system = system;
    this.mat = Materializer.matFromSystem(system);
    this.tracing = Tracing.get(system);
    this.events = EventStreamUnmarshalling.fromEventsStream(system.classicSystem());
  }

  /** A runner's JSON answer and the upstream that gave it. */
  record Served(JsonNode body, String upstream) {}

  CompletionStage<TaskResult> complete(
      Upstream u, String model, JsonNode request, TraceContext trace, AttemptCancel cancel) {
    ObjectNode body = ((ObjectNode) request.deepCopy()).put("model", model);
    body.remove("stream");
    body.remove("stream_options");
    return postJson(u, model, "/chat/completions", body, trace, cancel)
        .thenApply(s -> new TaskResult(s.body(), usageOf(s.body()), s.upstream()));
  }

  /** A JSON POST, as a call of the trace {@code trace} (null: none), aborted by {@code cancel}. */
  CompletionStage<Served> postJson(
      Upstream u, String model, String path, JsonNode body, TraceContext trace, AttemptCancel cancel) {
    return u.submit(
        () -> {
          if (cancel.cancelled()) {
            return CompletableFuture.<Served>failedFuture(AttemptCancel.failure("before it was sent"));
          }
          long start = System.nanoTime();
          UpstreamCall call = UpstreamCall.open(tracing, u, path, model, trace);
          return call.endWith(
              u.send(call.headers(ModelRunnerClient.jsonPost(u.url(path), body)), u.settings().requestTimeout(), cancel)
                  .thenCompose(
                      response -> {
                        call.status(response.status().intValue());
                        return readJson(u, response);
                      })
                  .thenApply(
                      json -> {
                        WorkerMetrics.upstreamLatency(u.name(), model, ModelRunnerClient.elapsedSince(start));
                        return new Served(json, u.name());
                      }));
        });
  }

  /** A GET outside the queue (catalog look-ups must not wait behind chat traffic). */
  CompletionStage<JsonNode> getJson(Upstream u, String path) {
    return u.send(
            org.apache.pekko.http.javadsl.model.HttpRequest.GET(u.url(path)),
            u.settings().connectTimeout().plusSeconds(3),
            new AttemptCancel())
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
      Upstream u, String model, JsonNode request, Output output, AttemptCancel cancel, TraceContext trace) {
    ObjectNode body = ((ObjectNode) request.deepCopy()).put("model", model).put("stream", true);
    body.putObject("stream_options").put("include_usage", true);
    return u.submit(
        () -> {
          if (cancel.cancelled()) {
            // cancelled while it waited in the queue: the runner never hears of it
            return CompletableFuture.<TaskResult>failedFuture(AttemptCancel.failure("before it was sent"));
          }
          long start = System.nanoTime();
          UpstreamCall call = UpstreamCall.open(tracing, u, "/chat/completions", model, trace);
          return call.endWith(u.send(
                  call.headers(ModelRunnerClient.jsonPost(u.url("/chat/completions"), body)),
                  u.settings().firstTokenTimeout(),
                  cancel)
              .thenCompose(
                  response -> {
                    call.status(response.status().intValue());
                    if (!response.status().isSuccess()) {
                      return readJson(u, response).thenApply(ignored -> (TaskResult) null);
                    }
                    StreamAccumulator acc = new StreamAccumulator(u.name(), model, start);
                    return events
                        .unmarshal(response.entity(), system)
                        .toCompletableFuture()
                        .exceptionallyCompose(
                            e -> {
                              response.discardEntityBytes(system);
                              return CompletableFuture.failedFuture(
                                  UpstreamFailure.broken(
                                      u.name(),
                                      "answered a stream request with " + response.entity().getContentType()
                                          + ", not text/event-stream"));
                            })
                        .thenCompose(stream -> relay(u, model, start, stream, acc, output, cancel));
                  }));
        });
  }

  /** Reads the runner's events into {@code acc}, relaying each chunk worth relaying to {@code output}. */
  private CompletionStage<TaskResult> relay(
      Upstream u,
      String model,
      long start,
      Source<ServerSentEvent, NotUsed> stream,
      StreamAccumulator acc,
      Output output,
      AttemptCancel cancel) {
    Pair<UniqueKillSwitch, CompletionStage<Done>> running =
        stream
            .viaMat(KillSwitches.single(), Keep.right())
            .initialTimeout(u.settings().firstTokenTimeout())
            .completionTimeout(u.settings().requestTimeout())
            // silence between events is bounded by idle-timeout, but only once the first one came:
            // until then first-token-timeout applies (a long prefill is not an idle stream)
            .prefixAndTail(1)
            .flatMapConcat(
                firstAndRest ->
                    // concatLazy: no prefetch, hence no Detacher stages (materialized together all the same)
                    Source.from(firstAndRest.first())
                        .concatLazy(firstAndRest.second().idleTimeout(u.settings().idleTimeout())))
            .mapConcat(event -> acc.data(event.getData()))
            .mapAsync(1, output::emit)
            .toMat(Sink.ignore(), Keep.both())
            .run(mat);
    cancel.onCancel(() -> running.first().abort(AttemptCancel.failure("mid-stream")));
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

  /**
   * Reassembles a streamed chat answer and picks each chunk's {@code choices} to relay. The
   * final {@code chat.completion} has one choice per choice index seen: text fields of the deltas
   * (content, refusal, reasoning_content, ...) concatenated, tool calls accumulated by their index
   * (id, type and name from the first delta that has them, arguments concatenated), logprobs
   * appended, and the finish reason.
   */
  private static final class StreamAccumulator {
    private final String upstream;
    private final String model;
    private final long start;
    private final Map<Integer, ChoiceSoFar> choices = new TreeMap<>();
    private String id;
    private long created;
    private Usage usage = Usage.ZERO;
    private boolean firstToken = true;
    private volatile boolean done;

    StreamAccumulator(String upstream, String model, long start) {
      this.upstream = upstream;
      this.model = model;
      this.start = start;
    }

    boolean done() {
      return done;
    }

    /** Takes one event's data; answers the choices to relay: none, or the chunk's. */
    List<JsonNode> data(String raw) {
      String data = raw.trim();
      if (data.equals("[DONE]")) {
        done = true;
        return List.of();
      }
      if (data.isEmpty()) {
        return List.of();
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
      JsonNode chunkChoices = chunk.path("choices");
      if (!chunkChoices.isArray() || !carriesAnything(chunkChoices)) {
        return List.of(); // the usage chunk, a bare role chunk (the api-node sends its own), keep-alives
      }
      for (JsonNode choice : chunkChoices) {
        choices.computeIfAbsent(choice.path("index").asInt(0), i -> new ChoiceSoFar()).add(choice);
      }
      if (firstToken) {
        firstToken = false;
        WorkerMetrics.timeToFirstToken(upstream, model, ModelRunnerClient.elapsedSince(start));
      }
      return List.of(chunkChoices);
    }

    /** Whether a chunk's choices say more than "the assistant speaks": the role alone is nothing. */
    private static boolean carriesAnything(JsonNode chunkChoices) {
      for (JsonNode choice : chunkChoices) {
        if (choice.path("finish_reason").isTextual() || hasValue(choice.path("logprobs"))) {
          return true;
        }
        for (Map.Entry<String, JsonNode> field : choice.path("delta").properties()) {
          if (!field.getKey().equals("role") && hasValue(field.getValue())) {
            return true;
          }
        }
      }
      return false;
    }

    private static boolean hasValue(JsonNode n) {
      return !n.isMissingNode() && !n.isNull() && !(n.isTextual() && n.asText().isEmpty());
    }

    TaskResult result() {
      ObjectNode body =
          ModelRunnerClient.JSON
              .createObjectNode()
              .put("id", id == null ? "chatcmpl-stream" : id)
              .put("object", "chat.completion")
              .put("created", created)
              .put("model", model);
      ArrayNode out = body.putArray("choices");
      if (choices.isEmpty()) {
        choices.put(0, new ChoiceSoFar());
      }
      choices.forEach((index, choice) -> out.add(choice.toChoice(index)));
      body.putObject("usage")
          .put("prompt_tokens", usage.promptTokens())
          .put("completion_tokens", usage.completionTokens())
          .put("total_tokens", usage.totalTokens());
      return new TaskResult(body, usage, upstream);
    }
  }

  /** One choice of a streamed answer, accumulated from its deltas. */
  private static final class ChoiceSoFar {
    private String role;
    /** Text fields of the deltas (content, refusal, reasoning_content, ...), concatenated, in order. */
    private final Map<String, StringBuilder> text = new LinkedHashMap<>();
    private final TreeMap<Integer, ToolCallSoFar> toolCalls = new TreeMap<>();
    private ObjectNode functionCall;
    private ObjectNode logprobs;
    private String finishReason;

    void add(JsonNode choice) {
      JsonNode delta = choice.path("delta");
      for (Map.Entry<String, JsonNode> field : delta.properties()) {
        String name = field.getKey();
        JsonNode value = field.getValue();
        if (name.equals("role")) {
          if (value.isTextual()) {
            role = value.asText();
          }
        } else if (name.equals("tool_calls")) {
          for (JsonNode call : value) {
            toolCalls.computeIfAbsent(toolCallIndex(call), i -> new ToolCallSoFar()).add(call);
          }
        } else if (name.equals("function_call") && value.isObject()) {
          if (functionCall == null) {
            functionCall = ModelRunnerClient.JSON.createObjectNode().put("name", "").put("arguments", "");
          }
          if (value.path("name").isTextual()) {
            functionCall.put("name", value.path("name").asText());
          }
          functionCall.put(
              "arguments", functionCall.path("arguments").asText() + value.path("arguments").asText(""));
        } else if (value.isTextual()) {
          text.computeIfAbsent(name, n -> new StringBuilder()).append(value.asText());
        }
      }
      JsonNode lp = choice.path("logprobs");
      if (lp.isObject()) {
        if (logprobs == null) {
          logprobs = ModelRunnerClient.JSON.createObjectNode();
        }
        for (Map.Entry<String, JsonNode> field : lp.properties()) {
          if (field.getValue().isArray()) {
            JsonNode so = logprobs.get(field.getKey());
            ArrayNode sofar = so instanceof ArrayNode a ? a : logprobs.putArray(field.getKey());
            sofar.addAll((ArrayNode) field.getValue());
          }
        }
      }
      if (choice.path("finish_reason").isTextual()) {
        finishReason = choice.path("finish_reason").asText();
      }
    }

    /**
     * The call a tool call delta belongs to: its {@code index}; without one (some runners send each
     * call whole), a delta with an id starts a new call and one without continues the last.
     */
    private int toolCallIndex(JsonNode call) {
      if (call.path("index").canConvertToInt()) {
        return call.path("index").asInt();
      }
      if (call.path("id").isTextual() || toolCalls.isEmpty()) {
        return toolCalls.isEmpty() ? 0 : toolCalls.lastKey() + 1;
      }
      return toolCalls.lastKey();
    }

    ObjectNode toChoice(int index) {
      ObjectNode choice = ModelRunnerClient.JSON.createObjectNode().put("index", index);
      ObjectNode message = choice.putObject("message").put("role", role == null ? "assistant" : role);
      StringBuilder content = text.get("content");
      if ((content == null || content.length() == 0) && (!toolCalls.isEmpty() || functionCall != null)) {
        message.putNull("content"); // as OpenAI answers a call without text
      } else {
        message.put("content", content == null ? "" : content.toString());
      }
      text.forEach(
          (name, value) -> {
            if (!name.equals("content")) {
              message.put(name, value.toString());
            }
          });
      if (!toolCalls.isEmpty()) {
        ArrayNode calls = message.putArray("tool_calls");
        toolCalls.values().forEach(call -> calls.add(call.toToolCall()));
      }
      if (functionCall != null) {
        message.set("function_call", functionCall);
      }
      if (logprobs == null) {
        choice.putNull("logprobs");
      } else {
        choice.set("logprobs", logprobs);
      }
      choice.put("finish_reason", finishReason == null ? "stop" : finishReason);
      return choice;
    }
  }

  /** One tool call of a streamed answer: the first delta names it, the others add arguments. */
  private static final class ToolCallSoFar {
    private String id;
    private String type;
    private String name;
    private final StringBuilder arguments = new StringBuilder();

    void add(JsonNode call) {
      if (id == null && call.path("id").isTextual()) {
        id = call.path("id").asText();
      }
      if (type == null && call.path("type").isTextual()) {
        type = call.path("type").asText();
      }
      JsonNode function = call.path("function");
      if (name == null && function.path("name").isTextual()) {
        name = function.path("name").asText();
      }
      arguments.append(function.path("arguments").asText(""));
    }

    ObjectNode toToolCall() {
      ObjectNode call = ModelRunnerClient.JSON.createObjectNode();
      call.put("id", id == null ? "" : id);
      call.put("type", type == null ? "function" : type);
      call.putObject("function").put("name", name == null ? "" : name).put("arguments", arguments.toString());
      return call;
    }
  }
}
