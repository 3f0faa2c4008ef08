package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.util.ByteString;

/**
 * Turns one streamed chat task's updates into OpenAI {@code chat.completion.chunk} events: a role
 * chunk, a chunk per runner chunk relayed by the worker (its {@code choices} as the runner sent
 * them: content, tool calls, refusal, reasoning fields, logprobs, finish reasons, every choice
 * index), an optional usage chunk, then {@code [DONE]}; or an error event when the task fails. The
 * chunk's {@code id}, {@code object}, {@code created} and {@code model} are the stack's own. Not
 * thread-safe: one per stream. It is also the stream's {@link Exchange.Outcome} for the access log:
 * when the first content went out, and how the task ended.
 */
final class ChatStream implements Exchange.Outcome {
  private final HttpSupport http;
  private final ObjectMapper json;
  private final String id;
  private final long created;
  private final String model;
  private final boolean includeUsage;
  private final String requestId;
  /** Whether any delta reached the client (a repeat of a finished task has none to relay). */
  private boolean deltaSent;
  /** Choice indices whose finish_reason the client has seen: later deltas for them are dropped. */
  private final Set<Integer> finishedChoices = new HashSet<>();
  private volatile boolean over;
  /** For the access log: when the first delta went out, the task's end, the error event sent. */
  private volatile long firstDeltaNanos;
  private volatile TaskView end;
  private volatile ErrorCode errorSent;

  ChatStream(HttpSupport http, String id, long created, String model, boolean includeUsage, String requestId) {
    this.http = http;
    this.json = http.json;
    this.id = id;
    this.created = created;
    this.model = model;
    this.includeUsage = includeUsage;
    this.requestId = requestId;
  }

  /** True once the stream has said its last word ([DONE] or an error event). */
  boolean finished() {
    return over;
  }

  ByteString roleChunk() {
    ArrayNode choices = json.createArrayNode();
    ObjectNode choice = choices.addObject().put("index", 0);
    choice.putObject("delta").put("role", "assistant").put("content", "");
    choice.putNull("logprobs");
    choice.putNull("finish_reason");
    return chunk(choices);
  }

  List<ByteString> render(TaskUpdate update) {
    List<ByteString> out = new ArrayList<>(3);
    if (update instanceof TaskUpdate.ContentDelta d) {
      ArrayNode choices = relayable(d.choices() != null ? d.choices() : textChoices(d));
      if (!choices.isEmpty()) {
        out.add(chunk(choices));
        if (!deltaSent) {
          firstDeltaNanos = System.nanoTime();
        }
        deltaSent = true;
      }
    } else if (update instanceof TaskUpdate.StatusChanged sc && sc.view().status().isTerminal()) {
      terminal(sc.view(), out);
    }
    return out;
  }

  private void terminal(TaskView view, List<ByteString> out) {
    end = view;
    if (view.status() != TaskStatus.SUCCEEDED) {
      TaskError error = TaskJson.failureOf(view);
      out.add(error(error.code(), error.message()));
      return;
    }
    JsonNode body = view.result() == null ? json.nullNode() : view.result().body();
    JsonNode resultChoices = body.path("choices");
    if (!deltaSent) {
      // A finished task seen again (idempotent repeat): its deltas are gone, the message is not.
      ArrayNode replay = json.createArrayNode();
      for (JsonNode choice : resultChoices) {
        ObjectNode delta = deltaOf(choice.path("message"));
        if (!delta.isEmpty()) {
          replay.addObject().put("index", choice.path("index").asInt(0)).set("delta", delta);
        }
      }
      if (!replay.isEmpty()) {
        out.add(chunk(relayable(replay)));
      }
    }
    ArrayNode finishes = json.createArrayNode();
    if (resultChoices.isEmpty()) {
      finishes.addObject().put("index", 0).put("finish_reason", "stop");
    }
    for (JsonNode choice : resultChoices) {
      finishes.addObject()
          .put("index", choice.path("index").asInt(0))
          .put("finish_reason", choice.path("finish_reason").asText("stop"));
    }
    ArrayNode unfinished = relayable(finishes);
    if (!unfinished.isEmpty()) {
      out.add(chunk(unfinished));
    }
    if (includeUsage) {
      ObjectNode usage = json.createObjectNode();
      if (view.result() != null && view.result().usage() != null) {
        usage
            .put("prompt_tokens", view.result().usage().promptTokens())
            .put("completion_tokens", view.result().usage().completionTokens())
            .put("total_tokens", view.result().usage().totalTokens());
      }
      ObjectNode n = base();
      n.putArray("choices");
      n.set("usage", usage);
      out.add(Sse.data(http.errors.text(n)));
    }
    out.add(Sse.DONE);
    over = true;
  }

  /**
   * The choices of a runner chunk the client has not seen finish, each copied whole with the
   * fields OpenAI clients expect filled in ({@code index}, {@code delta}, {@code logprobs}, {@code
   * finish_reason}, null when absent); records the finish reasons.
   */
  private ArrayNode relayable(JsonNode choices) {
    ArrayNode out = json.createArrayNode();
    for (JsonNode choice : choices) {
      if (!choice.isObject()) {
        continue;
      }
      int index = choice.path("index").asInt(0);
      if (finishedChoices.contains(index)) {
        continue;
      }
      ObjectNode copy = json.createObjectNode().put("index", index);
      copy.setAll((ObjectNode) choice);
      if (!copy.path("delta").isObject()) {
        copy.putObject("delta");
      }
      if (!copy.has("logprobs")) {
        copy.putNull("logprobs");
      }
      if (copy.path("finish_reason").isTextual()) {
        finishedChoices.add(index);
      } else {
        copy.putNull("finish_reason");
      }
      out.add(copy);
    }
    return out;
  }

  /** A delta from a node that predates relayed choices: its text and finish reason. */
  private ArrayNode textChoices(TaskUpdate.ContentDelta d) {
    ArrayNode choices = json.createArrayNode();
    String content = d.content() == null ? "" : d.content();
    if (!content.isEmpty() || d.finishReason() != null) {
      ObjectNode choice = choices.addObject().put("index", 0);
      choice.putObject("delta").put("content", content);
      choice.put("finish_reason", d.finishReason());
    }
    return choices;
  }

  /** A finished message as one delta: its non-empty text fields and its tool calls, indexed. */
  private ObjectNode deltaOf(JsonNode message) {
    ObjectNode delta = json.createObjectNode();
    for (Map.Entry<String, JsonNode> field : message.properties()) {
      String name = field.getKey();
      JsonNode value = field.getValue();
      if (name.equals("tool_calls") && value.isArray() && !value.isEmpty()) {
        ArrayNode calls = delta.putArray("tool_calls");
        for (int i = 0; i < value.size(); i++) {
          ObjectNode call = json.createObjectNode().put("index", i);
          call.setAll((ObjectNode) value.get(i));
          calls.add(call);
        }
      } else if (!name.equals("role") && value.isTextual() && !value.asText().isEmpty()) {
        delta.set(name, value);
      } else if (name.equals("function_call") && value.isObject()) {
        delta.set(name, value);
      }
    }
    return delta;
  }

  /** The last event of a stream that broke: an OpenAI error object. */
  ByteString error(ErrorCode code, String message) {
    over = true;
    errorSent = code;
    return Sse.data(http.errors.text(http.errors.body(code, message, null, requestId)));
  }

  ByteString failure(Throwable e) {
    ApiError error = http.classify(e, requestId);
    return error(error.code(), error.getMessage());
  }

  private ByteString chunk(ArrayNode choices) {
    ObjectNode n = base();
    n.set("choices", choices);
    return Sse.data(http.errors.text(n));
  }

  @Override
  public String model() {
    return model;
  }

  @Override
  public int attempts() {
    TaskView view = end;
    return view == null ? 0 : view.attempts();
  }

  @Override
  public dev.mcpstack.shared.Usage usage() {
    TaskView view = end;
    return view == null || view.result() == null ? null : view.result().usage();
  }

  @Override
  public String upstream() {
    TaskView view = end;
    return view == null || view.result() == null ? null : view.result().upstream();
  }

  @Override
  public long firstTokenNanos() {
    return firstDeltaNanos;
  }

  @Override
  public ErrorCode streamError() {
    return errorSent;
  }

  private ObjectNode base() {
    ObjectNode n = json.createObjectNode();
    n.put("id", id);
    n.put("object", "chat.completion.chunk");
    n.put("created", created);
    n.put("model", model);
    return n;
  }
}
