package dev.mcpstack.worker.journal;

import com.typesafe.config.Config;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;

/**
 * Whether the journal database answers. Readiness is asked often (every probe of every api-node),
 * so one answer serves for {@link #FRESH}; the check itself runs on the blocking-IO executor.
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
    try (Connection c = Journal.connect(config)) {
      return c.isValid(2);
    } catch (SQLException e) {
      return false;
    }
  }
}
