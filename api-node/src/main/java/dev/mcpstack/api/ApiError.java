package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import java.util.List;
import org.apache.pekko.http.javadsl.model.HttpHeader;

/**
 * A failure to report to the client in OpenAI's error shape. Thrown by validation and by the
 * routes' futures; the top-level exception handler renders it with {@link ErrorResponses}.
 * Carries no stack trace: it is an answer, not a bug.
 */
public final class ApiError extends RuntimeException {
  private final ErrorCode code;
  private final String param;
  private final List<HttpHeader> headers;
  private final long retryAfterSeconds;

  public ApiError(ErrorCode code, String message, String param) {
    this(code, message, param, List.of(), 0);
  }

  /**
   * @param headers sent with the error (rate-limit standing, for example)
   * @param retryAfterSeconds the {@code Retry-After} to send; 0 = the configured default
   */
  public ApiError(ErrorCode code, String message, String param, List<HttpHeader> headers, long retryAfterSeconds) {
    super(message, null, false, false);
    this.code = code;
    this.param = param;
    this.headers = List.copyOf(headers);
    this.retryAfterSeconds = retryAfterSeconds;
  }

  public static ApiError of(ErrorCode code, String message) {
    return new ApiError(code, message, null);
  }

  /** A 400 about one request parameter, named the way OpenAI names them ({@code messages[0].role}). */
  public static ApiError invalid(String param, String message) {
    return new ApiError(ErrorCode.INVALID_REQUEST, message, param);
  }

  public static ApiError from(TaskError error) {
    return new ApiError(error.code(), error.message(), null);
  }

  public ErrorCode code() {
    return code;
  }

  public List<HttpHeader> headers() {
    return headers;
  }

  public long retryAfterSeconds() {
    return retryAfterSeconds;
  }

  /** The offending parameter, or null. */
  public String param() {
    return param;
  }
}
