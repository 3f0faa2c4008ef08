package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.pf.PFBuilder;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * {@code POST /v1/chat/completions} (plain or streamed), {@code GET /v1/chat/completions/{id}}
 * (stored completions) and {@code POST /v1/embeddings}. Every call is a task: submitted to its
 * sharded entity with this client as subscriber, answered when the task ends.
 */
final class ChatRoutes {
  private final HttpSupport http;
  private final TaskClient tasks;
  private final RequestValidation validation;
  private final ApiSettings settings;

  ChatRoutes(HttpSupport http, TaskClient tasks, RequestValidation validation) {
    this.http = http;
    this.tasks = tasks;
    this.validation = validation;
    this.settings = http.settings;
  }

  Route route(String requestId) {
    return pathPrefix(
        "v1",
        () ->
            concat(
                path(
                    segment("chat").slash("completions"),
                    () ->
                        extractRequest(
                            request ->
                                http.submission(
                                    (body, caller, key) ->
                                        http.cache.control(
                                            cacheControl ->
                                                chat(
                                                    body,
                                                    caller,
                                                    key,
                                                    cacheControl,
                                                    requestId,
                                                    ClientConnection.of(request)))))),
                path(
                    segment("chat").slash("completions").slash(segment()),
                    id -> get(() -> http.authenticated(caller -> stored(id, caller.tenant(), requestId)))),
                path(
                    "embeddings",
                    () ->
                        extractRequest(
                            request ->
                                http.submission(
                                    (body, caller, key) ->
                                        embeddings(body, caller, key, requestId, ClientConnection.of(request)))))));
  }

  private Route chat(
      JsonNode body,
      Caller caller,
      Optional<String> key,
      ResponseCache.Control cacheControl,
      String requestId,
      ClientConnection connection) {
    String model = validation.chat(body, "");
    caller.checkModel(model);
    String id = TaskIds.chat(caller.tenant(), key, body.path("store").asBoolean(false));
    TaskSpec spec = new TaskSpec(TaskKind.CHAT, model, validation.chatWithDefaults(body));
    Instant deadline = Instant.now().plus(settings.chatTimeout());
    boolean includeUsage = body.path("stream_options").path("include_usage").asBoolean(false);
    return http.respond(
        http.admission.waiting(
            caller,
            id,
            spec,
            deadline,
            (admitted, done) ->
                spec.streaming()
                    ? stream(id, spec, caller, admitted.holdId(), deadline, includeUsage, requestId, done,
                            leavingCancels(connection, key))
                        .thenApply(admitted::decorate)
                    // the response cache (docs/adr/0009) answers a hit itself and runs the task on a miss
                    : http.cache
                        .serve(caller, spec, cacheControl, admitted.holdId(), done,
                            () -> run(id, spec, caller, admitted.holdId(), deadline, requestId, done,
                                leavingCancels(connection, key)))
                        .thenApply(admitted::decorate)),
        requestId);
  }

  /**
   * The connection whose client, leaving before the answer, cancels a synchronous call: none for a
   * call with an Idempotency-Key. Its task runs to its end and keeps its answer, so that a retry
   * with the same key (what the key is for: a client that lost its connection) gets it without a
   * second run.
   */
  private static ClientConnection leavingCancels(ClientConnection connection, Optional<String> key) {
    return key.isPresent() ? ClientConnection.unwatched() : connection;
  }

  /**
   * A synchronous task: its answer when it ends; {@code done} when it ended, whichever way. A client
   * that closes its {@code connection} before the answer cancels the task (ClientConnection).
   */
  private CompletionStage<HttpResponse> run(
      String id,
      TaskSpec spec,
      Caller caller,
      String holdId,
      Instant deadline,
      String requestId,
      Runnable done,
      ClientConnection connection) {
    ClientConnection.Pending call = connection.pending();
    return tasks
        .run(id, spec, caller, holdId, deadline, call)
        .whenComplete(
            (view, e) -> {
              call.over();
              done.run();
            })
        .thenApply(view -> finished(view, requestId));
  }

  /**
   * Streams a chat as server-sent events. The response waits for the first content, the end, or
   * one keep-alive interval, whichever comes first: a task that fails that early (unknown model,
   * invalid request) answers with a plain error status, which every OpenAI client understands;
   * after that, failures become an error event and idle gaps get keep-alive comments. {@code
   * done} runs once when the stream ends, or when the call ends without one.
   */
  private CompletionStage<HttpResponse> stream(
      String id,
      TaskSpec spec,
      Caller caller,
      String holdId,
      Instant deadline,
      boolean includeUsage,
      String requestId,
      Runnable done,
      ClientConnection connection) {
    String owner = caller.tenant();
    // until the response starts, a client that leaves is seen by its connection (then by the
    // response's stream, events below)
    ClientConnection.Pending call = connection.pending();
    return tasks
        .submitAndFollow(id, spec, caller, holdId, deadline, call)
        .prefixAndTail(1)
        .runWith(Sink.head(), http.system)
        .thenCompose(
            viewAndRest -> {
              // the first update is the task as the submit left it: its creation time names the chunks
              TaskView submitted = ((TaskUpdate.StatusChanged) viewAndRest.first().get(0)).view();
              // (a repeat of a finished task: that first update is already its end)
              // concatLazy, here and below: materialized together as with concat, but without
              // concat's prefetch, which costs two stages (Detachers) per stream
              return Source.from(viewAndRest.first())
                  .concatLazy(viewAndRest.second())
                  .filter(u -> u instanceof TaskUpdate.ContentDelta || isTerminal(u))
                  .map(Optional::of)
                  .keepAlive(settings.keepaliveInterval(), Optional::<TaskUpdate>empty)
                  .prefixAndTail(1)
                  .runWith(Sink.head(), http.system)
                  .thenApply(
                      prefixAndTail -> {
                        List<Optional<TaskUpdate>> first = prefixAndTail.first();
                        if (first.isEmpty()) {
                          throw ApiError.of(ErrorCode.TIMEOUT, "The chat completion ended without an answer.");
                        }
                        if (first.get(0).orElse(null) instanceof TaskUpdate.StatusChanged sc
                            && sc.view().status() != TaskStatus.SUCCEEDED) {
                          done.run();
                          return finished(sc.view(), requestId);
                        }
                        ChatStream chunks =
                            new ChatStream(
                                http, id, submitted.createdAt().getEpochSecond(), spec.model(), includeUsage, requestId);
                        return Sse.response(
                                events(chunks, Source.from(first).concatLazy(prefixAndTail.second()), id, owner, done))
                            .addAttribute(Exchange.OUTCOME, chunks);
                      });
            })
        .whenComplete((response, e) -> call.over());
  }

  static boolean isTerminal(TaskUpdate u) {
    return u instanceof TaskUpdate.StatusChanged sc && sc.view().status().isTerminal();
  }

  /** {@code updates}: the task's content and its end; empty = idle for a keep-alive interval. */
  private Source<ByteString, NotUsed> events(
      ChatStream chunks, Source<Optional<TaskUpdate>, NotUsed> updates, String id, String owner, Runnable over) {
    return Source.single(chunks.roleChunk())
        .concatLazy(
            updates.mapConcat(
                u -> u.isPresent() ? chunks.render(u.get()) : List.of(Sse.KEEP_ALIVE)))
        .concatLazy(
            Source.lazySource(
                () ->
                    chunks.finished()
                        ? Source.<ByteString>empty()
                        : Source.single(
                            chunks.error(ErrorCode.INTERNAL, "The chat completion stream ended unexpectedly."))))
        .recover(new PFBuilder<Throwable, ByteString>().matchAny(chunks::failure).build())
        .watchTermination(
            (mat, done) -> {
              done.whenComplete(
                  (ok, e) -> {
                    over.run();
                    if (!chunks.finished()) {
                      // the client went away before the end: stop spending tokens on it
                      tasks.cancelQuietly(id, owner);
                    }
                  });
              return NotUsed.getInstance();
            });
  }

  /** A finished synchronous task as the OpenAI answer or error. */
  private HttpResponse finished(TaskView view, String requestId) {
    return Exchange.finished(
        view.status() == TaskStatus.SUCCEEDED
            ? http.json(StatusCodes.OK, http.taskJson.result(view))
            : http.failure(TaskJson.failureOf(view), requestId),
        view);
  }

  private Route stored(String id, String owner, String requestId) {
    ApiError notFound =
        new ApiError(ErrorCode.NOT_FOUND, "No stored chat completion found with id '" + id + "'.", "id");
    if (!TaskIds.isStoredChat(id)) {
      throw notFound;
    }
    return http.respond(
        tasks
            .get(id, owner)
            .thenApply(
                view -> {
                  if (view.kind() != TaskKind.CHAT || view.status() != TaskStatus.SUCCEEDED) {
                    throw notFound;
                  }
                  return http.json(StatusCodes.OK, http.taskJson.result(view));
                })
            .exceptionally(
                e -> {
                  Throwable cause = dev.mcpstack.shared.Failures.unwrap(e);
                  if (cause instanceof ApiError api && api.code() == ErrorCode.NOT_FOUND) {
                    return http.failure(notFound, requestId);
                  }
                  return http.failure(cause, requestId);
                }),
        requestId);
  }

  private Route embeddings(
      JsonNode body, Caller caller, Optional<String> key, String requestId, ClientConnection connection) {
    String model = validation.embeddings(body, "");
    caller.checkModel(model);
    String id = TaskIds.embeddings(caller.tenant(), key);
    TaskSpec spec = new TaskSpec(TaskKind.EMBEDDINGS, model, body);
    Instant deadline = Instant.now().plus(settings.chatTimeout());
    return http.respond(
        http.admission.waiting(
            caller,
            id,
            spec,
            deadline,
            (admitted, done) ->
                run(id, spec, caller, admitted.holdId(), deadline, requestId, done, leavingCancels(connection, key))
                    .thenApply(admitted::decorate)),
        requestId);
  }
}
