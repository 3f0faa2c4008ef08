package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.sim.Faults;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Many streamed chats open at once, the simulator streaming slowly: every stream ends with [DONE]
 * and carries exactly the frames the runner sent (no frame lost, none repeated, none from another
 * stream). Each stream asks about its own number, so a frame delivered to the wrong client shows
 * as wrong content. Once through a node with both roles (the relay stays in one JVM), once through
 * an api-only node of the same cluster (every frame crosses Artery, as in production). At this
 * size the relay keeps up; the benchmark with 1,000 and 10,000 streams, and where the relay across
 * nodes starts losing frames, is bench/streams.sh (docs/benchmarks.md).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ManyStreamsTest {
  private static final int STREAMS = 200;
  /** Words after the stream's own number: the reply is "Simulated reply to: stream-i w1 .. w11". */
  private static final int FILLER_WORDS = 11;
  /** Each stream lasts about (3 + 1 + 11 - 1) / 5 s = 2.8 s: slow enough for all to be open at once. */
  private static final double TOKENS_PER_SECOND = 5;
  /**
   * The upstream's connection pool and concurrency cap must take every stream at once (the default
   * of 16 would queue them behind each other). The connect timeout is generous because a burst of
   * connections may overflow a listen backlog on a busy machine: a dropped SYN is retried after 1 s.
   */
  private static final String CONFIG =
      "mcp.worker.upstream-defaults { max-concurrency = 512, connect-timeout = 10s }\n"
          + "pekko.http.server.backlog = 1024";

  private ApiFixture both;
  private ApiFixture apiOnly;

  @BeforeAll
  void start() throws Exception {
    both = ApiFixture.start("ManyStreamsTest", CONFIG);
    apiOnly = both.joinApiNode(CONFIG);
  }

  @AfterAll
  void stop() throws Exception {
    if (apiOnly != null) {
      apiOnly.close();
    }
    if (both != null) {
      both.close();
    }
  }

  @BeforeEach
  void resetSimulator() {
    both.resetSimulator();
  }

  @Test
  void everyStreamThroughOneNodeEndsWithDoneAndLosesNoFrame() throws Exception {
    manyStreams(both);
  }

  @Test
  void everyStreamRelayedAcrossNodesEndsWithDoneAndLosesNoFrame() throws Exception {
    manyStreams(apiOnly);
  }

  private void manyStreams(ApiFixture api) throws Exception {
    Reference ref = reference();
    both.sim.setDefaults(Faults.none().withTokensPerSecond(TOKENS_PER_SECOND));
    List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
    for (int i = 0; i < STREAMS; i++) {
      calls.add(
          api.client.sendAsync(
              api.request("/v1/chat/completions")
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString(body(i)))
                  .build(),
              HttpResponse.BodyHandlers.ofString()));
    }
    Map<Integer, String> broken = new LinkedHashMap<>();
    for (int i = 0; i < STREAMS; i++) {
      HttpResponse<String> response =
          calls.get(i).get(ApiFixture.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      String problem = problem(i, response, ref);
      if (problem != null) {
        broken.put(i, problem);
      }
    }
    assertTrue(broken.isEmpty(), broken.size() + " of " + STREAMS + " streams broken: " + broken);
  }

  /** What a correct stream looks like: the same request sent straight to the simulator, unpaced. */
  private Reference reference() throws Exception {
    HttpResponse<String> direct =
        both.send(
            HttpRequest.newBuilder(URI.create(both.sim.baseUrl() + "/v1/chat/completions"))
                .timeout(ApiFixture.TIMEOUT)
                .header("Content-Type", "application/json")
                .header("X-Sim-Tokens-Per-Second", "0")
                .POST(HttpRequest.BodyPublishers.ofString(body(0)))
                .build());
    assertEquals(200, direct.statusCode(), direct.body());
    Stream seen = Stream.parse(direct.body());
    assertEquals(expectedContent(0), seen.content, "the simulator's deterministic reply");
    assertTrue(seen.completionTokens > 0, direct.body());
    both.sim.reset();
    return new Reference(seen.frames, seen.completionTokens);
  }

  private record Reference(int frames, int completionTokens) {}

  /** Null when stream {@code i} is exactly what the runner sent, else what is wrong with it. */
  private static String problem(int i, HttpResponse<String> response, Reference ref) throws Exception {
    if (response.statusCode() != 200) {
      return "HTTP " + response.statusCode() + ": " + response.body();
    }
    Stream s = Stream.parse(response.body());
    if (s.error != null) {
      return "error event: " + s.error;
    }
    if (!s.doneLast) {
      return "does not end with [DONE]";
    }
    if (!s.content.equals(expectedContent(i))) {
      return "content '" + s.content + "'";
    }
    if (s.frames != ref.frames) {
      return s.frames + " data frames, the runner sent " + ref.frames;
    }
    if (!"stop".equals(s.finishReason)) {
      return "finish_reason " + s.finishReason;
    }
    if (s.completionTokens != ref.completionTokens) {
      return "usage completion_tokens " + s.completionTokens + ", the runner said " + ref.completionTokens;
    }
    if (s.ids != 1) {
      return s.ids + " chunk ids";
    }
    return null;
  }

  /** One stream's events, read back: data frames ([DONE] included), content, usage, finish. */
  private static final class Stream {
    int frames;
    boolean doneLast;
    String content = "";
    String finishReason;
    int completionTokens = -1;
    String error;
    int ids;

    static Stream parse(String body) throws Exception {
      Stream s = new Stream();
      StringBuilder content = new StringBuilder();
      java.util.Set<String> ids = new java.util.HashSet<>();
      for (String data : ApiFixture.dataEvents(body)) {
        s.frames++;
        if (s.doneLast) {
          s.doneLast = false; // anything after [DONE]
          s.error = "data after [DONE]";
          break;
        }
        if (data.equals("[DONE]")) {
          s.doneLast = true;
          continue;
        }
        JsonNode chunk = ApiFixture.JSON.readTree(data);
        if (chunk.has("error")) {
          s.error = chunk.path("error").toString();
          continue;
        }
        ids.add(chunk.path("id").asText());
        if (chunk.path("usage").isObject()) {
          s.completionTokens = chunk.at("/usage/completion_tokens").asInt();
        }
        for (JsonNode choice : chunk.path("choices")) {
          content.append(choice.at("/delta/content").asText(""));
          if (choice.path("finish_reason").isTextual()) {
            s.finishReason = choice.path("finish_reason").asText();
          }
        }
      }
      s.content = content.toString();
      s.ids = ids.size();
      return s;
    }
  }

  private static String prompt(int i) {
    StringBuilder p = new StringBuilder("stream-").append(i);
    for (int w = 1; w <= FILLER_WORDS; w++) {
      p.append(" w").append(w);
    }
    return p.toString();
  }

  private static String expectedContent(int i) {
    return "Simulated reply to: " + prompt(i);
  }

  private static String body(int i) {
    return "{\"model\":\"" + MODEL + "\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        + "\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt(i) + "\"}]}";
  }
}
