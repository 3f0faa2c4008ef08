package dev.mcpstack.shared;

import com.typesafe.config.Config;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.Done;

/**
 * Spans of this node, exported with OpenTelemetry over OTLP (docs/observability.md, "Traces") when
 * {@code mcp.tracing.enabled}; off by default, and then {@link #enabled()} is false and callers
 * make no span at all: a request only carries its {@link TraceContext} strings. Spans are made with
 * explicit parents from those strings (never the thread's current context: a task's work hops
 * between actors, nodes and stream stages). One SDK per actor system, flushed and closed with it.
 */
public final class Tracing implements Extension {
  private static final String SCOPE = "dev.mcpstack";
  private static final TextMapGetter<TraceContext> GETTER =
      new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(TraceContext carrier) {
          return List.of("traceparent", "tracestate");
        }

        @Override
        public String get(TraceContext carrier, String key) {
          if (carrier == null) {
            return null;
          }
          return switch (key) {
            case "traceparent" -> carrier.traceparent();
            case "tracestate" -> carrier.tracestate();
            default -> null;
          };
        }
      };

  private volatile Tracer tracer;

  private Tracing(Tracer tracer) {
    this.tracer = tracer;
  }

  public static final ExtensionId<Tracing> ID =
      new ExtensionId<>() {
        @Override
        public Tracing createExtension(ActorSystem<?> system) {
          return create(system);
        }
      };

  public static Tracing get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private static Tracing create(ActorSystem<?> system) {
    Config c = system.settings().config().getConfig("mcp.tracing");
    if (!c.getBoolean("enabled")) {
      return new Tracing(null);
    }
    OtlpHttpSpanExporter exporter =
        OtlpHttpSpanExporter.builder()
            .setEndpoint(c.getString("otlp-endpoint"))
            .setTimeout(c.getDuration("export-timeout"))
            .build();
    SdkTracerProvider provider =
        SdkTracerProvider.builder()
            .setResource(
                Resource.getDefault()
                    .merge(
                        Resource.create(
                            Attributes.of(
                                io.opentelemetry.api.common.AttributeKey.stringKey("service.name"),
                                c.getString("service-name"),
                                io.opentelemetry.api.common.AttributeKey.stringKey("service.instance.id"),
                                system.address().toString()))))
            .addSpanProcessor(
                BatchSpanProcessor.builder(exporter)
                    .setScheduleDelay(c.getDuration("schedule-delay"))
                    .setMaxQueueSize(c.getInt("max-queue-size"))
                    .build())
            .build();
    OpenTelemetrySdk sdk = OpenTelemetrySdk.builder().setTracerProvider(provider).build();
    Duration flush = c.getDuration("export-timeout");
    CoordinatedShutdown.get(system)
        .addTask(
            CoordinatedShutdown.PhaseActorSystemTerminate(),
            "tracing-flush",
            () -> {
              provider.shutdown().join(flush.toMillis(), TimeUnit.MILLISECONDS);
              return java.util.concurrent.CompletableFuture.completedFuture(Done.getInstance());
            });
    return new Tracing(sdk.getTracer(SCOPE));
  }

  /** Tracing that makes no span (until {@link #use}), outside an actor system. */
  public static Tracing off() {
    return new Tracing(null);
  }

  /** Spans go to {@code otel} from now on (tests: the SDK's in-memory exporter). */
  public void use(OpenTelemetry otel) {
    this.tracer = otel == null ? null : otel.getTracer(SCOPE);
  }

  /** Whether spans are made; when false, callers skip every span. */
  public boolean enabled() {
    return tracer != null;
  }

  /**
   * Starts a span under {@code parent} (null: a new trace). Only when {@link #enabled()}.
   */
  public Span start(String name, SpanKind kind, TraceContext parent) {
    Context context =
        parent == null
            ? Context.root()
            : W3CTraceContextPropagator.getInstance().extract(Context.root(), parent, GETTER);
    return tracer.spanBuilder(name).setSpanKind(kind).setParent(context).startSpan();
  }

  /** {@code span}'s context as {@link TraceContext}: what its children are sent. */
  public static TraceContext contextOf(Span span, String tracestate, String requestId) {
    SpanContext sc = span.getSpanContext();
    return new TraceContext(
        TraceContext.format(sc.getTraceId(), sc.getSpanId(), sc.getTraceFlags().asHex()), tracestate, requestId);
  }

  /** Ends {@code span} as failed with {@code code} when not null. */
  public static void end(Span span, String errorCode) {
    if (errorCode != null) {
      span.setStatus(StatusCode.ERROR, errorCode);
      span.setAttribute("error.type", errorCode);
    }
    span.end();
  }
}
