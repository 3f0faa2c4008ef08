package dev.mcpstack.api;

import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * The shape of API keys: {@code sk-mcp-<id>-<secret>}, where {@code id} is 12 random hex digits
 * (public: logs, the admin API) and {@code secret} 32 random bytes in base64url (256 bits of
 * entropy). Only a key's SHA-256 is ever stored; a presented key is hashed and looked up by hash,
 * so no comparison of secrets happens at all. A fast hash is right here: the secret is random,
 * not a password, so there is nothing to brute-force.
 */
final class ApiKeys {
  static final String PREFIX = "sk-mcp-";
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Pattern ID = Pattern.compile("[0-9a-f]{12}");
  private static final Pattern TOKEN = Pattern.compile("[\\x21-\\x7e]{16,512}");

  private ApiKeys() {}

  /** A freshly generated key: its public id, the secret to hand out once, and its hash to keep. */
  record NewKey(String id, String secret, String sha256) {}

  static NewKey generate() {
    byte[] idBytes = new byte[6];
    byte[] secretBytes = new byte[32];
    RANDOM.nextBytes(idBytes);
    RANDOM.nextBytes(secretBytes);
    String id = HexFormat.of().formatHex(idBytes);
    String secret = PREFIX + id + "-" + Base64.getUrlEncoder().withoutPadding().encodeToString(secretBytes);
    return new NewKey(id, secret, Sha256.hex(secret));
  }

  /** Whether a bearer token is worth hashing (printable ASCII, 16 to 512 characters). */
  static boolean plausible(String token) {
    return TOKEN.matcher(token).matches();
  }

  static boolean isId(String id) {
    return ID.matcher(id).matches();
  }

  /** {@code keygen [tenant]}: prints a new key and the line that declares it in API_KEYS. */
  public static void main(String[] args) {
    String tenant = args.length > 0 ? args[0] : "default";
    NewKey key = generate();
    System.out.println("API key (give it to the client; it is not stored anywhere): " + key.secret());
    System.out.println("API_KEYS entry (tenant:sha256):                          " + tenant + ":" + key.sha256());
  }
}
