package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

/**
 * What a task pushes to its subscribers: every status change (the last one terminal), and for a
 * streamed chat the content deltas as the runner produces them.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
  @JsonSubTypes.Type(value = TaskUpdate.StatusChanged.class, name = "status"),
  @JsonSubTypes.Type(value = TaskUpdate.ContentDelta.class, name = "delta")
})
public sealed interface TaskUpdate extends CborSerializable {
  String taskId();

  record StatusChanged(TaskView view) implements TaskUpdate {
    @Override
    public String taskId() {
      return view.id();
    }
  }

  /** One piece of a streamed chat answer; {@code finishReason} is set on the last piece. */
  record ContentDelta(String taskId, int attempt, String content, String finishReason)
      implements TaskUpdate {}
}
