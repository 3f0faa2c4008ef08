package dev.mcpstack.api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 of a string's UTF-8 bytes: API keys and the admin token are kept only this way. */
final class Sha256 {
  private Sha256() {}

  static byte[] bytes(String text) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  /** Lower-case hex. */
  static String hex(String text) {
    return HexFormat.of().formatHex(bytes(text));
  }
}
