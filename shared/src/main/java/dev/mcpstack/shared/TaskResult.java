package dev.mcpstack.shared;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * A finished task's outcome: the OpenAI response object the runner produced (a
 * {@code chat.completion}, an embeddings {@code list}, or a warm-up acknowledgement), its usage,
 * and which upstream served it.
 */
public record TaskResult(JsonNode body, Usage usage, String upstream) implements CborSerializable {}
