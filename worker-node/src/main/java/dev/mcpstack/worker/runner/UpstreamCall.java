package dev.mcpstack.worker.runner;

import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.Tracing;
import dev.mcpstack.worker.task.AttemptSpans;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;

/**
 * One call to a model runner as a trace sees it: the headers it sends ({@code traceparent} naming
 * this call, the client's {@code tracestate}, the request's {@code X-Request-Id}) and, when tracing
 * is on, its client span, a child of the attempt's, ended when the call's outcome is known. When
 * tracing is off the call still gets a span id of its own in {@code traceparent} (a child of the
 * attempt's context): no span is made.
 */
final class UpstreamCall {
  static final String TRACEPARENT = "traceparent";
  static final String TRACESTATE = "tracestate";
  static final String REQUEST_ID = "X-Request-Id";

  /** A call with no trace context (catalog look-ups, probes): no headers, no span. */
  static final UpstreamCall NONE = new UpstreamCall(null, null);

  private final Span span;
  private final TraceContext sent;

  private UpstreamCall(Span span, TraceContext sent) {
    this.span = span;
    this.sent = sent;
  }

  /** Opens the call to {@code path} on {@code u} under {@code parent} (null: no trace context). */
  static UpstreamCall open(Tracing tracing, Upstream u, String path, String model, TraceContext parent) {
    if (parent == null) {
      return NONE;
    }
    if (!tracing.enabled()) {
      return new UpstreamCall(null, parent.child());
    }
    Span span = tracing.start("POST " + path, SpanKind.CLIENT, parent);
    span.setAttribute("http.request.method", "POST");
    span.setAttribute("url.full", u.url(path));
    span.setAttribute("mcp.upstream", u.name());
    span.setAttribute("gen_ai.request.model", model);
    return new UpstreamCall(span, Tracing.contextOf(span, parent.tracestate(), parent.requestId()));
  }

  /** {@code request} with this call's trace headers. */
  HttpRequest headers(HttpRequest request) {
    if (sent == null) {
      return request;
    }
    HttpRequest r = request.addHeader(RawHeader.create(TRACEPARENT, sent.traceparent()));
    if (sent.tracestate() != null) {
      r = r.addHeader(RawHeader.create(TRACESTATE, sent.tracestate()));
    }
    if (sent.requestId() != null) {
      r = r.addHeader(RawHeader.create(REQUEST_ID, sent.requestId()));
    }
    return r;
  }

  /** {@code outcome}, ending the span (if any) when it completes. */
  <T> CompletionStage<T> endWith(CompletionStage<T> outcome) {
    if (span == null) {
      return outcome;
    }
    return outcome.whenComplete((ok, e) -> Tracing.end(span, e == null ? null : AttemptSpans.errorCode(e)));
  }

  /** Records the runner's status on the span. */
  void status(int status) {
    if (span != null) {
      span.setAttribute("http.response.status_code", status);
    }
  }
}
