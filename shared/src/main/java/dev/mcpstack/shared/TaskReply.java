package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

/** The entity's answer to a client command: the task as it stands, or why the command was refused. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
  @JsonSubTypes.Type(value = TaskReply.Ok.class, name = "ok"),
  @JsonSubTypes.Type(value = TaskReply.Rejected.class, name = "rejected")
})
public sealed interface TaskReply extends CborSerializable {
  /** {@code created}: this command created the task (a Submit that was not a repeat). */
  record Ok(TaskView view, boolean created) implements TaskReply {
    public Ok(TaskView view) {
      this(view, false);
    }
  }

  record Rejected(TaskError error) implements TaskReply {}
}
