package dev.mcpstack.shared;

import java.util.concurrent.ThreadLocalRandom;

/**
 * A request's W3C trace context as it travels with its task: plain strings, so carrying it costs
 * nothing when tracing is off. {@code traceparent} names the span that the next hop is a child of
 * (the api-node's request span, then the task's attempt); {@code tracestate} is the client's, passed
 * on as is (null when none); {@code requestId} is the request's {@code X-Request-Id}, sent to the
 * model runners with every call. Serialized in {@link TaskProtocol.Submit} and in the task's
 * journaled submission, so a task keeps its trace across nodes and a fail-over.
 */
public record TraceContext(String traceparent, String tracestate, String requestId) implements CborSerializable {
  private static final String VERSION = "00";
  private static final String INVALID_TRACE = "00000000000000000000000000000000";
  private static final String INVALID_SPAN = "0000000000000000";

  /**
   * The client's trace context when its {@code traceparent} is valid (its {@code tracestate} is then
   * kept), else a new trace: a fresh trace id under a fresh span id, sampled.
   */
  public static TraceContext accept(String traceparent, String tracestate, String requestId) {
    if (traceparent != null && valid(traceparent.trim())) {
      String state = tracestate == null || tracestate.isBlank() || tracestate.length() > 512 ? null : tracestate.trim();
      return new TraceContext(traceparent.trim().toLowerCase(java.util.Locale.ROOT), state, requestId);
    }
    return new TraceContext(format(newTraceId(), newSpanId(), "01"), null, requestId);
  }

  /** Whether {@code h} is a {@code traceparent} this node understands (version 00 or a later one's first four fields). */
  public static boolean valid(String h) {
    if (h.length() < 55 || h.charAt(2) != '-' || h.charAt(35) != '-' || h.charAt(52) != '-') {
      return false;
    }
    String version = h.substring(0, 2);
    if (!hex(version) || version.equalsIgnoreCase("ff") || (version.equals(VERSION) && h.length() != 55)) {
      return false;
    }
    if (h.length() > 55 && h.charAt(55) != '-') {
      return false;
    }
    String trace = h.substring(3, 35);
    String span = h.substring(36, 52);
    return hex(trace) && hex(span) && hex(h.substring(53, 55)) && !trace.equals(INVALID_TRACE) && !span.equals(INVALID_SPAN);
  }

  private static boolean hex(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
        return false;
      }
    }
    return true;
  }

  public String traceId() {
    return traceparent.substring(3, 35);
  }

  /** The span this context names (the parent of the next hop). */
  public String spanId() {
    return traceparent.substring(36, 52);
  }

  /** The trace flags, two hex digits. */
  public String flags() {
    return traceparent.substring(53, 55);
  }

  /** The same trace under the span {@code spanId} (a child of this context's span). */
  public TraceContext withSpan(String spanId) {
    return new TraceContext(format(traceId(), spanId, flags()), tracestate, requestId);
  }

  /** A child of this context's span with a fresh span id: what a call sends when no span is recorded. */
  public TraceContext child() {
    return withSpan(newSpanId());
  }

  public static String format(String traceId, String spanId, String flags) {
    return VERSION + '-' + traceId + '-' + spanId + '-' + flags;
  }

  public static String newTraceId() {
    ThreadLocalRandom r = ThreadLocalRandom.current();
    long hi;
    long lo;
    do {
      hi = r.nextLong();
      lo = r.nextLong();
    } while (hi == 0 && lo == 0);
    return hex16(hi) + hex16(lo);
  }

  public static String newSpanId() {
    ThreadLocalRandom r = ThreadLocalRandom.current();
    long id;
    do {
      id = r.nextLong();
    } while (id == 0);
    return hex16(id);
  }

  private static String hex16(long v) {
    String s = Long.toHexString(v);
    return s.length() == 16 ? s : "0".repeat(16 - s.length()) + s;
  }
}
