package dev.mcpstack.api;

import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.TraceContext;

/**
 * Who sent a request: the tenant that owns what it creates, and the key it used. Two callers have
 * no key: the anonymous caller of development mode, and operators submitting through the admin
 * API. They have no limits, may use every model and may warm models up. {@code trace}: the
 * request's trace context, which the tasks it submits carry to the workers and the model runners
 * (null when none: the worker then starts a trace of its own).
 */
record Caller(String tenant, ApiKey key, TraceContext trace) {
  static final String ANONYMOUS_TENANT = "anonymous";
  static final Caller ANONYMOUS = new Caller(ANONYMOUS_TENANT, null);
  /** Whose tasks operators submit through {@code POST /admin/tasks}. */
  static final Caller OPERATOR = new Caller("operator", null);

  Caller(String tenant, ApiKey key) {
    this(tenant, key, null);
  }

  static Caller of(ApiKey key) {
    return new Caller(key.tenant(), key);
  }

  /** This caller, within the request of trace context {@code trace}. */
  Caller traced(TraceContext trace) {
    return trace == null ? this : new Caller(tenant, key, trace);
  }

  /** The anonymous caller, or an operator. */
  boolean keyless() {
    return key == null;
  }

  /** The key's account (its limiter and usage), shared by the keys of one rotation; null when anonymous. */
  String account() {
    return key == null ? null : key.account();
  }

  /** The key's public id, for logs; null when anonymous. */
  String keyId() {
    return key == null ? null : key.id();
  }

  KeyLimits limits() {
    return key == null ? KeyLimits.UNLIMITED : key.limits();
  }

  /** 404 {@code model_not_found} unless the key may use {@code model} (OpenAI's answer too). */
  void checkModel(String model) {
    if (key != null && !key.allows(model)) {
      throw new ApiError(
          dev.mcpstack.shared.ErrorCode.MODEL_NOT_FOUND,
          "The model '" + model + "' does not exist or you do not have access to it.",
          "model");
    }
  }
}
