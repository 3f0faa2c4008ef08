package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.Test;

/**
 * The embedded default as a user runs it (both roles, H2 file journal, built-in simulator): a
 * stored completion and a finished task survive a full stop and start of the stack.
 */
class StandaloneRestartTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final HttpClient http = HttpClient.newHttpClient();

  private static Config config(Path dataDir) {
    return Node.config(
            ConfigFactory.parseMap(
                Map.of(
                    "mcp.journal.url", "jdbc:h2:file:" + dataDir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_DELAY=-1",
                    "mcp.api.port", 0,
                    "mcp.api.host", "127.0.0.1",
                    "mcp.simulator.port", 0,
                    "pekko.remote.artery.canonical.port", 0,
                    "pekko.coordinated-shutdown.exit-jvm", "off",
                    "pekko.cluster.jmx.multi-mbeans-in-same-jvm", "on",
                    "mcp.node.management.enabled", "off",
                    "pekko.loglevel", "WARNING")));
  }

  private JsonNode call(String method, int port, String path, String body, int expectedStatus)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30));
    if (body != null) {
      b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
    } else {
      b.method(method, HttpRequest.BodyPublishers.noBody());
    }
    HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(expectedStatus, r.statusCode(), r.body());
    return JSON.readTree(r.body());
  }

  @Test
  void storedCompletionsAndFinishedTasksSurviveARestart() throws Exception {
    Path dataDir = Files.createTempDirectory("mcp-standalone-test");
    Config config = config(dataDir);
    String completionId;
    String taskId;

    Node first = Node.start(config);
    try {
      JsonNode completion =
          call(
              "POST",
              first.port(),
              "/v1/chat/completions",
              "{\"model\":\"sim-small\",\"store\":true,\"messages\":[{\"role\":\"user\",\"content\":\"remember me\"}]}",
              200);
      completionId = completion.path("id").asText();
      assertEquals("Simulated reply to: remember me", completion.at("/choices/0/message/content").asText());
      JsonNode task =
          call(
              "POST",
              first.port(),
              "/v1/tasks",
              "{\"kind\":\"chat\",\"request\":{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"later\"}]}}",
              202);
      taskId = task.path("id").asText();
      awaitTaskStatus(first, taskId, "succeeded");
    } finally {
      first.stop(Duration.ofSeconds(60));
    }

    Node second = Node.start(config);
    try {
      JsonNode stored = call("GET", second.port(), "/v1/chat/completions/" + completionId, null, 200);
      assertEquals("Simulated reply to: remember me", stored.at("/choices/0/message/content").asText());
      assertEquals(completionId, stored.path("id").asText());
      JsonNode task = call("GET", second.port(), "/v1/tasks/" + taskId, null, 200);
      assertEquals("succeeded", task.path("status").asText());
      assertNotNull(task.path("result"));
      assertEquals("Simulated reply to: later", task.at("/result/choices/0/message/content").asText());
    } finally {
      second.stop(Duration.ofSeconds(60));
    }
  }

  private void awaitTaskStatus(Node stack, String taskId, String status) {
    TestProbe<Object> probe = TestProbe.create(stack.system());
    probe.awaitAssert(
        Duration.ofSeconds(30),
        Duration.ofMillis(100),
        () -> {
          try {
            assertEquals(status, call("GET", stack.port(), "/v1/tasks/" + taskId, null, 200).path("status").asText());
          } catch (AssertionError e) {
            throw e;
          } catch (Exception e) {
            throw new AssertionError(e);
          }
          return null;
        });
  }
}
