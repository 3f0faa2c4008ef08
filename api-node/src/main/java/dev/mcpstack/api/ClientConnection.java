package dev.mcpstack.api;

import java.util.ArrayList;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.ClassicActorSystemProvider;
import org.apache.pekko.http.javadsl.model.AttributeKey;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.javadsl.Flow;

/**
 * A client's HTTP connection, as far as its calls need to know: whether the client is still there
 * to read an answer. pekko-http's routes are never told that a client closed its connection before
 * the answer, so a synchronous chat or embeddings call would run on for nobody, holding the caller's
 * limits and the runner. {@link #watching} serves every connection with the route and watches the
 * connection's side of requests, which ends when the client closes its side: a close, an abort or a
 * half-close (a half-closed client could still read, but like nginx's {@code 499} this node takes
 * it as gone).
 *
 * <p>Nothing else ends that side while a call waits: the route takes one request of a connection
 * at a time ({@link Route#flow}: {@code mapAsync(1)}), and pekko-http (1.3) ends it after a request
 * that announced the connection's last ({@code Connection: close}, HTTP/1.0) only once that request
 * was answered. ClientLeavesTest holds both.
 *
 * <p>A call whose client waits takes a {@link Pending} for its time: a client that left cancels the
 * call's task only once the Submit that makes the task has been answered, so that the cancel can
 * never reach the entity before the task exists (and be lost there). The call gives it back when it
 * has answered, so that a keep-alive connection holds only its calls in progress.
 */
final class ClientConnection {
  private static final AttributeKey<ClientConnection> KEY =
      AttributeKey.create("mcp-client-connection", ClientConnection.class);

  /** The connection of requests that did not come through {@link #watching}: never closes. */
  private static final ClientConnection UNWATCHED = new ClientConnection();

  /** Its calls waiting for an answer, made at the first; null once the client left. Guarded by this. */
  private ArrayList<Pending> calls;

  private boolean closed;

  private ClientConnection() {}

  /**
   * The server's handler: {@code route} for each connection, whose requests carry the connection
   * ({@link #of}) and learn when its client leaves.
   */
  static Flow<HttpRequest, HttpResponse, NotUsed> watching(Route route, ClassicActorSystemProvider system) {
    // one request at a time (mapAsync(1)): the watch below relies on it (the class comment)
    Flow<HttpRequest, HttpResponse, NotUsed> handler = route.flow(system);
    return Flow.<HttpRequest, HttpResponse, NotUsed>fromMaterializer(
            (mat, attributes) -> {
              ClientConnection connection = new ClientConnection();
              return Flow.<HttpRequest>create()
                  .watchTermination(
                      (notUsed, requestsEnded) -> {
                        requestsEnded.whenComplete((done, failure) -> connection.clientLeft());
                        return notUsed;
                      })
                  .map(request -> request.addAttribute(KEY, connection))
                  .via(handler);
            })
        .mapMaterializedValue(whenMaterialized -> NotUsed.getInstance());
  }

  /** A connection that never closes: its calls are never cancelled by their client leaving. */
  static ClientConnection unwatched() {
    return UNWATCHED;
  }

  /** The connection {@code request} came on (one that never closes if it was not watched). */
  static ClientConnection of(HttpRequest request) {
    return request.getAttribute(KEY).orElse(UNWATCHED);
  }

  /**
   * A call that begins to wait for its answer; it must call {@link Pending#over()} once it has
   * answered. If the client has already left, the call is gone from the start.
   */
  Pending pending() {
    if (this == UNWATCHED) {
      return Pending.NONE;
    }
    Pending call = new Pending(this);
    synchronized (this) {
      if (!closed) {
        if (calls == null) {
          calls = new ArrayList<>(2);
        }
        calls.add(call);
        return call;
      }
    }
    call.gone = true;
    return call;
  }

  private synchronized void forget(Pending call) {
    if (calls != null) {
      calls.remove(call);
    }
  }

  /**
   * A connection of one call whose client says by other means than closing that it is gone (MCP's
   * {@code notifications/cancelled}): {@link #clientLeft()} tells it.
   */
  static ClientConnection ofOneCall() {
    return new ClientConnection();
  }

  /** The client is gone: its calls' tasks are cancelled, each once its Submit has been answered. */
  void clientLeft() {
    ArrayList<Pending> left;
    synchronized (this) {
      closed = true;
      left = calls;
      calls = null;
    }
    if (left != null) {
      for (Pending call : left) {
        call.clientLeft();
      }
    }
  }

  /**
   * One call waiting for its task's answer on a watched connection. Its task is cancelled when the
   * client leaves, whichever comes first: told of a Submit's answer ({@link #submitted}) after the
   * client left, it cancels at once; told that the client left after a Submit was answered, it
   * cancels then. A call whose client left before its Submit is not submitted at all ({@link
   * #gone}).
   */
  static final class Pending {
    /** For calls on no watched connection: their client never leaves. */
    static final Pending NONE = new Pending(null);

    private final ClientConnection connection;
    private volatile boolean gone;
    /** The cancel of the call's task, once a Submit was answered. Guarded by this. */
    private Runnable cancel;
    /** Guarded by this. */
    private boolean over;

    private Pending(ClientConnection connection) {
      this.connection = connection;
    }

    /** Whether the call's client has left: nobody will read its answer. */
    boolean gone() {
      return gone;
    }

    /**
     * A Submit of the call was answered (or may have reached its task without an answer): from now
     * on {@code cancel} cancels the task, at once if the client has already left. Told again after
     * a new Submit (the task was lost and started anew), it cancels again.
     */
    void submitted(Runnable cancel) {
      if (connection == null) {
        return;
      }
      synchronized (this) {
        if (over) {
          return;
        }
        this.cancel = cancel;
        if (!gone) {
          return;
        }
      }
      cancel.run();
    }

    /** The call has answered: what its client does next changes nothing. */
    void over() {
      if (connection == null) {
        return;
      }
      synchronized (this) {
        over = true;
      }
      connection.forget(this);
    }

    private void clientLeft() {
      Runnable now;
      synchronized (this) {
        if (gone || over) {
          return;
        }
        gone = true;
        now = cancel;
      }
      if (now != null) {
        now.run();
      }
    }
  }
}
