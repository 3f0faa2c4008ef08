package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;

import dev.mcpstack.shared.ErrorCode;
import java.util.List;
import java.util.stream.Collectors;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AuthenticationFailedRejection;
import org.apache.pekko.http.javadsl.server.AuthorizationFailedRejection;
import org.apache.pekko.http.javadsl.server.ExceptionHandler;
import org.apache.pekko.http.javadsl.server.MalformedRequestContentRejection;
import org.apache.pekko.http.javadsl.server.MethodRejection;
import org.apache.pekko.http.javadsl.server.Rejection;
import org.apache.pekko.http.javadsl.server.RejectionHandler;
import org.apache.pekko.http.javadsl.server.RequestEntityExpectedRejection;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.javadsl.server.UnsupportedRequestContentTypeRejection;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;

/**
 * The whole HTTP API: a request id for every request (the client's sane {@code X-Request-Id} or a
 * fresh one, echoed in the response), observed for the access log and the HTTP metrics ({@link
 * RequestObserver}), then the route classes, sealed by this node's own rejection
 * and exception handlers so that every failure, 404 and 405 included, has OpenAI's error shape.
 */
final class ApiRoutes {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ApiRoutes.class);

  private final HttpSupport http;
  private final HealthRoutes health;
  private final ChatRoutes chat;
  private final TaskRoutes tasks;
  private final ModelRoutes models;
  private final AdminRoutes admin;
  private final UsageRoutes usage;
  private final McpRoutes mcp;
  private final Cors cors;
  private final RequestObserver observer;

  ApiRoutes(HttpSupport http, TaskClient taskClient, Workers workers, KeyStore keys) {
    this.http = http;
    RequestValidation validation = new RequestValidation(http.settings);
    this.health = new HealthRoutes(http, workers);
    this.chat = new ChatRoutes(http, taskClient, validation);
    this.tasks = new TaskRoutes(http, taskClient, validation);
    this.models = new ModelRoutes(http, workers);
    this.usage = new UsageRoutes(http, keys);
    this.admin = new AdminRoutes(http, taskClient, workers, new KeyAdminRoutes(http, keys, usage), tasks);
    this.mcp = new McpRoutes(http, taskClient, tasks, validation, workers);
    this.cors = Cors.of(http);
    this.observer = new RequestObserver(http.system.settings().config(), dev.mcpstack.shared.Tracing.get(http.system));
  }

  Route route() {
    return optionalHeaderValueByName(
        RequestIds.HEADER,
        incoming -> {
          String requestId = RequestIds.accept(incoming);
          return observer.observe(requestId, () -> respondWithHeader(
              RawHeader.create(RequestIds.HEADER, requestId),
              () -> cors.route(requestId, () ->
                  handleExceptions(
                      exceptions(requestId),
                      () ->
                          handleRejections(
                              rejections(requestId),
                              () ->
                                  withRequestTimeoutResponse(
                                      request ->
                                          http.errors.render(
                                              ErrorCode.TIMEOUT,
                                              "The request took too long to answer.",
                                              null,
                                              requestId),
                                      () ->
                                          concat(
                                              health.route(requestId),
                                              chat.route(requestId),
                                              tasks.route(requestId),
                                              models.route(requestId),
                                              usage.route(requestId),
                                              admin.route(requestId),
                                              mcp.route(requestId))))))));
        });
  }

  private ExceptionHandler exceptions(String requestId) {
    return ExceptionHandler.newBuilder()
        .matchAny(e -> complete(http.failure(e, requestId)))
        .build();
  }

  private RejectionHandler rejections(String requestId) {
    return RejectionHandler.newBuilder()
        .handle(
            UnsupportedRequestContentTypeRejection.class,
            r ->
                complete(
                    http.errors.render(
                        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                        "Unsupported Content-Type: send the body as application/json.",
                        null,
                        requestId)))
        .handle(
            MalformedRequestContentRejection.class,
            r ->
                complete(
                    r.getCause() instanceof EntityStreamSizeException
                        ? http.failure(r.getCause(), requestId)
                        : http.errors.render(ErrorCode.INVALID_REQUEST, r.message(), null, requestId)))
        .handle(
            RequestEntityExpectedRejection.class,
            r ->
                complete(
                    http.errors.render(
                        ErrorCode.INVALID_REQUEST, "The request body is empty; expected a JSON object.", null, requestId)))
        .handle(
            AuthenticationFailedRejection.class,
            r ->
                complete(
                    http.errors.render(ErrorCode.AUTHENTICATION, "Incorrect or missing API key.", null, requestId)))
        .handle(
            AuthorizationFailedRejection.class,
            r ->
                complete(
                    http.errors.render(
                        ErrorCode.PERMISSION_DENIED, "You are not allowed to do this.", null, requestId)))
        .handleAll(
            MethodRejection.class,
            rs -> {
              String allowed =
                  rs.stream().map(r -> r.supported().name()).distinct().collect(Collectors.joining(", "));
              List<HttpHeader> allow = List.of(RawHeader.create("Allow", allowed));
              return extractMethod(
                  method ->
                      complete(
                          http.errors.render(
                              ErrorCode.METHOD_NOT_ALLOWED,
                              "Method " + method.name() + " is not allowed here; use " + allowed + ".",
                              null,
                              requestId,
                              allow)));
            })
        .handleNotFound(
            extractRequest(
                request ->
                    complete(
                        http.errors.render(
                            ErrorCode.NOT_FOUND,
                            "Unknown request URL: " + request.method().name() + " " + request.getUri().path() + ".",
                            null,
                            requestId))))
        .handleAll(
            Rejection.class,
            rs -> {
              LOG.info("request {} rejected: {}", requestId, rs);
              return complete(
                  http.errors.render(
                      ErrorCode.INVALID_REQUEST,
                      "The request was rejected. Quote request id " + requestId + " when reporting it.",
                      null,
                      requestId));
            })
        .build();
  }
}
