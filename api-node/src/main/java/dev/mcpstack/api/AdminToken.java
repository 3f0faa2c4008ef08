package dev.mcpstack.api;

import java.security.MessageDigest;
import java.util.Optional;

/**
 * The operators' bearer token ({@code mcp.api.admin-token}). Empty means the admin API is off.
 * Only the token's SHA-256 is kept, and a presented token is hashed the same way and compared with
 * {@link MessageDigest#isEqual} (constant time, and equal lengths whatever the token's length), so
 * neither timing nor a logged {@link ApiSettings} gives the token away.
 */
final class AdminToken {
  private static final AdminToken OFF = new AdminToken(null);

  private final byte[] digest;

  private AdminToken(byte[] digest) {
    this.digest = digest;
  }

  static AdminToken of(String token) {
    return token == null || token.isEmpty() ? OFF : new AdminToken(Sha256.bytes(token));
  }

  /** Whether the admin API is on. */
  boolean enabled() {
    return digest != null;
  }

  /** Whether {@code presented} is the token; always false when the admin API is off. */
  boolean matches(Optional<String> presented) {
    if (digest == null || presented.isEmpty()) {
      return false;
    }
    return MessageDigest.isEqual(digest, Sha256.bytes(presented.get()));
  }

  @Override
  public String toString() {
    return enabled() ? "AdminToken[set]" : "AdminToken[off]";
  }

}
