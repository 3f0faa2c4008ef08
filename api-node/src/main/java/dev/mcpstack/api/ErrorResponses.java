package dev.mcpstack.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;

/**
 * The one place errors become HTTP: OpenAI's shape {@code {"error":{"message","type","param",
 * "code","request_id"}}}, the status from {@link ErrorCode}, {@code Retry-After} on 429 and
 * 503, and {@code WWW-Authenticate: Bearer} on 401. Stream error events use {@link #body} for the
 * same shape inside {@code data:}.
 */
final class ErrorResponses {
  private final ObjectMapper json;
  private final long retryAfterSeconds;

  ErrorResponses(ObjectMapper json, ApiSettings settings) {
    this.json = json;
    this.retryAfterSeconds = Math.max(1, settings.retryAfter().toSeconds());
  }

  HttpResponse render(ApiError e, String requestId) {
    return render(e.code(), e.getMessage(), e.param(), requestId, e.headers(), e.retryAfterSeconds());
  }

  HttpResponse render(TaskError e, String requestId) {
    return render(e.code(), e.message(), null, requestId);
  }

  HttpResponse render(ErrorCode code, String message, String param, String requestId) {
    return render(code, message, param, requestId, List.of());
  }

  HttpResponse render(
      ErrorCode code, String message, String param, String requestId, List<HttpHeader> extra) {
    return render(code, message, param, requestId, extra, 0);
  }

  private HttpResponse render(
      ErrorCode code, String message, String param, String requestId, List<HttpHeader> extra, long retryAfter) {
    List<HttpHeader> headers = new ArrayList<>(extra);
    if (code.httpStatus() == 429 || code.httpStatus() == 503) {
      long seconds = retryAfter > 0 ? retryAfter : retryAfterSeconds;
      headers.add(RawHeader.create("Retry-After", Long.toString(seconds)));
    }
    if (code.httpStatus() == 401) {
      headers.add(RawHeader.create("WWW-Authenticate", "Bearer"));
    }
    return HttpResponse.create()
        .withStatus(StatusCodes.get(code.httpStatus()))
        .addAttribute(Exchange.ERROR, code)
        .addHeaders(headers)
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, text(body(code, message, param, requestId))));
  }

  /** The OpenAI error object. */
  ObjectNode body(ErrorCode code, String message, String param, String requestId) {
    ObjectNode root = json.createObjectNode();
    ObjectNode error = root.putObject("error");
    error.put("message", message);
    error.put("type", code.type());
    if (param == null) {
      error.putNull("param");
    } else {
      error.put("param", param);
    }
    error.put("code", code.code());
    error.put("request_id", requestId);
    return root;
  }

  String text(Object node) {
    try {
      return json.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot render JSON", e);
    }
  }
}
