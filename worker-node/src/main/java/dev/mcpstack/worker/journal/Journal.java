package dev.mcpstack.worker.journal;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;

/**
 * The task journal's database: H2 (embedded default) or PostgreSQL, chosen by {@code
 * mcp.journal.url}. {@link #configure} fills in the Slick profile and JDBC driver for that URL;
 * {@link #ensureSchema} creates the tables when missing, as an explicit, idempotent start-up step.
 */
public final class Journal {
  private static final String DB = "pekko-persistence-jdbc.shared-databases.mcp";

  private Journal() {}

  public enum Dialect {
    H2("slick.jdbc.H2Profile$", "org.h2.Driver", "db/schema-h2.sql"),
    POSTGRES("slick.jdbc.PostgresProfile$", "org.postgresql.Driver", "db/schema-postgres.sql");

    final String profile;
    final String driver;
    final String schema;

    Dialect(String profile, String driver, String schema) {
      this.profile = profile;
      this.driver = driver;
      this.schema = schema;
    }

    public static Dialect of(String url) {
      if (url.startsWith("jdbc:h2:")) {
        return H2;
      }
      if (url.startsWith("jdbc:postgresql:")) {
        return POSTGRES;
      }
      throw new IllegalArgumentException(
          "mcp.journal.url must be a jdbc:h2: or jdbc:postgresql: URL, not " + url);
    }
  }

  /** The config with the journal's Slick profile and driver set for its URL. */
  public static Config configure(Config config) {
    Dialect dialect = Dialect.of(config.getString("mcp.journal.url"));
    return ConfigFactory.parseMap(
            Map.of(DB + ".profile", dialect.profile, DB + ".db.driver", dialect.driver))
        .withFallback(config);
  }

  /** Creates the journal tables unless they exist, when {@code mcp.journal.create-schema} is on. */
  public static void ensureSchema(Config config) {
    if (!config.getBoolean("mcp.journal.create-schema")) {
      return;
    }
    Dialect dialect = Dialect.of(config.getString("mcp.journal.url"));
    String script;
    try (InputStream in = Journal.class.getClassLoader().getResourceAsStream(dialect.schema)) {
      if (in == null) {
        throw new IllegalStateException("missing schema script " + dialect.schema);
      }
      script = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalStateException("cannot read schema script " + dialect.schema, e);
    }
    try (Connection connection = connect(config);
        Statement statement = connection.createStatement()) {
      for (String sql : script.split(";")) {
        String trimmed = sql.replaceAll("(?m)^--.*$", "").trim();
        if (!trimmed.isEmpty()) {
          statement.execute(trimmed);
        }
      }
    } catch (SQLException e) {
      throw new IllegalStateException("cannot create the journal schema: " + e.getMessage(), e);
    }
  }

  static Connection connect(Config config) throws SQLException {
    return DriverManager.getConnection(
        config.getString("mcp.journal.url"),
        config.getString("mcp.journal.user"),
        config.getString("mcp.journal.password"));
  }
}
