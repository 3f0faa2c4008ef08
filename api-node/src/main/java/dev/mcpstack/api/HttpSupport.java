package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import java.io.IOException;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.http.scaladsl.model.EntityStreamException;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.http.scaladsl.model.IllegalRequestException;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What every route class shares: the JSON mapper, reading a JSON body (content type, size limit,
 * malformed JSON), the caller's identity, JSON answers, and turning any failure into the OpenAI
 * error response through {@link ErrorResponses}.
 */
final class HttpSupport {
  private static final Logger log = LoggerFactory.getLogger(HttpSupport.class);

  final ActorSystem<?> system;
  final ApiSettings settings;
  final ObjectMapper json;
  final ErrorResponses errors;
  final TaskJson taskJson;
  private final ObjectReader strictReader;
  private final Materializer mat;
  final Admission admission;
  final ResponseCache cache;
  private final Authenticator authenticator;

  HttpSupport(ActorSystem<?> system, ApiSettings settings, ObjectMapper json, Authenticator authenticator) {
    this.system = system;
    this.settings = settings;
    this.json = json;
    this.errors = new ErrorResponses(json, settings);
    this.taskJson = new TaskJson(json);
    this.strictReader = json.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    this.mat = Materializer.matFromSystem(system);
    this.authenticator = authenticator;
    this.admission = new Admission(system, settings);
    this.cache =
        new ResponseCache(
            system, dev.mcpstack.shared.CacheSettings.fromConfig(system.settings().config()), json, admission);
  }

  /**
   * Reads the request body as JSON: 415 unless {@code application/json}, 413 beyond
   * {@code max-body-size}, 400 naming the problem when it does not parse.
   */
  Route jsonBody(Function<JsonNode, Route> inner) {
    return extractRequestEntity(
        entity -> {
          if (!isJson(entity.getContentType())) {
            throw new ApiError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Content-Type '" + entity.getContentType() + "': send the body as application/json.",
                null);
          }
          if (entity instanceof HttpEntity.Strict strict) {
            // arrived whole (most bodies do): read without materialising a stream
            if (strict.getData().size() > settings.maxBodySize()) {
              throw new ApiError(
                  ErrorCode.PAYLOAD_TOO_LARGE,
                  "The request body is larger than the limit of " + settings.maxBodySize() + " bytes.",
                  null);
            }
            return inner.apply(parse(strict.getData()));
          }
          return withSizeLimit(
              settings.maxBodySize(),
              () ->
                  extractRequestEntity(
                      limited ->
                          onSuccess(
                              limited
                                  .toStrict(settings.bodyReadTimeout().toMillis(), settings.maxBodySize(), mat)
                                  .thenApply(strict -> parse(strict.getData())),
                              inner)));
        });
  }

  JsonNode parse(ByteString bytes) {
    if (bytes.isEmpty()) {
      throw ApiError.invalid(null, "The request body is empty; expected a JSON object.");
    }
    try {
      JsonNode node = strictReader.readTree(bytes.toArray());
      if (node == null || node.isMissingNode()) {
        throw ApiError.invalid(null, "The request body is empty; expected a JSON object.");
      }
      return node;
    } catch (JsonProcessingException e) {
      String where =
          e.getLocation() == null
              ? ""
              : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
      throw ApiError.invalid(
          null, "We could not parse the JSON body of your request" + where + ": " + e.getOriginalMessage());
    } catch (IOException e) {
      throw ApiError.invalid(null, "We could not read the JSON body of your request: " + e.getMessage());
    }
  }

  private static boolean isJson(ContentType type) {
    String media = type.mediaType().toString().toLowerCase(Locale.ROOT);
    return media.equals("application/json") || (media.startsWith("application/") && media.endsWith("+json"));
  }

  /** The caller; 401 when the {@link Authenticator} refuses the bearer token. */
  Route authenticated(Function<Caller, Route> inner) {
    return bearerToken(
        token -> {
          Caller caller = authenticator.authenticate(token);
          return exchange(
              exchange -> {
                exchange.caller(caller);
                return inner.apply(caller.traced(exchange.trace));
              });
        });
  }

  /** The request's {@link Exchange}, for what the access log should know (a fresh one outside {@link RequestObserver}). */
  static Route exchange(Function<Exchange, Route> inner) {
    return optionalAttribute(Exchange.KEY, e -> inner.apply(e.orElseGet(() -> new Exchange("", System.nanoTime()))));
  }

  /** The token of an {@code Authorization: Bearer <token>} header, if the request has one. */
  Route bearerToken(Function<Optional<String>, Route> inner) {
    return optionalHeaderValueByName(
        "Authorization",
        header ->
            inner.apply(
                header
                    .map(String::trim)
                    .filter(h -> h.regionMatches(true, 0, "Bearer ", 0, 7))
                    .map(h -> h.substring(7).trim())));
  }

  /** A POST that creates a task: the caller, the optional Idempotency-Key and the JSON body. */
  @FunctionalInterface
  interface Submission {
    Route handle(JsonNode body, Caller caller, Optional<String> idempotencyKey);
  }

  /** Everything a task-creating POST goes through before its handler: one place for all of them. */
  Route submission(Submission handler) {
    return post(
        () ->
            authenticated(
                caller ->
                    idempotencyKey(
                        key ->
                            jsonBody(
                                body ->
                                    exchange(
                                        exchange -> {
                                          exchange.model(requestedModel(body));
                                          return handler.handle(body, caller, key);
                                        })))));
  }

  /** The model a submission names, for the access log: its own, or its task request's (POST /v1/tasks); null if none. */
  static String requestedModel(JsonNode body) {
    String model = body.path("model").textValue();
    return model != null ? model : body.path("request").path("model").textValue();
  }

  /** The validated {@code Idempotency-Key} header, if any. */
  private Route idempotencyKey(Function<Optional<String>, Route> inner) {
    return optionalHeaderValueByName("Idempotency-Key", key -> inner.apply(TaskIds.idempotencyKey(key)));
  }

  HttpResponse json(StatusCode status, JsonNode body) {
    return HttpResponse.create()
        .withStatus(status)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, errors.text(body)));
  }

  /** A future answer; its failure, whatever it is, becomes an OpenAI error response. */
  Route respond(CompletionStage<HttpResponse> response, String requestId) {
    return completeWithFuture(response.exceptionally(e -> failure(e, requestId)));
  }

  HttpResponse failure(TaskError error, String requestId) {
    return errors.render(error, requestId);
  }

  /** Any failure as an OpenAI error: ours as they are, the unexpected as a logged 500. */
  HttpResponse failure(Throwable e, String requestId) {
    ApiError error = classify(e, requestId);
    return errors.render(error, requestId);
  }

  /** Maps a failure to what the client is told; logs the unexpected ones with the request id. */
  ApiError classify(Throwable e, String requestId) {
    Throwable cause = dev.mcpstack.shared.Failures.unwrap(e);
    if (cause instanceof ApiError api) {
      return api;
    }
    if (cause instanceof EntityStreamSizeException) {
      return new ApiError(
          ErrorCode.PAYLOAD_TOO_LARGE,
          "The request body is larger than the limit of " + settings.maxBodySize() + " bytes.",
          null);
    }
    if (cause instanceof EntityStreamException ese) {
      // toStrict's own limit check reports "Request too large" this way
      boolean tooLarge = ese.info().summary().toLowerCase(Locale.ROOT).contains("too large");
      return new ApiError(
          tooLarge ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.INVALID_REQUEST,
          tooLarge
              ? "The request body is larger than the limit of " + settings.maxBodySize() + " bytes."
              : "The request body could not be read: " + ese.info().summary(),
          null);
    }
    if (cause instanceof IllegalRequestException ire) {
      int status = ire.status().intValue();
      ErrorCode code = status == 413 ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.INVALID_REQUEST;
      return new ApiError(code, ire.info().summary(), null);
    }
    if (cause instanceof java.util.concurrent.TimeoutException) {
      // an entity that did not answer in time: shards moving after a node failed
      log.info("request {}: {}", requestId, cause.getMessage());
      return ApiError.of(ErrorCode.UNAVAILABLE, "The service did not answer in time; try again.");
    }
    if (cause instanceof org.apache.pekko.stream.BufferOverflowException) {
      log.info("request {}: the client fell too far behind its event stream", requestId);
      return ApiError.of(
          ErrorCode.UNAVAILABLE, "The client fell too far behind the event stream; it was closed.");
    }
    log.atError().addKeyValue("request_id", requestId).setCause(cause).log("request {} failed unexpectedly", requestId);
    return ApiError.of(
        ErrorCode.INTERNAL,
        "The server had an error while processing your request. Quote request id " + requestId + " when reporting it.");
  }
}
