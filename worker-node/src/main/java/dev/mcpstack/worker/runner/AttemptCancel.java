package dev.mcpstack.worker.runner;

import java.util.Queue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Lets the task entity abort an attempt's calls to its runners (a {@code DELETE}, a deadline, a
 * client that left): each call registers how to close its connection, so the runner sees the
 * client go and stops computing. A call that has not been sent yet is never sent.
 */
final class AttemptCancel {
  private final Queue<Runnable> aborts = new ConcurrentLinkedQueue<>();
  private volatile boolean cancelled;

  /** Aborts every call registered so far, and every call that registers later. */
  void cancel() {
    cancelled = true;
    for (Runnable abort = aborts.poll(); abort != null; abort = aborts.poll()) {
      abort.run();
    }
  }

  boolean cancelled() {
    return cancelled;
  }

  /** Runs {@code abort} on {@link #cancel()}, or at once if the attempt is already cancelled. */
  void onCancel(Runnable abort) {
    aborts.add(abort);
    if (cancelled && aborts.remove(abort)) {
      abort.run();
    }
  }

  /** The failure of a call that was aborted, or never sent, because its attempt was cancelled. */
  static CancellationException failure(String when) {
    return new CancellationException("cancelled " + when);
  }
}
