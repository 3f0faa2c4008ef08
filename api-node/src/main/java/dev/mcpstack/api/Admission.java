package dev.mcpstack.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.Failures;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.LimiterProtocol;
import dev.mcpstack.shared.LimiterProtocol.HoldKind;
import dev.mcpstack.shared.LimiterProtocol.Standing;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiFunction;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;

/**
 * Whether new work may start, before it becomes a task: this node's bound on calls whose clients
 * wait ({@code mcp.api.max-in-flight}, a fast 503 beyond it), then the caller's key limiter, the
 * one authority for that key in the whole cluster (a 429 {@code rate_limit_exceeded} with
 * {@code Retry-After} and OpenAI's {@code x-ratelimit-*} headers when over, {@code
 * insufficient_quota} when its budget is spent). Keys without limits and the anonymous caller skip
 * the limiter. The hold taken here is the request's own; the task entity frees it when the task
 * ends, or the submit does when no task started under it.
 */
final class Admission {
  private final ActorSystem<?> system;
  private final ClusterSharding sharding;
  private final ApiSettings settings;
  private final Semaphore inFlight;

  Admission(ActorSystem<?> system, ApiSettings settings) {
    this.system = system;
    this.sharding = ClusterSharding.get(system);
    this.settings = settings;
    this.inFlight = new Semaphore(settings.maxInFlight());
  }

  /**
   * What the limiter said: the standing for the headers, and the hold it gave (null without a
   * limiter), which the task frees when it ends.
   */
  record Admitted(Standing standing, String holdId) {
    static final Admitted NONE = new Admitted(null, null);

    HttpResponse decorate(HttpResponse response) {
      return standing == null ? response : response.addHeaders(headers(standing));
    }
  }

  /**
   * Takes one of this node's in-flight places for a call whose client waits; 503 when none is
   * left. The caller must {@link #leave()} once, when the call ends.
   */
  void enter() {
    if (!inFlight.tryAcquire()) {
      HttpMetrics.rejected("node_at_capacity");
      throw ApiError.of(
          ErrorCode.UNAVAILABLE, "This node is at its limit of " + settings.maxInFlight() + " open calls; try again shortly.");
    }
  }

  void leave() {
    inFlight.release();
  }

  /**
   * Runs a call whose client waits: takes one of this node's in-flight places, asks the limiter,
   * then runs {@code work} with the limiter's answer and a {@code done} to call once when the call
   * is over (a stream is over after its response was sent). A failure gives the place back, and so
   * does the task's deadline at the latest, should the call end in a way nobody saw (a client that
   * left before its response started).
   */
  <T> CompletionStage<T> waiting(
      Caller caller,
      String taskId,
      TaskSpec spec,
      Instant deadline,
      BiFunction<Admitted, Runnable, CompletionStage<T>> work) {
    enter();
    AtomicBoolean over = new AtomicBoolean();
    AtomicReference<Cancellable> fallback = new AtomicReference<>();
    Runnable done =
        () -> {
          if (over.compareAndSet(false, true)) {
            leave();
            Cancellable timer = fallback.get();
            if (timer != null) {
              timer.cancel();
            }
          }
        };
    try {
      fallback.set(
          system
              .scheduler()
              .scheduleOnce(
                  Duration.between(Instant.now(), deadline).plus(settings.waitGrace()).plus(settings.askTimeout()),
                  done,
                  system.executionContext()));
      return admit(caller, taskId, HoldKind.REQUEST, spec, deadline.plus(settings.waitGrace()))
          .thenCompose(admitted -> work.apply(admitted, done))
          .whenComplete(
              (response, e) -> {
                if (e != null) {
                  done.run();
                }
              });
    } catch (RuntimeException e) {
      done.run();
      throw e;
    }
  }

  /**
   * Asks the caller's limiter to admit a task: a hold of its own (a fresh id) that the task entity
   * frees when the task ends. Keys without limits and the anonymous caller pass without asking.
   */
  CompletionStage<Admitted> admit(Caller caller, String taskId, HoldKind kind, TaskSpec spec, Instant holdUntil) {
    KeyLimits limits = caller.limits();
    if (limits.unlimited()) {
      return CompletableFuture.completedFuture(Admitted.NONE);
    }
    long tokens = reservation(spec, limits);
    String holdId = taskId + "/" + UUID.randomUUID();
    return sharding
        .entityRefFor(LimiterProtocol.TYPE_KEY, caller.account())
        .<LimiterProtocol.Decision>ask(
            replyTo -> new LimiterProtocol.Acquire(holdId, taskId, kind, tokens, limits, holdUntil, replyTo),
            settings.askTimeout())
        .handle(
            (decision, e) -> {
              if (e != null) {
                // it may have been granted after all: give that hold back
                release(caller, holdId, -1);
                system.log().warn("the limiter of key {} did not answer: {}", caller.keyId(), Failures.unwrap(e).toString());
                throw ApiError.of(ErrorCode.UNAVAILABLE, "The rate limiter did not answer in time; try again.");
              }
              if (decision instanceof LimiterProtocol.Denied denied) {
                long seconds = denied.retryAfterMillis() > 0 ? (denied.retryAfterMillis() + 999) / 1000 : 0;
                ErrorCode code = denied.quota() ? ErrorCode.INSUFFICIENT_QUOTA : ErrorCode.RATE_LIMITED;
                throw new ApiError(code, denied.reason(), null, headers(denied.standing()), seconds);
              }
              boolean shared = ((LimiterProtocol.Granted) decision).shared();
              return new Admitted(decision.standing(), shared ? null : holdId);
            });
  }

  /**
   * Frees a hold this node took for a task that did not start under it; {@code actualTokens}
   * settles its tokens (negative: keep the estimate).
   */
  void release(Caller caller, String holdId, long actualTokens) {
    sharding.entityRefFor(LimiterProtocol.TYPE_KEY, caller.account()).tell(new LimiterProtocol.Release(holdId, actualTokens));
  }

  /**
   * What a request reserves of its key's tokens per minute, settled with the real usage when it
   * ends: about one token per four characters of its input plus the completion tokens it allows
   * itself ({@code max_tokens}, the server's default included). The completion part is capped so
   * that a request whose input fits the key's minute is never refused for a {@code max_tokens}
   * larger than that minute; it then waits for room like any other.
   */
  static long reservation(TaskSpec spec, KeyLimits limits) {
    JsonNode request = spec.request();
    if (spec.kind() == TaskKind.EMBEDDINGS) {
      return Math.max(1, request.path("input").toString().length() / 4);
    }
    long prompt = Math.max(1, request.path("messages").toString().length() / 4);
    long completion = Math.max(0, request.path("max_completion_tokens").asLong(request.path("max_tokens").asLong(0)));
    long tpm = limits.tokensPerMinute();
    return tpm > 0 && prompt <= tpm ? Math.min(prompt + completion, tpm) : prompt + completion;
  }

  static List<HttpHeader> headers(Standing s) {
    List<HttpHeader> headers = new ArrayList<>(6);
    if (s.limitRequests() > 0) {
      headers.add(RawHeader.create("x-ratelimit-limit-requests", Integer.toString(s.limitRequests())));
      headers.add(RawHeader.create("x-ratelimit-remaining-requests", Integer.toString(s.remainingRequests())));
      headers.add(RawHeader.create("x-ratelimit-reset-requests", duration(s.resetRequestsMillis())));
    }
    if (s.limitTokens() > 0) {
      headers.add(RawHeader.create("x-ratelimit-limit-tokens", Long.toString(s.limitTokens())));
      headers.add(RawHeader.create("x-ratelimit-remaining-tokens", Long.toString(s.remainingTokens())));
      headers.add(RawHeader.create("x-ratelimit-reset-tokens", duration(s.resetTokensMillis())));
    }
    return headers;
  }

  /** OpenAI's duration format: {@code 250ms}, {@code 1.5s}, {@code 6m0s}. */
  static String duration(long millis) {
    if (millis < 1000) {
      return millis + "ms";
    }
    if (millis < 60_000) {
      return (millis % 1000 == 0 ? Long.toString(millis / 1000) : String.valueOf(millis / 1000.0)) + "s";
    }
    return (millis / 60_000) + "m" + ((millis % 60_000) / 1000) + "s";
  }
}
