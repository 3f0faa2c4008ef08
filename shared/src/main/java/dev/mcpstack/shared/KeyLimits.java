package dev.mcpstack.shared;

/**
 * What one API key may use. Zero means "no limit" for every field. Rates are per rolling minute;
 * {@code maxConcurrentRequests} counts synchronous and streamed calls in flight,
 * {@code maxActiveTasks} asynchronous tasks not yet finished; {@code budget} (null = none) caps
 * the key's spending per day or month.
 */
public record KeyLimits(
    int requestsPerMinute,
    long tokensPerMinute,
    int maxConcurrentRequests,
    int maxActiveTasks,
    Budget budget)
    implements CborSerializable {
  public static final KeyLimits UNLIMITED = new KeyLimits(0, 0, 0, 0);

  public KeyLimits(int requestsPerMinute, long tokensPerMinute, int maxConcurrentRequests, int maxActiveTasks) {
    this(requestsPerMinute, tokensPerMinute, maxConcurrentRequests, maxActiveTasks, null);
  }

  public KeyLimits withBudget(Budget b) {
    return new KeyLimits(requestsPerMinute, tokensPerMinute, maxConcurrentRequests, maxActiveTasks, b);
  }

  public KeyLimits {
    if (requestsPerMinute < 0 || tokensPerMinute < 0 || maxConcurrentRequests < 0 || maxActiveTasks < 0) {
      throw new IllegalArgumentException("limits must be 0 (unlimited) or positive");
    }
  }

  /** True when no field limits anything: such a key never asks a limiter. */
  public boolean unlimited() {
    return requestsPerMinute == 0
        && tokensPerMinute == 0
        && maxConcurrentRequests == 0
        && maxActiveTasks == 0
        && budget == null;
  }
}
