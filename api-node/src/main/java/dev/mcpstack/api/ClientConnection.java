package dev.mcpstack.api;

import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.AttributeKey;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.stream.javadsl.Flow;

/**
 * A client's HTTP connection, as far as its requests need to know: whether it is gone. pekko-http's
 * routes do not tell a request that its client closed the connection before the answer (a
 * synchronous chat would run on for nobody, tying up the runner and the caller's limits), so the
 * server's per-connection flow is watched ({@link #watching}) and every request carries its
 * connection. A call registers what to do should its client leave, and unregisters when it has
 * answered, so a long keep-alive connection holds only its calls in progress.
 */
final class ClientConnection {
  private static final AttributeKey<ClientConnection> KEY = AttributeKey.create("mcp-client-connection", ClientConnection.class);
  /** For requests that came another way (tests calling a route directly): never closes. */
  private static final ClientConnection UNWATCHED = new ClientConnection();

  private final Set<Runnable> onClose = ConcurrentHashMap.newKeySet();
  private volatile boolean closed;

  /** The server's handler, watching each connection it serves. */
  static Flow<HttpRequest, HttpResponse, NotUsed> watching(Flow<HttpRequest, HttpResponse, ?> handler) {
    return Flow.<HttpRequest, HttpResponse, NotUsed>fromMaterializer(
            (mat, attributes) -> {
              ClientConnection connection = new ClientConnection();
              return Flow.<HttpRequest>create()
                  .map(request -> request.addAttribute(KEY, connection))
                  .watchTermination(
                      (notUsed, done) -> {
                        // the request side ends when the client closes (or the server drops) it
                        done.whenComplete((d, e) -> connection.close());
                        return notUsed;
                      })
                  .via(handler);
            })
        .mapMaterializedValue(m -> NotUsed.getInstance());
  }

  static ClientConnection of(HttpRequest request) {
    Optional<ClientConnection> connection = request.getAttribute(KEY);
    return connection.orElse(UNWATCHED);
  }

  /**
   * Runs {@code action} once if the connection closes before {@link #forget} is called with it
   * (at once if it already has).
   */
  void onClose(Runnable action) {
    if (this == UNWATCHED) {
      return;
    }
    onClose.add(action);
    if (closed && onClose.remove(action)) {
      action.run();
    }
  }

  /** The call has answered: nothing to do when the connection closes. */
  void forget(Runnable action) {
    onClose.remove(action);
  }

  private void close() {
    closed = true;
    for (Runnable action : onClose) {
      if (onClose.remove(action)) {
        action.run();
      }
    }
  }
}
