package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Set;

/**
 * Checks OpenAI request bodies before they become tasks. Every complaint is a 400 naming the
 * parameter the way OpenAI does ({@code messages[0].role}); {@code prefix} is prepended for bodies
 * nested in a tasks request ({@code request.messages[0].role}). Fields not checked here pass
 * through to the model runner untouched.
 */
final class RequestValidation {
  static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool", "developer", "function");

  private final ApiSettings settings;

  RequestValidation(ApiSettings settings) {
    if (settings.defaultMaxTokens() < 0 || settings.defaultMaxTokens() > settings.maxTokensCap()) {
      throw new IllegalArgumentException(
          "mcp.api.default-max-tokens (API_DEFAULT_MAX_TOKENS) must be between 0 (no default) and"
              + " mcp.api.max-tokens-cap (" + settings.maxTokensCap() + "), got " + settings.defaultMaxTokens());
    }
    this.settings = settings;
  }

  /** Validates a chat completion request and returns its model. */
  String chat(JsonNode body, String prefix) {
    requireObject(body, prefix);
    String model = model(body, prefix);
    JsonNode messages = body.get("messages");
    if (isAbsent(messages)) {
      throw ApiError.invalid(prefix + "messages", "Missing required parameter: '" + prefix + "messages'.");
    }
    if (!messages.isArray()) {
      throw ApiError.invalid(
          prefix + "messages", "Invalid type for '" + prefix + "messages': expected an array of messages, but got " + typeOf(messages) + ".");
    }
    if (messages.isEmpty()) {
      throw ApiError.invalid(
          prefix + "messages", "Invalid '" + prefix + "messages': empty array. Expected an array with at least 1 message.");
    }
    if (messages.size() > settings.maxMessages()) {
      throw ApiError.invalid(
          prefix + "messages",
          "Invalid '" + prefix + "messages': " + messages.size() + " messages exceed the limit of " + settings.maxMessages() + ".");
    }
    for (int i = 0; i < messages.size(); i++) {
      message(messages.get(i), prefix + "messages[" + i + "]");
    }
    positiveInt(body, prefix, "max_tokens", settings.maxTokensCap());
    positiveInt(body, prefix, "max_completion_tokens", settings.maxTokensCap());
    range(body, prefix, "temperature", 0, 2);
    range(body, prefix, "top_p", 0, 1);
    JsonNode n = body.get("n");
    if (!isAbsent(n)) {
      if (!n.isIntegralNumber()) {
        throw ApiError.invalid(prefix + "n", "Invalid type for '" + prefix + "n': expected an integer, but got " + typeOf(n) + ".");
      }
      if (n.asLong() > 1) {
        throw ApiError.invalid(prefix + "n", "Invalid '" + prefix + "n': n > 1 is not supported; ask for one choice per request.");
      }
      if (n.asLong() < 1) {
        throw ApiError.invalid(prefix + "n", "Invalid '" + prefix + "n': must be 1, got " + n.asText() + ".");
      }
    }
    bool(body, prefix, "stream");
    bool(body, prefix, "store");
    JsonNode options = body.get("stream_options");
    if (!isAbsent(options)) {
      if (!options.isObject()) {
        throw ApiError.invalid(
            prefix + "stream_options",
            "Invalid type for '" + prefix + "stream_options': expected an object, but got " + typeOf(options) + ".");
      }
      bool(options, prefix + "stream_options.", "include_usage");
    }
    return model;
  }

  /**
   * A validated chat request as it goes to the model runner: with {@code max_tokens} set to
   * {@code mcp.api.default-max-tokens} when it has neither {@code max_tokens} nor
   * {@code max_completion_tokens} (and the default is not 0). A copy then; {@code body} itself is
   * never changed.
   */
  JsonNode chatWithDefaults(JsonNode body) {
    int fallback = settings.defaultMaxTokens();
    if (fallback == 0 || !isAbsent(body.get("max_tokens")) || !isAbsent(body.get("max_completion_tokens"))) {
      return body;
    }
    ObjectNode copy = ((ObjectNode) body).deepCopy();
    copy.put("max_tokens", fallback);
    return copy;
  }

  /** Validates an embeddings request and returns its model. */
  String embeddings(JsonNode body, String prefix) {
    requireObject(body, prefix);
    String model = model(body, prefix);
    String param = prefix + "input";
    JsonNode input = body.get("input");
    if (isAbsent(input)) {
      throw ApiError.invalid(param, "Missing required parameter: '" + param + "'.");
    }
    if (input.isTextual()) {
      if (input.asText().isEmpty()) {
        throw ApiError.invalid(param, "Invalid '" + param + "': must not be an empty string.");
      }
      return model;
    }
    if (!input.isArray()) {
      throw ApiError.invalid(
          param, "Invalid type for '" + param + "': expected a string or an array of strings, but got " + typeOf(input) + ".");
    }
    if (input.isEmpty()) {
      throw ApiError.invalid(param, "Invalid '" + param + "': empty array. Expected at least 1 input.");
    }
    if (input.size() > settings.maxEmbeddingInputs()) {
      throw ApiError.invalid(
          param, "Invalid '" + param + "': " + input.size() + " inputs exceed the limit of " + settings.maxEmbeddingInputs() + ".");
    }
    for (int i = 0; i < input.size(); i++) {
      JsonNode item = input.get(i);
      if (!item.isTextual() || item.asText().isEmpty()) {
        throw ApiError.invalid(
            param + "[" + i + "]", "Invalid '" + param + "[" + i + "]': expected a non-empty string, but got " + typeOf(item) + ".");
      }
    }
    return model;
  }

  /** Validates a model warm-up request ({@code {"model": "..."}}) and returns its model. */
  String warmup(JsonNode body, String prefix) {
    requireObject(body, prefix);
    return model(body, prefix);
  }

  // ---- pieces ----

  private void message(JsonNode message, String at) {
    if (!message.isObject()) {
      throw ApiError.invalid(at, "Invalid type for '" + at + "': expected an object, but got " + typeOf(message) + ".");
    }
    JsonNode role = message.get("role");
    if (isAbsent(role)) {
      throw ApiError.invalid(at + ".role", "Missing required parameter: '" + at + ".role'.");
    }
    if (!role.isTextual() || !ROLES.contains(role.asText())) {
      throw ApiError.invalid(
          at + ".role",
          "Invalid value for '" + at + ".role': " + describe(role)
              + ". Supported values are: 'system', 'user', 'assistant', 'tool', 'developer' and 'function'.");
    }
    JsonNode content = message.get("content");
    if (isAbsent(content)) {
      boolean callsTools =
          "assistant".equals(role.asText())
              && (!isAbsent(message.get("tool_calls")) || !isAbsent(message.get("function_call")));
      if (!callsTools) {
        throw ApiError.invalid(at + ".content", "Missing required parameter: '" + at + ".content'.");
      }
      return;
    }
    if (content.isTextual()) {
      return;
    }
    if (!content.isArray()) {
      throw ApiError.invalid(
          at + ".content",
          "Invalid type for '" + at + ".content': expected a string or an array of content parts, but got " + typeOf(content) + ".");
    }
    for (int j = 0; j < content.size(); j++) {
      JsonNode part = content.get(j);
      String partAt = at + ".content[" + j + "]";
      if (!part.isObject() || !part.path("type").isTextual()) {
        throw ApiError.invalid(partAt + ".type", "Invalid '" + partAt + "': expected a content part object with a string 'type'.");
      }
    }
  }

  private static String model(JsonNode body, String prefix) {
    JsonNode model = body.get("model");
    String param = prefix + "model";
    if (isAbsent(model)) {
      throw ApiError.invalid(param, "Missing required parameter: '" + param + "'.");
    }
    if (!model.isTextual()) {
      throw ApiError.invalid(param, "Invalid type for '" + param + "': expected a string, but got " + typeOf(model) + ".");
    }
    if (model.asText().isBlank()) {
      throw ApiError.invalid(param, "Invalid '" + param + "': must not be empty.");
    }
    return model.asText();
  }

  private static void requireObject(JsonNode body, String prefix) {
    if (body == null || !body.isObject()) {
      String what = prefix.isEmpty() ? "the request body" : "'" + prefix.substring(0, prefix.length() - 1) + "'";
      throw ApiError.invalid(
          prefix.isEmpty() ? null : prefix.substring(0, prefix.length() - 1),
          "Invalid " + what + ": expected a JSON object, but got " + typeOf(body) + ".");
    }
  }

  private static void positiveInt(JsonNode body, String prefix, String name, int cap) {
    JsonNode v = body.get(name);
    String param = prefix + name;
    if (isAbsent(v)) {
      return;
    }
    if (!v.isIntegralNumber()) {
      throw ApiError.invalid(param, "Invalid type for '" + param + "': expected an integer, but got " + typeOf(v) + ".");
    }
    boolean huge = !v.canConvertToLong() && v.bigIntegerValue().signum() > 0;
    if (!huge && (!v.canConvertToLong() || v.asLong() < 1)) {
      throw ApiError.invalid(param, "Invalid '" + param + "': integer below minimum value. Expected a value >= 1, but got " + v.asText() + ".");
    }
    if (huge || v.asLong() > cap) {
      throw ApiError.invalid(
          param, "Invalid '" + param + "': " + v.asText() + " exceeds the limit of " + cap + " tokens.");
    }
  }

  private static void range(JsonNode body, String prefix, String name, double min, double max) {
    JsonNode v = body.get(name);
    String param = prefix + name;
    if (isAbsent(v)) {
      return;
    }
    if (!v.isNumber()) {
      throw ApiError.invalid(param, "Invalid type for '" + param + "': expected a number, but got " + typeOf(v) + ".");
    }
    double d = v.asDouble();
    if (!(d >= min && d <= max)) {
      throw ApiError.invalid(
          param, "Invalid '" + param + "': " + v.asText() + " is out of range. Expected a value between " + fmt(min) + " and " + fmt(max) + ".");
    }
  }

  private static void bool(JsonNode body, String prefix, String name) {
    JsonNode v = body.get(name);
    if (!isAbsent(v) && !v.isBoolean()) {
      String param = prefix + name;
      throw ApiError.invalid(param, "Invalid type for '" + param + "': expected a boolean, but got " + typeOf(v) + ".");
    }
  }

  private static String fmt(double d) {
    return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
  }

  private static boolean isAbsent(JsonNode v) {
    return v == null || v.isNull() || v.isMissingNode();
  }

  private static String describe(JsonNode v) {
    return v.isTextual() ? "'" + abbreviate(v.asText()) + "'" : typeOf(v);
  }

  private static String abbreviate(String s) {
    return s.length() > 64 ? s.substring(0, 64) + "…" : s;
  }

  static String typeOf(JsonNode v) {
    if (v == null || v.isMissingNode()) {
      return "nothing";
    }
    return switch (v.getNodeType()) {
      case ARRAY -> "an array";
      case OBJECT -> "an object";
      case STRING -> "a string";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case NULL -> "null";
      default -> v.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
    };
  }
}
