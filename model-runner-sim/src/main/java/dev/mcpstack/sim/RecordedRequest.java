package dev.mcpstack.sim;

import java.util.Map;

/**
 * One completed request.
 *
 * @param method HTTP method
 * @param path request path as received
 * @param model the requested model (body field or {@code /models/{id}}), null if none
 * @param arrivalNanos {@link System#nanoTime()} at arrival
 * @param headers request headers, names lower-cased, repeated headers joined with ", "
 * @param status final HTTP status (200 for streams, even when dropped on purpose)
 */
public record RecordedRequest(
    String method, String path, String model, long arrivalNanos, Map<String, String> headers, int status) {

  public RecordedRequest {
    headers = Map.copyOf(headers);
  }
}
