package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.optionalHeaderValueByName;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.CacheProtocol;
import dev.mcpstack.shared.CacheSettings;
import dev.mcpstack.shared.Failures;
import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.Usage;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * The api-node's side of the response cache (docs/adr/0009): decides whether a chat request may use
 * it, computes its key, asks the partition that owns the key, and stores a fresh answer there. A
 * hit answers without a task, frees the request's limiter hold with no tokens (a hit spends no
 * tokens or budget), and says so in {@code X-Cache}.
 */
final class ResponseCache {
  static final String HEADER = "X-Cache";

  /**
   * Request fields that do not change the answer's content, left out of the key: how it is
   * delivered ({@code stream}, {@code stream_options}), who asks ({@code user}, {@code metadata},
   * {@code store} when false: a stored chat never uses the cache) and service hints.
   */
  static final Set<String> IGNORED_FIELDS = Set.of("stream", "stream_options", "user", "metadata", "store");

  /**
   * Fields whose presence makes a request ineligible: tools and functions (their calls act in the
   * world; a client that asks for them again expects them to be made again), and OpenAI's
   * predicted outputs, audio and web search (not deterministic, or not chat text).
   */
  static final Set<String> DISQUALIFYING_FIELDS =
      Set.of("tools", "tool_choice", "functions", "function_call", "prediction", "audio", "web_search_options");

  /** What a request's {@code Cache-Control} header asks: skip reading, skip writing. */
  record Control(boolean noCache, boolean noStore) {
    static final Control NONE = new Control(false, false);

    static Control parse(Optional<String> header) {
      if (header.isEmpty()) {
        return NONE;
      }
      boolean noCache = false;
      boolean noStore = false;
      for (String d : header.get().toLowerCase(Locale.ROOT).split(",")) {
        String directive = d.trim();
        noCache |= directive.equals("no-cache") || directive.equals("max-age=0");
        noStore |= directive.equals("no-store");
      }
      return new Control(noCache, noStore);
    }
  }

  private final ActorSystem<?> system;
  private final CacheSettings settings;
  private final ObjectMapper json;
  private final ClusterSharding sharding;
  private final Admission admission;

  ResponseCache(ActorSystem<?> system, CacheSettings settings, ObjectMapper json, Admission admission) {
    this.system = system;
    this.settings = settings;
    this.json = json;
    this.sharding = ClusterSharding.get(system);
    this.admission = admission;
  }

  boolean enabled() {
    return settings.enabled();
  }

  /** The request's {@code Cache-Control} directives. */
  Route control(Function<Control, Route> inner) {
    return optionalHeaderValueByName("Cache-Control", h -> inner.apply(Control.parse(h)));
  }

  /**
   * Answers a non-streamed chat from the cache when it may and can; otherwise runs {@code miss}
   * (the task) and keeps its successful answer. {@code done} ends the call's admission when no task
   * ran; {@code holdId} is the limiter hold to free then (null when there is none).
   */
  CompletionStage<HttpResponse> serve(
      Caller caller,
      TaskSpec spec,
      Control control,
      String holdId,
      Runnable done,
      Supplier<CompletionStage<HttpResponse>> miss) {
    if (!settings.enabled()) {
      return miss.get();
    }
    Optional<String> key = eligible(caller, spec) ? Optional.of(key(caller.tenant(), spec)) : Optional.empty();
    if (key.isEmpty() || control.noCache()) {
      HttpMetrics.cacheRequest("bypass");
      CompletionStage<HttpResponse> answer = miss.get();
      return (key.isPresent() && !control.noStore() ? answer.thenApply(r -> store(key.get(), caller, r)) : answer)
          .thenApply(r -> r.addHeader(RawHeader.create(HEADER, "bypass")));
    }
    return lookup(key.get(), caller.tenant())
        .thenCompose(
            found -> {
              if (found.hit()) {
                HttpMetrics.cacheRequest("hit");
                if (holdId != null) {
                  admission.release(caller, holdId, 0);
                }
                done.run();
                return CompletableFuture.completedFuture(
                    HttpResponse.create()
                        .withStatus(StatusCodes.OK)
                        .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, found.body()))
                        .addHeader(RawHeader.create(HEADER, "hit")));
              }
              HttpMetrics.cacheRequest("miss");
              return miss.get()
                  .thenApply(r -> control.noStore() ? r : store(key.get(), caller, r))
                  .thenApply(r -> r.addHeader(RawHeader.create(HEADER, "miss")));
            });
  }

  /** The partition's answer; a partition that does not answer in time is a miss. */
  private CompletionStage<CacheProtocol.Found> lookup(String key, String tenant) {
    return sharding
        .entityRefFor(CacheProtocol.TYPE_KEY, CacheProtocol.partitionOf(key, settings.partitions()))
        .<CacheProtocol.Found>ask(replyTo -> new CacheProtocol.Lookup(key, tenant, replyTo), settings.askTimeout())
        .exceptionally(
            e -> {
              system.log().debug("response cache lookup failed, treated as a miss: {}", Failures.unwrap(e).toString());
              return CacheProtocol.Found.MISS;
            });
  }

  /** Keeps a successful answer (a whole JSON body) under {@code key}; any other response passes. */
  private HttpResponse store(String key, Caller caller, HttpResponse response) {
    if (response.status().intValue() == 200 && response.entity() instanceof HttpEntity.Strict strict) {
      Usage usage = response.getAttribute(Exchange.OUTCOME).map(Exchange.Outcome::usage).orElse(null);
      sharding
          .entityRefFor(CacheProtocol.TYPE_KEY, CacheProtocol.partitionOf(key, settings.partitions()))
          .tell(new CacheProtocol.Store(key, caller.tenant(), strict.getData().utf8String(), usage));
    }
    return response;
  }

  /**
   * Whether a request may use the cache: a non-streamed chat of a key that allows it, deterministic
   * (temperature 0, or a seed), one choice, not stored, without tools.
   */
  static boolean eligible(Caller caller, TaskSpec spec) {
    if (spec.kind() != TaskKind.CHAT || spec.streaming()) {
      return false;
    }
    if (caller.key() != null && !caller.key().cacheAllowed()) {
      return false;
    }
    JsonNode r = spec.request();
    if (r.path("store").asBoolean(false) || r.path("n").asInt(1) != 1) {
      return false;
    }
    for (String field : DISQUALIFYING_FIELDS) {
      JsonNode v = r.get(field);
      if (v != null && !v.isNull() && !(v.isArray() && v.isEmpty())) {
        return false;
      }
    }
    JsonNode temperature = r.get("temperature");
    boolean greedy = temperature != null && temperature.isNumber() && temperature.doubleValue() == 0.0;
    JsonNode seed = r.get("seed");
    boolean seeded = seed != null && seed.isIntegralNumber();
    return greedy || seeded;
  }

  /** SHA-256 (hex) over the tenant, the model and the canonical request. */
  String key(String tenant, TaskSpec spec) {
    return Sha256.hex(tenant + '\u0000' + spec.model() + '\u0000' + canonical(spec.request()));
  }

  /** The request as JSON text with sorted keys at every level and without {@link #IGNORED_FIELDS}. */
  String canonical(JsonNode request) {
    ObjectNode top = (ObjectNode) sorted(request);
    top.remove(IGNORED_FIELDS);
    try {
      return json.writeValueAsString(top);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private JsonNode sorted(JsonNode node) {
    if (node.isObject()) {
      List<String> names = new ArrayList<>();
      node.fieldNames().forEachRemaining(names::add);
      Collections.sort(names);
      ObjectNode out = json.createObjectNode();
      for (String n : names) {
        out.set(n, sorted(node.get(n)));
      }
      return out;
    }
    if (node.isNumber()) {
      // 0, 0.0 and 0e0 are one temperature
      return json.getNodeFactory().numberNode(node.decimalValue().stripTrailingZeros());
    }
    if (node.isArray()) {
      ArrayNode out = json.createArrayNode();
      node.forEach(e -> out.add(sorted(e)));
      return out;
    }
    return node;
  }
}
