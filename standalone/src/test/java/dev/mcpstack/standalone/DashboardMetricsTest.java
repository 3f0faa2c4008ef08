package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.sim.Faults;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import kamon.Kamon;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * The Grafana dashboard and the Prometheus alert rules shipped in deploy/compose use only metrics
 * the stack exports: a real node (both roles, H2, the simulator) serves a few requests (plain,
 * streamed, refused, retried, from a key with a budget alert), then its Prometheus endpoint is
 * scraped over HTTP until every metric name of every dashboard query and alert expression is
 * there. The seed project shipped dashboards for metrics its code never emitted; this test fails
 * instead.
 */
class DashboardMetricsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String ADMIN = "admin-token-for-the-dashboard-metrics-test-0001";
  /** Series Prometheus makes itself for every target, not exported by a node. */
  private static final Set<String> PROMETHEUS_OWN = Set.of("up");

  private static final Pattern IDENTIFIER = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");
  private static final Set<String> PROMQL_WORDS =
      Set.of(
          "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
          "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
          "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "clamp_min", "clamp_max",
          "abs", "absent", "min_over_time", "max_over_time", "avg_over_time", "sum_over_time", "time", "vector",
          "scalar", "label_replace", "predict_linear", "e", "inf", "nan");

  private final HttpClient http = HttpClient.newHttpClient();

  /** The metric names a PromQL expression reads: label matchers, groupings, ranges and strings removed. */
  static Set<String> metricNames(String expr) {
    String s = expr.replaceAll("\"(\\\\.|[^\"\\\\])*\"", "\"\"");
    s = s.replaceAll("\\{[^}]*}", " ");
    s = s.replaceAll("\\[[^\\]]*]", " ");
    s = s.replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", " ");
    Set<String> names = new TreeSet<>();
    Matcher m = IDENTIFIER.matcher(s);
    while (m.find()) {
      String word = m.group();
      boolean call = s.substring(m.end()).stripLeading().startsWith("(");
      boolean number = m.start() > 0 && (Character.isDigit(s.charAt(m.start() - 1)) || s.charAt(m.start() - 1) == '.');
      if (!call && !number && !PROMQL_WORDS.contains(word.toLowerCase())) {
        names.add(word);
      }
    }
    return names;
  }

  private static Path repository() {
    return Path.of("..").toAbsolutePath().normalize();
  }

  static Map<String, Set<String>> dashboardMetrics() throws Exception {
    Map<String, Set<String>> byPanel = new java.util.LinkedHashMap<>();
    Path dir = repository().resolve("deploy/compose/grafana/dashboards");
    List<Path> files;
    try (var list = Files.list(dir)) {
      files = list.filter(p -> p.toString().endsWith(".json")).sorted().toList();
    }
    assertFalse(files.isEmpty(), "no dashboard in " + dir);
    for (Path file : files) {
      for (JsonNode panel : JSON.readTree(file.toFile()).path("panels")) {
        for (JsonNode target : panel.path("targets")) {
          // the data source Grafana is provisioned with (grafana/provisioning/datasources)
          assertEquals("mcp-prometheus", target.path("datasource").path("uid").asText(), panel.path("title").asText());
          byPanel
              .computeIfAbsent(file.getFileName() + ": " + panel.path("title").asText(), k -> new TreeSet<>())
              .addAll(metricNames(target.path("expr").asText()));
        }
      }
    }
    return byPanel;
  }

  @SuppressWarnings("unchecked")
  static Map<String, Set<String>> alertMetrics() throws Exception {
    Map<String, Set<String>> byAlert = new java.util.LinkedHashMap<>();
    Object doc =
        new Yaml(new SafeConstructor(new LoaderOptions()))
            .load(Files.readString(repository().resolve("deploy/compose/alerts.yml")));
    for (Map<String, Object> group : (List<Map<String, Object>>) ((Map<String, Object>) doc).get("groups")) {
      for (Map<String, Object> rule : (List<Map<String, Object>>) group.get("rules")) {
        byAlert.put("alert " + rule.get("alert"), metricNames(String.valueOf(rule.get("expr"))));
      }
    }
    return byAlert;
  }

  @Test
  void composeProvisionsTheDashboardsAndLoadsTheRules() throws Exception {
    Path compose = repository().resolve("deploy/compose");
    String services = Files.readString(compose.resolve("docker-compose.yml"));
    assertTrue(services.contains("./grafana/dashboards:/etc/grafana/dashboards:ro"), "dashboards mounted");
    assertTrue(services.contains("./alerts.yml:/etc/prometheus/alerts.yml:ro"), "rules mounted");
    assertTrue(
        Files.readString(compose.resolve("grafana/provisioning/dashboards/mcp-stack.yml")).contains("path: /etc/grafana/dashboards"),
        "the provider reads the mounted dashboards");
    assertTrue(Files.readString(compose.resolve("prometheus.yml")).contains("- /etc/prometheus/alerts.yml"), "rule_files");
  }

  @Test
  void theParserFindsMetricNamesOnly() {
    assertEquals(
        Set.of("mcp_a_bucket", "mcp_b_total"),
        metricNames(
            "histogram_quantile(0.95, sum by (le, model) (rate(mcp_a_bucket{route!~\"/v1/x|y\"}[$__rate_interval])))"
                + " / clamp_min(sum(rate(mcp_b_total[5m])), 1e-9) > 0.05 and on(instance) vector(1)"));
    assertEquals(Set.of("up"), metricNames("up{job=~\"mcp-stack.*\"} == 0"));
  }

  @Test
  void everyMetricOfTheDashboardAndTheAlertsIsExported() throws Exception {
    Map<String, Set<String>> used = new java.util.LinkedHashMap<>(dashboardMetrics());
    used.putAll(alertMetrics());
    assertTrue(used.values().stream().mapToInt(Set::size).sum() > 20, "too few metrics found: " + used);

    int metricsPort;
    try (ServerSocket s = new ServerSocket(0)) {
      metricsPort = s.getLocalPort();
    }
    Kamon.init(
        ConfigFactory.parseMap(
                Map.of(
                    "kamon.prometheus.embedded-server.hostname", "127.0.0.1",
                    "kamon.prometheus.embedded-server.port", metricsPort,
                    "kamon.metric.tick-interval", "300ms"))
            .withFallback(ConfigFactory.load()));
    Path dataDir = Files.createTempDirectory("mcp-dashboard-test");
    Node node =
        Node.start(
            Node.config(
                ConfigFactory.parseString(
                        "mcp.worker.prices { \"sim-small\" { prompt = 1, completion = 2 } }\n"
                            + "mcp.metrics.sample-interval = 300ms")
                    .withFallback(
                        ConfigFactory.parseMap(
                            Map.of(
                                "mcp.journal.url", "jdbc:h2:file:" + dataDir.resolve("journal").toAbsolutePath() + ";DB_CLOSE_DELAY=-1",
                                "mcp.api.port", 0,
                                "mcp.api.host", "127.0.0.1",
                                "mcp.api.admin-token", ADMIN,
                                "mcp.simulator.port", 0,
                                "pekko.remote.artery.canonical.port", 0,
                                "pekko.coordinated-shutdown.exit-jvm", "off",
                                "pekko.cluster.jmx.multi-mbeans-in-same-jvm", "on",
                                "mcp.node.management.enabled", "off",
                                "pekko.loglevel", "WARNING")))));
    try {
      int port = node.port();
      String chat = "{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
      // an upstream failure first: an upstream error, a retry, then success
      node.simulator().reset();
      node.simulator().setDefaults(Faults.none().withFailStatus(503).withFailFirst(1));
      assertEquals(200, call(port, "POST", "/v1/chat/completions", chat, null).statusCode());
      node.simulator().setDefaults(Faults.none());
      HttpResponse<String> stream =
          call(
              port, "POST", "/v1/chat/completions",
              "{\"model\":\"sim-small\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}",
              null);
      assertEquals(200, stream.statusCode());
      assertTrue(stream.body().contains("[DONE]"), stream.body());
      assertEquals(400, call(port, "POST", "/v1/chat/completions", "{not json", null).statusCode());
      // a key whose budget has an alert threshold: its spending is a gauge
      HttpResponse<String> created =
          call(
              port, "POST", "/admin/keys",
              "{\"tenant\":\"metered\",\"budget\":{\"amount\":1000,\"period\":\"month\",\"alert_at\":0.5}}",
              ADMIN);
      assertEquals(201, created.statusCode(), created.body());
      String key = JSON.readTree(created.body()).path("key").asText();
      TestProbe<Object> probe = TestProbe.create(node.system());
      probe.awaitAssert(
          Duration.ofSeconds(20),
          Duration.ofMillis(200),
          () -> {
            HttpResponse<String> r = call(port, "POST", "/v1/chat/completions", chat, key);
            assertEquals(200, r.statusCode(), r.body());
            return null;
          });

      HttpRequest scrape =
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build();
      probe.awaitAssert(
          Duration.ofSeconds(30),
          Duration.ofMillis(300),
          () -> {
            String body;
            try {
              body = http.send(scrape, HttpResponse.BodyHandlers.ofString()).body();
            } catch (Exception e) {
              throw new AssertionError(e);
            }
            Set<String> exported = exportedNames(body);
            List<String> missing = new ArrayList<>();
            used.forEach(
                (where, names) ->
                    names.stream()
                        .filter(n -> !exported.contains(n) && !PROMETHEUS_OWN.contains(n))
                        .forEach(n -> missing.add(where + " uses " + n)));
            assertTrue(missing.isEmpty(), "not exported:\n" + String.join("\n", missing) + "\nexported: " + exported);
            // and they say what happened
            assertTrue(
                body.contains("route=\"/v1/chat/completions\"") && body.contains("status=\"200\""), "chat requests");
            assertTrue(body.contains("mcp_http_rejected_total{reason=\"invalid_request\"}"), "the refused request");
            return null;
          });
    } finally {
      node.stop(Duration.ofSeconds(30));
      scala.jdk.javaapi.FutureConverters.asJava(Kamon.stop()).toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  private HttpResponse<String> call(int port, String method, String path, String body, String bearer) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30));
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
    try {
      return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static Set<String> exportedNames(String exposition) {
    Set<String> names = new TreeSet<>();
    for (String line : exposition.split("\n")) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      Matcher m = IDENTIFIER.matcher(line);
      if (m.lookingAt()) {
        names.add(m.group());
      }
    }
    return names;
  }
}
