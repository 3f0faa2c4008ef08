package dev.mcpstack.worker.testkit;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A model runner that hangs: a loopback socket that accepts every connection, reads nothing and
 * never writes a byte. What a wedged runner looks like from the worker (the TCP handshake works).
 */
public final class SilentRunner implements AutoCloseable {
  private final ServerSocket server;
  private final List<Socket> accepted = new CopyOnWriteArrayList<>();

  public SilentRunner() throws IOException {
    server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread acceptor =
        new Thread(
            () -> {
              try {
                while (true) {
                  accepted.add(server.accept());
                }
              } catch (IOException closed) {
                // close() ends the loop
              }
            },
            "silent-runner-" + server.getLocalPort());
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** The OpenAI base URL, with {@code /v1}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + server.getLocalPort() + "/v1";
  }

  /** Connections accepted so far (a pooled client opens one per call it waits on). */
  public int connections() {
    return accepted.size();
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (Socket s : accepted) {
      s.close();
    }
  }
}
