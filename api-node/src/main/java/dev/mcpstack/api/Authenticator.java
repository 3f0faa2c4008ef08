package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import java.util.Optional;

/**
 * Maps a request's bearer token to its {@link Caller}. With {@code mcp.api.keys.required} every
 * request needs a live key (401 {@code invalid_api_key} otherwise, in OpenAI's words). Without it
 * (development's default) a known key still counts as that key, with its tenant and limits, a
 * revoked one is refused, and anything else is the anonymous caller.
 */
final class Authenticator {
  private final KeyStore keys;
  private final boolean required;

  Authenticator(KeyStore keys, boolean required) {
    this.keys = keys;
    this.required = required;
  }

  boolean required() {
    return required;
  }

  Caller authenticate(Optional<String> bearerToken) {
    if (bearerToken.isEmpty() || bearerToken.get().isEmpty()) {
      if (!required) {
        return Caller.ANONYMOUS;
      }
      throw unauthorized(
          "You didn't provide an API key. You need to provide your API key in an Authorization header"
              + " using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
    }
    String token = bearerToken.get();
    if (!ApiKeys.plausible(token)) {
      if (!required) {
        return Caller.ANONYMOUS;
      }
      throw unauthorized("Incorrect API key provided: the key is malformed.");
    }
    KeyStore.Lookup found = keys.find(token);
    if (found instanceof KeyStore.Found f) {
      return Caller.of(f.key());
    }
    if (found instanceof KeyStore.Revoked r) {
      throw unauthorized("The API key " + r.key().id() + " has been revoked.");
    }
    if (!required) {
      return Caller.ANONYMOUS;
    }
    if (found == KeyStore.NotLoaded.INSTANCE) {
      throw ApiError.of(ErrorCode.UNAVAILABLE, "The key store is still loading; try again in a moment.");
    }
    throw unauthorized("Incorrect API key provided. You can find your API key with your operator.");
  }

  private static ApiError unauthorized(String message) {
    return ApiError.of(ErrorCode.AUTHENTICATION, message);
  }
}
