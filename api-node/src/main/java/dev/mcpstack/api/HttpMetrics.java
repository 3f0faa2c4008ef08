package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import java.util.concurrent.ConcurrentHashMap;
import kamon.Kamon;
import kamon.metric.Counter;
import kamon.metric.Gauge;
import kamon.metric.Histogram;
import kamon.metric.MeasurementUnit;
import kamon.metric.Metric;
import kamon.tag.TagSet;

/**
 * The api-node's HTTP metrics (docs/metrics.md): requests by route, method, status and error
 * code; request duration by route; time to first token of streams by model; open streams;
 * rejected requests by reason. Instruments are looked up once per tag combination and cached, so a
 * request costs a map lookup per instrument, not a tag set. Cardinality: routes are templates
 * ({@link RouteTemplates}), methods a fixed list, codes {@link ErrorCode}s, models those that
 * answered.
 */
final class HttpMetrics {
  private static final Metric.Counter REQUESTS =
      Kamon.counter("mcp.http.requests", "HTTP requests answered, by route template, method, status and error code");
  private static final Metric.Histogram DURATION =
      Kamon.histogram(
          "mcp.http.request.duration",
          "From a request's arrival until its response (or stream) is complete, by route template and method",
          MeasurementUnit.time().nanoseconds());
  private static final Metric.Histogram TTFT =
      Kamon.histogram(
          "mcp.http.time.to.first.token",
          "From a streamed chat request's arrival until its first content is sent, by model",
          MeasurementUnit.time().nanoseconds());
  private static final Gauge OPEN_STREAMS =
      Kamon.gauge("mcp.http.open.streams", "Streamed responses (server-sent events) being sent").withoutTags();
  private static final Metric.Counter REJECTED =
      Kamon.counter("mcp.http.rejected", "Requests refused before any work started, by reason");

  /** Methods as tags; anything else is "other". */
  private static final String[] METHODS = {"GET", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "HEAD"};

  private static final Metric.Counter CACHE =
      Kamon.counter("mcp.cache.requests", "Chat requests and the response cache, by result (hit, miss, bypass)");

  private static final ConcurrentHashMap<Long, Counter> requests = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<Integer, Histogram> durations = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<String, Histogram> ttfts = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<String, Counter> rejections = new ConcurrentHashMap<>();

  private HttpMetrics() {}

  /** {@code result}: hit, miss (looked up, not found) or bypass (not eligible, or Cache-Control: no-cache). */
  static void cacheRequest(String result) {
    CACHE.withTag("result", result).increment();
  }

  static int methodIndex(String method) {
    for (int i = 0; i < METHODS.length; i++) {
      if (METHODS[i].equals(method)) {
        return i;
      }
    }
    return METHODS.length;
  }

  private static String method(int index) {
    return index < METHODS.length ? METHODS[index] : "other";
  }

  /** One answered request: {@code route} an index of {@link RouteTemplates} (-1 unmatched). */
  static void request(int route, int method, int status, ErrorCode code, long durationNanos) {
    long key = ((long) (route + 1) << 40) | ((long) method << 32) | ((long) status << 8) | (code == null ? 0xff : code.ordinal());
    requests
        .computeIfAbsent(
            key,
            k ->
                REQUESTS.withTags(
                    TagSet.builder()
                        .add("route", RouteTemplates.name(route))
                        .add("method", method(method))
                        .add("status", Integer.toString(status))
                        .add("code", code == null ? "none" : code.code())
                        .build()))
        .increment();
    durations
        .computeIfAbsent(
            ((route + 1) << 8) | method,
            k -> DURATION.withTags(TagSet.of("route", RouteTemplates.name(route)).withTag("method", method(method))))
        .record(Math.max(0, durationNanos));
  }

  static void timeToFirstToken(String model, long nanos) {
    ttfts.computeIfAbsent(model, m -> TTFT.withTag("model", m)).record(Math.max(0, nanos));
  }

  static void streamOpened() {
    OPEN_STREAMS.increment();
  }

  static void streamClosed() {
    OPEN_STREAMS.decrement();
  }

  /**
   * A request refused before any work started: {@code reason} an error code's wire name
   * (invalid_api_key, rate_limit_exceeded, insufficient_quota, payload_too_large, …) or {@code
   * node_at_capacity} ({@link Admission}).
   */
  static void rejected(String reason) {
    rejections.computeIfAbsent(reason, r -> REJECTED.withTag("reason", r)).increment();
  }

  /** Whether a response with {@code code} is a refusal before any work (counted as rejected). */
  static boolean refusal(ErrorCode code) {
    return switch (code) {
      case AUTHENTICATION, PERMISSION_DENIED, RATE_LIMITED, INSUFFICIENT_QUOTA, PAYLOAD_TOO_LARGE,
          UNSUPPORTED_MEDIA_TYPE, INVALID_REQUEST -> true;
      default -> false;
    };
  }
}
