package dev.mcpstack.worker.runner;

import dev.mcpstack.shared.Failures;
import dev.mcpstack.worker.metrics.WorkerMetrics;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.apache.pekko.Done;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.headers.Authorization;
import org.apache.pekko.http.javadsl.settings.ClientConnectionSettings;
import org.apache.pekko.http.javadsl.settings.ConnectionPoolSettings;
import org.apache.pekko.pattern.CircuitBreaker;
import org.apache.pekko.pattern.CircuitBreakerOpenException;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.ThrottleMode;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * One model runner behind a bounded queue, a throttle, a concurrency cap and a circuit breaker:
 * {@code Source.queue → throttle → mapAsyncUnordered(maxConcurrency) → breaker → pooled HTTP}. A
 * full queue or an open breaker fails at once with a retryable {@link UpstreamFailure}; nothing
 * waits past its timeout.
 */
public final class Upstream {
  private final UpstreamSettings settings;
  private final ActorSystem<?> system;
  private final Http http;
  private final ConnectionPoolSettings pool;
  /** Probes use a pool of their own: a runner's busy or hanging calls never delay its probe. */
  private final ConnectionPoolSettings probePool;
  private final java.util.concurrent.atomic.AtomicReference<CircuitBreaker> breakerRef;
  private final java.util.Deque<RecentError> recentErrors = new java.util.concurrent.ConcurrentLinkedDeque<>();
  private static final int RECENT_ERRORS = 20;
  private final BoundedSourceQueue<Job<?>> queue;
  private final AtomicInteger queued = new AtomicInteger();
  private final AtomicInteger running = new AtomicInteger();
  private final WorkerMetrics.UpstreamGauges gauges;

  public Upstream(ActorSystem<?> system, UpstreamSettings settings) {
    this.settings = settings;
    this.system = system;
    this.http = Http.get(system);
    this.gauges = WorkerMetrics.upstreamGauges(settings.name());
    this.pool =
        ConnectionPoolSettings.create(system.classicSystem())
            .withMaxConnections(settings.maxConcurrency())
            .withMaxOpenRequests(powerOfTwoAtLeast(Math.max(32, settings.maxConcurrency() * 2)))
            .withMaxRetries(0)
            .withConnectionSettings(
                ClientConnectionSettings.create(system.classicSystem())
                    .withConnectingTimeout(settings.connectTimeout())
                    // Silence before the headers is bounded by our own timeouts (a non-streamed
                    // answer may take request-timeout); inside a stream idle-timeout applies.
                    .withIdleTimeout(
                        settings.requestTimeout().plus(settings.firstTokenTimeout()).plusSeconds(5)));
    this.probePool =
        ConnectionPoolSettings.create(system.classicSystem())
            .withMaxConnections(1)
            .withMaxRetries(0)
            .withConnectionSettings(
                ClientConnectionSettings.create(system.classicSystem())
                    .withConnectingTimeout(settings.connectTimeout()));
    this.breakerRef = new java.util.concurrent.atomic.AtomicReference<>(newBreaker());
    Source<Job<?>, BoundedSourceQueue<Job<?>>> jobs = Source.queue(settings.queueSize());
    if (settings.requestsPerSecond() > 0) {
      Duration interval = Duration.ofNanos((long) (1_000_000_000L / settings.requestsPerSecond()));
      jobs = jobs.throttle(1, interval, Math.max(1, settings.burst()), ThrottleMode.shaping());
    }
    this.queue =
        jobs
            .mapAsyncUnordered(settings.maxConcurrency(), Job::run)
            .to(Sink.ignore())
            .run(system);
    refreshGauges();
  }

  private CircuitBreaker newBreaker() {
    return CircuitBreaker.create(
            system.classicSystem().scheduler(),
            settings.breakerMaxFailures(),
            // longer than any call can take (headers + body, or first token + stream), so the
            // breaker never frees a concurrency slot while its call still runs
            settings.requestTimeout().multipliedBy(2).plus(settings.firstTokenTimeout()).plusSeconds(5),
            settings.breakerResetTimeout())
        .addOnOpenListener(
            () -> {
              openedAtNanos = System.nanoTime();
              refreshGauges();
            })
        .addOnHalfOpenListener(this::refreshGauges)
        .addOnCloseListener(this::refreshGauges);
  }

  private CircuitBreaker breaker() {
    return breakerRef.get();
  }

  private volatile long openedAtNanos = System.nanoTime();

  /** How long an open breaker still refuses calls (zero once a trial call may go). */
  private Duration untilTrial() {
    Duration left = settings.breakerResetTimeout().minusNanos(System.nanoTime() - openedAtNanos);
    return left.isNegative() ? Duration.ZERO : left;
  }

  /** An operator's reset: a fresh, closed breaker. Calls already running finish on the old one. */
  public void resetBreaker() {
    breakerRef.set(newBreaker());
    refreshGauges();
  }

  /** A failed call, for operators (the admin API shows the last few). */
  public record RecentError(java.time.Instant at, String code, String message) {}

  void recordError(UpstreamFailure failure) {
    lastFailureNanos = System.nanoTime();
    recentErrors.addFirst(
        new RecentError(java.time.Instant.now(), failure.error().code().code(), failure.detail()));
    while (recentErrors.size() > RECENT_ERRORS) {
      recentErrors.pollLast();
    }
  }

  private volatile long lastFailureNanos = Long.MIN_VALUE;

  /**
   * True if a call failed within the breaker's reset timeout: routing then prefers other
   * upstreams, so a retry does not land on the runner that just failed it.
   */
  public boolean failedRecently() {
    return lastFailureNanos != Long.MIN_VALUE
        && System.nanoTime() - lastFailureNanos < settings.breakerResetTimeout().toNanos();
  }

  /** The last failed calls, newest first. */
  public java.util.List<RecentError> recentErrors() {
    return java.util.List.copyOf(recentErrors);
  }

  public String name() {
    return settings.name();
  }

  public UpstreamSettings settings() {
    return settings;
  }

  /**
   * False while the breaker is open or the probes found the runner down: the router prefers other
   * upstreams then, and readiness does not count it.
   */
  public boolean available() {
    return !breaker().isOpen() && probe.state() != ProbeState.DOWN;
  }

  // ---- active probes (UpstreamProbes, docs/adr/0012) ----

  /** UNKNOWN until the first probe ended (or for ever when probes are off). */
  public enum ProbeState {
    UNKNOWN,
    UP,
    DOWN
  }

  /** The probes' verdict: the state, when the last probe ended, what it found, failures in a row. */
  public record Probe(ProbeState state, java.time.Instant at, String detail, int failuresInARow) {}

  private volatile Probe probe = new Probe(ProbeState.UNKNOWN, null, "", 0);

  public Probe probe() {
    return probe;
  }

  /**
   * Sends one probe, {@code GET {base-url}{path}}: completes with null when the runner answered
   * below 500, with what went wrong otherwise (it never fails).
   */
  CompletionStage<String> sendProbe(String path, Duration timeout) {
    HttpRequest request = HttpRequest.GET(url(path));
    HttpRequest withAuth =
        settings.apiKey().isEmpty() ? request : request.addHeader(Authorization.oauth2(settings.apiKey()));
    CompletableFuture<HttpResponse> sent =
        http.singleRequest(withAuth, http.defaultClientHttpsContext(), probePool, system.classicSystem().log())
            .toCompletableFuture();
    // a late answer is drained, or the probe pool's one connection stays taken
    sent.thenAccept(r -> r.discardEntityBytes(system));
    return sent.copy()
        .orTimeout(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
        .handle(
            (r, e) -> {
              if (e == null) {
                return r.status().intValue() < 500 ? null : "answered " + r.status().intValue();
              }
              Throwable cause = Failures.unwrap(e);
              if (cause instanceof TimeoutException) {
                return "no answer within " + timeout.toMillis() + " ms";
              }
              return "unreachable: " + cause.getClass().getSimpleName()
                  + (cause.getMessage() == null ? "" : " " + cause.getMessage());
            });
  }

  /**
   * Records a probe's outcome ({@code failure} null: answered); returns the new verdict. Called by
   * one probe at a time (the probes of an upstream never overlap).
   */
  Probe recordProbe(String failure, int downAfter) {
    Probe before = probe;
    java.time.Instant now = java.time.Instant.now();
    Probe after =
        failure == null
            ? new Probe(ProbeState.UP, now, "answered", 0)
            : new Probe(
                before.failuresInARow() + 1 >= downAfter ? ProbeState.DOWN : before.state(),
                now,
                failure,
                before.failuresInARow() + 1);
    probe = after;
    gauges.reachable().update(after.state() == ProbeState.DOWN ? 0 : 1);
    return after;
  }

  public BreakerState breakerState() {
    CircuitBreaker breaker = breaker();
    if (breaker.isOpen()) {
      return BreakerState.OPEN;
    }
    return breaker.isHalfOpen() ? BreakerState.HALF_OPEN : BreakerState.CLOSED;
  }

  public int queueDepth() {
    return queued.get();
  }

  public int inFlight() {
    return running.get();
  }

  public enum BreakerState {
    CLOSED,
    HALF_OPEN,
    OPEN
  }

  /**
   * Queues a call; it runs when the throttle and the concurrency cap allow, through the breaker.
   * The returned stage completes with the call's outcome, or fails at once if the breaker is open
   * or the queue is full.
   */
  public <T> CompletionStage<T> submit(Supplier<CompletionStage<T>> call) {
    if (breaker().isOpen()) {
      return CompletableFuture.failedFuture(UpstreamFailure.breakerOpen(name(), untilTrial()));
    }
    Job<T> job = new Job<>(call);
    queued.incrementAndGet();
    QueueOfferResult offered = queue.offer(job);
    if (!QueueOfferResult.enqueued().equals(offered)) {
      queued.decrementAndGet();
      return CompletableFuture.failedFuture(UpstreamFailure.queueFull(name()));
    }
    refreshGauges();
    return job.promise;
  }

  /**
   * Sends one request on this upstream's connection pool; connection failures are classified.
   *
   * <p>A request with a body is sent with the end of its body held back until the response headers
   * come: the runner has the whole body (its {@code Content-Length} says so) and computes, while
   * the connection can still be aborted. pekko-http's pool has no per-request abort, but a request
   * entity that fails closes its connection. So {@code cancel} and a headers timeout close the
   * runner's connection, and the runner stops computing an answer nobody will read (docs/adr/0013).
   */
  CompletionStage<HttpResponse> send(HttpRequest request, Duration headersTimeout, AttemptCancel cancel) {
    CompletableFuture<Void> bodyEnd = new CompletableFuture<>();
    HttpRequest held = holdBodyOpen(request, bodyEnd);
    if (held != request) {
      cancel.onCancel(() -> bodyEnd.completeExceptionally(AttemptCancel.failure("while the runner had the call")));
    }
    HttpRequest withAuth =
        settings.apiKey().isEmpty() ? held : held.addHeader(Authorization.oauth2(settings.apiKey()));
    CompletableFuture<HttpResponse> sent =
        http.singleRequest(withAuth, http.defaultClientHttpsContext(), pool, system.classicSystem().log())
            .toCompletableFuture();
    CompletableFuture<HttpResponse> response =
        sent.copy().orTimeout(headersTimeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
    response.whenComplete(
        (r, e) -> {
          if (e == null) {
            bodyEnd.complete(null); // the request is whole: its connection can serve the next one
            return;
          }
          bodyEnd.completeExceptionally(e); // gave up (timeout, cancel): close the connection
          // a body-less request cannot be aborted: an answer that comes after we gave up must be
          // drained, or its pooled connection stays taken
          sent.thenAccept(late -> late.discardEntityBytes(system));
        });
    return response.exceptionallyCompose(
        e -> {
          Throwable cause = Failures.unwrap(e);
          if (cause instanceof UpstreamFailure || cause instanceof CancellationException) {
            return CompletableFuture.failedFuture(cause);
          }
          if (cause instanceof TimeoutException) {
            return CompletableFuture.failedFuture(
                UpstreamFailure.timeout(name(), "no response headers", headersTimeout));
          }
          return CompletableFuture.failedFuture(UpstreamFailure.unreachable(name(), cause));
        });
  }

  /**
   * {@code request} with its whole body followed by an open end that {@code end} closes: normally
   * (the request is complete) or with a failure (pekko-http then aborts the connection). Requests
   * without a body are returned as they are.
   */
  private static HttpRequest holdBodyOpen(HttpRequest request, CompletableFuture<Void> end) {
    if (!(request.entity() instanceof HttpEntity.Strict strict) || strict.getData().isEmpty()) {
      return request;
    }
    Source<ByteString, NotUsed> openEnd =
        Source.<ByteString>maybe()
            .mapMaterializedValue(
                open -> {
                  end.whenComplete(
                      (done, failure) -> {
                        if (failure == null) {
                          open.complete(Optional.empty());
                        } else {
                          open.completeExceptionally(failure);
                        }
                      });
                  return NotUsed.getInstance();
                });
    return request.withEntity(
        HttpEntities.create(
            strict.getContentType(), strict.getData().size(), Source.single(strict.getData()).concat(openEnd)));
  }

  String url(String path) {
    return settings.baseUrl() + path;
  }

  ActorSystem<?> system() {
    return system;
  }

  private boolean countsAsFailure(Object ignoredResult, Throwable failure) {
    if (failure == null) {
      return false;
    }
    Throwable cause = Failures.unwrap(failure);
    if (cause instanceof CancellationException) {
      return false; // we gave up on the call (the client left, a DELETE, a deadline): not the runner's fault
    }
    return !(cause instanceof UpstreamFailure uf) || uf.countsAgainstBreaker();
  }

  private void refreshGauges() {
    gauges.update(breakerState().ordinal(), queued::get, running::get);
  }

  private static int powerOfTwoAtLeast(int n) {
    int p = 1;
    while (p < n) {
      p <<= 1;
    }
    return p;
  }

  private final class Job<T> {
    private final Supplier<CompletionStage<T>> call;
    private final CompletableFuture<T> promise = new CompletableFuture<>();

    Job(Supplier<CompletionStage<T>> call) {
      this.call = call;
    }

    CompletionStage<Done> run() {
      queued.decrementAndGet();
      running.incrementAndGet();
      refreshGauges();
      CompletionStage<T> outcome =
          breaker().callWithCircuitBreakerCS(
              call::get,
              (result, failure) -> countsAsFailure(result.orElse(null), failure.orElse(null)));
      return outcome.handle(
          (value, failure) -> {
            running.decrementAndGet();
            refreshGauges();
            if (failure == null) {
              promise.complete(value);
            } else {
              Throwable cause = Failures.unwrap(failure);
              if (cause instanceof CircuitBreakerOpenException) {
                cause = UpstreamFailure.breakerOpen(name(), untilTrial());
              } else if (cause instanceof TimeoutException) {
                cause = UpstreamFailure.timeout(name(), "call", settings.requestTimeout());
              }
              promise.completeExceptionally(cause);
            }
            return Done.getInstance();
          });
    }
  }
}
