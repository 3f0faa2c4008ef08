package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import dev.mcpstack.sim.Faults;
import dev.mcpstack.sim.ModelRunnerSimulator;
import dev.mcpstack.sim.SimulatorSettings;
import dev.mcpstack.worker.journal.Journal;
import dev.mcpstack.worker.testkit.TestNode;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.japi.function.Creator;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.http.javadsl.ServerBinding;

/**
 * A real one-node cluster (both roles, H2 in memory) running the worker and this API on an
 * ephemeral port, against a real model-runner simulator on another ephemeral port.
 */
final class ApiFixture implements AutoCloseable {
  static final ObjectMapper JSON = new ObjectMapper();
  static final Duration TIMEOUT = Duration.ofSeconds(30);
  static final String MODEL = "sim-small";

  final ActorSystem<Void> simSystem;
  final ModelRunnerSimulator sim;
  final ActorSystem<Void> node;
  final int port;
  final HttpClient client;
  /** Null for a node that joined another fixture's cluster (that fixture owns the simulator). */
  private final ActorSystem<Void> ownSimSystem;

  private ApiFixture(ActorSystem<Void> simSystem, ModelRunnerSimulator sim, ActorSystem<Void> node, int port) {
    this(simSystem, sim, node, port, simSystem);
  }

  private ApiFixture(
      ActorSystem<Void> simSystem, ModelRunnerSimulator sim, ActorSystem<Void> node, int port, ActorSystem<Void> ownSimSystem) {
    this.ownSimSystem = ownSimSystem;
    this.simSystem = simSystem;
    this.sim = sim;
    this.node = node;
    this.port = port;
    this.client =
        HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
  }

  static ApiFixture start(String name) throws Exception {
    return start(name, "");
  }

  static ApiFixture start(String name, String extraConfig) throws Exception {
    return start(name, extraConfig, "");
  }

  /** With {@code simulatorConfig} for the simulator's own actor system (its pekko-http server). */
  static ApiFixture start(String name, String extraConfig, String simulatorConfig) throws Exception {
    ActorSystem<Void> simSystem =
        ActorSystem.create(
            Behaviors.empty(),
            name + "-sim",
            ConfigFactory.parseString(simulatorConfig)
                .withFallback(ConfigFactory.parseString("pekko.actor.provider = local\npekko.loglevel = WARNING"))
                .withFallback(ConfigFactory.load()));
    ModelRunnerSimulator sim =
        ModelRunnerSimulator.start(
                simSystem, new SimulatorSettings("127.0.0.1", 0, List.of(MODEL, "sim-large"), 8, Faults.none()))
            .toCompletableFuture()
            .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    ActorSystem<Void> node = TestNode.start(name, config(sim, extraConfig));
    TestNode.awaitUp(node);
    ServerBinding binding =
        ApiNode.start(node).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    return new ApiFixture(simSystem, sim, node, binding.localAddress().getPort());
  }

  private static Config config(ModelRunnerSimulator sim, String extraConfig) {
    return TestNode.config(
        sim.baseUrl() + "/v1",
        ConfigFactory.parseString(
            "mcp.api { host = \"127.0.0.1\", port = 0, keepalive-interval = 500ms,"
                + " shutdown-deadline = 2s }\n"
                + extraConfig));
  }

  /**
   * A second api-node in this fixture's cluster: its own ActorSystem with only the api role (a
   * sharding proxy, no worker), joined to this node, serving the API on its own port.
   */
  ApiFixture joinApiNode(String extraConfig) throws Exception {
    Config config =
        ConfigFactory.parseString("pekko.cluster.roles = [api]").withFallback(config(sim, extraConfig));
    ActorSystem<Void> other = ActorSystem.create(Behaviors.empty(), node.name(), Journal.configure(config));
    Cluster.get(other).manager().tell(Join.create(Cluster.get(node).selfMember().address()));
    TestNode.awaitUp(other);
    ServerBinding binding =
        ApiNode.start(other).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    return new ApiFixture(simSystem, sim, other, binding.localAddress().getPort(), null);
  }

  /** Back to a well-behaved simulator with fresh counters. */
  void resetSimulator() {
    sim.setDefaults(Faults.none());
    sim.reset();
  }

  @Override
  public void close() throws Exception {
    node.terminate();
    node.getWhenTerminated().toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    if (ownSimSystem != null) {
      sim.stop().toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      ownSimSystem.terminate();
      ownSimSystem.getWhenTerminated().toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    }
  }

  String baseUrl() {
    return "http://127.0.0.1:" + port;
  }

  /** The official OpenAI SDK pointed at this node with {@code apiKey}, without retries of its own. */
  OpenAIClient openAi(String apiKey) {
    return OpenAIOkHttpClient.builder()
        .baseUrl(baseUrl() + "/v1")
        .apiKey(apiKey)
        .maxRetries(0)
        .timeout(TIMEOUT)
        .build();
  }

  HttpRequest.Builder request(String path, String... headers) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(baseUrl() + path)).timeout(TIMEOUT);
    if (headers.length > 0) {
      b.headers(headers);
    }
    return b;
  }

  HttpResponse<String> send(HttpRequest request) throws Exception {
    // sendAsync + get bounds the whole exchange, body included (a streamed body is not covered by
    // the request timeout)
    return client
        .sendAsync(request, HttpResponse.BodyHandlers.ofString())
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
  }

  HttpResponse<String> post(String path, String body, String... headers) throws Exception {
    return send(
        request(path, headers)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build());
  }

  HttpResponse<String> get(String path, String... headers) throws Exception {
    return send(request(path, headers).GET().build());
  }

  HttpResponse<String> delete(String path, String... headers) throws Exception {
    return send(request(path, headers).DELETE().build());
  }

  static JsonNode json(HttpResponse<String> response) throws Exception {
    return JSON.readTree(response.body());
  }

  /** The payloads of an event stream's {@code data:} lines, in order. */
  static List<String> dataEvents(String body) {
    List<String> out = new ArrayList<>();
    for (String line : body.split("\n")) {
      if (line.startsWith("data: ")) {
        out.add(line.substring(6));
      }
    }
    return out;
  }

  static String chatBody(String text) {
    return "{\"model\":\"" + MODEL + "\",\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
  }

  static String streamBody(String text, boolean includeUsage) {
    return "{\"model\":\"" + MODEL + "\",\"stream\":true"
        + (includeUsage ? ",\"stream_options\":{\"include_usage\":true}" : "")
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
  }

  /** An assertion that may throw. */
  @FunctionalInterface
  interface Check {
    void run() throws Exception;
  }

  /** Retries {@code check} until it passes, within {@code max}. */
  void eventually(Duration max, Check check) {
    await(
        max,
        () -> {
          check.run();
          return null;
        });
  }

  /** Retries {@code check} until it stops throwing (no sleeps: the test kit's await). */
  <T> T await(Duration max, Creator<T> check) {
    return TestProbe.create(node).awaitAssert(max, check);
  }
}
