package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.util.ByteString;

/**
 * What a task pushes to its subscribers: every status change (the last one terminal), and for a
 * streamed chat the content deltas as the runner produces them.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
  @JsonSubTypes.Type(value = TaskUpdate.StatusChanged.class, name = "status"),
  @JsonSubTypes.Type(value = TaskUpdate.ContentDelta.class, name = "delta"),
  @JsonSubTypes.Type(value = TaskUpdate.Batch.class, name = "batch")
})
public sealed interface TaskUpdate extends CborSerializable {
  String taskId();

  /**
   * Several updates in order, sent as one element when the follower reads slower than they come
   * (one stream-ref message instead of many); a follower handles them one by one. Never nested.
   */
  record Batch(String taskId, java.util.List<TaskUpdate> updates) implements TaskUpdate {
    public Batch {
      updates = java.util.List.copyOf(updates);
    }

    /** The updates an element stands for: a batch's, or the update itself. */
    public static java.util.List<TaskUpdate> unpack(TaskUpdate update) {
      return update instanceof Batch batch ? batch.updates() : java.util.List.of(update);
    }
  }

  /**
   * {@code resultChunks}: the result's body when too big to travel inline ({@link LargeJson}); the
   * view's result body is then a JSON null. Null otherwise.
   */
  record StatusChanged(TaskView view, SourceRef<ByteString> resultChunks) implements TaskUpdate {
    public StatusChanged(TaskView view) {
      this(view, null);
    }

    @Override
    public String taskId() {
      return view.id();
    }
  }

  /**
   * One chunk of a streamed chat answer as the runner sent it.
   *
   * @param choices the chunk's {@code choices} array untouched: every choice index, every field of
   *     each {@code delta} (content, tool_calls, refusal, reasoning fields...), {@code logprobs} and
   *     {@code finish_reason}; null only when sent by a node that predates it
   * @param content choice 0's {@code delta.content} ("" if none), and {@code finishReason} choice
   *     0's finish reason (null until the last chunk): a summary for text-only readers, and what
   *     nodes of the previous version read during a rolling upgrade
   */
  record ContentDelta(String taskId, int attempt, String content, String finishReason, JsonNode choices)
      implements TaskUpdate {

    public ContentDelta {
      if (choices != null && !choices.isArray()) {
        choices = null; // JSON null (absent on the sender) reads back as a NullNode
      }
    }

    /** A delta for a runner chunk's {@code choices} array, with its choice-0 summary. */
    public static ContentDelta of(String taskId, int attempt, JsonNode choices) {
      return new ContentDelta(taskId, attempt, contentOf(choices), finishReasonOf(choices), choices);
    }

    /** The {@code delta.content} of choice 0 in a chunk's {@code choices}, "" when it has none. */
    public static String contentOf(JsonNode choices) {
      JsonNode content = firstChoice(choices).path("delta").path("content");
      return content.isTextual() ? content.asText() : "";
    }

    /** The {@code finish_reason} of choice 0 in a chunk's {@code choices}, or null. */
    public static String finishReasonOf(JsonNode choices) {
      JsonNode finish = firstChoice(choices).path("finish_reason");
      return finish.isTextual() ? finish.asText() : null;
    }

    private static JsonNode firstChoice(JsonNode choices) {
      if (choices == null || !choices.isArray()) {
        return MissingNode.getInstance();
      }
      for (JsonNode choice : choices) {
        if (choice.path("index").asInt(0) == 0) {
          return choice;
        }
      }
      return MissingNode.getInstance();
    }
  }
}
