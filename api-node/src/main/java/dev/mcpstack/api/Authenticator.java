package dev.mcpstack.api;

import java.util.Optional;

/**
 * Maps a request's bearer token to the owner id its tasks and completions belong to; empty means
 * the caller is not authenticated (401). Development mode accepts any token, or none, as
 * {@value #ANONYMOUS}. The API-key issue plugs a key store in here.
 */
@FunctionalInterface
public interface Authenticator {
  String ANONYMOUS = "anonymous";

  Optional<String> ownerFor(Optional<String> bearerToken);

  /** Everybody is {@value #ANONYMOUS}. */
  static Authenticator anonymous() {
    return token -> Optional.of(ANONYMOUS);
  }
}
