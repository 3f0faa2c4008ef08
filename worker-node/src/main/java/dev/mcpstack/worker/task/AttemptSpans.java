package dev.mcpstack.worker.task;

import dev.mcpstack.shared.Failures;
import dev.mcpstack.shared.TraceContext;
import dev.mcpstack.shared.Tracing;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import java.util.concurrent.CancellationException;

/**
 * How spans name failures, for the task's spans and its runner calls alike: the error code of an
 * {@link AttemptFailure} ({@code upstream_error}, {@code timeout}, ...), else the exception's class.
 */
public final class AttemptSpans {
  private AttemptSpans() {}

  /** The code {@code failure} ends a span with; null for a cancelled call (not an error). */
  public static String errorCode(Throwable failure) {
    Throwable cause = Failures.unwrap(failure);
    if (cause instanceof CancellationException) {
      return null;
    }
    if (cause instanceof AttemptFailure af && af.error() != null) {
      return af.error().code().code();
    }
    return cause.getClass().getSimpleName();
  }

  /** A span under {@code parent} when tracing is on, else null. */
  static Span start(Tracing tracing, String name, TraceContext parent) {
    return tracing.enabled() ? tracing.start(name, SpanKind.INTERNAL, parent) : null;
  }
}
