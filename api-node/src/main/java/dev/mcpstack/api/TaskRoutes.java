package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.Location;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.japi.pf.PFBuilder;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * The asynchronous tasks API: {@code POST /v1/tasks} (202), {@code GET /v1/tasks/{id}},
 * {@code DELETE /v1/tasks/{id}} and {@code GET /v1/tasks/{id}/events} (server-sent status changes
 * until the task ends). A task is visible only to its owner.
 */
final class TaskRoutes {
  private final HttpSupport http;
  private final TaskClient tasks;
  private final RequestValidation validation;
  private final ApiSettings settings;

  TaskRoutes(HttpSupport http, TaskClient tasks, RequestValidation validation) {
    this.http = http;
    this.tasks = tasks;
    this.validation = validation;
    this.settings = http.settings;
  }

  Route route(String requestId) {
    return pathPrefix(
        segment("v1").slash("tasks"),
        () ->
            concat(
                pathEndOrSingleSlash(
                    () -> http.submission((body, caller, key) -> submit(body, caller, key, requestId))),
                path(
                    segment(),
                    id ->
                        concat(
                            get(() -> http.authenticated(caller -> view(id, caller.tenant(), requestId))),
                            delete(() -> http.authenticated(caller -> cancel(id, caller.tenant(), requestId))))),
                path(
                    segment().slash("events"),
                    id -> get(() -> http.authenticated(caller -> events(id, caller.tenant(), requestId))))));
  }

  /**
   * {@code POST /v1/tasks}, and the admin API's {@code POST /admin/tasks} (as {@link
   * Caller#OPERATOR}): only keyless callers, operators and the anonymous caller of development
   * mode, may warm models up.
   */
  Route submit(JsonNode body, Caller caller, Optional<String> key, String requestId) {
    return http.respond(
        submitTask(body, caller, key)
            .thenApply(
                submitted ->
                    submitted
                        .admitted()
                        .decorate(
                            http.json(StatusCodes.ACCEPTED, http.taskJson.task(submitted.view()))
                                .addHeader(Location.create("/v1/tasks/" + submitted.view().id())))),
        requestId);
  }

  /** A task that {@link #submitTask} started: the limiter's answer and the task as submitted. */
  record Submitted(Admission.Admitted admitted, TaskView view) {}

  /**
   * Validates a {@code POST /v1/tasks} body ({@code kind}, {@code request}, {@code
   * timeout_seconds}), admits it under the caller's limits and submits it: what the HTTP route and
   * the MCP {@code submit_task} tool share. Throws {@link ApiError} for an invalid body.
   */
  CompletionStage<Submitted> submitTask(JsonNode body, Caller caller, Optional<String> key) {
    if (!body.isObject()) {
      throw ApiError.invalid(null, "Invalid request body: expected a JSON object, but got " + RequestValidation.typeOf(body) + ".");
    }
    JsonNode kindNode = body.get("kind");
    if (kindNode == null || kindNode.isNull()) {
      throw ApiError.invalid("kind", "Missing required parameter: 'kind'.");
    }
    TaskKind kind =
        (kindNode.isTextual() ? TaskKind.parse(kindNode.asText()) : Optional.<TaskKind>empty())
            .orElseThrow(
                () ->
                    ApiError.invalid(
                        "kind",
                        "Invalid value for 'kind': expected one of 'chat', 'embeddings', 'model_warmup'."));
    JsonNode request = body.get("request");
    if (request == null || request.isNull()) {
      throw ApiError.invalid("request", "Missing required parameter: 'request'.");
    }
    String model =
        switch (kind) {
          case CHAT -> validation.chat(request, "request.");
          case EMBEDDINGS -> validation.embeddings(request, "request.");
          case MODEL_WARMUP -> validation.warmup(request, "request.");
        };

    if (kind == TaskKind.CHAT && request.path("stream").asBoolean(false)) {
      throw ApiError.invalid(
          "request.stream",
          "Invalid 'request.stream': a task cannot stream; follow GET /v1/tasks/{id}/events instead.");
    }
    Instant deadline = deadline(body.get("timeout_seconds"));
    // the whole request is checked (400) before who may send it (403)
    if (kind == TaskKind.MODEL_WARMUP && !caller.keyless()) {
      throw ApiError.of(
          ErrorCode.PERMISSION_DENIED,
          "Only operators may warm models up: submit model_warmup to POST /admin/tasks with the admin token.");
    }
    caller.checkModel(model);
    String id = TaskIds.make(TaskIds.TASK, caller.tenant(), key);
    JsonNode upstreamRequest = kind == TaskKind.CHAT ? validation.chatWithDefaults(request) : request;
    TaskSpec spec = new TaskSpec(kind, model, upstreamRequest);
    Instant holdUntil = (deadline != null ? deadline : Instant.now().plus(settings.maxTaskTimeout())).plus(settings.waitGrace());
    return http.admission
        .admit(caller, id, LimiterProtocol.HoldKind.TASK, spec, holdUntil)
        .thenCompose(
            admitted ->
                tasks
                    .submit(id, spec, caller, admitted.holdId(), deadline, true)
                    .thenApply(view -> new Submitted(admitted, view)));
  }

  /** {@code timeout_seconds}: a positive integer up to max-task-timeout; absent = worker default. */
  private Instant deadline(JsonNode timeout) {
    if (timeout == null || timeout.isNull()) {
      return null;
    }
    long max = settings.maxTaskTimeout().toSeconds();
    if (!timeout.isIntegralNumber() || !timeout.canConvertToLong()) {
      throw ApiError.invalid(
          "timeout_seconds", "Invalid 'timeout_seconds': expected an integer between 1 and " + max + ".");
    }
    long seconds = timeout.asLong();
    if (seconds < 1 || seconds > max) {
      throw ApiError.invalid(
          "timeout_seconds",
          "Invalid 'timeout_seconds': " + seconds + " is out of range. Expected a value between 1 and " + max + ".");
    }
    return Instant.now().plus(Duration.ofSeconds(seconds));
  }

  private Route view(String id, String owner, String requestId) {
    checkId(id);
    return http.respond(
        tasks.get(id, owner).thenApply(view -> http.json(StatusCodes.OK, http.taskJson.task(view))),
        requestId);
  }

  private Route cancel(String id, String owner, String requestId) {
    checkId(id);
    return http.respond(
        tasks.cancel(id, owner).thenApply(view -> http.json(StatusCodes.OK, http.taskJson.task(view))),
        requestId);
  }

  /** Every status change as a {@code data:} event with the task JSON, until the terminal one. */
  private Route events(String id, String owner, String requestId) {
    checkId(id);
    CompletionStage<HttpResponse> response =
        tasks
            .follow(id, owner, settings.maxTaskTimeout().plus(settings.waitGrace()))
            .prefixAndTail(1)
            .runWith(Sink.head(), http.system)
            .thenApply(
                first ->
                    Sse.response(statusEvents(Source.from(first.first()).concat(first.second()), requestId)));
    return http.respond(response, requestId);
  }

  private Source<ByteString, NotUsed> statusEvents(Source<TaskUpdate, NotUsed> updates, String requestId) {
    return updates
        .filter(u -> u instanceof TaskUpdate.StatusChanged)
        .map(u -> ((TaskUpdate.StatusChanged) u).view())
        .statefulMapConcat(
            () -> {
              Object[] last = {null};
              return (TaskView view) -> {
                // re-subscribing repeats the current view; send each change once
                List<Object> key = List.of(view.status(), view.attempts(), String.valueOf(view.updatedAt()));
                if (key.equals(last[0])) {
                  return List.<ByteString>of();
                }
                last[0] = key;
                return List.of(Sse.data(http.errors.text(http.taskJson.task(view))));
              };
            })
        .recover(
            new PFBuilder<Throwable, ByteString>()
                .matchAny(
                    e -> {
                      ApiError error = http.classify(e, requestId);
                      return Sse.data(
                          http.errors.text(http.errors.body(error.code(), error.getMessage(), null, requestId)));
                    })
                .build())
        .keepAlive(settings.keepaliveInterval(), () -> Sse.KEEP_ALIVE);
  }

  /**
   * 404 without asking when {@code id} is not an async task's: a chat or embeddings call is not
   * read back through {@code /v1/tasks} (its content is kept only while the task needs it), and
   * answers as a task that does not exist.
   */
  static void checkId(String id) {
    checkPlausible(id);
    if (!id.startsWith(TaskIds.TASK)) {
      throw ApiError.from(TaskError.unknownTask(id));
    }
  }

  /** 404 without asking when {@code id} cannot be a task id. */
  static void checkPlausible(String id) {
    if (!TaskIds.plausible(id)) {
      throw new ApiError(ErrorCode.NOT_FOUND, "No task found with id '" + id + "'.", "id");
    }
  }
}
