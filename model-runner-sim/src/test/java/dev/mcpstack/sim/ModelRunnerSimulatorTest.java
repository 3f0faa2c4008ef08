package dev.mcpstack.sim;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.model.sse.ServerSentEvent;
import org.apache.pekko.http.javadsl.unmarshalling.sse.EventStreamUnmarshalling;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ModelRunnerSimulatorTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration TIMEOUT = Duration.ofSeconds(10);

  private static ActorTestKit testKit;
  private static ModelRunnerSimulator sim;
  private static HttpClient http;

  @BeforeAll
  static void start() throws Exception {
    testKit = ActorTestKit.create("ModelRunnerSimulatorTest", ConfigFactory.parseString("""
        pekko.loggers = ["org.apache.pekko.event.slf4j.Slf4jLogger"]
        pekko.logging-filter = "org.apache.pekko.event.slf4j.Slf4jLoggingFilter"
        pekko.loglevel = WARNING
        """).withFallback(ConfigFactory.load()));
    SimulatorSettings settings =
        new SimulatorSettings("127.0.0.1", 0, List.of("sim-small", "sim-large"), 8, Faults.none());
    sim = ModelRunnerSimulator.start(testKit.system(), settings).toCompletableFuture()
        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(TIMEOUT).build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (sim != null) sim.stop().toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    if (testKit != null) testKit.shutdownTestKit();
  }

  @BeforeEach
  void resetSimulator() {
    sim.setDefaults(Faults.none());
    sim.reset();
  }

  // ------------------------------------------------------------------ helpers

  private static HttpRequest.Builder request(String path, String... headers) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(sim.baseUrl() + path)).timeout(TIMEOUT);
    if (headers.length > 0) b.headers(headers);
    return b;
  }

  private static HttpResponse<String> post(String path, String body, String... headers) throws Exception {
    return http.send(request(path, headers).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

  private static HttpResponse<String> get(String path, String... headers) throws Exception {
    return http.send(request(path, headers).GET().build(), HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode json(HttpResponse<String> response) throws IOException {
    return JSON.readTree(response.body());
  }

  private static String chatBody(String userText, String extra) {
    return """
        {"model":"sim-small","messages":[{"role":"system","content":"be brief"},\
        {"role":"user","content":"%s"}]%s}""".formatted(userText, extra);
  }

  @Test
  void aStreamCountsAsInFlightUntilItsLastEvent() throws Exception {
    HttpResponse<InputStream> response = http.send(request("/v1/chat/completions", "X-Sim-Tokens-Per-Second", "5")
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(chatBody("one two three four five six", ",\"stream\":true"))).build(),
        HttpResponse.BodyHandlers.ofInputStream());
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      assertTrue(reader.readLine().startsWith("data: ")); // the role chunk: the answer is still coming
      assertEquals(1, sim.stats().inFlight(), "the open stream is in flight");
      while (reader.readLine() != null) {
        // read to the end
      }
    }
    assertEquals(0, sim.stats().inFlight());
  }

  /** Sends a chat on a raw connection and closes it once {@code sent} says the simulator has the call. */
  private static void sendAndLeave(String body, String... headers) throws Exception {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    StringBuilder head = new StringBuilder("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "Content-Type: application/json\r\nContent-Length: " + bytes.length + "\r\n");
    for (int i = 0; i < headers.length; i += 2) head.append(headers[i]).append(": ").append(headers[i + 1]).append("\r\n");
    head.append("\r\n");
    long before = sim.stats().requests();
    try (java.net.Socket socket = new java.net.Socket("127.0.0.1", sim.port())) {
      socket.getOutputStream().write(head.toString().getBytes(StandardCharsets.US_ASCII));
      socket.getOutputStream().write(bytes);
      socket.getOutputStream().flush();
      TestProbe<Void> probe = testKit.createTestProbe();
      probe.awaitAssert(TIMEOUT, () -> {
        assertEquals(before + 1, sim.stats().requests(), "the simulator has the call");
        assertEquals(1, sim.stats().inFlight());
        return null;
      });
    } // the client leaves before the answer
  }

  @Test
  void aCallWhoseClientLeavesIsAbandonedAsARealRunnerWould() throws Exception {
    sendAndLeave(chatBody("nobody reads this", ""), "X-Sim-Latency-Ms", "30000");
    TestProbe<Void> probe = testKit.createTestProbe();
    probe.awaitAssert(TIMEOUT, () -> {
      assertEquals(1, sim.stats().abandoned(), "the non-streamed call whose client left");
      assertEquals(0, sim.stats().inFlight(), "long before its 30 s latency");
      return null;
    });
    assertEquals(499, sim.stats().recent().get(0).status());

    sendAndLeave(chatBody("one two three four five six seven eight nine ten", ",\"stream\":true"),
        "X-Sim-Tokens-Per-Second", "2");
    probe.awaitAssert(TIMEOUT, () -> {
      assertEquals(2, sim.stats().abandoned(), "the stream whose client left");
      assertEquals(0, sim.stats().inFlight());
      return null;
    });

    // answered calls on one kept-alive connection are not abandoned, and open one connection
    long connections = sim.stats().connections();
    HttpClient oneConnection = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    for (int i = 0; i < 3; i++) {
      assertEquals(200, oneConnection.send(request("/v1/chat/completions").header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(chatBody("answered " + i, ""))).build(),
          HttpResponse.BodyHandlers.ofString()).statusCode());
    }
    assertEquals(connections + 1, sim.stats().connections());
    assertEquals(2, sim.stats().abandoned());
    assertEquals(List.of(499, 499, 200, 200, 200), sim.stats().recent().stream().map(RecordedRequest::status).toList());
  }

  /** Reads SSE "data:" payloads until EOF or a transport error; the error (if any) is returned last as null. */
  private record StreamResult(List<String> data, IOException error) {}

  private static StreamResult readStream(String path, String body, String... headers) throws Exception {
    HttpResponse<InputStream> response = http.send(request(path, headers)
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
    assertEquals(200, response.statusCode());
    assertTrue(response.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
    List<String> data = new ArrayList<>();
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = reader.readLine()) != null) {
        if (line.startsWith("data: ")) data.add(line.substring("data: ".length()));
        else assertEquals("", line, "unexpected SSE line");
      }
    } catch (IOException e) {
      return new StreamResult(data, e);
    }
    return new StreamResult(data, null);
  }

  /**
   * The stream read with pekko-http's own client and SSE unmarshaller, as the worker's model-runner
   * client reads it. The unmarshalled source completes normally at EOF, [DONE] or not.
   */
  private static List<ServerSentEvent> unmarshalStream(String body, String... headers) throws Exception {
    org.apache.pekko.http.javadsl.model.HttpRequest request = org.apache.pekko.http.javadsl.model.HttpRequest
        .POST(sim.baseUrl() + "/v1/chat/completions")
        .withEntity(ContentTypes.APPLICATION_JSON, body);
    for (int i = 0; i < headers.length; i += 2) request = request.addHeader(RawHeader.create(headers[i], headers[i + 1]));
    org.apache.pekko.http.javadsl.model.HttpResponse response = Http.get(testKit.system()).singleRequest(request)
        .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    assertEquals(200, response.status().intValue());
    Source<ServerSentEvent, NotUsed> events = EventStreamUnmarshalling.fromEventsStream(testKit.system().classicSystem())
        .unmarshal(response.entity(), testKit.system())
        .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    return events.runWith(Sink.seq(), testKit.system()).toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
  }

  private static List<String> data(List<ServerSentEvent> events) {
    List<String> data = new ArrayList<>();
    for (ServerSentEvent e : events) {
      assertEquals(java.util.Optional.empty(), e.getEventType(), "no event: field, as at OpenAI");
      assertEquals(java.util.Optional.empty(), e.getId(), "no id: field, as at OpenAI");
      assertTrue(e.getRetry().isEmpty(), "no retry: field, as at OpenAI");
      data.add(e.getData());
    }
    return data;
  }

  // ------------------------------------------------------------------ chat

  @Test
  void nonStreamReplyAndUsage() throws Exception {
    HttpResponse<String> response = post("/v1/chat/completions", chatBody("hello there  world", ""));
    assertEquals(200, response.statusCode());
    JsonNode body = json(response);
    assertEquals("chat.completion", body.get("object").asText());
    assertTrue(body.get("id").asText().startsWith("chatcmpl-sim-"));
    assertEquals("sim-small", body.get("model").asText());
    JsonNode choice = body.get("choices").get(0);
    assertEquals(0, choice.get("index").asInt());
    assertEquals("assistant", choice.get("message").get("role").asText());
    assertEquals("Simulated reply to: hello there world", choice.get("message").get("content").asText());
    assertEquals("stop", choice.get("finish_reason").asText());
    assertEquals(5, body.get("usage").get("prompt_tokens").asInt()); // "be brief" + 3 words
    assertEquals(6, body.get("usage").get("completion_tokens").asInt());
    assertEquals(11, body.get("usage").get("total_tokens").asInt());
  }

  @Test
  void maxTokensTruncates() throws Exception {
    JsonNode body = json(post("/v1/chat/completions", chatBody("one two three", ",\"max_tokens\":2")));
    JsonNode choice = body.get("choices").get(0);
    assertEquals("Simulated reply", choice.get("message").get("content").asText());
    assertEquals("length", choice.get("finish_reason").asText());
    assertEquals(2, body.get("usage").get("completion_tokens").asInt());

    JsonNode newer = json(post("/v1/chat/completions", chatBody("one", ",\"max_completion_tokens\":3")));
    assertEquals("Simulated reply to:", newer.get("choices").get(0).get("message").get("content").asText());
    assertEquals("length", newer.get("choices").get(0).get("finish_reason").asText());

    JsonNode exact = json(post("/v1/chat/completions", chatBody("one", ",\"max_tokens\":4")));
    assertEquals("stop", exact.get("choices").get(0).get("finish_reason").asText());
  }

  @Test
  void streamReassemblesToTheSameTextWithUsageAndDone() throws Exception {
    String extra = ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
    StreamResult result = readStream("/v1/chat/completions", chatBody("hello there world", extra));
    assertNull(result.error());
    List<String> data = result.data();
    assertEquals("[DONE]", data.get(data.size() - 1));

    JsonNode usageChunk = JSON.readTree(data.get(data.size() - 2));
    assertEquals(0, usageChunk.get("choices").size());
    assertEquals(6, usageChunk.get("usage").get("completion_tokens").asInt());
    assertEquals(5, usageChunk.get("usage").get("prompt_tokens").asInt());

    StringBuilder text = new StringBuilder();
    String finishReason = null;
    int contentChunks = 0;
    for (String d : data.subList(0, data.size() - 2)) {
      JsonNode chunk = JSON.readTree(d);
      assertEquals("chat.completion.chunk", chunk.get("object").asText());
      JsonNode choice = chunk.get("choices").get(0);
      String content = choice.get("delta").get("content").asText();
      if (!content.isEmpty()) contentChunks++;
      text.append(content);
      if (!choice.get("finish_reason").isNull()) finishReason = choice.get("finish_reason").asText();
    }
    assertEquals("assistant", JSON.readTree(data.get(0)).get("choices").get(0).get("delta").get("role").asText());
    assertEquals(6, contentChunks);
    assertEquals("stop", finishReason);
    String nonStream = json(post("/v1/chat/completions", chatBody("hello there world", "")))
        .get("choices").get(0).get("message").get("content").asText();
    assertEquals(nonStream, text.toString());
    assertEquals(0, sim.stats().inFlight());
  }

  @Test
  void streamBytesAreOpenAisFramingWhateverAcceptSays() throws Exception {
    // OpenAI's Python SDK sends Accept: application/json on streamed requests too
    HttpResponse<String> response = post("/v1/chat/completions",
        chatBody("hello there", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
        "Accept", "application/json");
    assertEquals(200, response.statusCode());
    assertEquals("text/event-stream", response.headers().firstValue("Content-Type").orElseThrow());
    assertEquals("no-cache", response.headers().firstValue("Cache-Control").orElseThrow());
    // "data: " with its space, one line of JSON per event, a blank line after each: nothing else
    // (no event:, id: or retry: field, no heartbeat), and [DONE] last
    assertTrue(Pattern.matches("(data: \\{[^\n]*\\}\n\n){7}data: \\[DONE\\]\n\n", response.body()),
        response.body());
  }

  @Test
  void streamRoundTripsThroughPekkoHttpsSseUnmarshaller() throws Exception {
    String extra = ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
    List<String> data = data(unmarshalStream(chatBody("hello there world", extra), "Accept", "application/json"));
    // the unmarshaller reads back exactly the payloads a line reader sees after "data: "
    assertEquals(readStream("/v1/chat/completions", chatBody("hello there world", extra)).data().size(), data.size());
    assertEquals("[DONE]", data.get(data.size() - 1));
    StringBuilder text = new StringBuilder();
    for (String d : data.subList(0, data.size() - 1)) {
      JsonNode chunk = JSON.readTree(d);
      assertEquals("chat.completion.chunk", chunk.get("object").asText());
      if (chunk.get("choices").isEmpty()) assertEquals(6, chunk.get("usage").get("completion_tokens").asInt());
      else text.append(chunk.get("choices").get(0).get("delta").get("content").asText());
    }
    assertEquals("Simulated reply to: hello there world", text.toString());

    // tool calls (X-Sim-Tool-Calls) come through the same way
    List<String> tools = data(unmarshalStream(chatBody("x", TOOLS + ",\"stream\":true"), "X-Sim-Tool-Calls", "3"));
    assertEquals("[DONE]", tools.get(tools.size() - 1));
    List<String> ids = new ArrayList<>();
    for (String d : tools.subList(1, tools.size() - 1)) {
      JsonNode calls = JSON.readTree(d).get("choices").get(0).get("delta").get("tool_calls");
      if (calls != null && calls.get(0).has("id")) ids.add(calls.get(0).get("id").asText());
    }
    assertEquals(List.of("call_0", "call_1", "call_2"), ids);
    assertEquals("tool_calls",
        JSON.readTree(tools.get(tools.size() - 2)).get("choices").get(0).get("finish_reason").asText());

    // a dropped stream ends like a complete one for the unmarshaller: only the missing [DONE] tells
    List<String> dropped = data(unmarshalStream(chatBody("one two three four", ",\"stream\":true"),
        "X-Sim-Drop-After-Chunks", "2"));
    assertEquals(3, dropped.size()); // role chunk + 2 content chunks
    assertFalse(dropped.contains("[DONE]"));
    for (String d : dropped) assertEquals("chat.completion.chunk", JSON.readTree(d).get("object").asText());
    assertEquals(0, sim.stats().inFlight());
  }

  @Test
  void streamWithoutUsageAndWithTruncation() throws Exception {
    StreamResult result = readStream("/v1/chat/completions", chatBody("a b c", ",\"stream\":true,\"max_tokens\":2"));
    List<String> data = result.data();
    assertEquals("[DONE]", data.get(data.size() - 1));
    JsonNode last = JSON.readTree(data.get(data.size() - 2));
    assertEquals("length", last.get("choices").get(0).get("finish_reason").asText());
    assertEquals("reply", last.get("choices").get(0).get("delta").get("content").asText());
    assertFalse(last.has("usage"));
    assertEquals(4, data.size()); // role chunk, 2 content chunks, [DONE]
  }

  private static final String TOOLS = """
      ,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},\
      {"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}]""";

  @Test
  void toolsOfferedAreCalledInParallelWithDeterministicIdsAndArguments() throws Exception {
    JsonNode body = json(post("/v1/chat/completions", chatBody("weather in \\\"Oslo\\\"", TOOLS)));
    JsonNode choice = body.get("choices").get(0);
    assertEquals("tool_calls", choice.get("finish_reason").asText());
    assertTrue(choice.get("message").get("content").isNull());
    JsonNode calls = choice.get("message").get("tool_calls");
    assertEquals(2, calls.size());
    for (int i = 0; i < 2; i++) {
      assertEquals("call_" + i, calls.get(i).get("id").asText());
      assertEquals("function", calls.get(i).get("type").asText());
      JsonNode args = JSON.readTree(calls.get(i).get("function").get("arguments").asText());
      assertEquals("weather in \"Oslo\"", args.get("query").asText());
      assertEquals(i, args.get("call").asInt());
    }
    assertEquals("get_weather", calls.get(0).get("function").get("name").asText());
    assertEquals("get_time", calls.get(1).get("function").get("name").asText());
    assertTrue(body.get("usage").get("completion_tokens").asInt() > 2);

    // the header sets the count (cycling through the tools); 0 answers with text
    JsonNode three = json(post("/v1/chat/completions", chatBody("x", TOOLS), "X-Sim-Tool-Calls", "3"));
    JsonNode threeCalls = three.get("choices").get(0).get("message").get("tool_calls");
    assertEquals(3, threeCalls.size());
    assertEquals("get_weather", threeCalls.get(2).get("function").get("name").asText());
    JsonNode text = json(post("/v1/chat/completions", chatBody("x", TOOLS), "X-Sim-Tool-Calls", "0"));
    assertEquals("Simulated reply to: x", text.get("choices").get(0).get("message").get("content").asText());
    assertEquals(400, post("/v1/chat/completions", chatBody("x", TOOLS), "X-Sim-Tool-Calls", "many").statusCode());

    // tool_choice and parallel_tool_calls
    JsonNode none = json(post("/v1/chat/completions", chatBody("x", TOOLS + ",\"tool_choice\":\"none\"")));
    assertEquals("stop", none.get("choices").get(0).get("finish_reason").asText());
    JsonNode forced = json(post("/v1/chat/completions", chatBody("x",
        TOOLS + ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}")));
    JsonNode forcedCalls = forced.get("choices").get(0).get("message").get("tool_calls");
    assertEquals(1, forcedCalls.size());
    assertEquals("get_time", forcedCalls.get(0).get("function").get("name").asText());
    JsonNode single = json(post("/v1/chat/completions", chatBody("x", TOOLS + ",\"parallel_tool_calls\":false")));
    assertEquals(1, single.get("choices").get(0).get("message").get("tool_calls").size());
  }

  @Test
  void streamedToolCallsComeAsOpenAiDoesAndReassembleToTheNonStreamedAnswer() throws Exception {
    String extra = TOOLS + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
    StreamResult result = readStream("/v1/chat/completions", chatBody("weather in Oslo", extra));
    assertNull(result.error());
    List<String> data = result.data();
    assertEquals("[DONE]", data.get(data.size() - 1));
    JsonNode nonStream = json(post("/v1/chat/completions", chatBody("weather in Oslo", TOOLS)));
    JsonNode usageChunk = JSON.readTree(data.get(data.size() - 2));
    assertEquals(0, usageChunk.get("choices").size());
    assertEquals(nonStream.get("usage"), usageChunk.get("usage"));

    JsonNode role = JSON.readTree(data.get(0)).get("choices").get(0).get("delta");
    assertEquals("assistant", role.get("role").asText());
    List<String> ids = new ArrayList<>();
    List<String> names = new ArrayList<>();
    List<StringBuilder> arguments = new ArrayList<>();
    List<Integer> fragmentsPerCall = new ArrayList<>();
    String finishReason = null;
    for (String d : data.subList(1, data.size() - 2)) {
      JsonNode choice = JSON.readTree(d).get("choices").get(0);
      if (!choice.get("finish_reason").isNull()) {
        assertNull(finishReason, "one finish chunk, the last");
        finishReason = choice.get("finish_reason").asText();
        continue;
      }
      assertNull(finishReason, "nothing after the finish chunk");
      JsonNode calls = choice.get("delta").get("tool_calls");
      assertEquals(1, calls.size());
      JsonNode call = calls.get(0);
      int index = call.get("index").asInt();
      if (call.has("id")) { // the first delta of a call
        assertEquals(ids.size(), index);
        assertEquals("function", call.get("type").asText());
        assertEquals("", call.get("function").get("arguments").asText());
        ids.add(call.get("id").asText());
        names.add(call.get("function").get("name").asText());
        arguments.add(new StringBuilder());
        fragmentsPerCall.add(0);
      } else {
        assertEquals(ids.size() - 1, index);
        assertFalse(call.has("type"));
        assertFalse(call.get("function").has("name"));
        arguments.get(index).append(call.get("function").get("arguments").asText());
        fragmentsPerCall.set(index, fragmentsPerCall.get(index) + 1);
      }
    }
    assertEquals("tool_calls", finishReason);
    JsonNode expected = nonStream.get("choices").get(0).get("message").get("tool_calls");
    assertEquals(expected.size(), ids.size());
    for (int i = 0; i < ids.size(); i++) {
      assertEquals(expected.get(i).get("id").asText(), ids.get(i));
      assertEquals(expected.get(i).get("function").get("name").asText(), names.get(i));
      assertEquals(expected.get(i).get("function").get("arguments").asText(), arguments.get(i).toString());
      assertTrue(fragmentsPerCall.get(i) > 1, "arguments come in several fragments");
    }
    assertEquals(0, sim.stats().inFlight());
  }

  @Test
  void argumentFragmentsNeverSplitACodePoint() {
    String text = "a\uD83D\uDE00bc\uD83D\uDE00";
    List<String> parts = SimulatorRoutes.fragments(text, 2);
    assertEquals(List.of("a\uD83D\uDE00", "bc", "\uD83D\uDE00"), parts);
  }

  @Test
  void enginesPrefixesWork() throws Exception {
    assertEquals(200, post("/engines/v1/chat/completions", chatBody("hi", "")).statusCode());
    assertEquals(200, get("/engines/llama.cpp/v1/models").statusCode());
    assertEquals(200, post("/engines/v1/embeddings", "{\"model\":\"sim-small\",\"input\":\"x\"}").statusCode());
    SimulatorStats stats = sim.stats();
    assertEquals(3, stats.requests());
    assertEquals(1L, stats.requestsByPath().get("/engines/v1/chat/completions"));
    assertEquals(1L, stats.requestsByPath().get("/engines/llama.cpp/v1/models"));
    assertEquals(1L, stats.requestsByPath().get("/engines/v1/embeddings"));
  }

  @Test
  void invalidRequestsAndUnknownModel() throws Exception {
    HttpResponse<String> unknown = post("/v1/chat/completions", "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertEquals(404, unknown.statusCode());
    JsonNode error = json(unknown).get("error");
    assertEquals("model 'x' not found", error.get("message").asText());
    assertEquals("not_found_error", error.get("type").asText());
    assertEquals("model", error.get("param").asText());
    assertEquals("model_not_found", error.get("code").asText());

    HttpResponse<String> malformed = post("/v1/chat/completions", "{not json");
    assertEquals(400, malformed.statusCode());
    assertEquals("invalid_request_error", json(malformed).get("error").get("type").asText());

    HttpResponse<String> noMessages = post("/v1/chat/completions", "{\"model\":\"sim-small\"}");
    assertEquals(400, noMessages.statusCode());
    assertEquals("messages", json(noMessages).get("error").get("param").asText());

    HttpResponse<String> badHeader = post("/v1/chat/completions", chatBody("hi", ""), "X-Sim-Latency-Ms", "soon");
    assertEquals(400, badHeader.statusCode());
    assertTrue(json(badHeader).get("error").get("message").asText().contains("X-Sim-Latency-Ms"));

    assertEquals(404, post("/v1/embeddings", "{\"model\":\"nope\",\"input\":\"x\"}").statusCode());
    assertEquals(400, post("/v1/embeddings", "{\"model\":\"sim-small\",\"input\":42}").statusCode());
    assertEquals(404, get("/v1/nothing-here").statusCode());
  }

  // ------------------------------------------------------------------ embeddings and models

  @Test
  void embeddingsAreDeterministicUnitVectorsAndTrackTheLargestBatch() throws Exception {
    JsonNode batch = json(post("/v1/embeddings",
        "{\"model\":\"sim-large\",\"input\":[\"alpha beta\",\"gamma\",\"alpha beta\"]}"));
    assertEquals("list", batch.get("object").asText());
    assertEquals("sim-large", batch.get("model").asText());
    assertEquals(3, batch.get("data").size());
    assertEquals(5, batch.get("usage").get("prompt_tokens").asInt());
    assertEquals(5, batch.get("usage").get("total_tokens").asInt());
    for (int i = 0; i < 3; i++) {
      JsonNode item = batch.get("data").get(i);
      assertEquals("embedding", item.get("object").asText());
      assertEquals(i, item.get("index").asInt());
      assertEquals(8, item.get("embedding").size());
      double norm = 0;
      for (JsonNode x : item.get("embedding")) norm += x.asDouble() * x.asDouble();
      assertEquals(1.0, Math.sqrt(norm), 1e-5);
    }
    JsonNode first = batch.get("data").get(0).get("embedding");
    assertEquals(first, batch.get("data").get(2).get("embedding"));
    assertNotEquals(first, batch.get("data").get(1).get("embedding"));

    JsonNode single = json(post("/v1/embeddings", "{\"model\":\"sim-small\",\"input\":\"alpha beta\"}"));
    assertEquals(first, single.get("data").get(0).get("embedding"));
    assertEquals(3, sim.stats().maxEmbeddingBatch());
  }

  @Test
  void modelsListAndLookup() throws Exception {
    JsonNode list = json(get("/v1/models"));
    assertEquals("list", list.get("object").asText());
    assertEquals(2, list.get("data").size());
    assertEquals("sim-small", list.get("data").get(0).get("id").asText());
    assertEquals("model", list.get("data").get(0).get("object").asText());
    assertEquals("simulator", list.get("data").get(0).get("owned_by").asText());

    HttpResponse<String> one = get("/v1/models/sim-large");
    assertEquals(200, one.statusCode());
    assertEquals("sim-large", json(one).get("id").asText());

    HttpResponse<String> missing = get("/v1/models/ai/unknown");
    assertEquals(404, missing.statusCode());
    assertEquals("model 'ai/unknown' not found", json(missing).get("error").get("message").asText());
    assertEquals("ai/unknown", sim.stats().recent().get(2).model());
  }

  // ------------------------------------------------------------------ faults

  @Test
  void failFirstFromHeaders() throws Exception {
    String[] headers = {"X-Sim-Fail-Status", "503", "X-Sim-Fail-First", "2"};
    HttpResponse<String> first = post("/v1/chat/completions", chatBody("hi", ""), headers);
    assertEquals(503, first.statusCode());
    JsonNode error = json(first).get("error");
    assertEquals("api_error", error.get("type").asText());
    assertEquals("simulated_failure", error.get("code").asText());
    assertTrue(first.headers().firstValue("Retry-After").isEmpty());
    assertEquals(503, post("/v1/embeddings", "{\"model\":\"sim-small\",\"input\":\"x\"}", headers).statusCode());
    assertEquals(200, post("/v1/chat/completions", chatBody("hi", ""), headers).statusCode());
    assertEquals(200, post("/v1/chat/completions", chatBody("hi", ""), headers).statusCode());

    sim.reset();
    assertEquals(503, post("/v1/chat/completions", chatBody("hi", ""), headers).statusCode());
  }

  @Test
  void failEveryFromDefaultsWithRetryAfter() throws Exception {
    sim.setDefaults(Faults.none().withFailStatus(429).withFailEvery(3).withRetryAfter(Duration.ofMillis(1500)));
    List<Integer> statuses = new ArrayList<>();
    HttpResponse<String> failed = null;
    for (int i = 1; i <= 6; i++) {
      HttpResponse<String> r = i % 2 == 0
          ? post("/v1/embeddings", "{\"model\":\"sim-small\",\"input\":[\"a\",\"b\"]}")
          : post("/v1/chat/completions", chatBody("hi", ""));
      statuses.add(r.statusCode());
      if (r.statusCode() == 429) failed = r;
    }
    assertEquals(List.of(200, 200, 429, 200, 200, 429), statuses);
    assertNotNull(failed);
    assertEquals("2", failed.headers().firstValue("Retry-After").orElseThrow());
    assertEquals("rate_limit_error", json(failed).get("error").get("type").asText());
    // models are not fault-eligible
    assertEquals(200, get("/v1/models").statusCode());
  }

  @Test
  void everyRequestFailsWithoutFirstOrEvery() throws Exception {
    sim.setDefaults(Faults.none().withFailStatus(500));
    assertEquals(500, post("/v1/chat/completions", chatBody("a", "")).statusCode());
    assertEquals(500, post("/v1/chat/completions", chatBody("b", "")).statusCode());
    assertEquals(200, post("/v1/chat/completions", chatBody("c", ""), "X-Sim-Fail-Status", "0").statusCode());
  }

  @Test
  void plainTextErrorsWithRetryAfterHeader() throws Exception {
    HttpResponse<String> r = post("/v1/chat/completions", chatBody("hi", ""),
        "X-Sim-Fail-Status", "503", "X-Sim-Plain-Text-Errors", "true", "X-Sim-Retry-After", "3");
    assertEquals(503, r.statusCode());
    assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
    assertEquals("simulated failure: status 503", r.body());
    assertEquals("3", r.headers().firstValue("Retry-After").orElseThrow());
  }

  @Test
  void dropAfterChunksTruncatesTheStreamWithoutDone() throws Exception {
    StreamResult result = readStream("/v1/chat/completions", chatBody("one two three four", ",\"stream\":true"),
        "X-Sim-Drop-After-Chunks", "2");
    assertFalse(result.data().contains("[DONE]"));
    assertEquals(3, result.data().size()); // role chunk + 2 content chunks, then EOF
    int content = 0;
    for (String d : result.data()) {
      if (!JSON.readTree(d).get("choices").get(0).get("delta").get("content").asText().isEmpty()) content++;
    }
    assertEquals(2, content);
    // the server stays healthy and accounting is closed
    assertEquals(200, post("/v1/chat/completions", chatBody("again", "")).statusCode());
    assertEquals(0, sim.stats().inFlight());
  }

  @Test
  void hangMakesTheClientTimeOutAndTheServerKeepsAnswering() throws Exception {
    HttpRequest hung = request("/v1/chat/completions", "X-Sim-Hang", "true")
        .timeout(Duration.ofMillis(300))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(chatBody("hi", ""))).build();
    assertThrows(HttpTimeoutException.class, () -> http.send(hung, HttpResponse.BodyHandlers.ofString()));
    assertEquals(200, post("/v1/chat/completions", chatBody("next", "")).statusCode());
    assertEquals(2, sim.stats().requests());
    // the hung request never answers; its client gave up and closed the connection: abandoned
    TestProbe<Void> probe = testKit.createTestProbe();
    probe.awaitAssert(TIMEOUT, () -> {
      assertEquals(1, sim.stats().abandoned());
      assertEquals(0, sim.stats().inFlight());
      return null;
    });
  }

  @Test
  void maxInFlightCountsParallelRequests() throws Exception {
    int n = 6;
    List<CompletableFuture<HttpResponse<String>>> responses = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      responses.add(http.sendAsync(request("/v1/chat/completions", "X-Sim-Latency-Ms", "1500")
          .header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(chatBody("p" + i, ""))).build(),
          HttpResponse.BodyHandlers.ofString()));
    }
    TestProbe<Void> probe = testKit.createTestProbe();
    probe.awaitAssert(TIMEOUT, () -> {
      assertEquals(n, sim.stats().inFlight());
      return null;
    });
    for (CompletableFuture<HttpResponse<String>> r : responses) {
      assertEquals(200, r.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS).statusCode());
    }
    SimulatorStats stats = sim.stats();
    assertEquals(n, stats.maxInFlight());
    assertEquals(0, stats.inFlight());
    assertEquals(n, stats.requests());
  }

  @Test
  void latencyTimeToFirstTokenAndPacingDelayTheAnswer() throws Exception {
    long start = System.nanoTime();
    assertEquals(200, post("/v1/chat/completions", chatBody("hi", ""), "X-Sim-Latency-Ms", "200").statusCode());
    assertTrue(Duration.ofNanos(System.nanoTime() - start).toMillis() >= 190);

    start = System.nanoTime();
    StreamResult paced = readStream("/v1/chat/completions", chatBody("a b c d e", ",\"stream\":true"),
        "X-Sim-Ttft-Ms", "100", "X-Sim-Tokens-Per-Second", "50");
    // 100 ms to the first chunk, then 8 tokens at 50/s: at least 7 intervals of 20 ms
    assertTrue(Duration.ofNanos(System.nanoTime() - start).toMillis() >= 100 + 7 * 20 - 20);
    assertEquals("[DONE]", paced.data().get(paced.data().size() - 1));
  }

  // ------------------------------------------------------------------ stats and admin

  @Test
  void requestsAreRecordedWithLowerCasedHeaders() throws Exception {
    post("/v1/chat/completions", chatBody("hi", ""), "X-Custom-Thing", "yes");
    RecordedRequest r = sim.stats().recent().get(0);
    assertEquals("POST", r.method());
    assertEquals("/v1/chat/completions", r.path());
    assertEquals("sim-small", r.model());
    assertEquals(200, r.status());
    assertEquals("yes", r.headers().get("x-custom-thing"));
    assertTrue(r.arrivalNanos() <= System.nanoTime());
  }

  @Test
  void adminEndpoints() throws Exception {
    HttpResponse<String> put = http.send(request("/sim/faults").header("Content-Type", "application/json")
        .PUT(HttpRequest.BodyPublishers.ofString("{\"failStatus\":502,\"retryAfterMs\":1000}")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, put.statusCode());
    assertEquals(502, sim.defaults().failStatus());
    assertEquals(Duration.ofSeconds(1), sim.defaults().retryAfter());
    assertEquals(502, json(get("/sim/faults")).get("failStatus").asInt());
    HttpResponse<String> failed = post("/v1/chat/completions", chatBody("hi", ""));
    assertEquals(502, failed.statusCode());
    assertEquals("1", failed.headers().firstValue("Retry-After").orElseThrow());

    HttpResponse<String> bad = http.send(request("/sim/faults")
        .PUT(HttpRequest.BodyPublishers.ofString("{\"failStatuz\":502}")).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(400, bad.statusCode());

    JsonNode stats = json(get("/sim/stats"));
    assertEquals(1, stats.get("requests").asInt());
    assertEquals(1, stats.get("requestsByPath").get("/v1/chat/completions").asInt());
    assertEquals(502, stats.get("recent").get(0).get("status").asInt());

    HttpResponse<String> reset = http.send(request("/sim/reset").POST(HttpRequest.BodyPublishers.noBody()).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(204, reset.statusCode());
    assertEquals(0, sim.stats().requests());
    assertEquals(502, sim.defaults().failStatus()); // reset keeps defaults
  }

  @Test
  void stopUnbinds() throws Exception {
    ModelRunnerSimulator other = ModelRunnerSimulator.start(testKit.system(),
        new SimulatorSettings("127.0.0.1", 0, List.of("m"), 4, Faults.none()))
        .toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    String url = other.baseUrl();
    assertTrue(url.matches("http://127\\.0\\.0\\.1:\\d+"));
    HttpResponse<String> models = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/models")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals("m", JSON.readTree(models.body()).get("data").get(0).get("id").asText());
    other.stop().toCompletableFuture().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    HttpClient fresh = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    assertThrows(ConnectException.class, () -> fresh.send(
        HttpRequest.newBuilder(URI.create(url + "/v1/models")).timeout(TIMEOUT).build(),
        HttpResponse.BodyHandlers.ofString()));
  }
}
