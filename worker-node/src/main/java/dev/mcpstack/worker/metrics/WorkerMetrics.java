package dev.mcpstack.worker.metrics;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskStatus;
import java.time.Duration;
import java.util.function.IntSupplier;
import kamon.Kamon;
import kamon.metric.Counter;
import kamon.metric.Gauge;
import kamon.metric.Histogram;
import kamon.metric.MeasurementUnit;
import kamon.metric.Metric;
import kamon.tag.TagSet;

/**
 * The worker's metrics. Names and tags are an interface (docs/metrics.md); Prometheus sees them
 * with {@code _total} on counters and {@code _seconds} on time histograms. Recording works whether
 * or not Kamon's reporters were started.
 */
public final class WorkerMetrics {
  private WorkerMetrics() {}

  private static final Metric.Counter TASKS =
      Kamon.counter("mcp.tasks", "Tasks that reached a terminal state, by kind and outcome");
  private static final Metric.Counter ATTEMPTS =
      Kamon.counter("mcp.task.attempts", "Attempts started, by task kind");
  private static final Metric.Counter RETRIES =
      Kamon.counter("mcp.task.retries", "Retries scheduled, by task kind and the error that caused them");
  private static final Metric.Counter DEFERRALS =
      Kamon.counter(
          "mcp.task.deferrals",
          "Background tasks that found no runner with room and wait to try the same attempt again, by kind");
  private static final Metric.Histogram UPSTREAM_LATENCY =
      Kamon.histogram(
          "mcp.upstream.latency",
          "Time from sending a request to a model runner until its answer is complete",
          MeasurementUnit.time().nanoseconds());
  private static final Metric.Histogram UPSTREAM_TTFT =
      Kamon.histogram(
          "mcp.upstream.time.to.first.token",
          "Time from sending a streamed request until its first content token",
          MeasurementUnit.time().nanoseconds());
  private static final Metric.Counter UPSTREAM_ERRORS =
      Kamon.counter("mcp.upstream.errors", "Failed upstream calls, by upstream and error code");
  private static final Metric.Gauge BREAKER =
      Kamon.gauge("mcp.upstream.breaker.state", "Circuit breaker: 0 closed, 1 half-open, 2 open");
  private static final Metric.Gauge QUEUE_DEPTH =
      Kamon.gauge("mcp.upstream.queue.depth", "Calls waiting in an upstream's queue");
  private static final Metric.Gauge IN_FLIGHT =
      Kamon.gauge("mcp.upstream.in.flight", "Calls in flight to an upstream");
  private static final Metric.Histogram UPSTREAM_PROBE =
      Kamon.histogram(
          "mcp.upstream.probe.latency",
          "Time until an upstream answered its probe (or the probe failed), by upstream and outcome",
          MeasurementUnit.time().nanoseconds());
  private static final Metric.Counter UPSTREAM_PROBE_FAILURES =
      Kamon.counter("mcp.upstream.probe.failures", "Upstream probes that failed (refused, timed out, 5xx), by upstream");
  private static final Metric.Gauge UPSTREAM_REACHABLE =
      Kamon.gauge(
          "mcp.upstream.reachable",
          "0 when the probes found an upstream down, else 1 (also 1 before the first probe and with probes off)");

  private static final Metric.Counter TOKENS =
      Kamon.counter("mcp.usage.tokens", "Tokens used by finished tasks, by model and type (prompt, completion)");
  private static final Metric.Counter COST =
      Kamon.counter("mcp.usage.cost.micros", "Cost of finished tasks from the price table, in millionths, by model");
  private static final Metric.Gauge BUDGET_USED =
      Kamon.gauge("mcp.key.budget.used.ratio", "Share of its budget a key spent this period, by key (keys with an alert threshold only)");
  private static final Metric.Gauge BUDGET_ALERT =
      Kamon.gauge("mcp.key.budget.alert", "1 when a key spent its budget's alert share this period, by key");

  private static final Metric.Histogram JOURNAL_PROBE =
      Kamon.histogram(
          "mcp.journal.probe.latency",
          "Time to open a connection to the journal database and check it, by outcome",
          MeasurementUnit.time().nanoseconds());
  private static final Counter JOURNAL_PROBE_FAILURES =
      Kamon.counter("mcp.journal.probe.failures", "Journal checks that failed (connection refused, timeout, invalid)")
          .withoutTags();
  private static final Gauge JOURNAL_REACHABLE =
      Kamon.gauge("mcp.journal.reachable", "1 when the last journal check succeeded, else 0").withoutTags();
  private static final Gauge ACTIVE_TASKS =
      Kamon.gauge("mcp.worker.active.tasks", "Unfinished tasks this worker holds (running or waiting to retry)").withoutTags();
  private static final Gauge MAX_ACTIVE_TASKS =
      Kamon.gauge("mcp.worker.active.tasks.max", "This worker's bound on unfinished tasks (mcp.worker.tasks.max-active)")
          .withoutTags();

  /** One journal check: how long it took and whether the database answered. */
  public static void journalProbe(Duration took, boolean ok) {
    JOURNAL_PROBE.withTag("outcome", ok ? "ok" : "failed").record(Math.max(0, took.toNanos()));
    JOURNAL_REACHABLE.update(ok ? 1 : 0);
    if (!ok) {
      JOURNAL_PROBE_FAILURES.increment();
    }
  }

  /** This worker's unfinished tasks against its bound. */
  public static void activeTasks(int count, int max) {
    ACTIVE_TASKS.update(count);
    MAX_ACTIVE_TASKS.update(max);
  }

  /** Tokens and cost of one finished task (recorded once, where it finished). */
  public static void usage(String model, long promptTokens, long completionTokens, long costMicros) {
    TOKENS.withTags(TagSet.of("model", model).withTag("type", "prompt")).increment(promptTokens);
    TOKENS.withTags(TagSet.of("model", model).withTag("type", "completion")).increment(completionTokens);
    COST.withTag("model", model).increment(costMicros);
  }

  /** A key's spending against its budget's alert share ({@code alertAt} > 0). */
  public static void budget(String keyId, double usedRatio, double alertAt) {
    BUDGET_USED.withTag("key", keyId).update(usedRatio);
    BUDGET_ALERT.withTag("key", keyId).update(usedRatio >= alertAt ? 1 : 0);
  }

  private static final Gauge CACHE_ENTRIES =
      Kamon.gauge("mcp.cache.entries", "Answers the response cache partitions on this worker hold").withoutTags();
  private static final Gauge CACHE_BYTES =
      Kamon.gauge("mcp.cache.bytes", "Size of the answers the response cache partitions on this worker hold").withoutTags();
  private static final Metric.Counter CACHE_EVICTIONS =
      Kamon.counter("mcp.cache.evictions", "Answers dropped from the response cache, by reason (size, expired)");

  /** A response cache partition on this worker gained (positive) or lost entries and bytes. */
  public static void cacheHeld(long entries, long bytes) {
    if (entries > 0) {
      CACHE_ENTRIES.increment(entries);
    } else if (entries < 0) {
      CACHE_ENTRIES.decrement(-entries);
    }
    if (bytes > 0) {
      CACHE_BYTES.increment(bytes);
    } else if (bytes < 0) {
      CACHE_BYTES.decrement(-bytes);
    }
  }

  /** {@code reason}: size (the LRU bound) or expired (the TTL). */
  public static void cacheEvicted(String reason, long count) {
    if (count > 0) {
      CACHE_EVICTIONS.withTag("reason", reason).increment(count);
    }
  }

  public static void taskFinished(TaskKind kind, TaskStatus outcome) {
    TASKS
        .withTags(TagSet.of("kind", kind.wireName()).withTag("outcome", outcome.wireName()))
        .increment();
  }

  public static void attemptStarted(TaskKind kind) {
    ATTEMPTS.withTag("kind", kind.wireName()).increment();
  }

  public static void attemptDeferred(TaskKind kind) {
    DEFERRALS.withTag("kind", kind.wireName()).increment();
  }

  public static void retryScheduled(TaskKind kind, ErrorCode reason) {
    RETRIES
        .withTags(TagSet.of("kind", kind.wireName()).withTag("reason", reason.code()))
        .increment();
  }

  public static void upstreamLatency(String upstream, String model, Duration d) {
    record(UPSTREAM_LATENCY, upstream, model, d);
  }

  public static void timeToFirstToken(String upstream, String model, Duration d) {
    record(UPSTREAM_TTFT, upstream, model, d);
  }

  public static void upstreamError(String upstream, ErrorCode code) {
    UPSTREAM_ERRORS
        .withTags(TagSet.of("upstream", upstream).withTag("code", code.code()))
        .increment();
  }

  /** Per-upstream gauges, refreshed by the upstream itself whenever its state changes. */
  public static UpstreamGauges upstreamGauges(String upstream) {
    Gauge reachable = UPSTREAM_REACHABLE.withTag("upstream", upstream);
    reachable.update(1);
    return new UpstreamGauges(
        BREAKER.withTag("upstream", upstream),
        QUEUE_DEPTH.withTag("upstream", upstream),
        IN_FLIGHT.withTag("upstream", upstream),
        reachable);
  }

  /** One probe of an upstream: how long until it answered or failed, and whether it answered. */
  public static void upstreamProbe(String upstream, Duration took, boolean ok) {
    UPSTREAM_PROBE
        .withTags(TagSet.of("upstream", upstream).withTag("outcome", ok ? "ok" : "failed"))
        .record(Math.max(0, took.toNanos()));
    if (!ok) {
      UPSTREAM_PROBE_FAILURES.withTag("upstream", upstream).increment();
    }
  }

  private static void record(Metric.Histogram h, String upstream, String model, Duration d) {
    Histogram instrument = h.withTags(TagSet.of("upstream", upstream).withTag("model", model));
    instrument.record(Math.max(0, d.toNanos()));
  }

  public record UpstreamGauges(Gauge breaker, Gauge queueDepth, Gauge inFlight, Gauge reachable) {
    public void update(int breakerState, IntSupplier queued, IntSupplier running) {
      breaker.update(breakerState);
      queueDepth.update(queued.getAsInt());
      inFlight.update(running.getAsInt());
    }
  }

}
