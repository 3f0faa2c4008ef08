package dev.mcpstack.worker.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskStatus;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import kamon.Kamon;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.Test;

/** The documented metric names reach Prometheus through Kamon's embedded server. */
class WorkerMetricsTest {

  @Test
  void metricsAreExposedWithTheirDocumentedNamesAndTags() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Kamon.init(
        ConfigFactory.parseMap(
                Map.of(
                    "kamon.prometheus.embedded-server.hostname", "127.0.0.1",
                    "kamon.prometheus.embedded-server.port", port,
                    "kamon.metric.tick-interval", "200ms"))
            .withFallback(ConfigFactory.load()));
    ActorTestKit kit = ActorTestKit.create();
    try {
      WorkerMetrics.taskFinished(TaskKind.CHAT, TaskStatus.SUCCEEDED);
      WorkerMetrics.attemptStarted(TaskKind.EMBEDDINGS);
      WorkerMetrics.retryScheduled(TaskKind.CHAT, ErrorCode.UPSTREAM_ERROR);
      WorkerMetrics.upstreamLatency("sim", "sim-small", Duration.ofMillis(12));
      WorkerMetrics.timeToFirstToken("sim", "sim-small", Duration.ofMillis(3));
      WorkerMetrics.upstreamGauges("sim").update(2, () -> 4, () -> 1);
      WorkerMetrics.upstreamProbe("sim", Duration.ofMillis(3), false);
      WorkerMetrics.usage("sim-small", 10, 20, 70);
      WorkerMetrics.budget("0123456789ab", 0.9, 0.8);
      HttpClient http = HttpClient.newHttpClient();
      HttpRequest scrape = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build();
      TestProbe<Object> probe = kit.createTestProbe();
      probe.awaitAssert(
          Duration.ofSeconds(20),
          Duration.ofMillis(200),
          () -> {
            HttpResponse<String> r;
            try {
              r = http.send(scrape, HttpResponse.BodyHandlers.ofString());
            } catch (Exception e) {
              throw new AssertionError(e);
            }
            assertEquals(200, r.statusCode());
            String body = r.body();
            for (String expected :
                new String[] {
                  "mcp_tasks_total{", "kind=\"chat\"", "outcome=\"succeeded\"",
                  "mcp_task_attempts_total{", "mcp_task_retries_total{", "reason=\"upstream_error\"",
                  "mcp_upstream_latency_seconds_count{", "mcp_upstream_time_to_first_token_seconds_count{",
                  "mcp_upstream_breaker_state{", "mcp_upstream_queue_depth{", "mcp_upstream_in_flight{",
                  "mcp_upstream_probe_latency_seconds_count{", "mcp_upstream_probe_failures_total{",
                  "mcp_upstream_reachable{",
                  "mcp_usage_tokens_total{", "type=\"completion\"", "mcp_usage_cost_micros_total{model=\"sim-small\"} 70",
                  "mcp_key_budget_used_ratio{key=\"0123456789ab\"} 0.9", "mcp_key_budget_alert{key=\"0123456789ab\"} 1"
                }) {
              assertTrue(body.contains(expected), "missing " + expected + " in\n" + body);
            }
            return null;
          });
    } finally {
      scala.jdk.javaapi.FutureConverters.asJava(Kamon.stop()).toCompletableFuture().get(10, TimeUnit.SECONDS);
      kit.shutdownTestKit();
    }
  }
}
