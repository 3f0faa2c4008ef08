package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.util.ByteString;

/** The entity's answer to a client command: the task as it stands, or why the command was refused. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
  @JsonSubTypes.Type(value = TaskReply.Ok.class, name = "ok"),
  @JsonSubTypes.Type(value = TaskReply.Rejected.class, name = "rejected")
})
public sealed interface TaskReply extends CborSerializable {
  /**
   * {@code created}: this command created the task (a Submit that was not a repeat). {@code
   * updates}: the task's updates, for a Submit with follow and for Follow, else null. {@code
   * resultChunks}: the result's body when too big to travel inline ({@link LargeJson}); the view's
   * result body is then a JSON null. {@code node}: the cluster address of the node hosting the
   * task, in answers to {@link TaskProtocol.Inspect} (for operators), else null.
   */
  record Ok(
      TaskView view,
      boolean created,
      SourceRef<TaskUpdate> updates,
      SourceRef<ByteString> resultChunks,
      String node)
      implements TaskReply {
    public Ok(TaskView view) {
      this(view, false, null, null, null);
    }

    public Ok(TaskView view, boolean created) {
      this(view, created, null, null, null);
    }
  }

  record Rejected(TaskError error) implements TaskReply {}
}
