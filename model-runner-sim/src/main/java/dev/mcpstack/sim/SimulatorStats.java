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
 */
public record SimulatorStats(
    long requests,
    Map<String, Long> requestsByPath,
    int maxInFlight,
    int inFlight,
    List<RecordedRequest> recent,
    int maxEmbeddingBatch) {

  public SimulatorStats {
    requestsByPath = Map.copyOf(requestsByPath);
    recent = List.copyOf(recent);
  }
}
