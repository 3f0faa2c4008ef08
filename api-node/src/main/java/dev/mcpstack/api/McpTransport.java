package dev.mcpstack.api;

import io.modelcontextprotocol.common.McpTransportContext;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.TypeRef;
import io.modelcontextprotocol.spec.McpSchema;
import io.modelcontextprotocol.spec.McpStreamableServerSession;
import io.modelcontextprotocol.spec.McpStreamableServerTransport;
import io.modelcontextprotocol.spec.McpStreamableServerTransportProvider;
import io.modelcontextprotocol.spec.ProtocolVersions;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;

/**
 * The MCP SDK's Streamable HTTP server transport over pekko-http, one JSON-RPC message per POST:
 * {@code initialize} opens a session (its id in {@code Mcp-Session-Id}, answered as JSON); a
 * request is answered as server-sent events (its progress notifications, then its response); a
 * notification or a response is accepted with 202; DELETE ends the session. No GET stream: this
 * server sends nothing outside a request, so GET answers 405, which the protocol allows.
 *
 * <p>Sessions live in this node's memory, bound to the API key that opened them: another key,
 * another node (behind a balancer without affinity) or a session idle for longer than {@code
 * session-idle-timeout} get 404, on which MCP clients open a new session. {@code
 * notifications/cancelled} is handled here, because the SDK (1.1) ignores it: it disposes the
 * request's handler, which cancels the request's task. A response stream whose client went away
 * before the response is cancelled the same way: without resumable streams nobody could read it.
 */
final class McpTransport implements McpStreamableServerTransportProvider {
  private static final Logger log = LoggerFactory.getLogger(McpTransport.class);
  static final String SESSION_HEADER = "Mcp-Session-Id";
  static final String CANCELLED = "notifications/cancelled";
  static final String CALLER = "caller";
  static final String REQUEST_ID = "requestId";

  private final McpJsonMapper mapper;
  private final McpSettings settings;
  private final Duration keepalive;
  private final Map<String, Session> sessions = new ConcurrentHashMap<>();
  private volatile McpStreamableServerSession.Factory factory;
  private volatile boolean closing;

  McpTransport(McpJsonMapper mapper, McpSettings settings, Duration keepalive) {
    this.mapper = mapper;
    this.settings = settings;
    this.keepalive = keepalive;
  }

  /** One MCP session: the SDK's, who opened it, when it was last used, its requests in flight. */
  private static final class Session {
    final McpStreamableServerSession sdk;
    final String tenant;
    final String keyId;
    final Map<Object, Disposable> inFlight = new ConcurrentHashMap<>();
    volatile Instant lastUsed = Instant.now();

    Session(McpStreamableServerSession sdk, Caller caller) {
      this.sdk = sdk;
      this.tenant = caller.tenant();
      this.keyId = caller.keyId();
    }

    boolean openedBy(Caller caller) {
      return tenant.equals(caller.tenant()) && Objects.equals(keyId, caller.keyId());
    }
  }

  @Override
  public List<String> protocolVersions() {
    return List.of(
        ProtocolVersions.MCP_2024_11_05,
        ProtocolVersions.MCP_2025_03_26,
        ProtocolVersions.MCP_2025_06_18,
        ProtocolVersions.MCP_2025_11_25);
  }

  @Override
  public void setSessionFactory(McpStreamableServerSession.Factory sessionFactory) {
    this.factory = sessionFactory;
  }

  @Override
  public Mono<Void> notifyClients(String method, Object params) {
    return Mono.whenDelayError(
        sessions.values().stream().map(s -> s.sdk.sendNotification(method, params).onErrorComplete()).toList());
  }

  @Override
  public Mono<Void> notifyClient(String sessionId, String method, Object params) {
    Session session = sessions.get(sessionId);
    return session == null ? Mono.empty() : session.sdk.sendNotification(method, params);
  }

  @Override
  public Mono<Void> closeGracefully() {
    return Mono.defer(
        () -> {
          closing = true;
          List<Mono<Void>> closes = sessions.values().stream().map(s -> close(s).onErrorComplete()).toList();
          sessions.clear();
          return Mono.whenDelayError(closes);
        });
  }

  int sessionCount() {
    return sessions.size();
  }

  /** Ends the sessions idle for longer than the configured timeout; called periodically. */
  void expireIdle() {
    Instant before = Instant.now().minus(settings.sessionIdleTimeout());
    sessions.forEach(
        (id, s) -> {
          if (s.lastUsed.isBefore(before) && s.inFlight.isEmpty() && sessions.remove(id, s)) {
            log.debug("MCP session {} of tenant {} expired", id, s.tenant);
            close(s).subscribe(x -> {}, e -> log.debug("closing MCP session {}: {}", id, e.toString()));
          }
        });
  }

  private static Mono<Void> close(Session s) {
    s.inFlight.values().forEach(Disposable::dispose);
    return s.sdk.delete();
  }

  /** A POST of one JSON-RPC message by {@code caller}. */
  CompletionStage<HttpResponse> post(Caller caller, String requestId, Optional<String> sessionId, String body) {
    if (closing) {
      return done(rpcError(StatusCodes.SERVICE_UNAVAILABLE, McpSchema.ErrorCodes.INTERNAL_ERROR, "The server is shutting down."));
    }
    McpSchema.JSONRPCMessage message;
    try {
      message = McpSchema.deserializeJsonRpcMessage(mapper, body);
    } catch (IOException | IllegalArgumentException e) {
      return done(
          rpcError(StatusCodes.BAD_REQUEST, McpSchema.ErrorCodes.PARSE_ERROR, "Not a JSON-RPC message: " + e.getMessage()));
    }
    McpTransportContext context = McpTransportContext.create(Map.of(CALLER, caller, REQUEST_ID, requestId));
    if (message instanceof McpSchema.JSONRPCRequest request && McpSchema.METHOD_INITIALIZE.equals(request.method())) {
      return initialize(caller, request, context);
    }
    if (sessionId.isEmpty()) {
      return done(
          rpcError(
              StatusCodes.BAD_REQUEST,
              McpSchema.ErrorCodes.INVALID_REQUEST,
              "Missing Mcp-Session-Id header: send initialize first."));
    }
    Session session = sessions.get(sessionId.get());
    if (session == null || !session.openedBy(caller)) {
      return done(
          rpcError(
              StatusCodes.NOT_FOUND,
              McpSchema.ErrorCodes.INVALID_REQUEST,
              "No MCP session '" + sessionId.get() + "' on this server: initialize a new one."));
    }
    session.lastUsed = Instant.now();
    if (message instanceof McpSchema.JSONRPCRequest request) {
      return done(respond(session, request, context));
    }
    Mono<Void> accepted;
    if (message instanceof McpSchema.JSONRPCNotification notification) {
      accepted = CANCELLED.equals(notification.method()) ? cancel(session, notification) : session.sdk.accept(notification);
    } else {
      accepted = session.sdk.accept((McpSchema.JSONRPCResponse) message);
    }
    return accepted
        .contextWrite(ctx -> ctx.put(McpTransportContext.KEY, context))
        .then(Mono.fromCallable(() -> HttpResponse.create().withStatus(StatusCodes.ACCEPTED)))
        .onErrorResume(
            e ->
                Mono.just(rpcError(StatusCodes.BAD_REQUEST, McpSchema.ErrorCodes.INVALID_REQUEST, String.valueOf(e.getMessage()))))
        .toFuture();
  }

  private CompletionStage<HttpResponse> initialize(Caller caller, McpSchema.JSONRPCRequest request, McpTransportContext context) {
    if (sessions.size() >= settings.maxSessions()) {
      return done(
          rpcError(
              StatusCodes.SERVICE_UNAVAILABLE,
              McpSchema.ErrorCodes.INTERNAL_ERROR,
              "This node has its limit of " + settings.maxSessions() + " MCP sessions open; try again later."));
    }
    McpSchema.InitializeRequest params =
        mapper.convertValue(request.params(), new TypeRef<McpSchema.InitializeRequest>() {});
    McpStreamableServerSession.McpStreamableServerSessionInit init = factory.startSession(params);
    Session session = new Session(init.session(), caller);
    sessions.put(init.session().getId(), session);
    return init.initResult()
        .contextWrite(ctx -> ctx.put(McpTransportContext.KEY, context))
        .map(
            result ->
                json(StatusCodes.OK, new McpSchema.JSONRPCResponse(McpSchema.JSONRPC_VERSION, request.id(), result, null))
                    .addHeader(RawHeader.create(SESSION_HEADER, init.session().getId())))
        .onErrorResume(
            e -> {
              sessions.remove(init.session().getId());
              return Mono.just(
                  rpcError(StatusCodes.INTERNAL_SERVER_ERROR, McpSchema.ErrorCodes.INTERNAL_ERROR, "initialize failed: " + e.getMessage()));
            })
        .toFuture();
  }

  /**
   * Runs a request with its own event stream: whatever the handler sends (progress notifications,
   * then the response) becomes one {@code message} event each, with keep-alive comments between.
   */
  private HttpResponse respond(Session session, McpSchema.JSONRPCRequest request, McpTransportContext context) {
    RequestStream stream = new RequestStream();
    Disposable.Swap running = Disposables.swap();
    Disposable handle =
        () -> {
          running.dispose();
          stream.close();
        };
    Object id = request.id();
    Disposable previous = session.inFlight.put(id, handle);
    if (previous != null) {
      previous.dispose();
    }
    running.update(
        session
            .sdk
            .responseStream(stream)
            .handle(request)
            .contextWrite(ctx -> ctx.put(McpTransportContext.KEY, context))
            .doFinally(signal -> session.inFlight.remove(id, handle))
            .subscribe(
                ok -> {},
                e -> {
                  log.warn("MCP request {} failed in its transport: {}", request.method(), e.toString());
                  stream.close();
                }));
    Source<ByteString, NotUsed> events =
        Source.fromPublisher(stream.sink.asFlux())
            .map(this::event)
            .keepAlive(keepalive, () -> Sse.KEEP_ALIVE)
            .watchTermination(
                (mat, over) -> {
                  over.whenComplete(
                      (x, e) -> {
                        if (!stream.answered.get()) {
                          // the client left before the answer: nobody can read it any more
                          handle.dispose();
                        }
                      });
                  return NotUsed.getInstance();
                });
    return Sse.response(events);
  }

  /** {@code notifications/cancelled}: stops the request's handler and closes its stream, no answer. */
  private Mono<Void> cancel(Session session, McpSchema.JSONRPCNotification notification) {
    return Mono.fromRunnable(
        () -> {
          Object requestId =
              notification.params() instanceof Map<?, ?> params ? params.get("requestId") : null;
          Disposable running = requestId == null ? null : session.inFlight.remove(requestId);
          if (running != null) {
            log.debug("MCP request {} cancelled by its client", requestId);
            running.dispose();
          }
        });
  }

  /** The end of a session (DELETE): 200, or 404 when there is none for this caller. */
  CompletionStage<HttpResponse> delete(Caller caller, Optional<String> sessionId) {
    Session session = sessionId.map(sessions::get).orElse(null);
    if (session == null || !session.openedBy(caller) || !sessions.remove(sessionId.get(), session)) {
      return done(rpcError(StatusCodes.NOT_FOUND, McpSchema.ErrorCodes.INVALID_REQUEST, "No such MCP session."));
    }
    return close(session)
        .then(Mono.fromCallable(() -> HttpResponse.create().withStatus(StatusCodes.OK)))
        .onErrorReturn(HttpResponse.create().withStatus(StatusCodes.OK))
        .toFuture();
  }

  private ByteString event(McpSchema.JSONRPCMessage message) {
    return ByteString.fromString("event: message\ndata: " + text(message) + "\n\n");
  }

  private String text(Object message) {
    try {
      return mapper.writeValueAsString(message);
    } catch (IOException e) {
      throw new IllegalStateException("cannot render an MCP message", e);
    }
  }

  private HttpResponse json(org.apache.pekko.http.javadsl.model.StatusCode status, Object body) {
    return HttpResponse.create()
        .withStatus(status)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, text(body)));
  }

  /** A JSON-RPC error without an id: the message could not be taken in at all. */
  private HttpResponse rpcError(org.apache.pekko.http.javadsl.model.StatusCode status, int code, String message) {
    return json(
        status,
        new McpSchema.JSONRPCResponse(
            McpSchema.JSONRPC_VERSION, null, null, new McpSchema.JSONRPCResponse.JSONRPCError(code, message, null)));
  }

  private static CompletionStage<HttpResponse> done(HttpResponse response) {
    return CompletableFuture.completedFuture(response);
  }

  /** One request's event stream, as the SDK writes to it. */
  private final class RequestStream implements McpStreamableServerTransport {
    final Sinks.Many<McpSchema.JSONRPCMessage> sink = Sinks.many().unicast().onBackpressureBuffer();
    final AtomicBoolean answered = new AtomicBoolean();

    @Override
    public Mono<Void> sendMessage(McpSchema.JSONRPCMessage message) {
      return sendMessage(message, null);
    }

    @Override
    public Mono<Void> sendMessage(McpSchema.JSONRPCMessage message, String messageId) {
      return Mono.fromRunnable(
          () -> {
            if (message instanceof McpSchema.JSONRPCResponse) {
              answered.set(true);
            }
            synchronized (this) {
              // the handler and its progress notifications may write from different threads
              sink.tryEmitNext(message);
            }
          });
    }

    @Override
    public <T> T unmarshalFrom(Object data, TypeRef<T> typeRef) {
      return mapper.convertValue(data, typeRef);
    }

    @Override
    public Mono<Void> closeGracefully() {
      return Mono.fromRunnable(this::close);
    }

    @Override
    public void close() {
      synchronized (this) {
        sink.tryEmitComplete();
      }
    }
  }
}
