package dev.mcpstack.sim;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Optional;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;

/** JSON helpers: OpenAI error bodies and JSON responses. */
final class OpenAiJson {

  static final ObjectMapper MAPPER = new ObjectMapper();

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
