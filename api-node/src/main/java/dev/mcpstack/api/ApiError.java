package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;

/**
 * A failure to report to the client in OpenAI's error shape. Thrown by validation and by the
 * routes' futures; the top-level exception handler renders it with {@link ErrorResponses}.
 * Carries no stack trace: it is an answer, not a bug.
 */
public final class ApiError extends RuntimeException {
  private final ErrorCode code;
  private final String param;

  public ApiError(ErrorCode code, String message, String param) {
    super(message, null, false, false);
    this.code = code;
    this.param = param;
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

  /** The offending parameter, or null. */
  public String param() {
    return param;
  }
}
