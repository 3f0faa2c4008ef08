package dev.mcpstack.worker.runner;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.worker.task.AttemptFailure;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Optional;

/**
 * A failed call to a model runner, classified: retryable or permanent, whether it counts against
 * the upstream's circuit breaker, and whether the request never reached the runner (so the next
 * upstream for the model may take it at once).
 */
public final class UpstreamFailure extends AttemptFailure {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MAX_MESSAGE = 500;

  private final boolean countsAgainstBreaker;
  private final boolean notSent;
  private final String detail;

  private UpstreamFailure(
      TaskError error,
      boolean retryable,
      Duration retryAfter,
      boolean countsAgainstBreaker,
      boolean notSent) {
    this(error, retryable, retryAfter, countsAgainstBreaker, notSent, null);
  }

  private UpstreamFailure(
      TaskError error,
      boolean retryable,
      Duration retryAfter,
      boolean countsAgainstBreaker,
      boolean notSent,
      String detail) {
    this(error, retryable, retryAfter, countsAgainstBreaker, notSent, detail, false);
  }

  private UpstreamFailure(
      TaskError error,
      boolean retryable,
      Duration retryAfter,
      boolean countsAgainstBreaker,
      boolean notSent,
      String detail,
      boolean deferred) {
    super(error, retryable, retryAfter, deferred);
    this.countsAgainstBreaker = countsAgainstBreaker;
    this.notSent = notSent;
    this.detail = detail;
  }

  /**
   * What operators may see but clients must not (a runner's own 5xx text, a connection error with
   * internal addresses): kept for logs and the admin API's recent errors.
   */
  @Override
  public String detail() {
    return detail == null ? error().message() : detail;
  }

  public boolean countsAgainstBreaker() {
    return countsAgainstBreaker;
  }

  /** True when the runner never got the request: another upstream may be tried right away. */
  public boolean notSent() {
    return notSent;
  }

  static UpstreamFailure unreachable(String upstream, Throwable cause) {
    return new UpstreamFailure(
        TaskError.of(ErrorCode.UNAVAILABLE, "model runner '" + upstream + "' is unreachable"),
        true,
        null,
        true,
        true,
        "unreachable: " + describe(cause));
  }

  /**
   * The breaker is open: the request was never sent. Deferred like a full queue: when every
   * candidate upstream refused it so, a background task waits for a breaker to let calls through
   * again without spending an attempt (a runner tripped for a few seconds must not use up the
   * attempts of tasks with hours left; docs/adr/0012). {@code retryAfter}: until the breaker lets a
   * trial call through.
   */
  static UpstreamFailure breakerOpen(String upstream, Duration retryAfter) {
    return new UpstreamFailure(
        TaskError.of(
            ErrorCode.UNAVAILABLE,
            "model runner '" + upstream + "' is failing; its circuit breaker is open"),
        true,
        retryAfter,
        false,
        true,
        null,
        true);
  }

  /**
   * The runner's queue is full: the request was never sent. Deferred ({@link #deferred()}): when
   * every candidate upstream said so, a background task waits for room without spending an attempt
   * (ModelRunnerClient.route clears the mark when another candidate failed otherwise).
   */
  static UpstreamFailure queueFull(String upstream) {
    return new UpstreamFailure(
        TaskError.of(
            ErrorCode.UNAVAILABLE, "model runner '" + upstream + "' is overloaded: its queue is full"),
        true,
        Duration.ofSeconds(1),
        false,
        true,
        null,
        true);
  }

  /** The same failure counted as a real attempt (not {@link #deferred()}). */
  UpstreamFailure notDeferred() {
    return deferred()
        ? new UpstreamFailure(error(), retryable(), retryAfter(), countsAgainstBreaker, notSent, detail, false)
        : this;
  }

  static UpstreamFailure timeout(String upstream, String what, Duration after) {
    return new UpstreamFailure(
        TaskError.of(
            ErrorCode.TIMEOUT,
            "model runner '" + upstream + "' timed out: " + what + " after " + after.toMillis() + " ms"),
        true,
        null,
        true,
        false);
  }

  static UpstreamFailure broken(String upstream, String what) {
    return new UpstreamFailure(
        TaskError.of(ErrorCode.UPSTREAM_ERROR, "model runner '" + upstream + "' " + what),
        true,
        null,
        true,
        false);
  }

  static UpstreamFailure noUpstream(String model) {
    return new UpstreamFailure(
        TaskError.of(
            ErrorCode.MODEL_NOT_FOUND,
            "the model '" + model + "' is not served by any configured model runner"),
        false,
        null,
        false,
        false);
  }

  /** Classifies a non-2xx answer; the body may be OpenAI JSON or plain text (Docker Model Runner). */
  static UpstreamFailure fromStatus(
      String upstream, int status, String body, Optional<String> retryAfterHeader) {
    String detail = errorMessage(body);
    // a runner's own text for a server-side failure may hold internals (traces, paths): clients
    // get the status, operators the text (detail)
    String said = "model runner '" + upstream + "' answered " + status;
    String internal = said + ": " + detail;
    Duration retryAfter = retryAfterHeader.flatMap(UpstreamFailure::parseRetryAfter).orElse(null);
    if (status == 404) {
      return new UpstreamFailure(
          new TaskError(ErrorCode.MODEL_NOT_FOUND, detail, status), false, null, false, false);
    }
    if (status == 401 || status == 403) {
      return new UpstreamFailure(
          new TaskError(
              ErrorCode.UPSTREAM_ERROR,
              "model runner '" + upstream + "' refused the stack's credentials (" + status + ")",
              status),
          false,
          null,
          false,
          false);
    }
    if (status == 408) {
      return new UpstreamFailure(
          new TaskError(ErrorCode.TIMEOUT, said, status), true, retryAfter, true, false, internal);
    }
    if (status == 429) {
      return new UpstreamFailure(
          new TaskError(ErrorCode.UNAVAILABLE, said + " (overloaded)", status),
          true,
          retryAfter,
          false,
          false,
          internal);
    }
    if (status >= 500) {
      return new UpstreamFailure(
          new TaskError(ErrorCode.UPSTREAM_ERROR, said, status), true, retryAfter, true, false, internal);
    }
    return new UpstreamFailure(
        new TaskError(ErrorCode.INVALID_REQUEST, detail, status), false, null, false, false);
  }

  /** The runner's own message: {@code error.message}, {@code error}, {@code message}, or the text. */
  static String errorMessage(String body) {
    String text = body == null ? "" : body.trim();
    if (text.startsWith("{")) {
      try {
        JsonNode node = JSON.readTree(text);
        JsonNode error = node.path("error");
        String message =
            error.isObject()
                ? error.path("message").asText("")
                : error.isTextual() ? error.asText() : node.path("message").asText("");
        if (message.isEmpty()) {
          message = node.path("detail").asText("");
        }
        if (!message.isEmpty()) {
          text = message;
        }
      } catch (Exception notJson) {
        // plain text after all
      }
    }
    if (text.isEmpty()) {
      return "(no message)";
    }
    return text.length() > MAX_MESSAGE ? text.substring(0, MAX_MESSAGE) + "…" : text;
  }

  static Optional<Duration> parseRetryAfter(String value) {
    String v = value.trim();
    try {
      return Optional.of(Duration.ofSeconds(Math.max(0, Long.parseLong(v))));
    } catch (NumberFormatException notSeconds) {
      try {
        ZonedDateTime at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME);
        Duration d = Duration.between(ZonedDateTime.now(at.getZone()), at);
        return Optional.of(d.isNegative() ? Duration.ZERO : d);
      } catch (RuntimeException notDate) {
        return Optional.empty();
      }
    }
  }

  private static String describe(Throwable t) {
    String m = t.getMessage();
    return m == null ? t.getClass().getSimpleName() : m;
  }
}
