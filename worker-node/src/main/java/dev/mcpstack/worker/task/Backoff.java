package dev.mcpstack.worker.task;

import java.time.Duration;

/**
 * Exponential backoff with full jitter (delay drawn uniformly from [0, min(max, min * 2^(n-1))]),
 * never shorter than the runner's {@code Retry-After}.
 */
public record Backoff(Duration min, Duration max) {

  /**
   * @param failedAttempt the attempt that just failed, from 1
   * @param retryAfter what the runner asked for, or null
   * @param jitter a draw from [0, 1]
   */
  public Duration delayAfter(int failedAttempt, Duration retryAfter, double jitter) {
    long minNanos = min.toNanos();
    long capNanos = max.toNanos();
    int shift = Math.min(Math.max(failedAttempt - 1, 0), 62);
    long ceiling = minNanos > (capNanos >> shift) ? capNanos : Math.min(capNanos, minNanos << shift);
    Duration delay = Duration.ofNanos((long) (ceiling * Math.min(Math.max(jitter, 0.0), 1.0)));
    if (retryAfter != null && retryAfter.compareTo(delay) > 0) {
      return retryAfter;
    }
    return delay;
  }
}
