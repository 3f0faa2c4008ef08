package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.extractRequest;
import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The bookkeeping of {@link ClientConnection} on its own, one interleaving per test: a connection
 * is a stream of requests through {@link ClientConnection#watching}, and its client leaves when
 * that stream ends (as pekko-http's server ends it when the client closes its side).
 */
class ClientConnectionTest {
  private static final ActorTestKit kit = ActorTestKit.create("ClientConnectionTest");
  private static final Duration WAIT = Duration.ofSeconds(10);

  @AfterAll
  static void stop() {
    kit.shutdownTestKit();
  }

  /** One client's connection: its requests go through the watched route, which hands over each request's connection. */
  private static final class Client {
    final BlockingQueue<ClientConnection> seen = new LinkedBlockingQueue<>();
    final BoundedSourceQueue<HttpRequest> requests;

    Client() {
      Route route =
          extractRequest(
              request -> {
                seen.add(ClientConnection.of(request));
                return complete("ok");
              });
      requests =
          Source.<HttpRequest>queue(4)
              .via(ClientConnection.watching(route, kit.system()))
              .to(Sink.ignore())
              .run(kit.system());
    }

    /** Sends a request; the connection it came on, as its route saw it. */
    ClientConnection request() throws InterruptedException {
      requests.offer(HttpRequest.create("/"));
      ClientConnection connection = seen.poll(WAIT.toSeconds(), TimeUnit.SECONDS);
      assertNotNull(connection, "the route got the request");
      return connection;
    }

    void leave() {
      requests.complete();
    }
  }

  private static void await(Runnable check) {
    TestProbe.create(kit.system()).awaitAssert(WAIT, () -> {
      check.run();
      return null;
    });
  }

  @Test
  void aClientThatLeavesAfterTheSubmitWasAnsweredCancelsItsCallOnce() throws Exception {
    Client client = new Client();
    ClientConnection.Pending call = client.request().pending();
    AtomicInteger cancels = new AtomicInteger();
    call.submitted(cancels::incrementAndGet);
    assertFalse(call.gone());
    assertEquals(0, cancels.get(), "nobody left yet");
    client.leave();
    await(() -> assertEquals(1, cancels.get()));
    assertTrue(call.gone());
    // a new Submit after the client left (its task was lost and started anew) is cancelled too
    call.submitted(cancels::incrementAndGet);
    assertEquals(2, cancels.get());
    call.over();
  }

  @Test
  void aClientThatLeavesBeforeTheSubmitWasAnsweredCancelsWhenItIs() throws Exception {
    Client client = new Client();
    ClientConnection.Pending call = client.request().pending();
    client.leave();
    await(() -> assertTrue(call.gone()));
    AtomicInteger cancels = new AtomicInteger();
    call.submitted(cancels::incrementAndGet);
    assertEquals(1, cancels.get(), "cancelled as soon as the task exists");
  }

  @Test
  void aCallThatBeginsAfterItsClientLeftIsGoneFromTheStart() throws Exception {
    Client client = new Client();
    ClientConnection connection = client.request();
    ClientConnection.Pending before = connection.pending();
    before.over();
    client.leave();
    ClientConnection.Pending witness = connection.pending();
    await(() -> assertTrue(witness.gone()));
    assertTrue(connection.pending().gone(), "a call that begins now is not to be started");
  }

  @Test
  void aKeepAliveConnectionCancelsOnlyTheCallInProgressWhenItsClientLeaves() throws Exception {
    Client client = new Client();
    AtomicInteger firstCancels = new AtomicInteger();
    AtomicInteger secondCancels = new AtomicInteger();
    AtomicInteger lastCancels = new AtomicInteger();
    ClientConnection connection = client.request();
    ClientConnection.Pending first = connection.pending();
    first.submitted(firstCancels::incrementAndGet);
    first.over();
    ClientConnection again = client.request();
    assertSame(connection, again, "one connection, one watch");
    ClientConnection.Pending second = again.pending();
    second.submitted(secondCancels::incrementAndGet);
    second.over();
    ClientConnection.Pending last = client.request().pending();
    last.submitted(lastCancels::incrementAndGet);
    client.leave();
    await(() -> assertEquals(1, lastCancels.get()));
    assertEquals(0, firstCancels.get(), "answered: its client's leaving changes nothing");
    assertEquals(0, secondCancels.get(), "answered: its client's leaving changes nothing");
    // the answered calls are told nothing more, whatever comes late
    first.submitted(firstCancels::incrementAndGet);
    assertEquals(0, firstCancels.get());
  }

  @Test
  void connectionsAreWatchedApart() throws Exception {
    Client leaving = new Client();
    Client staying = new Client();
    AtomicInteger leavingCancels = new AtomicInteger();
    AtomicInteger stayingCancels = new AtomicInteger();
    ClientConnection.Pending gone = leaving.request().pending();
    ClientConnection.Pending waiting = staying.request().pending();
    gone.submitted(leavingCancels::incrementAndGet);
    waiting.submitted(stayingCancels::incrementAndGet);
    leaving.leave();
    await(() -> assertEquals(1, leavingCancels.get()));
    assertFalse(waiting.gone());
    assertEquals(0, stayingCancels.get());
    waiting.over();
    staying.leave();
  }

  @Test
  void aRequestThatCameAnotherWayHasAClientThatNeverLeaves() {
    ClientConnection.Pending call = ClientConnection.of(HttpRequest.create("/")).pending();
    assertSame(ClientConnection.Pending.NONE, call);
    AtomicInteger cancels = new AtomicInteger();
    call.submitted(cancels::incrementAndGet);
    call.over();
    assertFalse(call.gone());
    assertEquals(0, cancels.get());
  }
}
