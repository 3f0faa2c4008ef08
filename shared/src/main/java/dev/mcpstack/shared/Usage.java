package dev.mcpstack.shared;

/** Token counts as the runner reported them. */
public record Usage(long promptTokens, long completionTokens, long totalTokens)
    implements CborSerializable {
  public static final Usage ZERO = new Usage(0, 0, 0);

  public Usage plus(Usage other) {
    return new Usage(
        promptTokens + other.promptTokens,
        completionTokens + other.completionTokens,
        totalTokens + other.totalTokens);
  }
}
