package dev.mcpstack.sim;

import java.util.List;
import java.util.Map;

/**
 * Immutable snapshot of what the simulator has seen since start or the last reset.
 *
 * @param requests API requests received (admin {@code /sim/*} calls excluded)
 * @param requestsByPath request count per request path as received (e.g. {@code /engines/v1/chat/completions})
 * @param maxInFlight the highest number of concurrently processed requests
 * @param inFlight requests currently being processed (arrival until response complete, streams included)
 * @param recent the last 1000 completed requests, oldest first
 * @param maxEmbeddingBatch the largest number of inputs seen in one embeddings request
 * @param abandoned requests whose client closed the connection (or left the stream) before the
 *     answer was complete: a real runner stops computing those; they are recorded with status 499
 * @param connections client connections accepted (a client that keeps its connections alive opens
 *     few)
 */
public record SimulatorStats(
    long requests,
    Map<String, Long> requestsByPath,
    int maxInFlight,
    int inFlight,
    List<RecordedRequest> recent,
    int maxEmbeddingBatch,
    long abandoned,
    long connections) {

  public SimulatorStats {
    requestsByPath = Map.copyOf(requestsByPath);
    recent = List.copyOf(recent);
  }
}
