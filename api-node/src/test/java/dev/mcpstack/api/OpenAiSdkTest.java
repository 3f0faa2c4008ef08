package dev.mcpstack.api;

import static dev.mcpstack.api.ApiFixture.MODEL;
import static org.junit.jupiter.api.Assertions.*;

import com.openai.client.OpenAIClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.CompletionUsage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Acceptance: the official OpenAI Java SDK talks to the stack as it would to OpenAI. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiSdkTest {
  private ApiFixture api;
  private OpenAIClient openai;

  @BeforeAll
  void start() throws Exception {
    api = ApiFixture.start("OpenAiSdkTest");
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

  private static ChatCompletionCreateParams.Builder ask(String text) {
    return ChatCompletionCreateParams.builder().model(MODEL).addUserMessage(text);
  }

  @Test
  void nonStreamingChat() {
    ChatCompletion completion = openai.chat().completions().create(ask("hi from the sdk").build());
    assertTrue(completion.id().startsWith("chatcmpl-"));
    assertEquals(MODEL, completion.model());
    assertEquals("Simulated reply to: hi from the sdk", completion.choices().get(0).message().content().orElseThrow());
    assertEquals(ChatCompletion.Choice.FinishReason.STOP, completion.choices().get(0).finishReason());
    assertTrue(completion.usage().orElseThrow().totalTokens() > 0);
  }

  @Test
  void streamingChatReassemblesWithUsage() {
    ChatCompletionCreateParams params =
        ask("stream it please")
            .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
            .build();
    StringBuilder text = new StringBuilder();
    List<CompletionUsage> usage = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    try (StreamResponse<ChatCompletionChunk> stream = openai.chat().completions().createStreaming(params)) {
      stream.stream()
          .forEach(
              chunk -> {
                ids.add(chunk.id());
                chunk.choices().forEach(c -> c.delta().content().ifPresent(text::append));
                chunk.usage().ifPresent(usage::add);
              });
    }
    assertEquals("Simulated reply to: stream it please", text.toString());
    assertEquals(1, usage.size());
    assertTrue(usage.get(0).completionTokens() > 0);
    assertEquals(1, ids.stream().distinct().count());
  }

  @Test
  void unknownModelIsNotFound() {
    NotFoundException e =
        assertThrows(
            NotFoundException.class,
            () -> openai.chat().completions().create(ask("hello").model("no-such-model").build()));
    assertEquals(404, e.statusCode());
    assertEquals("model_not_found", e.code().orElse(""));
    assertTrue(e.getMessage().contains("no-such-model"), e.getMessage());
  }

  @Test
  void invalidRequestIsBadRequest() {
    BadRequestException e =
        assertThrows(
            BadRequestException.class,
            () -> openai.chat().completions().create(ask("hello").temperature(5.0).build()));
    assertEquals(400, e.statusCode());
    assertEquals("temperature", e.param().orElse(""));
    assertTrue(e.getMessage().contains("'temperature'"), e.getMessage());
  }

  @Test
  void modelsAreListed() {
    List<String> ids = new ArrayList<>();
    api.await(
        Duration.ofSeconds(20),
        () -> {
          ids.clear();
          openai.models().list().data().forEach(m -> ids.add(m.id()));
          assertTrue(ids.contains(MODEL), ids.toString());
          return null;
        });
    assertEquals(MODEL, openai.models().retrieve(MODEL).id());
  }
}
