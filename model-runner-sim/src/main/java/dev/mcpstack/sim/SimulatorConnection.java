package dev.mcpstack.sim;

import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.AttributeKey;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.stream.javadsl.Flow;

/**
 * One client connection to the simulator, and its calls in progress. A real runner stops computing
 * when its client closes the connection (vLLM and llama.cpp abort the generation); the simulator
 * shows it in its accounting: a call whose connection closes before its answer is complete is
 * abandoned ({@link SimulatorState.Call#abandon}). pekko-http's routes are not told that a client
 * left, so the server's per-connection flow is watched ({@link #watching}) and each request carries
 * its connection as an attribute.
 */
final class SimulatorConnection {
  private static final AttributeKey<SimulatorConnection> KEY =
      AttributeKey.create("sim-connection", SimulatorConnection.class);

  private final Set<SimulatorState.Call> calls = ConcurrentHashMap.newKeySet();
  private volatile boolean closed;

  /** The server's handler, watching each connection it serves (and counting them in {@code state}). */
  static Flow<HttpRequest, HttpResponse, NotUsed> watching(
      Flow<HttpRequest, HttpResponse, ?> handler, SimulatorState state) {
    return Flow.<HttpRequest, HttpResponse, NotUsed>fromMaterializer(
            (mat, attributes) -> {
              state.connectionOpened();
              SimulatorConnection connection = new SimulatorConnection();
              return Flow.<HttpRequest>create()
                  .map(request -> request.addAttribute(KEY, connection))
                  .watchTermination(
                      (notUsed, done) -> {
                        // the request side ends when the client closes or resets the connection
                        done.whenComplete((d, e) -> connection.close());
                        return notUsed;
                      })
                  .via(handler);
            })
        .mapMaterializedValue(m -> NotUsed.getInstance());
  }

  /** The connection {@code request} came on (none for a request that did not come through {@link #watching}). */
  static Optional<SimulatorConnection> of(HttpRequest request) {
    return request.getAttribute(KEY);
  }

  void add(SimulatorState.Call call) {
    calls.add(call);
    if (closed && calls.remove(call)) {
      call.abandon();
    }
  }

  void remove(SimulatorState.Call call) {
    calls.remove(call);
  }

  private void close() {
    closed = true;
    for (SimulatorState.Call call : calls) {
      if (calls.remove(call)) {
        call.abandon();
      }
    }
  }
}
