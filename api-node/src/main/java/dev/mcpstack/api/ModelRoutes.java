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
                pathEndOrSingleSlash(() -> get(() -> http.authenticated(owner -> list(requestId)))),
                pathPrefix(
                    segment(),
                    first ->
                        extractUnmatchedPath(
                            rest -> get(() -> http.authenticated(owner -> one(first + rest, requestId)))))));
  }

  private Route list(String requestId) {
    return http.respond(
        workers
            .models()
            .thenApply(
                list -> {
                  ObjectNode body = http.json.createObjectNode().put("object", "list");
                  ArrayNode data = body.putArray("data");
                  list.models().forEach(m -> data.add(model(m)));
                  return http.json(StatusCodes.OK, body);
                }),
        requestId);
  }

  private Route one(String id, String requestId) {
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
