package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.util.ArrayList;
import java.util.List;
import org.apache.pekko.util.ByteString;

/**
 * Turns one streamed chat task's updates into OpenAI {@code chat.completion.chunk} events: a role
 * chunk, a chunk per content delta ({@code finish_reason} on the last), an optional usage chunk,
 * then {@code [DONE]}; or an error event when the task fails. Not thread-safe: one per stream.
 */
final class ChatStream {
  private final HttpSupport http;
  private final ObjectMapper json;
  private final String id;
  private final long created;
  private final String model;
  private final boolean includeUsage;
  private final String requestId;
  private boolean contentSent;
  private boolean finishSent;
  private volatile boolean finished;

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
    return finished;
  }

  ByteString roleChunk() {
    ObjectNode delta = json.createObjectNode().put("role", "assistant").put("content", "");
    return chunk(delta, null);
  }

  List<ByteString> render(TaskUpdate update) {
    List<ByteString> out = new ArrayList<>(3);
    if (update instanceof TaskUpdate.ContentDelta d) {
      if (finishSent) {
        return out;
      }
      String content = d.content() == null ? "" : d.content();
      if (!content.isEmpty() || d.finishReason() != null) {
        out.add(chunk(json.createObjectNode().put("content", content), d.finishReason()));
        contentSent |= !content.isEmpty();
        finishSent = d.finishReason() != null;
      }
    } else if (update instanceof TaskUpdate.StatusChanged sc && sc.view().status().isTerminal()) {
      terminal(sc.view(), out);
    }
    return out;
  }

  private void terminal(TaskView view, List<ByteString> out) {
    if (view.status() != TaskStatus.SUCCEEDED) {
      TaskError error = TaskJson.failureOf(view);
      out.add(error(error.code(), error.message()));
      return;
    }
    JsonNode body = view.result() == null ? json.nullNode() : view.result().body();
    JsonNode choice = body.path("choices").path(0);
    if (!contentSent) {
      // A finished task seen again (idempotent repeat): its deltas are gone, the text is not.
      String text = choice.path("message").path("content").asText("");
      if (!text.isEmpty()) {
        out.add(chunk(json.createObjectNode().put("content", text), null));
      }
    }
    if (!finishSent) {
      out.add(chunk(json.createObjectNode(), choice.path("finish_reason").asText("stop")));
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
    finished = true;
  }

  /** The last event of a stream that broke: an OpenAI error object. */
  ByteString error(ErrorCode code, String message) {
    finished = true;
    return Sse.data(http.errors.text(http.errors.body(code, message, null, requestId)));
  }

  ByteString failure(Throwable e) {
    ApiError error = http.classify(e, requestId);
    return error(error.code(), error.getMessage());
  }

  private ByteString chunk(ObjectNode delta, String finishReason) {
    ObjectNode n = base();
    ObjectNode choice = n.putArray("choices").addObject();
    choice.put("index", 0);
    choice.set("delta", delta);
    choice.putNull("logprobs");
    if (finishReason == null) {
      choice.putNull("finish_reason");
    } else {
      choice.put("finish_reason", finishReason);
    }
    return Sse.data(http.errors.text(n));
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
