package dev.mcpstack.worker.journal;

import com.typesafe.config.Config;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import dev.mcpstack.worker.metrics.WorkerMetrics;

/**
 * Whether the journal database answers. Readiness is asked often (every probe of every api-node),
 * so one answer serves for {@link #FRESH}; the check itself runs on the blocking-IO executor. Every
 * check is a metric ({@link WorkerMetrics#journalProbe}); nodes also check periodically for it.
 */
public final class JournalHealth {
  static final Duration FRESH = Duration.ofSeconds(5);

  private final Config config;
  private final Executor blocking;
  private CompletableFuture<Boolean> last;
  private long lastAt;

  public JournalHealth(Config config, Executor blocking) {
    this.config = config;
    this.blocking = blocking;
  }

  public synchronized CompletionStage<Boolean> reachable() {
    long now = System.nanoTime();
    if (last == null || now - lastAt > FRESH.toNanos()) {
      last = CompletableFuture.supplyAsync(this::check, blocking);
      lastAt = now;
    }
    return last;
  }

  private boolean check() {
    long start = System.nanoTime();
    boolean ok;
    try (Connection c = Journal.connect(config)) {
      ok = c.isValid(2);
    } catch (SQLException e) {
      ok = false;
    }
    WorkerMetrics.journalProbe(Duration.ofNanos(System.nanoTime() - start), ok);
    return ok;
  }
}
