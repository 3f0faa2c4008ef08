package dev.mcpstack.shared;

/**
 * How long a finished task's history (its request and its result) stays in the journal. The
 * api-node decides it per request, because only it knows whether the client will read the task
 * back later; the worker tags the task accordingly and the retention cleaner honours the tag.
 */
public enum TaskRetention {
  /**
   * Read back later (async tasks, stored chat completions): kept until {@code
   * mcp.worker.retention.finished-after} after the task ended. Also what a message of an older
   * version, which has no retention, means.
   */
  STANDARD,
  /**
   * Needed only while its client waits (synchronous and streamed chats without {@code store},
   * synchronous embeddings): deleted {@code mcp.worker.retention.transient-after} after the task
   * ended.
   */
  TRANSIENT
}
