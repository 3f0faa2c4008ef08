package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;

import com.typesafe.config.Config;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.Tracing;
import dev.mcpstack.shared.Usage;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.ResponseEntity;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.spi.LoggingEventBuilder;

/**
 * The one place every request is observed: it wraps the whole route tree, gives the request its
 * {@link Exchange}, and when the response is complete (a stream: when its last event was sent or
 * the client left) writes one access-log line on the logger {@code mcp.access} and records the
 * HTTP metrics ({@link HttpMetrics}). The line's fields are SLF4J key-value pairs, rendered as JSON
 * fields or as {@code key=value} by the logback configuration ({@code LOG_FORMAT}): time, request
 * id, trace id, key id (its public id, never the key), tenant, method, route template, status, error code,
 * model, upstream, attempts, tokens, time to first token, duration. Never a prompt or a completion.
 */
final class RequestObserver {
  static final Logger ACCESS = LoggerFactory.getLogger("mcp.access");
  static final String TRACEPARENT = "traceparent";
  static final String TRACESTATE = "tracestate";

  private final boolean accessLog;
  private final Tracing tracing;

  /** An observer that makes no spans (tracing off). */
  RequestObserver(Config config) {
    this(config, Tracing.off());
  }

  RequestObserver(Config config, Tracing tracing) {
    this.accessLog = config.getBoolean("mcp.api.access-log.enabled");
    this.tracing = tracing;
  }

  /** {@code inner}, observed as the request {@code requestId}. */
  Route observe(String requestId, Supplier<Route> inner) {
    long start = System.nanoTime();
    return extractRequest(
        request -> {
          Exchange exchange = exchange(requestId, start, request);
          return mapRequest(
              r -> r.addAttribute(Exchange.KEY, exchange),
              () -> mapResponse(response -> completed(exchange, request, response), inner));
        });
  }

  /**
   * The request's exchange and its trace context: the client's {@code traceparent} (and {@code
   * tracestate}) when valid, else a new trace. With tracing on, the request gets a server span
   * (a child of the client's), and its tasks are children of that span; off, the context is only
   * the client's strings (or a fresh trace id), carried as they are.
   */
  private Exchange exchange(String requestId, long start, HttpRequest request) {
    String parent = request.getHeader(TRACEPARENT).map(HttpHeader::value).orElse(null);
    String state = parent == null ? null : request.getHeader(TRACESTATE).map(HttpHeader::value).orElse(null);
    if (!tracing.enabled()) {
      return new Exchange(requestId, start, TraceContext.accept(parent, state, requestId), null);
    }
    TraceContext client =
        parent != null && TraceContext.valid(parent.trim()) ? TraceContext.accept(parent, state, requestId) : null;
    String method = request.method().value();
    String route = RouteTemplates.name(RouteTemplates.index(request.getUri().path()));
    Span span = tracing.start(method + " " + route, SpanKind.SERVER, client);
    span.setAttribute("http.request.method", method);
    span.setAttribute("http.route", route);
    span.setAttribute("mcp.request_id", requestId);
    return new Exchange(
        requestId, start, Tracing.contextOf(span, client == null ? null : client.tracestate(), requestId), span);
  }

  HttpResponse completed(Exchange exchange, HttpRequest request, HttpResponse response) {
    ResponseEntity entity = response.entity();
    if (!entity.isChunked()) {
      done(exchange, request, response, null);
      return response;
    }
    // a stream: open once the server runs it, over when its last chunk was sent or the client went
    // away (one the server never ran, its client gone before the response, is neither)
    Source<ByteString, Object> observed =
        entity
            .getDataBytes()
            .watchTermination(
                (mat, finished) -> {
                  HttpMetrics.streamOpened();
                  finished.whenComplete(
                      (ok, e) -> {
                        HttpMetrics.streamClosed();
                        done(exchange, request, response, e);
                      });
                  return mat;
                });
    return response.withEntity(HttpEntities.createChunked(entity.getContentType(), observed));
  }

  private void done(Exchange exchange, HttpRequest request, HttpResponse response, Throwable broken) {
    long end = System.nanoTime();
    int status = response.status().intValue();
    ErrorCode code = response.getAttribute(Exchange.ERROR).orElse(null);
    Exchange.Outcome outcome = response.getAttribute(Exchange.OUTCOME).orElse(null);
    String model = exchange.model();
    long ttft = 0;
    if (outcome != null) {
      if (outcome.streamError() != null) {
        code = outcome.streamError();
      }
      if (outcome.model() != null) {
        model = outcome.model();
      }
      if (outcome.firstTokenNanos() != 0) {
        ttft = outcome.firstTokenNanos() - exchange.startNanos;
        HttpMetrics.timeToFirstToken(model == null ? "unknown" : model, ttft);
      }
    }
    String path = request.getUri().path();
    int route = RouteTemplates.index(path);
    String method = request.method().value();
    HttpMetrics.request(route, HttpMetrics.methodIndex(method), status, code, end - exchange.startNanos);
    if (code != null && HttpMetrics.refusal(code)) {
      HttpMetrics.rejected(code.code());
    }
    if (accessLog && ACCESS.isInfoEnabled()) {
      log(exchange, method, RouteTemplates.name(route), status, code, model, outcome, ttft, end, broken);
    }
    if (exchange.span != null) {
      endSpan(exchange.span, status, code, model, outcome, broken);
    }
  }

  /** Ends the request's span: failed on a 5xx, a stream's error event or a broken stream. */
  private static void endSpan(
      Span span, int status, ErrorCode code, String model, Exchange.Outcome outcome, Throwable broken) {
    span.setAttribute("http.response.status_code", status);
    if (model != null) {
      span.setAttribute("gen_ai.request.model", model);
    }
    if (outcome != null && outcome.attempts() > 0) {
      span.setAttribute("mcp.task.attempts", outcome.attempts());
    }
    if (code != null) {
      span.setAttribute("mcp.error_code", code.code());
    }
    boolean failed = status >= 500 || (outcome != null && outcome.streamError() != null) || broken != null;
    Tracing.end(span, failed ? (code != null ? code.code() : broken != null ? broken.getClass().getSimpleName() : String.valueOf(status)) : null);
  }

  private static void log(
      Exchange exchange,
      String method,
      String route,
      int status,
      ErrorCode code,
      String model,
      Exchange.Outcome outcome,
      long ttftNanos,
      long end,
      Throwable broken) {
    double durationMs = (end - exchange.startNanos) / 1e6;
    LoggingEventBuilder line =
        ACCESS
            .atInfo()
            .addKeyValue("request_id", exchange.requestId)
            .addKeyValue("method", method)
            .addKeyValue("route", route)
            .addKeyValue("status", status);
    if (exchange.trace != null) {
      line.addKeyValue("trace_id", exchange.trace.traceId());
    }
    if (code != null) {
      line.addKeyValue("error_code", code.code());
    }
    if (exchange.keyId() != null) {
      line.addKeyValue("key_id", exchange.keyId());
    }
    if (exchange.tenant() != null) {
      line.addKeyValue("tenant", exchange.tenant());
    }
    if (model != null) {
      line.addKeyValue("model", model);
    }
    if (outcome != null) {
      if (outcome.upstream() != null) {
        line.addKeyValue("upstream", outcome.upstream());
      }
      if (outcome.attempts() > 0) {
        line.addKeyValue("attempts", outcome.attempts());
      }
      Usage usage = outcome.usage();
      if (usage != null) {
        line.addKeyValue("prompt_tokens", usage.promptTokens()).addKeyValue("completion_tokens", usage.completionTokens());
      }
    }
    if (ttftNanos > 0) {
      line.addKeyValue("ttft_ms", Math.round(ttftNanos / 1e4) / 100.0);
    }
    line.addKeyValue("duration_ms", Math.round(durationMs * 100) / 100.0);
    if (broken != null) {
      line.addKeyValue("stream_broken", broken.getClass().getSimpleName());
    }
    line.log("{} {} {}", method, route, status);
  }
}
