package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskView;
import dev.mcpstack.shared.TraceContext;
import io.opentelemetry.api.trace.Span;
import dev.mcpstack.shared.Usage;
import org.apache.pekko.http.javadsl.model.AttributeKey;
import org.apache.pekko.http.javadsl.model.HttpResponse;

/**
 * What the access log and the HTTP metrics learn about one request while the routes handle it:
 * one small mutable object per request, carried as a request attribute, filled where the facts
 * are known (the caller by {@link HttpSupport#authenticated}, the model by {@link
 * HttpSupport#submission}) and read once when the response is complete ({@link RequestObserver}).
 * Responses carry the rest as attributes: the error code ({@link ErrorResponses}) and a task's
 * outcome ({@link Outcome}: attempts, usage, time to first token of a stream).
 */
final class Exchange {
  static final AttributeKey<Exchange> KEY = AttributeKey.create("mcp-exchange", Exchange.class);
  static final AttributeKey<ErrorCode> ERROR = AttributeKey.create("mcp-error-code", ErrorCode.class);
  static final AttributeKey<Outcome> OUTCOME = AttributeKey.create("mcp-task-outcome", Outcome.class);

  final String requestId;
  final long startNanos;
  /** The request's trace context (the client's, or a new trace); null outside {@link RequestObserver}. */
  final TraceContext trace;
  /** The request's span when tracing is on, else null. */
  final Span span;
  private volatile String keyId;
  private volatile String tenant;
  private volatile String model;

  Exchange(String requestId, long startNanos) {
    this(requestId, startNanos, null, null);
  }

  Exchange(String requestId, long startNanos, TraceContext trace, Span span) {
    this.requestId = requestId;
    this.startNanos = startNanos;
    this.trace = trace;
    this.span = span;
  }

  void caller(Caller caller) {
    this.keyId = caller.keyId();
    this.tenant = caller.tenant();
  }

  void model(String model) {
    this.model = model;
  }

  String keyId() {
    return keyId;
  }

  String tenant() {
    return tenant;
  }

  String model() {
    return model;
  }

  /**
   * What a task told about itself, known only when a route ran one: a synchronous answer's task
   * view, or a stream that fills in as it goes ({@link ChatStream}). Read after the response (or
   * the stream) is complete.
   */
  interface Outcome {
    /** The task's model, or null. */
    String model();

    /** Attempts the task took; 0 when unknown. */
    int attempts();

    /** Token usage, or null. */
    Usage usage();

    /** The upstream that answered, or null. */
    String upstream();

    /** {@link System#nanoTime()} of the first content sent to the client; 0 when none (or not a stream). */
    long firstTokenNanos();

    /** The error code a stream ended with after its 200 status, or null. */
    ErrorCode streamError();
  }

  /** A finished task's view as an {@link Outcome}. */
  record Finished(TaskView view) implements Outcome {
    @Override
    public String model() {
      return view.model();
    }

    @Override
    public int attempts() {
      return view.attempts();
    }

    @Override
    public Usage usage() {
      return view.result() == null ? null : view.result().usage();
    }

    @Override
    public String upstream() {
      return view.result() == null ? null : view.result().upstream();
    }

    @Override
    public long firstTokenNanos() {
      return 0;
    }

    @Override
    public ErrorCode streamError() {
      return null;
    }
  }

  /** {@code response} marked as the answer of the task {@code view}. */
  static HttpResponse finished(HttpResponse response, TaskView view) {
    return response.addAttribute(OUTCOME, new Finished(view));
  }
}
