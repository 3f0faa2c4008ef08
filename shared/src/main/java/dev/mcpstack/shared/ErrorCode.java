package dev.mcpstack.shared;

/**
 * Every error the stack reports, with the HTTP status and OpenAI error {@code type} it maps to.
 * The table is DESIGN.md's error model; the api-node renders it, the worker-node classifies into it.
 */
public enum ErrorCode {
  INVALID_REQUEST(400, "invalid_request_error", "invalid_request"),
  AUTHENTICATION(401, "authentication_error", "invalid_api_key"),
  PERMISSION_DENIED(403, "permission_error", "permission_denied"),
  NOT_FOUND(404, "not_found_error", "not_found"),
  MODEL_NOT_FOUND(404, "not_found_error", "model_not_found"),
  METHOD_NOT_ALLOWED(405, "invalid_request_error", "method_not_allowed"),
  CONFLICT(409, "invalid_request_error", "conflict"),
  PAYLOAD_TOO_LARGE(413, "invalid_request_error", "payload_too_large"),
  UNSUPPORTED_MEDIA_TYPE(415, "invalid_request_error", "unsupported_media_type"),
  RATE_LIMITED(429, "rate_limit_error", "rate_limit_exceeded"),
  INSUFFICIENT_QUOTA(429, "insufficient_quota", "insufficient_quota"),
  INTERNAL(500, "api_error", "internal_error"),
  UPSTREAM_ERROR(502, "api_error", "upstream_error"),
  UNAVAILABLE(503, "api_error", "service_unavailable"),
  TIMEOUT(504, "api_error", "timeout"),
  CANCELLED(409, "invalid_request_error", "task_cancelled");

  private final int httpStatus;
  private final String type;
  private final String code;

  ErrorCode(int httpStatus, String type, String code) {
    this.httpStatus = httpStatus;
    this.type = type;
    this.code = code;
  }

  public int httpStatus() {
    return httpStatus;
  }

  /** The OpenAI error {@code type} field. */
  public String type() {
    return type;
  }

  /** The OpenAI error {@code code} field. */
  public String code() {
    return code;
  }
}
