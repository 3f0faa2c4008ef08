package dev.mcpstack.api;

import dev.mcpstack.shared.TaskRetention;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * Task ids. Random ({@code prefix + UUID without dashes}) or, with an {@code Idempotency-Key},
 * {@code prefix + first 32 hex chars of SHA-256(owner + ":" + key)}, so a retried call lands on
 * the same task. Never contain {@code |} (Pekko's PersistenceId rejects it).
 *
 * <p>Chat completions kept with {@code store: true} get the prefix {@code chatcmpl-s}, others
 * {@code chatcmpl-} followed by hex digits only; {@code GET /v1/chat/completions/{id}} serves only
 * the former. (The task view does not carry the request, so the id is where the flag lives.)
 *
 * <p>A chat or embeddings call answered on its connection, without an {@code Idempotency-Key} and
 * not stored, is kept in its worker's memory only ({@link #inMemory}, docs/adr/0007): its id is the
 * prefix, {@code m} and a random UUID ({@code m} is not a hex digit, so no other id looks like it).
 *
 * <p>The prefix also says whether a client reads the task back after it ended ({@link #readBack}):
 * only async tasks ({@code task-}, through {@code /v1/tasks}) and stored completions. Everything
 * else (a chat or embeddings call answered on its connection) is {@link TaskRetention#TRANSIENT}:
 * its request and result are kept only while the task needs them (docs/security-data.md).
 */
final class TaskIds {
  static final String CHAT = "chatcmpl-";
  static final String STORED_CHAT = "chatcmpl-s";
  static final String TASK = "task-";
  static final String EMBEDDINGS = "embd-";
  static final int MAX_IDEMPOTENCY_KEY = 255;

  private static final Pattern PLAUSIBLE = Pattern.compile("[A-Za-z0-9_.\\-]{1,128}");
  private static final Pattern STORED = Pattern.compile("chatcmpl-s[0-9a-f]{32}");
  private static final Pattern KEY = Pattern.compile("[\\x21-\\x7e]{1," + MAX_IDEMPOTENCY_KEY + "}");

  private TaskIds() {}

  /** Marks the id of a task kept in memory only, right after its prefix. */
  static final String IN_MEMORY = "m";

  static String chat(String owner, Optional<String> idempotencyKey, boolean store) {
    return store ? make(STORED_CHAT, owner, idempotencyKey) : answered(CHAT, owner, idempotencyKey);
  }

  static String embeddings(String owner, Optional<String> idempotencyKey) {
    return answered(EMBEDDINGS, owner, idempotencyKey);
  }

  /**
   * A call answered on its connection: in memory unless an Idempotency-Key asks for a retry to find
   * it after a crash.
   */
  private static String answered(String prefix, String owner, Optional<String> idempotencyKey) {
    return idempotencyKey.isPresent() ? make(prefix, owner, idempotencyKey) : make(prefix + IN_MEMORY, owner, idempotencyKey);
  }

  /** Whether the task lives in its worker's memory only (TaskProtocol.MEMORY_TYPE_KEY). */
  static boolean inMemory(String id) {
    return id.startsWith(CHAT + IN_MEMORY) || id.startsWith(EMBEDDINGS + IN_MEMORY);
  }

  static String make(String prefix, String owner, Optional<String> idempotencyKey) {
    return prefix
        + idempotencyKey
            .map(key -> hash(owner, key))
            .orElseGet(() -> UUID.randomUUID().toString().replace("-", ""));
  }

  static boolean isStoredChat(String id) {
    return STORED.matcher(id).matches();
  }

  /** Whether the client may read the task back after it ended: an async task or a stored chat. */
  static boolean readBack(String id) {
    return id.startsWith(TASK) || isStoredChat(id);
  }

  static TaskRetention retention(String id) {
    return readBack(id) ? TaskRetention.STANDARD : TaskRetention.TRANSIENT;
  }

  /** Whether {@code id} could be one of ours (anything else is not found without asking). */
  static boolean plausible(String id) {
    return PLAUSIBLE.matcher(id).matches();
  }

  /** Validates the header value: 1..255 visible ASCII characters. */
  static Optional<String> idempotencyKey(Optional<String> header) {
    header.ifPresent(
        k -> {
          if (!KEY.matcher(k).matches()) {
            throw ApiError.invalid(
                "Idempotency-Key",
                "Invalid 'Idempotency-Key' header: expected 1 to "
                    + MAX_IDEMPOTENCY_KEY
                    + " visible ASCII characters.");
          }
        });
    return header;
  }

  private static String hash(String owner, String key) {
    return Sha256.hex(owner + ":" + key).substring(0, 32);
  }
}
