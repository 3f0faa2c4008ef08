package dev.mcpstack.sim;

import java.time.Duration;
import java.util.Optional;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;

/** Per-request overrides of the default {@link Faults} from {@code X-Sim-*} headers. */
final class HeaderKnobs {

  static final String LATENCY_MS = "X-Sim-Latency-Ms";
  static final String TTFT_MS = "X-Sim-Ttft-Ms";
  static final String TOKENS_PER_SECOND = "X-Sim-Tokens-Per-Second";
  static final String FAIL_STATUS = "X-Sim-Fail-Status";
  static final String FAIL_FIRST = "X-Sim-Fail-First";
  static final String FAIL_EVERY = "X-Sim-Fail-Every";
  static final String FAIL_RATIO = "X-Sim-Fail-Ratio";
  static final String PLAIN_TEXT_ERRORS = "X-Sim-Plain-Text-Errors";
  static final String RETRY_AFTER = "X-Sim-Retry-After";
  static final String HANG = "X-Sim-Hang";
  static final String DROP_AFTER_CHUNKS = "X-Sim-Drop-After-Chunks";
  /** Not a fault: how many tool calls to answer with when the request offers tools. */
  static final String TOOL_CALLS = "X-Sim-Tool-Calls";

  private HeaderKnobs() {}

  /**
   * The defaults overridden by the request's headers.
   *
   * @throws IllegalArgumentException naming the offending header when a value does not parse
   */
  static Faults effective(Faults defaults, HttpRequest request) {
    Faults f = defaults;
    String v;
    if ((v = header(request, LATENCY_MS)) != null) f = f.withLatency(Duration.ofMillis(parseLong(LATENCY_MS, v)));
    if ((v = header(request, TTFT_MS)) != null) f = f.withTimeToFirstToken(Duration.ofMillis(parseLong(TTFT_MS, v)));
    if ((v = header(request, TOKENS_PER_SECOND)) != null) f = f.withTokensPerSecond(parseDouble(TOKENS_PER_SECOND, v));
    if ((v = header(request, FAIL_STATUS)) != null) f = f.withFailStatus(parseInt(FAIL_STATUS, v));
    if ((v = header(request, FAIL_FIRST)) != null) f = f.withFailFirst(parseInt(FAIL_FIRST, v));
    if ((v = header(request, FAIL_EVERY)) != null) f = f.withFailEvery(parseInt(FAIL_EVERY, v));
    if ((v = header(request, FAIL_RATIO)) != null) f = f.withFailRatio(parseDouble(FAIL_RATIO, v));
    if ((v = header(request, PLAIN_TEXT_ERRORS)) != null) f = f.withPlainTextErrors(parseBoolean(PLAIN_TEXT_ERRORS, v));
    if ((v = header(request, RETRY_AFTER)) != null) {
      double seconds = parseDouble(RETRY_AFTER, v);
      if (!(seconds >= 0) || Double.isInfinite(seconds))
        throw new IllegalArgumentException("invalid " + RETRY_AFTER + " header: " + v);
      f = f.withRetryAfter(Duration.ofMillis(Math.round(seconds * 1000)));
    }
    if ((v = header(request, HANG)) != null) f = f.withHang(parseBoolean(HANG, v));
    if ((v = header(request, DROP_AFTER_CHUNKS)) != null) f = f.withDropAfterChunks(parseInt(DROP_AFTER_CHUNKS, v));
    return f;
  }

  /**
   * The {@code X-Sim-Tool-Calls} count, or null when absent.
   *
   * @throws IllegalArgumentException when it is not an integer in 0..64
   */
  static Integer toolCalls(HttpRequest request) {
    String v = header(request, TOOL_CALLS);
    if (v == null) return null;
    int n = parseInt(TOOL_CALLS, v);
    if (n < 0 || n > 64) throw new IllegalArgumentException("invalid " + TOOL_CALLS + " header: " + v);
    return n;
  }

  private static String header(HttpRequest request, String name) {
    Optional<HttpHeader> h = request.getHeader(name);
    return h.map(x -> x.value().trim()).orElse(null);
  }

  private static long parseLong(String name, String v) {
    try {
      long l = Long.parseLong(v);
      if (l < 0) throw new IllegalArgumentException("invalid " + name + " header: " + v);
      return l;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("invalid " + name + " header: " + v);
    }
  }

  private static int parseInt(String name, String v) {
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("invalid " + name + " header: " + v);
    }
  }

  private static double parseDouble(String name, String v) {
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("invalid " + name + " header: " + v);
    }
  }

  private static boolean parseBoolean(String name, String v) {
    if (v.equalsIgnoreCase("true")) return true;
    if (v.equalsIgnoreCase("false")) return false;
    throw new IllegalArgumentException("invalid " + name + " header: " + v);
  }
}
