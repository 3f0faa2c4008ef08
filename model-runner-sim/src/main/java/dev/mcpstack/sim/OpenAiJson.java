package dev.mcpstack.sim;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Optional;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;

/** JSON helpers: OpenAI error bodies, JSON responses and stream events. */
final class OpenAiJson {

  static final ObjectMapper MAPPER = new ObjectMapper();

  /** The last event of every complete OpenAI stream: {@code data: [DONE]\n\n}. */
  static final ServerSentEvent DONE = event("[DONE]");

  private OpenAiJson() {}

  static StatusCode status(int code) {
    Optional<StatusCode> known = StatusCodes.lookup(code);
    return known.orElseGet(() -> StatusCodes.custom(code, "Simulated " + code, "Simulated status " + code,
        code < 400, true));
  }

  static String write(Object node) {
    try {
      return MAPPER.writeValueAsString(node);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot render JSON", e);
    }
  }

  /** A stream event carrying the node as one line of JSON: {@code data: <json>\n\n}. */
  static ServerSentEvent event(JsonNode node) {
    return event(write(node));
  }

  /**
   * An event that pekko-http's SSE marshaller writes byte for byte as OpenAI does, {@code data:
   * <data>\n\n}. The marshaller writes {@code "data:" + data} without a space; the SSE spec (and
   * pekko-http's unmarshaller, and OpenAI's SDKs) strip one space after the colon, so readers get
   * {@code data} back, and clients that match {@code "data: "} literally keep working. {@code
   * data} is one line: the marshaller writes each further line as its own {@code data:} field.
   */
  static ServerSentEvent event(String data) {
    return ServerSentEvent.create(" " + data);
  }

  static HttpResponse json(int status, Object node) {
    return HttpResponse.create()
        .withStatus(status(status))
        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, write(node)));
  }

  /** OpenAI's error type for a status. */
  static String errorType(int status) {
    if (status == 400) return "invalid_request_error";
    if (status == 401) return "authentication_error";
    if (status == 403) return "permission_error";
    if (status == 404) return "not_found_error";
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "api_error";
    return "invalid_request_error";
  }

  static ObjectNode errorBody(String message, String type, String param, String code) {
    ObjectNode root = MAPPER.createObjectNode();
    ObjectNode error = root.putObject("error");
    error.put("message", message);
    error.put("type", type);
    if (param == null) error.putNull("param");
    else error.put("param", param);
    if (code == null) error.putNull("code");
    else error.put("code", code);
    return root;
  }

  static HttpResponse error(int status, String message, String param, String code) {
    return json(status, errorBody(message, errorType(status), param, code));
  }

  static HttpResponse invalidRequest(String message, String param) {
    return error(400, message, param, null);
  }

  static HttpResponse modelNotFound(String model) {
    return error(404, "model '" + model + "' not found", "model", "model_not_found");
  }
}
