package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.sim.Faults;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.File;
import java.net.ServerSocket;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The backup and restore procedure of docs/operations.md, end to end on both journals (issue 10,
 * docs/adr/0011): tasks finished, a stored completion and tasks waiting for a retry; the intake
 * paused, a backup taken (H2: {@code POST /admin/journal/backup}; PostgreSQL: pg_dump), the intake
 * resumed and one more task accepted; the node stopped, the database wiped and restored, a node
 * started on it: the stored completion is served, finished tasks read back, the waiting tasks
 * resume and finish once (one runner call each, one terminal event each), and the task accepted
 * after the backup is not there (what a restore loses).
 */
class BackupRestoreTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String ADMIN = "backup-test-admin-token-0123456789abcdef";
  private static final String TASK =
      "{\"kind\":\"chat\",\"request\":{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}}";
  private static final String STORED =
      "{\"model\":\"sim-small\",\"store\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}";
  /** The runner's Retry-After for the waiting tasks: they still wait when the backup is taken. */
  private static final Duration RETRY_AFTER = Duration.ofSeconds(10);
  private static final int WAITING = 2;

  private final LoopbackHttp loopback = new LoopbackHttp();

  /** What differs between the journals: how to back up, wipe and restore. */
  private interface Journal {
    Map<String, Object> settings();

    /** Takes the backup while the node runs. */
    void backup(Node node, int port) throws Exception;

    /** Called with the node stopped: the database wiped, then restored from the backup. */
    void wipeAndRestore() throws Exception;

    Connection connect() throws Exception;
  }

  @Test
  void anH2JournalIsRestoredFromItsOnlineBackup() throws Exception {
    Path dir = Files.createTempDirectory("mcp-backup-h2");
    String url = "jdbc:h2:file:" + dir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_DELAY=-1";
    Path backups = dir.resolve("backups");
    Path[] taken = new Path[1];
    scenario(
        new Journal() {
          @Override
          public Map<String, Object> settings() {
            return Map.of("mcp.journal.url", url, "mcp.journal.backup-directory", backups.toString());
          }

          @Override
          public void backup(Node node, int port) throws Exception {
            Map<String, String> auth = Map.of("Authorization", "Bearer " + ADMIN);
            assertEquals(400, loopback.send("POST", port, "/admin/journal/backup?format=tar", null, auth).statusCode());
            HttpResponse<String> r = loopback.send("POST", port, "/admin/journal/backup", null, auth);
            assertEquals(201, r.statusCode(), r.body());
            JsonNode body = JSON.readTree(r.body());
            assertEquals("zip", body.path("format").asText());
            taken[0] = Path.of(body.path("file").asText());
            assertTrue(taken[0].startsWith(backups), body.toString());
            assertEquals(Files.size(taken[0]), body.path("bytes").asLong());
            System.out.printf("backup (h2): %s, %d bytes%n", taken[0].getFileName(), Files.size(taken[0]));
          }

          @Override
          public void wipeAndRestore() throws Exception {
            // DB_CLOSE_DELAY=-1 keeps the database open in this JVM after the node stopped: close it
            // as a process exit would, so the files are all there is
            try (Connection c = connect(); Statement s = c.createStatement()) {
              s.execute("SHUTDOWN");
            }
            try (Stream<Path> files = Files.list(dir)) {
              for (Path f : files.filter(p -> p.getFileName().toString().startsWith("journal")).toList()) {
                Files.delete(f);
              }
            }
            org.h2.tools.Restore.execute(taken[0].toString(), dir.toString(), "journal");
          }

          @Override
          public Connection connect() throws Exception {
            return DriverManager.getConnection(url + ";IFEXISTS=TRUE", "mcp", "");
          }
        });
  }

  @Test
  void aPostgresJournalIsRestoredFromPgDump() throws Exception {
    assumeTrue(new File("/usr/bin/pg_dump").canExecute() || onPath("pg_dump"), "pg_dump is not installed");
    Path dir = Files.createTempDirectory("mcp-backup-pg");
    int pgPort;
    try (ServerSocket s = new ServerSocket(0)) {
      pgPort = s.getLocalPort();
    }
    EmbeddedPostgres[] postgres = {postgres(dir.resolve("data"), pgPort)};
    String url = postgres[0].getJdbcUrl("postgres", "postgres");
    Path dump = dir.resolve("journal.dump");
    try {
      scenario(
          new Journal() {
            @Override
            public Map<String, Object> settings() {
              return Map.of("mcp.journal.url", url, "mcp.journal.user", "postgres", "mcp.journal.password", "postgres");
            }

            @Override
            public void backup(Node node, int port) throws Exception {
              // the admin backup is H2's: on PostgreSQL it points to pg_dump
              HttpResponse<String> refused =
                  loopback.send("POST", port, "/admin/journal/backup", null, Map.of("Authorization", "Bearer " + ADMIN));
              assertEquals(409, refused.statusCode(), refused.body());
              assertTrue(refused.body().contains("pg_dump"), refused.body());
              run("pg_dump", "-h", "127.0.0.1", "-p", String.valueOf(pgPort), "-U", "postgres",
                  "--format=custom", "--file=" + dump, "postgres");
              System.out.printf("backup (postgres): pg_dump, %d bytes%n", Files.size(dump));
            }

            @Override
            public void wipeAndRestore() throws Exception {
              postgres[0].close();
              deleteTree(dir.resolve("data"));
              postgres[0] = postgres(dir.resolve("data"), pgPort); // a new, empty cluster
              try (Connection c = connect(); Statement s = c.createStatement();
                  ResultSet r = s.executeQuery("SELECT count(*) FROM pg_tables WHERE tablename = 'event_journal'")) {
                r.next();
                assertEquals(0, r.getInt(1), "the wiped database has no journal");
              }
              run("pg_restore", "-h", "127.0.0.1", "-p", String.valueOf(pgPort), "-U", "postgres",
                  "--no-owner", "--exit-on-error", "-d", "postgres", dump.toString());
            }

            @Override
            public Connection connect() throws Exception {
              return DriverManager.getConnection(url, "postgres", "postgres");
            }
          });
    } finally {
      postgres[0].close();
    }
  }

  private void scenario(Journal journal) throws Exception {
    Config config = config(journal.settings());
    List<String> finished = new ArrayList<>();
    List<String> waiting = new ArrayList<>();
    String stored;
    String lost;

    Node first = Node.start(config);
    try {
      int port = first.port();
      awaitTrue("ready", Duration.ofSeconds(30), () -> loopback.send("GET", port, "/health/ready", null, Map.of()).statusCode() == 200);
      for (int i = 0; i < 2; i++) {
        finished.add(loopback.post(port, "/v1/tasks", TASK.formatted("finished " + i), 202).path("id").asText());
      }
      stored = loopback.post(port, "/v1/chat/completions", STORED.formatted("stored"), 200).path("id").asText();
      for (String id : finished) {
        awaitTrue("task " + id + " succeeded", Duration.ofSeconds(30), () -> "succeeded".equals(task(port, id).path("status").asText()));
      }

      // tasks the runner turns away with a Retry-After: they wait for their next attempt
      first.simulator().setDefaults(Faults.none().withFailStatus(503).withRetryAfter(RETRY_AFTER));
      for (int i = 0; i < WAITING; i++) {
        waiting.add(loopback.post(port, "/v1/tasks", TASK.formatted("waiting " + i), 202).path("id").asText());
      }
      for (String id : waiting) {
        awaitTrue("task " + id + " waiting for a retry", Duration.ofSeconds(30), () -> !task(port, id).path("next_attempt_at").isNull());
      }

      // pause: new journaled work is refused at once, cluster-wide; the running tasks go on
      JsonNode paused = admin("POST", port, "/admin/intake/pause", 200);
      assertTrue(paused.path("paused").asBoolean(), paused.toString());
      assertFalse(paused.path("accepting").asBoolean(), paused.toString());
      HttpResponse<String> refused = loopback.send("POST", port, "/v1/tasks", TASK.formatted("while paused"), Map.of());
      assertEquals(503, refused.statusCode(), refused.body());
      assertTrue(refused.headers().firstValue("Retry-After").isPresent(), "Retry-After on the 503");
      JsonNode error = JSON.readTree(refused.body()).path("error");
      assertEquals("service_unavailable", error.path("code").asText(), refused.body());
      assertTrue(error.path("message").asText().contains("paused"), refused.body());
      assertEquals(503, loopback.send("POST", port, "/v1/chat/completions", STORED.formatted("paused"), Map.of()).statusCode());
      for (String id : waiting) {
        assertEquals(200, loopback.send("GET", port, "/v1/tasks/" + id, null, Map.of()).statusCode(), "reads go on while paused");
      }

      journal.backup(first, port);

      JsonNode resumed = admin("POST", port, "/admin/intake/resume", 200);
      assertFalse(resumed.path("paused").asBoolean(), resumed.toString());
      assertTrue(admin("GET", port, "/admin/intake", 200).path("accepting").asBoolean());
      // accepted after the backup: a restore of that backup cannot know it
      lost = loopback.post(port, "/v1/tasks", TASK.formatted("after the backup"), 202).path("id").asText();
    } finally {
      first.stop(Duration.ofSeconds(60));
    }

    journal.wipeAndRestore();

    Node second = Node.start(config);
    try {
      int port = second.port();
      long startedAt = System.currentTimeMillis();
      JsonNode completion = get(port, "/v1/chat/completions/" + stored);
      assertEquals("Simulated reply to: stored", completion.at("/choices/0/message/content").asText(), completion.toString());
      for (int i = 0; i < finished.size(); i++) {
        JsonNode t = task(port, finished.get(i));
        assertEquals("succeeded", t.path("status").asText(), t.toString());
        assertEquals("Simulated reply to: finished " + i, t.at("/result/choices/0/message/content").asText(), t.toString());
      }
      for (int i = 0; i < waiting.size(); i++) {
        String id = waiting.get(i);
        awaitTrue("waiting task " + id + " succeeded after the restore", Duration.ofSeconds(60),
            () -> "succeeded".equals(task(port, id).path("status").asText()));
        assertEquals("Simulated reply to: waiting " + i, task(port, id).at("/result/choices/0/message/content").asText());
      }
      System.out.printf("restore: the %d waiting tasks finished %d ms after the restored node started%n",
          waiting.size(), System.currentTimeMillis() - startedAt);
      assertEquals(404, loopback.send("GET", port, "/v1/tasks/" + lost, null, Map.of()).statusCode(), "a task accepted after the backup");

      long chatCalls = second.simulator().stats().requestsByPath().entrySet().stream()
          .filter(e -> e.getKey().endsWith("/chat/completions")).mapToLong(Map.Entry::getValue).sum();
      assertEquals(WAITING, chatCalls, "runner calls after the restore: one per waiting task");
      Map<String, Integer> terminal = terminalEvents(journal);
      for (String id : waiting) {
        assertEquals(1, terminal.getOrDefault("Task|" + id, 0), "terminal events of " + id + ": " + terminal);
      }
      for (String id : finished) {
        assertEquals(1, terminal.getOrDefault("Task|" + id, 0), "terminal events of " + id + ": " + terminal);
      }
    } finally {
      second.stop(Duration.ofSeconds(60));
    }
  }

  private static Config config(Map<String, Object> journal) {
    Map<String, Object> settings = new HashMap<>(journal);
    settings.putAll(
        Map.of(
            "mcp.api.port", 0,
            "mcp.api.host", "127.0.0.1",
            "mcp.api.admin-token", ADMIN,
            "mcp.simulator.port", 0,
            "pekko.remote.artery.canonical.port", 0,
            "pekko.coordinated-shutdown.exit-jvm", "off",
            "pekko.cluster.jmx.multi-mbeans-in-same-jvm", "on",
            "mcp.node.management.enabled", "off",
            "pekko.loglevel", "WARNING"));
    return Node.config(ConfigFactory.parseMap(settings));
  }

  private static EmbeddedPostgres postgres(Path dataDir, int port) throws Exception {
    return EmbeddedPostgres.builder().setPort(port).setDataDirectory(dataDir).setCleanDataDirectory(false).start();
  }

  /** Terminal events (succeeded, failed, cancelled) per persistence id, read from the journal. */
  private static Map<String, Integer> terminalEvents(Journal journal) throws Exception {
    Map<String, Integer> counts = new HashMap<>();
    try (Connection c = journal.connect();
        Statement s = c.createStatement();
        ResultSet r =
            s.executeQuery(
                "SELECT \"persistence_id\", count(*) FROM \"event_journal\" WHERE \"event_ser_manifest\" LIKE '%TaskSucceeded'"
                    + " OR \"event_ser_manifest\" LIKE '%TaskFailed' OR \"event_ser_manifest\" LIKE '%TaskCancelled'"
                    + " GROUP BY \"persistence_id\"")) {
      while (r.next()) {
        counts.put(r.getString(1), r.getInt(2));
      }
    }
    return counts;
  }

  private static boolean onPath(String command) {
    String path = System.getenv("PATH");
    return path != null
        && Stream.of(path.split(File.pathSeparator)).anyMatch(d -> new File(d, command).canExecute());
  }

  private static void run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String output = new String(p.getInputStream().readAllBytes());
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), String.join(" ", command) + " did not end");
    assertEquals(0, p.exitValue(), String.join(" ", command) + ": " + output);
  }

  private static void deleteTree(Path root) throws Exception {
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  @FunctionalInterface
  private interface Check {
    boolean ok() throws Exception;
  }

  /** Polls {@code check} every 100 ms until it holds, failing after {@code deadline}. */
  private static void awaitTrue(String what, Duration deadline, Check check) throws Exception {
    long end = System.nanoTime() + deadline.toNanos();
    Exception last = null;
    while (System.nanoTime() < end) {
      try {
        if (check.ok()) {
          return;
        }
      } catch (Exception e) {
        last = e;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("not within " + deadline.toSeconds() + " s: " + what, last);
  }

  private JsonNode task(int port, String id) throws Exception {
    return get(port, "/v1/tasks/" + id);
  }

  private JsonNode get(int port, String path) throws Exception {
    HttpResponse<String> r = loopback.send("GET", port, path, null, Map.of());
    assertEquals(200, r.statusCode(), path + ": " + r.body());
    return JSON.readTree(r.body());
  }

  private JsonNode admin(String method, int port, String path, int expected) throws Exception {
    HttpResponse<String> r = loopback.send(method, port, path, null, Map.of("Authorization", "Bearer " + ADMIN));
    assertEquals(expected, r.statusCode(), path + ": " + r.body());
    return JSON.readTree(r.body());
  }


}
