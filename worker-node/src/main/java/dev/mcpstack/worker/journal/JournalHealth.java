package dev.mcpstack.worker.journal;

import com.typesafe.config.Config;
import java.sql.Connection;
import java.sql.SQLException;

/** Whether the journal database answers; a blocking call for the blocking-IO dispatcher. */
public final class JournalHealth {
  private JournalHealth() {}

  public static boolean reachable(Config config) {
    try (Connection c = Journal.connect(config)) {
      return c.isValid(2);
    } catch (SQLException e) {
      return false;
    }
  }
}
