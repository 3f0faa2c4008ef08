package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import io.modelcontextprotocol.common.McpTransportContext;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.TypeRef;
import io.modelcontextprotocol.server.McpAsyncServerExchange;
import io.modelcontextprotocol.server.McpServerFeatures.AsyncToolSpecification;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpSchema.CallToolRequest;
import io.modelcontextprotocol.spec.McpSchema.CallToolResult;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.KillSwitches;
import org.apache.pekko.stream.UniqueKillSwitch;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import reactor.core.publisher.Mono;

/**
 * The MCP tools, each a thin face of the HTTP API with the same validation, limits and error
 * codes: {@code ask_model} (a chat completion), {@code embed_texts}, {@code submit_task}, {@code
 * get_task} and {@code list_models}. Results are structured content (with an output schema) and
 * the same JSON as text; failures are tool errors ({@code isError}) whose structured content is the
 * HTTP API's error object ({@code {"error":{"message","type","param","code","request_id"}}}, plus
 * {@code status} and, for 429 and 503, {@code retry_after_seconds}). The calls that wait for a
 * model report progress notifications while their task runs (when the client sent a progress
 * token), and their cancellation cancels the task.
 */
final class McpTools {
  static final String ASK = "ask_model";
  static final String EMBED = "embed_texts";
  static final String SUBMIT = "submit_task";
  static final String GET = "get_task";
  static final String MODELS = "list_models";

  private static final TypeRef<Map<String, Object>> MAP = new TypeRef<>() {};

  private final HttpSupport http;
  private final TaskClient tasks;
  private final TaskRoutes taskRoutes;
  private final RequestValidation validation;
  private final Workers workers;
  private final McpJsonMapper mapper;
  private final McpSettings settings;

  McpTools(
      HttpSupport http,
      TaskClient tasks,
      TaskRoutes taskRoutes,
      RequestValidation validation,
      Workers workers,
      McpJsonMapper mapper,
      McpSettings settings) {
    this.http = http;
    this.tasks = tasks;
    this.taskRoutes = taskRoutes;
    this.validation = validation;
    this.workers = workers;
    this.mapper = mapper;
    this.settings = settings;
  }

  List<AsyncToolSpecification> all() {
    return List.of(
        tool(
            ASK,
            "Ask a model",
            "Sends a chat to one of the models this server serves (see list_models) and answers with the"
                + " model's reply. Give either a prompt (with an optional system message) or the full"
                + " OpenAI-style messages list. Reports progress while the model works; cancelling the"
                + " call cancels the request.",
            McpSchemas.ASK_INPUT,
            McpSchemas.ASK_OUTPUT,
            this::ask),
        tool(
            EMBED,
            "Embed texts",
            "Computes an embedding vector for each text with an embeddings model.",
            McpSchemas.EMBED_INPUT,
            McpSchemas.EMBED_OUTPUT,
            this::embed),
        tool(
            SUBMIT,
            "Submit a background task",
            "Submits an asynchronous task (a chat or embeddings request in the OpenAI format) and answers"
                + " at once with the task and its id; read it later with get_task.",
            McpSchemas.SUBMIT_INPUT,
            McpSchemas.TASK_OUTPUT,
            this::submit),
        tool(
            GET,
            "Read a task",
            "Reads a task submitted with submit_task: its status, attempts, and its result or error"
                + " once it has ended.",
            McpSchemas.GET_INPUT,
            McpSchemas.TASK_OUTPUT,
            this::get),
        tool(
            MODELS,
            "List models",
            "Lists the models this server can run for you.",
            McpSchemas.MODELS_INPUT,
            McpSchemas.MODELS_OUTPUT,
            this::models));
  }

  /** What a tool handler needs to know about its call. */
  private record Call(McpAsyncServerExchange exchange, CallToolRequest request, Caller caller, String requestId) {
    JsonNode arguments(HttpSupport http) {
      return http.json.valueToTree(request.arguments() == null ? Map.of() : request.arguments());
    }
  }

  private interface Handler {
    Mono<JsonNode> handle(Call call);
  }

  private AsyncToolSpecification tool(
      String name, String title, String description, String input, String output, Handler handler) {
    McpSchema.Tool tool =
        McpSchema.Tool.builder()
            .name(name)
            .title(title)
            .description(description)
            .inputSchema(mapper, input)
            .outputSchema(mapper, output)
            .build();
    return AsyncToolSpecification.builder()
        .tool(tool)
        .callHandler(
            (exchange, request) -> {
              McpTransportContext context = exchange.transportContext();
              Call call =
                  new Call(
                      exchange,
                      request,
                      (Caller) context.get(McpTransport.CALLER),
                      String.valueOf(context.get(McpTransport.REQUEST_ID)));
              return Mono.defer(() -> handler.handle(call))
                  .map(this::success)
                  .onErrorResume(e -> Mono.just(failure(e, call.requestId())));
            })
        .build();
  }

  private CallToolResult success(JsonNode structured) {
    return CallToolResult.builder()
        .structuredContent(mapper.convertValue(structured, MAP))
        .addTextContent(http.errors.text(structured))
        .isError(false)
        .build();
  }

  /** A failure as the HTTP API would report it, inside a tool error. */
  CallToolResult failure(Throwable e, String requestId) {
    ApiError error = http.classify(e, requestId);
    ObjectNode body = http.errors.body(error.code(), error.getMessage(), error.param(), requestId);
    ObjectNode inner = (ObjectNode) body.get("error");
    inner.put("status", error.code().httpStatus());
    if (error.code().httpStatus() == 429 || error.code().httpStatus() == 503) {
      long retry = error.retryAfterSeconds() > 0 ? error.retryAfterSeconds() : Math.max(1, http.settings.retryAfter().toSeconds());
      inner.put("retry_after_seconds", retry);
    }
    return CallToolResult.builder()
        .structuredContent(mapper.convertValue(body, MAP))
        .addTextContent(error.code().code() + ": " + error.getMessage())
        .isError(true)
        .build();
  }

  // ---- ask_model ----

  private Mono<JsonNode> ask(Call call) {
    JsonNode args = call.arguments(http);
    ObjectNode body = chatRequest(args);
    String model = validation.chat(body, "");
    call.caller().checkModel(model);
    String id = TaskIds.chat(call.caller().tenant(), Optional.empty(), false);
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, model, validation.chatWithDefaults(body));
    return waited(call, id, spec).map(view -> chatResult(view));
  }

  /** The tool's arguments as an OpenAI chat request: {@code prompt}/{@code system} or {@code messages}. */
  private static final java.util.Set<String> ASK_ARGUMENTS =
      java.util.Set.of("model", "prompt", "system", "messages", "max_tokens", "temperature", "top_p", "seed", "stop");

  private ObjectNode chatRequest(JsonNode args) {
    onlyKnown(args, ASK_ARGUMENTS);
    ObjectNode body = http.json.createObjectNode();
    body.set("model", args.get("model"));
    JsonNode prompt = args.get("prompt");
    JsonNode messages = args.get("messages");
    if (prompt != null && messages != null) {
      throw ApiError.invalid("prompt", "Give either 'prompt' or 'messages', not both.");
    }
    if (prompt == null && messages == null) {
      throw ApiError.invalid("prompt", "Missing required parameter: 'prompt' (or 'messages').");
    }
    if (prompt != null) {
      if (!prompt.isTextual()) {
        throw ApiError.invalid("prompt", "Invalid 'prompt': expected a string.");
      }
      ArrayNode list = body.putArray("messages");
      JsonNode system = args.get("system");
      if (system != null && !system.isNull()) {
        if (!system.isTextual()) {
          throw ApiError.invalid("system", "Invalid 'system': expected a string.");
        }
        list.addObject().put("role", "system").put("content", system.asText());
      }
      list.addObject().put("role", "user").put("content", prompt.asText());
    } else {
      body.set("messages", messages);
    }
    for (String name : List.of("max_tokens", "temperature", "top_p", "seed", "stop")) {
      if (args.has(name)) {
        body.set(name, args.get(name));
      }
    }
    return body;
  }

  /** 400 naming the first argument the tool's schema does not have. */
  private static void onlyKnown(JsonNode args, java.util.Set<String> known) {
    if (!args.isObject()) {
      throw ApiError.invalid(null, "The arguments must be an object.");
    }
    args.fieldNames()
        .forEachRemaining(
            name -> {
              if (!known.contains(name)) {
                throw ApiError.invalid(name, "Unknown argument '" + name + "'.");
              }
            });
  }

  private JsonNode chatResult(TaskView view) {
    JsonNode completion = http.taskJson.result(view);
    JsonNode choice = completion.path("choices").path(0);
    ObjectNode out = http.json.createObjectNode();
    out.put("id", view.id());
    out.put("model", completion.path("model").asText(view.model()));
    JsonNode content = choice.path("message").path("content");
    if (content.isTextual()) {
      out.put("content", content.asText());
    } else {
      out.putNull("content");
    }
    JsonNode finish = choice.path("finish_reason");
    if (finish.isTextual()) {
      out.put("finish_reason", finish.asText());
    } else {
      out.putNull("finish_reason");
    }
    out.set("usage", usage(completion.path("usage")));
    return out;
  }

  private ObjectNode usage(JsonNode usage) {
    ObjectNode out = http.json.createObjectNode();
    out.put("prompt_tokens", usage.path("prompt_tokens").asLong(0));
    out.put("completion_tokens", usage.path("completion_tokens").asLong(0));
    out.put("total_tokens", usage.path("total_tokens").asLong(0));
    return out;
  }

  // ---- embed_texts ----

  private Mono<JsonNode> embed(Call call) {
    JsonNode args = call.arguments(http);
    onlyKnown(args, java.util.Set.of("model", "texts"));
    if (args.get("texts") == null) {
      throw ApiError.invalid("texts", "Missing required parameter: 'texts'.");
    }
    ObjectNode body = http.json.createObjectNode();
    body.set("model", args.get("model"));
    body.set("input", args.get("texts"));
    if (args.path("texts").isArray() && args.path("texts").isEmpty()) {
      throw ApiError.invalid("texts", "Invalid 'texts': give at least one text.");
    }
    String model;
    try {
      model = validation.embeddings(body, "");
    } catch (ApiError e) {
      // the tool calls the HTTP API's "input" "texts"
      String param = e.param() == null ? null : e.param().replaceFirst("^input", "texts");
      throw new ApiError(e.code(), e.getMessage().replace("'input", "'texts"), param);
    }
    call.caller().checkModel(model);
    String id = TaskIds.make(TaskIds.EMBEDDINGS, call.caller().tenant(), Optional.empty());
    TaskSpec spec = new TaskSpec(TaskKind.EMBEDDINGS, model, body);
    return waited(call, id, spec)
        .map(
            view -> {
              JsonNode result = http.taskJson.result(view);
              ObjectNode out = http.json.createObjectNode();
              out.put("id", view.id());
              out.put("model", result.path("model").asText(view.model()));
              ArrayNode vectors = out.putArray("embeddings");
              for (JsonNode item : result.path("data")) {
                vectors.add(item.path("embedding"));
              }
              out.set("usage", usage(result.path("usage")));
              return out;
            });
  }

  // ---- submit_task, get_task, list_models ----

  private Mono<JsonNode> submit(Call call) {
    JsonNode args = call.arguments(http);
    onlyKnown(args, java.util.Set.of("kind", "request", "timeout_seconds", "idempotency_key"));
    JsonNode keyNode = ((ObjectNode) args).remove("idempotency_key");
    if (keyNode != null && !keyNode.isTextual()) {
      throw ApiError.invalid("idempotency_key", "Invalid 'idempotency_key': expected a string.");
    }
    Optional<String> key = TaskIds.idempotencyKey(Optional.ofNullable(keyNode).map(JsonNode::asText));
    CompletionStage<TaskRoutes.Submitted> submitted = taskRoutes.submitTask(args, call.caller(), key);
    return Mono.fromCompletionStage(submitted).map(s -> http.taskJson.task(s.view()));
  }

  private Mono<JsonNode> get(Call call) {
    JsonNode args = call.arguments(http);
    onlyKnown(args, java.util.Set.of("id"));
    JsonNode id = args.get("id");
    if (id == null || !id.isTextual()) {
      throw ApiError.invalid("id", "Missing required parameter: 'id' (a string).");
    }
    TaskRoutes.checkId(id.asText());
    return Mono.fromCompletionStage(() -> tasks.get(id.asText(), call.caller().tenant()))
        .map(view -> (JsonNode) http.taskJson.task(view));
  }

  private Mono<JsonNode> models(Call call) {
    onlyKnown(call.arguments(http), java.util.Set.of());
    return Mono.fromCompletionStage(workers::models)
        .map(
            list -> {
              ObjectNode out = http.json.createObjectNode();
              ArrayNode models = out.putArray("models");
              list.models().stream()
                  .filter(m -> call.caller().key() == null || call.caller().key().allows(m.id()))
                  .forEach(m -> models.addObject().put("id", m.id()).put("owned_by", m.ownedBy()));
              return out;
            });
  }

  // ---- running a task the call waits for ----

  /**
   * Runs a task while the call waits, as the HTTP API's synchronous calls do (this node's in-flight
   * bound, the key's limiter, the chat timeout): its status changes and, between them, a beat every
   * progress interval become progress notifications; a cancelled call stops following and cancels
   * the task. Completes with the task's successful view, or fails with its error.
   */
  private Mono<TaskView> waited(Call call, String id, TaskSpec spec) {
    Caller caller = call.caller();
    Instant deadline = Instant.now().plus(http.settings.chatTimeout());
    Progress progress = new Progress(call, id);
    AtomicBoolean cancelled = new AtomicBoolean();
    AtomicReference<UniqueKillSwitch> following = new AtomicReference<>();
    // the call's cancellation cancels its task once the task exists (a cancel that reached the
    // entity before the Submit would be lost there), as for an HTTP client that leaves
    ClientConnection client = ClientConnection.ofOneCall();
    ClientConnection.Pending pending = client.pending();
    Supplier<CompletionStage<TaskView>> run =
        () ->
            http.admission.<TaskView>waiting(
                caller,
                id,
                spec,
                deadline,
                (admitted, done) -> {
                  if (cancelled.get()) {
                    done.run();
                    throw ApiError.of(ErrorCode.CANCELLED, "The call was cancelled.");
                  }
                  Pair<UniqueKillSwitch, CompletionStage<TaskUpdate>> running =
                      tasks
                          .submitAndFollow(id, spec, caller, admitted.holdId(), deadline, pending)
                          .map(Optional::of)
                          .keepAlive(settings.progressInterval(), Optional::<TaskUpdate>empty)
                          .map(
                              u -> {
                                progress.report(u);
                                return u;
                              })
                          .filter(u -> u.isPresent() && ChatRoutes.isTerminal(u.get()))
                          .map(Optional::get)
                          .viaMat(KillSwitches.single(), Keep.right())
                          .toMat(Sink.last(), Keep.both())
                          .run(http.system);
                  following.set(running.first());
                  if (cancelled.get()) {
                    running.first().abort(ApiError.of(ErrorCode.CANCELLED, "The call was cancelled."));
                  }
                  return running
                      .second()
                      .whenComplete(
                          (update, e) -> {
                            pending.over();
                            done.run();
                          })
                      .thenApply(update -> ((TaskUpdate.StatusChanged) update).view());
                });
    return Mono.fromCompletionStage(run)
        .map(
            view -> {
              if (view.status() != TaskStatus.SUCCEEDED) {
                throw ApiError.from(TaskJson.failureOf(view));
              }
              return view;
            })
        .doOnCancel(
            () -> {
              cancelled.set(true);
              // first: stopping the follower below ends the call (its pending is then over)
              client.clientLeft();
              UniqueKillSwitch kill = following.get();
              if (kill != null) {
                kill.abort(ApiError.of(ErrorCode.CANCELLED, "The call was cancelled."));
              }
            });
  }

  /** Progress notifications of one call, when its client asked for them with a progress token. */
  private final class Progress {
    private final Call call;
    private final String taskId;
    private final Object token;
    private final AtomicLong count = new AtomicLong();
    private final AtomicBoolean receiving = new AtomicBoolean();

    Progress(Call call, String taskId) {
      this.call = call;
      this.taskId = taskId;
      this.token = call.request().meta() == null ? null : call.request().meta().get("progressToken");
    }

    void report(Optional<TaskUpdate> update) {
      if (token == null) {
        return;
      }
      String message;
      if (update.isEmpty()) {
        message = "task " + taskId + ": still working";
      } else if (update.get() instanceof TaskUpdate.StatusChanged changed) {
        TaskView view = changed.view();
        message = "task " + taskId + ": " + view.status().wireName() + (view.attempts() > 0 ? " (attempt " + view.attempts() + ")" : "");
      } else if (update.get() instanceof TaskUpdate.ContentDelta) {
        if (receiving.getAndSet(true)) {
          return; // once, not per token
        }
        message = "task " + taskId + ": receiving the answer";
      } else {
        return;
      }
      double value = count.incrementAndGet();
      call.exchange()
          .progressNotification(new McpSchema.ProgressNotification(token, value, null, message))
          .subscribe(x -> {}, e -> {});
    }
  }
}
