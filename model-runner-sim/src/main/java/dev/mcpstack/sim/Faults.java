package dev.mcpstack.sim;

import java.time.Duration;

/**
 * Fault and pacing knobs of the simulator. The simulator's defaults are a {@code Faults}; each
 * request may override single knobs with {@code X-Sim-*} headers (see the module README).
 *
 * @param latency delay before answering (non-stream) or before the response headers (stream)
 * @param timeToFirstToken extra delay before the first token
 * @param tokensPerSecond pacing of generated tokens; 0 = as fast as possible
 * @param failStatus HTTP status of simulated failures (400..599); 0 = never fail
 * @param failFirst with failStatus: the first N eligible requests since start/reset fail
 * @param failEvery with failStatus: every K-th eligible request fails (K, 2K, ...)
 * @param plainTextErrors simulated failures carry a text/plain body instead of OpenAI error JSON
 * @param retryAfter sent as {@code Retry-After} (whole seconds, rounded up) on simulated failures; null = no header
 * @param hang accept the request and never answer
 * @param dropAfterChunks stream only: abort the connection after N content chunks; -1 = never
 * @param failRatio with failStatus: this share (0..1) of eligible requests fails, picked by a fixed
 *     pseudo-random function of the request's number (the same requests fail in every run); 0 = off
 */
public record Faults(
    Duration latency,
    Duration timeToFirstToken,
    double tokensPerSecond,
    int failStatus,
    int failFirst,
    int failEvery,
    boolean plainTextErrors,
    Duration retryAfter,
    boolean hang,
    int dropAfterChunks,
    double failRatio) {

  private static final Faults NONE =
      new Faults(Duration.ZERO, Duration.ZERO, 0, 0, 0, 0, false, null, false, -1, 0);

  public Faults {
    latency = nonNegative("latency", latency == null ? Duration.ZERO : latency);
    timeToFirstToken =
        nonNegative("timeToFirstToken", timeToFirstToken == null ? Duration.ZERO : timeToFirstToken);
    if (retryAfter != null) nonNegative("retryAfter", retryAfter);
    if (!(tokensPerSecond >= 0) || Double.isInfinite(tokensPerSecond))
      throw new IllegalArgumentException("tokensPerSecond must be a finite number >= 0: " + tokensPerSecond);
    if (failStatus != 0 && (failStatus < 400 || failStatus > 599))
      throw new IllegalArgumentException("failStatus must be 0 or 400..599: " + failStatus);
    if (failFirst < 0) throw new IllegalArgumentException("failFirst must be >= 0: " + failFirst);
    if (failEvery < 0) throw new IllegalArgumentException("failEvery must be >= 0: " + failEvery);
    if (!(failRatio >= 0 && failRatio <= 1))
      throw new IllegalArgumentException("failRatio must be between 0 and 1: " + failRatio);
    if (dropAfterChunks < -1)
      throw new IllegalArgumentException("dropAfterChunks must be >= -1: " + dropAfterChunks);
  }

  private static Duration nonNegative(String name, Duration d) {
    if (d.isNegative()) throw new IllegalArgumentException(name + " must not be negative: " + d);
    return d;
  }

  /** No latency, no pacing, no failures. */
  public static Faults none() {
    return NONE;
  }

  /**
   * Whether the {@code n}-th eligible request (1-based, counted since start/reset) fails with
   * {@link #failStatus()}.
   */
  public boolean failsRequest(long n) {
    if (failStatus == 0) return false;
    if (failFirst == 0 && failEvery == 0 && failRatio == 0) return true;
    return (failFirst > 0 && n <= failFirst)
        || (failEvery > 0 && n % failEvery == 0)
        || (failRatio > 0 && uniform(n) < failRatio);
  }

  /** A fixed, well-mixed map of n to [0, 1) (SplitMix64's finaliser): failures without a pattern. */
  private static double uniform(long n) {
    long z = n * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    z = z ^ (z >>> 31);
    return (z >>> 11) * 0x1.0p-53;
  }

  public Faults withLatency(Duration value) {
    return new Faults(value, timeToFirstToken, tokensPerSecond, failStatus, failFirst, failEvery,
        plainTextErrors, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withTimeToFirstToken(Duration value) {
    return new Faults(latency, value, tokensPerSecond, failStatus, failFirst, failEvery,
        plainTextErrors, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withTokensPerSecond(double value) {
    return new Faults(latency, timeToFirstToken, value, failStatus, failFirst, failEvery,
        plainTextErrors, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withFailStatus(int value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, value, failFirst, failEvery,
        plainTextErrors, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withFailFirst(int value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, value, failEvery,
        plainTextErrors, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withFailEvery(int value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, failFirst, value,
        plainTextErrors, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withPlainTextErrors(boolean value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, failFirst, failEvery,
        value, retryAfter, hang, dropAfterChunks, failRatio);
  }

  public Faults withRetryAfter(Duration value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, failFirst, failEvery,
        plainTextErrors, value, hang, dropAfterChunks, failRatio);
  }

  public Faults withHang(boolean value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, failFirst, failEvery,
        plainTextErrors, retryAfter, value, dropAfterChunks, failRatio);
  }

  public Faults withDropAfterChunks(int value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, failFirst, failEvery,
        plainTextErrors, retryAfter, hang, value, failRatio);
  }

  public Faults withFailRatio(double value) {
    return new Faults(latency, timeToFirstToken, tokensPerSecond, failStatus, failFirst, failEvery,
        plainTextErrors, retryAfter, hang, dropAfterChunks, value);
  }
}
