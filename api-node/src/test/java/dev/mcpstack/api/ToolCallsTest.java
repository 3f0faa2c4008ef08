package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.helpers.ChatCompletionAccumulator;
import com.openai.models.FunctionDefinition;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionMessageToolCall;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Acceptance: a runner that answers with tool calls. The official OpenAI Java SDK sees the same
 * tool calls (ids, names, whole arguments) streamed as not streamed, and so does a stored chat.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ToolCallsTest {
  private static final List<String> TOOLS = List.of("get_weather", "get_time", "find_hotel");

  private ApiFixture api;
  private OpenAIClient openai;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("ToolCallsTest");
    openai = api.openAi("test");
  }

  @AfterAll
  void stop() throws Exception {
    if (openai != null) {
      openai.close();
    }
    if (api != null) {
      api.close();
    }
  }

  @BeforeEach
  void resetSimulator() {
    api.resetSimulator();
  }

  private static ChatCompletionCreateParams.Builder askWithTools(String text) {
    ChatCompletionCreateParams.Builder b = ChatCompletionCreateParams.builder().model(MODEL).addUserMessage(text);
    for (String name : TOOLS) {
      b.addFunctionTool(FunctionDefinition.builder().name(name).description("the " + name + " tool").build());
    }
    return b;
  }

  /** id, name and arguments of each call, in order. */
  private static List<List<String>> calls(ChatCompletion completion) {
    List<List<String>> out = new ArrayList<>();
    for (ChatCompletionMessageToolCall call : completion.choices().get(0).message().toolCalls().orElseThrow()) {
      ChatCompletionMessageFunctionToolCall f = call.asFunction();
      out.add(List.of(f.id(), f.function().name(), f.function().arguments()));
    }
    return out;
  }

  @Test
  void theSdkSeesTheSameParallelToolCallsStreamedAsNot() {
    ChatCompletion plain = openai.chat().completions().create(askWithTools("weather and a hotel in Oslo").build());
    assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, plain.choices().get(0).finishReason());
    assertTrue(plain.choices().get(0).message().content().isEmpty());
    List<List<String>> expected = calls(plain);
    assertEquals(TOOLS.size(), expected.size(), "one call per tool, in parallel");
    for (int i = 0; i < TOOLS.size(); i++) {
      assertEquals("call_" + i, expected.get(i).get(0));
      assertEquals(TOOLS.get(i), expected.get(i).get(1));
      assertTrue(expected.get(i).get(2).contains("weather and a hotel in Oslo"), expected.get(i).get(2));
    }

    ChatCompletionAccumulator accumulator = ChatCompletionAccumulator.create();
    Map<Long, StringBuilder> argumentsByIndex = new TreeMap<>();
    List<ChatCompletionChunk.Choice.FinishReason> finishes = new ArrayList<>();
    ChatCompletionCreateParams params =
        askWithTools("weather and a hotel in Oslo")
            .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
            .build();
    try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(params)) {
      stream.stream()
          .forEach(
              chunk -> {
                accumulator.accumulate(chunk);
                for (ChatCompletionChunk.Choice c : chunk.choices()) {
                  c.finishReason().ifPresent(finishes::add);
                  c.delta().toolCalls().ifPresent(
                      tcs -> tcs.forEach(
                          tc -> argumentsByIndex
                              .computeIfAbsent(tc.index(), i -> new StringBuilder())
                              .append(tc.function().flatMap(f -> f.arguments()).orElse(""))));
                }
              });
    }
    assertEquals(List.of(ChatCompletionChunk.Choice.FinishReason.TOOL_CALLS), finishes);
    ChatCompletion streamed = accumulator.chatCompletion();
    assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, streamed.choices().get(0).finishReason());
    assertEquals(expected, calls(streamed), "the SDK's accumulation of the stream");
    List<String> byHand = new ArrayList<>();
    argumentsByIndex.values().forEach(sb -> byHand.add(sb.toString()));
    assertEquals(expected.stream().map(c -> c.get(2)).toList(), byHand, "the deltas accumulated by index");
    assertEquals(
        plain.usage().orElseThrow().completionTokens(), streamed.usage().orElseThrow().completionTokens());
  }

  @Test
  void aStoredStreamedChatKeepsItsToolCalls() {
    ChatCompletionCreateParams params = askWithTools("book a hotel").store(true).build();
    ChatCompletionAccumulator accumulator = ChatCompletionAccumulator.create();
    try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(params)) {
      stream.stream().forEach(accumulator::accumulate);
    }
    ChatCompletion streamed = accumulator.chatCompletion();
    api.eventually(
        Duration.ofSeconds(10),
        () -> {
          ChatCompletion stored = openai.chat().completions().retrieve(streamed.id());
          assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, stored.choices().get(0).finishReason());
          assertEquals(calls(streamed), calls(stored));
          assertTrue(stored.choices().get(0).message().content().isEmpty());
        });
  }

  private static String streamedBodyWithTools(String text) {
    StringBuilder tools = new StringBuilder();
    for (String name : TOOLS) {
      tools.append(tools.length() == 0 ? "" : ",")
          .append("{\"type\":\"function\",\"function\":{\"name\":\"").append(name).append("\"}}");
    }
    return "{\"model\":\"" + MODEL + "\",\"stream\":true,\"tools\":[" + tools
        + "],\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}";
  }

  /** A repeat of a finished streamed chat (same Idempotency-Key) replays the calls from the result. */
  @Test
  void aRepeatedStreamReplaysTheToolCallsOfTheResult() throws Exception {
    String body = streamedBodyWithTools("again");
    HttpResponse<String> first = api.post("/v1/chat/completions", body, "Idempotency-Key", "tools-1");
    HttpResponse<String> again = api.post("/v1/chat/completions", body, "Idempotency-Key", "tools-1");
    assertEquals(200, again.statusCode());
    assertEquals(1L, api.sim.stats().requests(), "the task ran once");
    assertEquals(toolCalls(first.body()), toolCalls(again.body()));
    assertEquals(TOOLS.size(), toolCalls(again.body()).size());
  }

  /** index → [id, name, arguments] accumulated from an event stream's tool call deltas; the finish must be tool_calls. */
  private static Map<Integer, List<String>> toolCalls(String sse) throws Exception {
    Map<Integer, String[]> calls = new TreeMap<>();
    String finish = null;
    for (String event : ApiFixture.dataEvents(sse)) {
      if (event.equals("[DONE]")) {
        continue;
      }
      for (JsonNode choice : ApiFixture.JSON.readTree(event).get("choices")) {
        if (choice.path("finish_reason").isTextual()) {
          finish = choice.get("finish_reason").asText();
        }
        for (JsonNode call : choice.path("delta").path("tool_calls")) {
          String[] c = calls.computeIfAbsent(call.get("index").asInt(), i -> new String[] {null, null, ""});
          if (call.has("id")) {
            c[0] = call.get("id").asText();
            c[1] = call.at("/function/name").asText();
          }
          c[2] += call.at("/function/arguments").asText("");
        }
      }
    }
    assertEquals("tool_calls", finish);
    Map<Integer, List<String>> out = new TreeMap<>();
    calls.forEach((i, c) -> out.put(i, List.of(c)));
    return out;
  }

  @Test
  void sseChunksCarryToolCallDeltasWithTheirIndex() throws Exception {
    HttpResponse<String> response = api.post("/v1/chat/completions", streamedBodyWithTools("hi"));
    assertEquals(200, response.statusCode());
    List<String> events = ApiFixture.dataEvents(response.body());
    assertEquals("[DONE]", events.get(events.size() - 1));
    String id = null;
    List<Integer> headIndices = new ArrayList<>();
    int fragments = 0;
    String finish = null;
    for (String event : events.subList(0, events.size() - 1)) {
      JsonNode chunk = ApiFixture.JSON.readTree(event);
      assertEquals("chat.completion.chunk", chunk.get("object").asText());
      assertEquals(MODEL, chunk.get("model").asText());
      id = id == null ? chunk.get("id").asText() : id;
      assertEquals(id, chunk.get("id").asText(), "the stack's id on every chunk");
      assertFalse(chunk.get("id").asText().startsWith("chatcmpl-sim-"), "not the runner's id");
      JsonNode choice = chunk.get("choices").get(0);
      assertTrue(choice.has("finish_reason"));
      if (choice.get("finish_reason").isTextual()) {
        finish = choice.get("finish_reason").asText();
      }
      for (JsonNode call : choice.path("delta").path("tool_calls")) {
        assertTrue(call.get("index").isInt(), call.toString());
        if (call.has("id")) {
          headIndices.add(call.get("index").asInt());
          assertEquals("call_" + call.get("index").asInt(), call.get("id").asText());
          assertEquals("function", call.get("type").asText());
          assertEquals(TOOLS.get(call.get("index").asInt()), call.at("/function/name").asText());
        } else {
          fragments++;
          assertTrue(call.at("/function/arguments").isTextual());
        }
      }
    }
    assertEquals(List.of(0, 1, 2), headIndices);
    assertTrue(fragments >= 2 * TOOLS.size(), "arguments arrive in fragments: " + fragments);
    assertEquals("tool_calls", finish);
  }
}
