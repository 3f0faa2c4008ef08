package dev.mcpstack.api;

import com.typesafe.config.Config;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskProtocol;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * A consistent copy of the H2 task journal while the stack runs (docs/adr/0011): H2's own online
 * backup ({@code BACKUP TO}, a zip of the database file) or a SQL script ({@code SCRIPT TO}, portable
 * across H2 versions), written into {@code mcp.journal.backup-directory} under a time-stamped name.
 * The database writes the file itself: with H2 embedded (a file URL) that is this JVM, which must
 * then be the worker holding the database; with an H2 server (a tcp URL) it is the server's
 * machine. PostgreSQL has its own tools (pg_dump, base backups): refused here with a pointer to them.
 */
final class JournalBackup {
  enum Format {
    ZIP(".zip"),
    SQL(".sql.zip");

    final String suffix;

    Format(String suffix) {
      this.suffix = suffix;
    }

    static Format parse(String given) {
      return switch (given.toLowerCase(Locale.ROOT)) {
        case "zip" -> ZIP;
        case "sql" -> SQL;
        default -> throw ApiError.invalid("format", "Unknown backup format '" + given + "': expected zip or sql.");
      };
    }
  }

  /** @param bytes the file's size, or -1 when the file is on an H2 server's machine */
  record Result(String file, Format format, long bytes, Instant createdAt) {}

  private static final DateTimeFormatter STAMP =
      DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss.SSS'Z'").withZone(ZoneOffset.UTC);

  private final ActorSystem<?> system;
  private final Executor blocking;

  JournalBackup(ActorSystem<?> system) {
    this.system = system;
    this.blocking = system.dispatchers().lookup(DispatcherSelector.blocking());
  }

  /** Runs the backup on the blocking dispatcher; an {@link ApiError} when this node cannot. */
  CompletionStage<Result> run(Format format) {
    Config config = system.settings().config();
    if (!config.hasPath("mcp.journal.url")) {
      return CompletableFuture.failedFuture(
          new ApiError(ErrorCode.CONFLICT, "This node has no task journal configured (mcp.journal.url).", null));
    }
    String url = config.getString("mcp.journal.url");
    String lower = url.toLowerCase(Locale.ROOT);
    if (!lower.startsWith("jdbc:h2:")) {
      return CompletableFuture.failedFuture(
          new ApiError(
              ErrorCode.CONFLICT,
              "The task journal is not H2 (" + lower.split(":", 3)[1] + "): back it up with the database's own"
                  + " tools, pg_dump or a base backup for PostgreSQL (docs/operations.md, Backup and restore).",
              null));
    }
    if (lower.startsWith("jdbc:h2:mem:")) {
      return CompletableFuture.failedFuture(
          new ApiError(ErrorCode.CONFLICT, "The task journal is an in-memory H2 database: there is nothing to back up.", null));
    }
    boolean server = lower.startsWith("jdbc:h2:tcp:") || lower.startsWith("jdbc:h2:ssl:");
    if (!server && !Cluster.get(system).selfMember().hasRole(TaskProtocol.WORKER_ROLE)) {
      return CompletableFuture.failedFuture(
          new ApiError(
              ErrorCode.CONFLICT,
              "The H2 journal is embedded in the worker that holds its file: ask that node (one with the"
                  + " worker role) for the backup.",
              null));
    }
    String directory = config.getString("mcp.journal.backup-directory");
    return CompletableFuture.supplyAsync(
        () -> backup(url, config.getString("mcp.journal.user"), config.getString("mcp.journal.password"), directory, server, format),
        blocking);
  }

  private Result backup(String url, String user, String password, String directory, boolean server, Format format) {
    Instant now = Instant.now();
    String name = "mcp-journal-" + STAMP.format(now) + format.suffix;
    String target;
    if (server) {
      target = directory.endsWith("/") ? directory + name : directory + "/" + name; // the server's path
    } else {
      Path dir = Paths.get(directory).toAbsolutePath().normalize();
      try {
        Files.createDirectories(dir);
      } catch (java.io.IOException e) {
        throw new ApiError(ErrorCode.INTERNAL, "Cannot create the backup directory " + dir + ": " + e.getMessage(), null);
      }
      target = dir.resolve(name).toString();
    }
    String quoted = "'" + target.replace("'", "''") + "'";
    String sql = format == Format.ZIP ? "BACKUP TO " + quoted : "SCRIPT TO " + quoted + " COMPRESSION ZIP";
    // IFEXISTS: never create an empty database where the journal should be
    try (Connection c = DriverManager.getConnection(url + ";IFEXISTS=TRUE", user, password);
        Statement s = c.createStatement()) {
      s.execute(sql);
    } catch (SQLException e) {
      system.log().warn("journal backup to {} failed: {}", target, e.getMessage());
      throw new ApiError(ErrorCode.UNAVAILABLE, "The journal backup failed: " + e.getMessage(), null);
    }
    long bytes = -1;
    if (!server) {
      try {
        bytes = Files.size(Paths.get(target));
      } catch (java.io.IOException e) {
        bytes = -1;
      }
    }
    system.log().info("journal backed up to {} ({} bytes, format {})", target, bytes, format.name().toLowerCase(Locale.ROOT));
    return new Result(target, format, bytes, now);
  }
}
