package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.remaining;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.WorkerInfoProtocol.ModelInfo;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;

/** {@code GET /v1/models} and {@code GET /v1/models/{id}} (ids may contain slashes: ai/smollm2). */
final class ModelRoutes {
  private final HttpSupport http;
  private final Workers workers;

  ModelRoutes(HttpSupport http, Workers workers) {
    this.http = http;
    this.workers = workers;
  }

  Route route(String requestId) {
    return pathPrefix(
        segment("v1").slash("models"),
        () ->
            concat(
                pathEndOrSingleSlash(() -> get(() -> http.authenticated(caller -> list(caller, requestId)))),
                pathPrefix(
                    segment(),
                    first ->
                        extractUnmatchedPath(
                            rest -> get(() -> http.authenticated(caller -> one(caller, first + rest, requestId)))))));
  }

  /** The models of every upstream that the caller's key may use. */
  private Route list(Caller caller, String requestId) {
    return http.respond(
        workers
            .models()
            .thenApply(
                list -> {
                  ObjectNode body = http.json.createObjectNode().put("object", "list");
                  ArrayNode data = body.putArray("data");
                  list.models().stream()
                      .filter(m -> caller.key() == null || caller.key().allows(m.id()))
                      .forEach(m -> data.add(model(m)));
                  return http.json(StatusCodes.OK, body);
                }),
        requestId);
  }

  private Route one(Caller caller, String id, String requestId) {
    caller.checkModel(id);
    return http.respond(
        workers
            .models()
            .thenApply(
                list ->
                    list.models().stream()
                        .filter(m -> m.id().equals(id))
                        .findFirst()
                        .map(m -> http.json(StatusCodes.OK, model(m)))
                        .orElseThrow(
                            () ->
                                new ApiError(
                                    ErrorCode.MODEL_NOT_FOUND,
                                    "The model '" + id + "' does not exist or you do not have access to it.",
                                    "model"))),
        requestId);
  }

  private ObjectNode model(ModelInfo m) {
    return http.json
        .createObjectNode()
        .put("id", m.id())
        .put("object", "model")
        .put("created", 0)
        .put("owned_by", m.ownedBy());
  }
}
