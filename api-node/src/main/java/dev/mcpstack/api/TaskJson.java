package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskView;
import java.time.Instant;

/** Renders task views as the tasks API's JSON and results as the OpenAI objects clients expect. */
final class TaskJson {
  private final ObjectMapper json;

  TaskJson(ObjectMapper json) {
    this.json = json;
  }

  /**
   * {@code {id, object:"task", kind, model, status, attempts, created_at, updated_at, deadline,
   * next_attempt_at, result, error}}; times in epoch seconds, absent values null.
   */
  ObjectNode task(TaskView v) {
    ObjectNode n = json.createObjectNode();
    n.put("id", v.id());
    n.put("object", "task");
    n.put("kind", v.kind() == null ? null : v.kind().wireName());
    n.put("model", v.model());
    n.put("status", v.status() == null ? null : v.status().wireName());
    n.put("attempts", v.attempts());
    epoch(n, "created_at", v.createdAt());
    epoch(n, "updated_at", v.updatedAt());
    epoch(n, "deadline", v.deadline());
    epoch(n, "next_attempt_at", v.nextAttemptAt());
    n.set("result", result(v));
    if (v.error() == null) {
      n.putNull("error");
    } else {
      n.set("error", error(v.error()));
    }
    return n;
  }

  /** The task's OpenAI result object (a chat completion carries the task id as its id), or null. */
  JsonNode result(TaskView v) {
    if (v.result() == null || v.result().body() == null) {
      return json.nullNode();
    }
    JsonNode body = v.result().body();
    if (v.kind() == TaskKind.CHAT && body.isObject()) {
      ObjectNode copy = ((ObjectNode) body).deepCopy();
      copy.put("id", v.id());
      copy.put("object", "chat.completion");
      return copy;
    }
    return body;
  }

  ObjectNode error(TaskError e) {
    ObjectNode n = json.createObjectNode();
    n.put("message", e.message());
    n.put("type", e.code().type());
    n.put("code", e.code().code());
    return n;
  }

  /** Why a finished task did not succeed, as the error its client gets. */
  static TaskError failureOf(TaskView view) {
    if (view.status() == TaskStatus.CANCELLED) {
      return TaskError.of(
          ErrorCode.CANCELLED, "The request was cancelled before it finished.");
    }
    return view.error() != null
        ? view.error()
        : TaskError.of(ErrorCode.INTERNAL, "The request failed.");
  }

  private static void epoch(ObjectNode n, String field, Instant at) {
    if (at == null) {
      n.putNull(field);
    } else {
      n.put(field, at.getEpochSecond());
    }
  }
}
