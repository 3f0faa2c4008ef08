package dev.mcpstack.api;

import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;

/** Request ids: the client's {@code X-Request-Id} when it is sane, else a fresh one. */
final class RequestIds {
  static final String HEADER = "X-Request-Id";
  private static final Pattern SANE = Pattern.compile("[A-Za-z0-9._:\\-]{1,128}");

  private RequestIds() {}

  static String accept(Optional<String> incoming) {
    return incoming.map(String::trim).filter(v -> SANE.matcher(v).matches()).orElseGet(RequestIds::fresh);
  }

  static String fresh() {
    return "req_" + UUID.randomUUID().toString().replace("-", "");
  }
}
