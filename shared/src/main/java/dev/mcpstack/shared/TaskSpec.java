package dev.mcpstack.shared;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Objects;

/**
 * What to run: the kind, the model, and the OpenAI request body as the client sent it (fields the
 * stack does not interpret pass through to the runner unchanged). Two specs are the same task when
 * they are equal, which is what makes a repeated submit idempotent.
 */
public record TaskSpec(TaskKind kind, String model, JsonNode request) implements CborSerializable {
  public TaskSpec {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(model, "model");
    Objects.requireNonNull(request, "request");
  }

  /** True for a chat task whose client asked for server-sent events. */
  public boolean streaming() {
    return kind == TaskKind.CHAT && request.path("stream").asBoolean(false);
  }
}
