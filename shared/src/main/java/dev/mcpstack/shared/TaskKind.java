package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Arrays;
import java.util.Optional;

/** What a task does. The wire names are the ones the tasks API accepts. */
public enum TaskKind {
  /** A chat completion ({@code /v1/chat/completions}), sync, streamed or async. */
  CHAT("chat"),
  /** Embeddings for one or more inputs ({@code /v1/embeddings}), batched per upstream call. */
  EMBEDDINGS("embeddings"),
  /** Ask a runner to load a model so the first real request does not pay for it. */
  MODEL_WARMUP("model_warmup");

  private final String wireName;

  TaskKind(String wireName) {
    this.wireName = wireName;
  }

  @JsonValue
  public String wireName() {
    return wireName;
  }

  @JsonCreator
  public static TaskKind fromWire(String name) {
    return parse(name).orElseThrow(() -> new IllegalArgumentException("unknown task kind: " + name));
  }

  public static Optional<TaskKind> parse(String name) {
    return Arrays.stream(values()).filter(k -> k.wireName.equals(name)).findFirst();
  }
}
