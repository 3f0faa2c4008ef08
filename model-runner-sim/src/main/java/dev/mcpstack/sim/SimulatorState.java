package dev.mcpstack.sim;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters and recorded requests of one simulator. {@link #reset()} swaps in a fresh set of
 * counters: a request that arrived before the reset keeps updating the old set, so in-flight
 * accounting of the new set never goes negative.
 */
final class SimulatorState {

  static final int RECENT_LIMIT = 1000;
  /** nginx's status for a request whose client closed the connection before the answer. */
  static final int CLIENT_CLOSED_REQUEST = 499;

  private volatile Counters counters = new Counters();
  private volatile Faults defaults;

  SimulatorState(Faults defaults) {
    this.defaults = defaults;
  }

  Faults defaults() {
    return defaults;
  }

  void setDefaults(Faults faults) {
    if (faults == null) throw new IllegalArgumentException("faults must not be null");
    this.defaults = faults;
  }

  void reset() {
    counters = new Counters();
  }

  /** Registers the arrival of an API request; the caller must eventually {@link Call#finish}. */
  Call arrive(String method, String path, Map<String, String> headers) {
    Counters c = counters;
    c.requests.incrementAndGet();
    c.byPath.computeIfAbsent(path, p -> new LongAdder()).increment();
    int now = c.inFlight.incrementAndGet();
    c.maxInFlight.accumulateAndGet(now, Math::max);
    Call call = new Call(c, method, path, headers, System.nanoTime());
    c.open.add(call);
    return call;
  }

  /** Calls in flight whose lower-cased header {@code name} has the value {@code value}. */
  int inFlightWith(String name, String value) {
    return (int) counters.open.stream().filter(call -> value.equals(call.headers.get(name))).count();
  }

  /** Counts a client connection the server accepted. */
  void connectionOpened() {
    counters.connections.incrementAndGet();
  }

  SimulatorStats stats() {
    Counters c = counters;
    Map<String, Long> byPath = new TreeMap<>();
    c.byPath.forEach((k, v) -> byPath.put(k, v.sum()));
    List<RecordedRequest> recent;
    synchronized (c.recent) {
      recent = new ArrayList<>(c.recent);
    }
    return new SimulatorStats(
        c.requests.get(), byPath, c.maxInFlight.get(), c.inFlight.get(), recent, c.maxEmbeddingBatch.get(),
        c.abandoned.get(), c.connections.get());
  }

  private static final class Counters {
    final AtomicLong requests = new AtomicLong();
    final ConcurrentHashMap<String, LongAdder> byPath = new ConcurrentHashMap<>();
    final AtomicInteger inFlight = new AtomicInteger();
    final AtomicInteger maxInFlight = new AtomicInteger();
    final AtomicInteger maxEmbeddingBatch = new AtomicInteger();
    final AtomicLong abandoned = new AtomicLong();
    final AtomicLong connections = new AtomicLong();
    final java.util.Set<Call> open = ConcurrentHashMap.newKeySet();
    final AtomicLong faultSequence = new AtomicLong();
    final ArrayDeque<RecordedRequest> recent = new ArrayDeque<>();
  }

  /** One request between arrival and completion. */
  static final class Call {
    private final Counters counters;
    private final String method;
    private final String path;
    private final Map<String, String> headers;
    private final long arrivalNanos;
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile String model;
    private volatile SimulatorConnection connection;

    private Call(Counters counters, String method, String path, Map<String, String> headers, long arrivalNanos) {
      this.counters = counters;
      this.method = method;
      this.path = path;
      this.headers = headers;
      this.arrivalNanos = arrivalNanos;
    }

    void model(String model) {
      this.model = model;
    }

    /** 1-based number of this request among the fault-eligible requests since start/reset. */
    long nextFaultSequence() {
      return counters.faultSequence.incrementAndGet();
    }

    void embeddingBatch(int size) {
      counters.maxEmbeddingBatch.accumulateAndGet(size, Math::max);
    }

    /** Watches the call's connection: a connection that closes before the call ends abandons it. */
    void on(SimulatorConnection c) {
      connection = c;
      c.add(this);
    }

    /** Ends the in-flight accounting and records the request; only the first end counts. */
    void finish(int status) {
      end(status);
    }

    /**
     * The client closed its connection before the answer was complete: the call ends, recorded with
     * status 499 (nginx's "client closed request"), and counts as abandoned.
     */
    void abandon() {
      if (end(CLIENT_CLOSED_REQUEST)) counters.abandoned.incrementAndGet();
    }

    private boolean end(int status) {
      if (!finished.compareAndSet(false, true)) return false;
      counters.open.remove(this);
      SimulatorConnection c = connection;
      if (c != null) c.remove(this);
      RecordedRequest r = new RecordedRequest(method, path, model, arrivalNanos, headers, status);
      synchronized (counters.recent) {
        if (counters.recent.size() == RECENT_LIMIT) counters.recent.removeFirst();
        counters.recent.addLast(r);
      }
      counters.inFlight.decrementAndGet();
      return true;
    }
  }
}
