package dev.mcpstack.sim;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.marshalling.sse.EventStreamMarshalling;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;
import org.apache.pekko.http.javadsl.server.Directives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.unmarshalling.Unmarshaller;
import org.apache.pekko.pattern.Patterns;
import org.apache.pekko.stream.ThrottleMode;
import org.apache.pekko.stream.javadsl.Source;

/** The simulator's HTTP routes: OpenAI-compatible API under /v1 and /engines[/{engine}]/v1, admin under /sim. */
final class SimulatorRoutes {

  private static final String REPLY_PREFIX = "Simulated reply to: ";

  private final ActorSystem<?> system;
  private final SimulatorSettings settings;
  private final SimulatorState state;
  private final AtomicLong completionIds = new AtomicLong();

  SimulatorRoutes(ActorSystem<?> system, SimulatorSettings settings, SimulatorState state) {
    this.system = system;
    this.settings = settings;
    this.state = state;
  }

  Route route() {
    Route api = api();
    return concat(
        pathPrefix("v1", () -> api),
        pathPrefix("engines", () -> concat(
            pathPrefix("v1", () -> api),
            pathPrefix(segment(), engine -> pathPrefix("v1", () -> api)))),
        pathPrefix("sim", this::admin));
  }

  // ---------------------------------------------------------------- API

  private Route api() {
    return concat(
        path(segment("chat").slash("completions"), () -> post(() -> tracked(this::chat))),
        path("embeddings", () -> post(() -> tracked(whole(this::embeddings)))),
        path("models", () -> get(() -> tracked(whole((call, req, body) -> listModels())))),
        pathPrefix("models", () -> get(() -> extractUnmatchedPath(rest -> {
          if (!rest.startsWith("/") || rest.length() == 1) return reject();
          String id = decode(rest.substring(1));
          return tracked(whole((call, req, body) -> getModel(call, id)));
        }))),
        extractUnmatchedPath(rest -> complete(OpenAiJson.error(404, "unknown endpoint: " + rest, null, "unknown_url"))));
  }

  /** Answers a request with a route: a whole response, or a stream of events ({@link #eventStream}). */
  @FunctionalInterface
  private interface Handler {
    CompletionStage<Route> handle(SimulatorState.Call call, HttpRequest request, String body) throws Exception;
  }

  /** A handler whose every answer is one whole response. */
  @FunctionalInterface
  private interface ResponseHandler {
    CompletionStage<HttpResponse> handle(SimulatorState.Call call, HttpRequest request, String body) throws Exception;
  }

  private static Handler whole(ResponseHandler handler) {
    return (call, request, body) -> handler.handle(call, request, body).thenApply(Directives::complete);
  }

  /**
   * Registers the request with the in-flight accounting and runs the handler. Strict responses
   * end the accounting when the route completes; streamed responses end it when their stream
   * terminates; requests the server times out (hang, or latency beyond
   * pekko.http.server.request-timeout) end it with 503.
   */
  private Route tracked(Handler handler) {
    return entity(Unmarshaller.entityToString(), body -> extractRequest(request -> {
      SimulatorState.Call call = state.arrive(
          request.method().value(), request.getUri().path(), lowerCasedHeaders(request));
      SimulatorConnection.of(request).ifPresent(call::on);
      return withRequestTimeoutResponse(
          timedOut -> finish(call, OpenAiJson.error(503, "simulator request timed out", null, "timeout")),
          () -> mapResponse(response -> {
            if (response.entity().isKnownEmpty() || response.entity().isStrict()) finish(call, response);
            return response;
          }, () -> onSuccess(run(handler, call, request, body), route -> route)));
    }));
  }

  /** The handler's route; a handler that throws or fails answers 500 (so the future never fails). */
  private CompletionStage<Route> run(Handler handler, SimulatorState.Call call, HttpRequest request, String body) {
    CompletionStage<Route> result;
    try {
      result = handler.handle(call, request, body);
    } catch (Exception e) {
      result = CompletableFuture.failedFuture(e);
    }
    return result.handle((route, failure) -> {
      if (failure == null) return route;
      Throwable cause = failure instanceof CompletionException && failure.getCause() != null
          ? failure.getCause() : failure;
      system.log().warn("simulator handler failed", cause);
      return complete(OpenAiJson.error(500, "simulator error: " + cause, null, "internal_error"));
    });
  }

  private static HttpResponse finish(SimulatorState.Call call, HttpResponse response) {
    call.finish(response.status().intValue());
    return response;
  }

  /**
   * Streams the events with pekko-http's SSE marshaller: {@code text/event-stream}, one chunk per
   * event, each as OpenAI writes it (see {@link OpenAiJson#event}).
   *
   * <p>The body's {@code stream} field decides, as at OpenAI, not {@code Accept}: OpenAI's Python
   * SDK sends {@code Accept: application/json} on streamed requests too, and the marshaller's
   * content negotiation would reject that (406, or here the next route: 404 unknown endpoint). So
   * {@code Accept} is dropped before it.
   *
   * <p>{@code closeDelimited} (the drop fault): the marshaller's chunked entity becomes a
   * close-delimited one, so the server closes the connection after the events and the client
   * deterministically reads them all, then EOF without [DONE]. (Failing a chunked entity makes
   * pekko-http reset the connection, which can discard the chunks still unsent.)
   */
  private static Route eventStream(Source<ServerSentEvent, NotUsed> events, boolean closeDelimited) {
    Route marshalled = mapRequest(request -> request.removeHeader("Accept"),
        () -> respondWithHeader(RawHeader.create("Cache-Control", "no-cache"),
            () -> completeOK(events, EventStreamMarshalling.toEventStream())));
    if (!closeDelimited) return marshalled;
    return mapResponseEntity(
        entity -> HttpEntities.createCloseDelimited(entity.getContentType(), entity.getDataBytes()),
        () -> marshalled);
  }

  private static Map<String, String> lowerCasedHeaders(HttpRequest request) {
    Map<String, String> headers = new LinkedHashMap<>();
    for (HttpHeader h : request.getHeaders()) {
      headers.merge(h.lowercaseName(), h.value(), (a, b) -> a + ", " + b);
    }
    return headers;
  }

  private static String decode(String s) {
    return java.net.URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
  }

  // ---------------------------------------------------------------- faults and timing

  private <T> CompletionStage<T> after(Duration delay, Supplier<T> answer) {
    if (delay.isZero()) return CompletableFuture.completedFuture(answer.get());
    return Patterns.after(delay, system.classicSystem().scheduler(), system.executionContext(),
        () -> CompletableFuture.completedFuture(answer.get()));
  }

  private static HttpResponse simulatedFailure(Faults f) {
    int status = f.failStatus();
    String message = "simulated failure: status " + status;
    HttpResponse response = f.plainTextErrors()
        ? HttpResponse.create().withStatus(OpenAiJson.status(status))
            .withEntity(HttpEntities.create(ContentTypes.TEXT_PLAIN_UTF8, message))
        : OpenAiJson.error(status, message, null, "simulated_failure");
    if (f.retryAfter() != null) {
      long millis = f.retryAfter().toMillis();
      long seconds = (millis + 999) / 1000;
      response = response.addHeader(RawHeader.create("Retry-After", Long.toString(seconds)));
    }
    return response;
  }

  /** Fault checks shared by chat and embeddings; null when the request proceeds normally. */
  private CompletionStage<HttpResponse> faultOrNull(SimulatorState.Call call, Faults f) {
    long sequence = call.nextFaultSequence();
    if (f.hang()) return new CompletableFuture<>(); // never completes: no thread, no timer
    if (f.failsRequest(sequence)) return after(f.latency(), () -> simulatedFailure(f));
    return null;
  }

  // ---------------------------------------------------------------- chat

  private CompletionStage<Route> chat(SimulatorState.Call call, HttpRequest request, String body) {
    Faults f;
    Integer requestedToolCalls;
    try {
      f = HeaderKnobs.effective(state.defaults(), request);
      requestedToolCalls = HeaderKnobs.toolCalls(request);
    } catch (IllegalArgumentException e) {
      return CompletableFuture.completedFuture(complete(OpenAiJson.invalidRequest(e.getMessage(), null)));
    }
    ChatRequest chat;
    HttpResponse invalid = null;
    try {
      chat = ChatRequest.parse(body);
      call.model(chat.model());
      if (!settings.models().contains(chat.model())) invalid = OpenAiJson.modelNotFound(chat.model());
    } catch (IllegalArgumentException e) {
      chat = null;
      invalid = OpenAiJson.invalidRequest(e.getMessage(), e instanceof ParamException p ? p.param : null);
    }
    CompletionStage<HttpResponse> fault = faultOrNull(call, f);
    if (fault != null) return fault.thenApply(Directives::complete);
    if (invalid != null) {
      HttpResponse response = invalid;
      return after(f.latency(), () -> complete(response));
    }
    ChatRequest c = chat;
    int toolCallCount = c.toolCallCount(requestedToolCalls);
    String id = "chatcmpl-sim-" + completionIds.incrementAndGet();
    long created = Instant.now().getEpochSecond();
    Answer answer = toolCallCount > 0 ? Answer.toolCalls(c, toolCallCount) : Answer.text(c);
    if (c.stream()) {
      Source<ServerSentEvent, NotUsed> events = chatStream(call, f, c, id, created, answer);
      return after(f.latency(), () -> eventStream(events, f.dropAfterChunks() >= 0));
    }
    Duration generation = f.tokensPerSecond() > 0
        ? Duration.ofNanos(Math.round(answer.tokens() * 1_000_000_000d / f.tokensPerSecond()))
        : Duration.ZERO;
    Duration delay = f.latency().plus(f.timeToFirstToken()).plus(generation);
    return after(delay, () -> {
      ObjectNode root = completionHeader(id, "chat.completion", created, c.model());
      ObjectNode choice = root.putArray("choices").addObject();
      choice.put("index", 0);
      choice.set("message", answer.message());
      choice.put("finish_reason", answer.finishReason());
      root.set("usage", usage(c.promptTokens(), answer.tokens()));
      return complete(OpenAiJson.json(200, root));
    });
  }

  /** One tool call of an answer: its id, function name and arguments cut into stream fragments. */
  record ToolCall(String id, String name, List<String> argumentFragments) {
    String arguments() {
      return String.join("", argumentFragments);
    }
  }

  /**
   * A deterministic answer: either text (one token per word, {@code max_tokens} truncates) or tool
   * calls (one token per arguments fragment, never truncated).
   */
  record Answer(List<String> words, int emitted, List<ToolCall> toolCalls) {

    static Answer text(ChatRequest c) {
      List<String> words = c.replyWords();
      int emitted = c.maxTokens() == null ? words.size() : Math.min(words.size(), c.maxTokens());
      return new Answer(words, emitted, List.of());
    }

    static Answer toolCalls(ChatRequest c, int count) {
      List<ToolCall> calls = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        ObjectNode args = OpenAiJson.MAPPER.createObjectNode();
        args.put("query", c.lastUserContent());
        args.put("call", i);
        String name = c.toolNames().get(i % c.toolNames().size());
        calls.add(new ToolCall("call_" + i, name, fragments(OpenAiJson.write(args), TOOL_ARGUMENT_FRAGMENT)));
      }
      return new Answer(List.of(), 0, List.copyOf(calls));
    }

    boolean isToolCalls() {
      return !toolCalls.isEmpty();
    }

    String finishReason() {
      if (isToolCalls()) return "tool_calls";
      return emitted < words.size() ? "length" : "stop";
    }

    int tokens() {
      if (!isToolCalls()) return emitted;
      int n = 0;
      for (ToolCall t : toolCalls) n += t.argumentFragments().size();
      return n;
    }

    ObjectNode message() {
      ObjectNode message = OpenAiJson.MAPPER.createObjectNode();
      message.put("role", "assistant");
      if (!isToolCalls()) {
        message.put("content", String.join(" ", words.subList(0, emitted)));
        return message;
      }
      message.putNull("content");
      ArrayNode calls = message.putArray("tool_calls");
      for (ToolCall t : toolCalls) {
        ObjectNode call = calls.addObject();
        call.put("id", t.id());
        call.put("type", "function");
        call.putObject("function").put("name", t.name()).put("arguments", t.arguments());
      }
      return message;
    }

    /** The stream's chunks after the role chunk; the finish reason goes on the last. */
    List<ObjectNode> streamDeltas() {
      List<ObjectNode> deltas = new ArrayList<>();
      if (!isToolCalls()) {
        for (int i = 0; i < emitted; i++) {
          boolean last = i == emitted - 1;
          deltas.add(delta(null, last ? words.get(i) : words.get(i) + " "));
        }
        return deltas;
      }
      // As OpenAI streams them: the first delta of a call names it (index, id, type, name, empty
      // arguments); later deltas carry only the index and a fragment of the arguments.
      for (int index = 0; index < toolCalls.size(); index++) {
        ToolCall t = toolCalls.get(index);
        ObjectNode head = OpenAiJson.MAPPER.createObjectNode();
        ObjectNode call = head.putArray("tool_calls").addObject();
        call.put("index", index);
        call.put("id", t.id());
        call.put("type", "function");
        call.putObject("function").put("name", t.name()).put("arguments", "");
        deltas.add(head);
        for (String fragment : t.argumentFragments()) {
          ObjectNode piece = OpenAiJson.MAPPER.createObjectNode();
          piece.putArray("tool_calls").addObject().put("index", index)
              .putObject("function").put("arguments", fragment);
          deltas.add(piece);
        }
      }
      deltas.add(OpenAiJson.MAPPER.createObjectNode()); // the finish chunk: an empty delta
      return deltas;
    }
  }

  /** Characters (code points) per streamed fragment of a tool call's arguments. */
  static final int TOOL_ARGUMENT_FRAGMENT = 8;

  static List<String> fragments(String text, int size) {
    List<String> out = new ArrayList<>();
    int start = 0;
    while (start < text.length()) {
      int end = start;
      for (int n = 0; n < size && end < text.length(); n++) end = text.offsetByCodePoints(end, 1);
      out.add(text.substring(start, end));
      start = end;
    }
    return out;
  }

  private Source<ServerSentEvent, NotUsed> chatStream(SimulatorState.Call call, Faults f, ChatRequest c, String id,
      long created, Answer answer) {
    ObjectNode roleDelta = answer.isToolCalls()
        ? OpenAiJson.MAPPER.createObjectNode().put("role", "assistant").putNull("content")
        : delta("assistant", "");
    Source<ServerSentEvent, NotUsed> first =
        Source.single(OpenAiJson.event(chunk(id, created, c.model(), roleDelta, null)));
    if (!f.timeToFirstToken().isZero()) first = first.initialDelay(f.timeToFirstToken());

    List<ObjectNode> deltas = answer.streamDeltas();
    int sent = f.dropAfterChunks() >= 0 ? Math.min(f.dropAfterChunks(), deltas.size()) : deltas.size();
    List<ServerSentEvent> tokens = new ArrayList<>(sent);
    for (int i = 0; i < sent; i++) {
      boolean last = i == deltas.size() - 1;
      tokens.add(OpenAiJson.event(chunk(id, created, c.model(), deltas.get(i), last ? answer.finishReason() : null)));
    }
    Source<ServerSentEvent, NotUsed> content = Source.from(tokens);
    if (f.tokensPerSecond() > 0) {
      Duration interval = Duration.ofNanos(Math.max(1L, Math.round(1_000_000_000d / f.tokensPerSecond())));
      content = content.throttle(1, interval, 1, ThrottleMode.shaping());
    }

    Source<ServerSentEvent, ?> tail;
    if (f.dropAfterChunks() >= 0) {
      tail = Source.lazySource(() -> {
        call.finish(200);
        return Source.<ServerSentEvent>empty();
      });
    } else {
      Source<ServerSentEvent, NotUsed> usage = Source.empty();
      if (c.includeUsage()) {
        ObjectNode root = completionHeader(id, "chat.completion.chunk", created, c.model());
        root.putArray("choices");
        root.set("usage", usage(c.promptTokens(), answer.tokens()));
        usage = Source.single(OpenAiJson.event(root));
      }
      // ends the accounting before [DONE] reaches the wire, so a client that saw [DONE] sees inFlight drop
      // concatLazy: a plain concat pulls its second source at once, ending the accounting early
      tail = usage.concatLazy(Source.lazySingle(() -> {
        call.finish(200);
        return OpenAiJson.DONE;
      }));
    }
    return first.concat(content).concatLazy(tail)
        .watchTermination((mat, done) -> {
          // the tail ends the accounting of a stream that ran to its end: ending here, the client left
          done.whenComplete((d, failure) -> call.abandon());
          return mat;
        });
  }

  private static ObjectNode completionHeader(String id, String object, long created, String model) {
    ObjectNode root = OpenAiJson.MAPPER.createObjectNode();
    root.put("id", id);
    root.put("object", object);
    root.put("created", created);
    root.put("model", model);
    return root;
  }

  private static ObjectNode chunk(String id, long created, String model, ObjectNode delta, String finishReason) {
    ObjectNode root = completionHeader(id, "chat.completion.chunk", created, model);
    ObjectNode choice = root.putArray("choices").addObject();
    choice.put("index", 0);
    choice.set("delta", delta);
    if (finishReason == null) choice.putNull("finish_reason");
    else choice.put("finish_reason", finishReason);
    return root;
  }

  private static ObjectNode delta(String role, String content) {
    ObjectNode delta = OpenAiJson.MAPPER.createObjectNode();
    if (role != null) delta.put("role", role);
    delta.put("content", content);
    return delta;
  }

  private static ObjectNode usage(int prompt, int completion) {
    ObjectNode usage = OpenAiJson.MAPPER.createObjectNode();
    usage.put("prompt_tokens", prompt);
    usage.put("completion_tokens", completion);
    usage.put("total_tokens", prompt + completion);
    return usage;
  }

  /** Parse failure naming the offending request parameter. */
  static final class ParamException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    final String param;

    ParamException(String message, String param) {
      super(message);
      this.param = param;
    }
  }

  /**
   * @param toolNames the functions the answer may call: every offered function tool, only the one
   *     {@code tool_choice} names, none when {@code tool_choice} is "none"
   * @param parallelToolCalls false when the request sets {@code parallel_tool_calls: false}
   */
  record ChatRequest(String model, List<String> contents, String lastUserContent, Integer maxTokens,
      boolean stream, boolean includeUsage, List<String> toolNames, boolean parallelToolCalls) {

    static ChatRequest parse(String body) {
      JsonNode root = readObject(body);
      String model = requireModel(root);
      JsonNode messages = root.get("messages");
      if (messages == null || !messages.isArray() || messages.isEmpty())
        throw new ParamException("'messages' must be a non-empty array", "messages");
      List<String> contents = new ArrayList<>();
      String lastUser = "";
      for (JsonNode m : messages) {
        if (!m.isObject()) throw new ParamException("each message must be an object", "messages");
        String content = contentText(m.get("content"));
        contents.add(content);
        if ("user".equals(m.path("role").asText())) lastUser = content;
      }
      Integer maxTokens = null;
      for (String field : List.of("max_completion_tokens", "max_tokens")) {
        JsonNode n = root.get(field);
        if (n != null && !n.isNull()) {
          if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() < 1)
            throw new ParamException("'" + field + "' must be an integer >= 1", field);
          maxTokens = maxTokens == null ? n.asInt() : Math.min(maxTokens, n.asInt());
        }
      }
      boolean stream = root.path("stream").asBoolean(false);
      boolean includeUsage = root.path("stream_options").path("include_usage").asBoolean(false);
      List<String> toolNames = toolNames(root);
      boolean parallel = root.path("parallel_tool_calls").asBoolean(true);
      return new ChatRequest(model, List.copyOf(contents), lastUser, maxTokens, stream, includeUsage,
          toolNames, parallel);
    }

    private static List<String> toolNames(JsonNode root) {
      JsonNode tools = root.get("tools");
      if (tools == null || tools.isNull()) return List.of();
      if (!tools.isArray()) throw new ParamException("'tools' must be an array", "tools");
      List<String> names = new ArrayList<>();
      for (JsonNode tool : tools) {
        String name = tool.path("function").path("name").asText("");
        if ("function".equals(tool.path("type").asText("function")) && !name.isEmpty()) names.add(name);
      }
      JsonNode choice = root.path("tool_choice");
      if (choice.isTextual() && choice.asText().equals("none")) return List.of();
      if (choice.isObject()) {
        String forced = choice.path("function").path("name").asText("");
        if (!names.contains(forced))
          throw new ParamException("'tool_choice' names a function that is not in 'tools': " + forced, "tool_choice");
        return List.of(forced);
      }
      return List.copyOf(names);
    }

    /**
     * How many tool calls the answer makes: none without callable tools; else the {@code
     * X-Sim-Tool-Calls} header's count (null = absent), by default one per callable tool, one
     * when {@code parallel_tool_calls} is false.
     */
    int toolCallCount(Integer requested) {
      if (toolNames.isEmpty()) return 0;
      if (requested != null) return requested;
      return parallelToolCalls ? toolNames.size() : 1;
    }

    private static String contentText(JsonNode content) {
      if (content == null || content.isNull()) return "";
      if (content.isTextual()) return content.asText();
      if (content.isArray()) {
        List<String> parts = new ArrayList<>();
        for (JsonNode part : content) {
          if (part.isTextual()) parts.add(part.asText());
          else if (part.has("text")) parts.add(part.get("text").asText());
        }
        return String.join(" ", parts);
      }
      throw new ParamException("message content must be a string or an array of parts", "messages");
    }

    /** The whole deterministic reply, one entry per token (word). */
    List<String> replyWords() {
      return words(REPLY_PREFIX + lastUserContent);
    }

    int promptTokens() {
      int n = 0;
      for (String c : contents) n += words(c).size();
      return n;
    }
  }

  static List<String> words(String text) {
    String trimmed = text.strip();
    if (trimmed.isEmpty()) return List.of();
    return List.of(trimmed.split("\\s+"));
  }

  private static JsonNode readObject(String body) {
    JsonNode root;
    try {
      root = OpenAiJson.MAPPER.readTree(body);
    } catch (Exception e) {
      throw new ParamException("request body is not valid JSON", null);
    }
    if (root == null || !root.isObject()) throw new ParamException("request body must be a JSON object", null);
    return root;
  }

  private static String requireModel(JsonNode root) {
    JsonNode model = root.get("model");
    if (model == null || !model.isTextual() || model.asText().isEmpty())
      throw new ParamException("you must provide a model parameter", "model");
    return model.asText();
  }

  // ---------------------------------------------------------------- embeddings

  private CompletionStage<HttpResponse> embeddings(SimulatorState.Call call, HttpRequest request, String body) {
    Faults f;
    try {
      f = HeaderKnobs.effective(state.defaults(), request);
    } catch (IllegalArgumentException e) {
      return CompletableFuture.completedFuture(OpenAiJson.invalidRequest(e.getMessage(), null));
    }
    String model = null;
    List<String> inputs = null;
    int dims = settings.embeddingDimensions();
    HttpResponse invalid = null;
    try {
      JsonNode root = readObject(body);
      model = requireModel(root);
      call.model(model);
      inputs = embeddingInputs(root.get("input"));
      dims = dimensions(root.get("dimensions"), dims);
      call.embeddingBatch(inputs.size());
      if (!settings.models().contains(model)) invalid = OpenAiJson.modelNotFound(model);
    } catch (IllegalArgumentException e) {
      invalid = OpenAiJson.invalidRequest(e.getMessage(), e instanceof ParamException p ? p.param : null);
    }
    CompletionStage<HttpResponse> fault = faultOrNull(call, f);
    if (fault != null) return fault;
    if (invalid != null) {
      HttpResponse response = invalid;
      return after(f.latency(), () -> response);
    }
    String m = model;
    List<String> in = inputs;
    int length = dims;
    return after(f.latency(), () -> {
      ObjectNode root = OpenAiJson.MAPPER.createObjectNode();
      root.put("object", "list");
      ArrayNode data = root.putArray("data");
      int tokens = 0;
      for (int i = 0; i < in.size(); i++) {
        ObjectNode item = data.addObject();
        item.put("object", "embedding");
        item.put("index", i);
        ArrayNode vector = item.putArray("embedding");
        for (float x : embedding(in.get(i), length)) vector.add(x);
        tokens += words(in.get(i)).size();
      }
      root.put("model", m);
      ObjectNode usage = root.putObject("usage");
      usage.put("prompt_tokens", tokens);
      usage.put("total_tokens", tokens);
      return OpenAiJson.json(200, root);
    });
  }

  /** OpenAI's {@code dimensions}: the vector length asked for (1..8192), else the configured one. */
  private static int dimensions(JsonNode dimensions, int configured) {
    if (dimensions == null || dimensions.isNull()) return configured;
    if (!dimensions.canConvertToInt() || !dimensions.isIntegralNumber() || dimensions.asInt() < 1 || dimensions.asInt() > 8192)
      throw new ParamException("Invalid 'dimensions': expected an integer between 1 and 8192.", "dimensions");
    return dimensions.asInt();
  }

  private static List<String> embeddingInputs(JsonNode input) {
    if (input == null || input.isNull()) throw new ParamException("you must provide an input parameter", "input");
    if (input.isTextual()) return List.of(input.asText());
    if (input.isArray() && !input.isEmpty()) {
      List<String> inputs = new ArrayList<>(input.size());
      for (Iterator<JsonNode> it = input.elements(); it.hasNext(); ) {
        JsonNode n = it.next();
        if (!n.isTextual()) throw new ParamException("'input' must be a string or an array of strings", "input");
        inputs.add(n.asText());
      }
      return inputs;
    }
    throw new ParamException("'input' must be a string or a non-empty array of strings", "input");
  }

  /** Deterministic unit vector derived from SHA-256 of the text (splitmix64 stream seeded by the digest). */
  static float[] embedding(String text, int dimensions) {
    byte[] digest;
    try {
      digest = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 unavailable", e);
    }
    long seed = 0;
    for (int i = 0; i < 8; i++) seed = (seed << 8) | (digest[i] & 0xff);
    double[] v = new double[dimensions];
    double norm = 0;
    for (int i = 0; i < dimensions; i++) {
      seed += 0x9E3779B97F4A7C15L;
      long z = seed;
      z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
      z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
      z = z ^ (z >>> 31);
      v[i] = ((z >>> 11) * 0x1.0p-53) * 2 - 1; // [-1, 1)
      norm += v[i] * v[i];
    }
    norm = Math.sqrt(norm);
    float[] out = new float[dimensions];
    for (int i = 0; i < dimensions; i++) out[i] = norm == 0 ? (i == 0 ? 1f : 0f) : (float) (v[i] / norm);
    return out;
  }

  // ---------------------------------------------------------------- models

  private CompletionStage<HttpResponse> listModels() {
    ObjectNode root = OpenAiJson.MAPPER.createObjectNode();
    root.put("object", "list");
    ArrayNode data = root.putArray("data");
    for (String id : settings.models()) data.add(model(id));
    return CompletableFuture.completedFuture(OpenAiJson.json(200, root));
  }

  private CompletionStage<HttpResponse> getModel(SimulatorState.Call call, String id) {
    call.model(id);
    HttpResponse response = settings.models().contains(id)
        ? OpenAiJson.json(200, model(id))
        : OpenAiJson.modelNotFound(id);
    return CompletableFuture.completedFuture(response);
  }

  private static ObjectNode model(String id) {
    ObjectNode m = OpenAiJson.MAPPER.createObjectNode();
    m.put("id", id);
    m.put("object", "model");
    m.put("created", 0);
    m.put("owned_by", "simulator");
    return m;
  }

  // ---------------------------------------------------------------- admin

  private Route admin() {
    return concat(
        path("stats", () -> get(() -> complete(OpenAiJson.json(200, statsJson(state.stats()))))),
        path("reset", () -> post(() -> {
          state.reset();
          return complete(StatusCodes.NO_CONTENT);
        })),
        path("faults", () -> concat(
            get(() -> complete(OpenAiJson.json(200, faultsJson(state.defaults())))),
            put(() -> entity(Unmarshaller.entityToString(), body -> {
              try {
                Faults faults = faultsFromJson(body);
                state.setDefaults(faults);
                return complete(OpenAiJson.json(200, faultsJson(faults)));
              } catch (IllegalArgumentException e) {
                return complete(OpenAiJson.invalidRequest(e.getMessage(), null));
              }
            })))));
  }

  private static ObjectNode statsJson(SimulatorStats stats) {
    ObjectNode root = OpenAiJson.MAPPER.createObjectNode();
    root.put("requests", stats.requests());
    ObjectNode byPath = root.putObject("requestsByPath");
    new java.util.TreeMap<>(stats.requestsByPath()).forEach(byPath::put);
    root.put("maxInFlight", stats.maxInFlight());
    root.put("inFlight", stats.inFlight());
    root.put("maxEmbeddingBatch", stats.maxEmbeddingBatch());
    root.put("abandoned", stats.abandoned());
    root.put("connections", stats.connections());
    ArrayNode recent = root.putArray("recent");
    for (RecordedRequest r : stats.recent()) {
      ObjectNode n = recent.addObject();
      n.put("method", r.method());
      n.put("path", r.path());
      n.put("model", r.model());
      n.put("arrivalNanos", r.arrivalNanos());
      n.put("status", r.status());
    }
    return root;
  }

  static ObjectNode faultsJson(Faults f) {
    ObjectNode n = OpenAiJson.MAPPER.createObjectNode();
    n.put("latencyMs", f.latency().toMillis());
    n.put("timeToFirstTokenMs", f.timeToFirstToken().toMillis());
    n.put("tokensPerSecond", f.tokensPerSecond());
    n.put("failStatus", f.failStatus());
    n.put("failFirst", f.failFirst());
    n.put("failEvery", f.failEvery());
    n.put("failRatio", f.failRatio());
    n.put("plainTextErrors", f.plainTextErrors());
    if (f.retryAfter() == null) n.putNull("retryAfterMs");
    else n.put("retryAfterMs", f.retryAfter().toMillis());
    n.put("hang", f.hang());
    n.put("dropAfterChunks", f.dropAfterChunks());
    return n;
  }

  /** Parses a PUT /sim/faults body; absent fields take the values of {@link Faults#none()}. */
  static Faults faultsFromJson(String body) {
    JsonNode root = readObject(body);
    Faults f = Faults.none();
    for (Map.Entry<String, JsonNode> e : root.properties()) {
      JsonNode v = e.getValue();
      switch (e.getKey()) {
        case "latencyMs" -> f = f.withLatency(Duration.ofMillis(longValue(e.getKey(), v)));
        case "timeToFirstTokenMs" -> f = f.withTimeToFirstToken(Duration.ofMillis(longValue(e.getKey(), v)));
        case "tokensPerSecond" -> f = f.withTokensPerSecond(number(e.getKey(), v).doubleValue());
        case "failStatus" -> f = f.withFailStatus(intValue(e.getKey(), v));
        case "failFirst" -> f = f.withFailFirst(intValue(e.getKey(), v));
        case "failEvery" -> f = f.withFailEvery(intValue(e.getKey(), v));
        case "failRatio" -> f = f.withFailRatio(number(e.getKey(), v).doubleValue());
        case "plainTextErrors" -> f = f.withPlainTextErrors(bool(e.getKey(), v));
        case "retryAfterMs" -> f = f.withRetryAfter(v.isNull() ? null : Duration.ofMillis(longValue(e.getKey(), v)));
        case "hang" -> f = f.withHang(bool(e.getKey(), v));
        case "dropAfterChunks" -> f = f.withDropAfterChunks(intValue(e.getKey(), v));
        default -> {
          List<String> known = new ArrayList<>();
          faultsJson(Faults.none()).fieldNames().forEachRemaining(known::add);
          throw new IllegalArgumentException(
              "unknown field '" + e.getKey() + "'; known: " + String.join(", ", known));
        }
      }
    }
    return f;
  }

  private static Number number(String field, JsonNode v) {
    if (!v.isNumber()) throw new IllegalArgumentException("'" + field + "' must be a number");
    return v.numberValue();
  }

  private static long longValue(String field, JsonNode v) {
    if (!v.isIntegralNumber() || !v.canConvertToLong())
      throw new IllegalArgumentException("'" + field + "' must be an integer");
    return v.asLong();
  }

  private static int intValue(String field, JsonNode v) {
    if (!v.isIntegralNumber() || !v.canConvertToInt())
      throw new IllegalArgumentException("'" + field + "' must be an integer");
    return v.asInt();
  }

  private static boolean bool(String field, JsonNode v) {
    if (!v.isBoolean()) throw new IllegalArgumentException("'" + field + "' must be true or false");
    return v.asBoolean();
  }
}
