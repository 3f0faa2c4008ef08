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
  record Ok(TaskView view) implements TaskReply {}

  record Rejected(TaskError error) implements TaskReply {}
}
