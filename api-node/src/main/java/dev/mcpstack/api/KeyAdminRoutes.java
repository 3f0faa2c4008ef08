package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.KeyProtocol;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * {@code /admin/keys}: create a key (its secret is in that answer only), list and read keys,
 * change their limits, models or name, revoke and rotate them. Changes go to the cluster's key
 * registry; this node applies its own change at once, the others within one refresh interval.
 */
final class KeyAdminRoutes {
  private static final int MAX_NAME = 128;

  private final HttpSupport http;
  private final KeyStore keys;
  private final UsageRoutes usage;
  private final EntityRef<KeyProtocol.Command> registry;
  private final KeyLimits defaults;
  private final Duration refreshInterval;

  KeyAdminRoutes(HttpSupport http, KeyStore keys, UsageRoutes usage) {
    this.http = http;
    this.keys = keys;
    this.usage = usage;
    this.registry = ClusterSharding.get(http.system).entityRefFor(KeyProtocol.TYPE_KEY, KeyProtocol.REGISTRY_ID);
    Config api = http.system.settings().config().getConfig("mcp.api");
    this.defaults = KeyStore.limits(api.getConfig("keys.default-limits"));
    this.refreshInterval = api.getDuration("keys.refresh-interval");
  }

  Route route(String requestId) {
    return pathPrefix(
        "keys",
        () ->
            concat(
                pathEndOrSingleSlash(
                    () ->
                        concat(
                            get(() -> parameterOptional("tenant", tenant -> list(tenant, requestId))),
                            post(() -> http.jsonBody(body -> create(body, requestId))))),
                path(
                    segment(),
                    id ->
                        concat(
                            get(() -> answer(ask(id, r -> new KeyProtocol.Get(id, r)), StatusCodes.OK, null, requestId)),
                            patch(() -> http.jsonBody(body -> update(id, body, requestId))))),
                path(
                    segment().slash("revoke"),
                    id -> post(() -> answer(ask(id, r -> new KeyProtocol.Revoke(id, r)), StatusCodes.OK, null, requestId))),
                path(segment().slash("rotate"), id -> post(() -> rotate(id, requestId))),
                path(
                    segment().slash("usage"),
                    id -> get(() -> usage.range((from, to) -> keyUsage(id, from, to, requestId))))));
  }

  private Route keyUsage(String id, java.time.LocalDate from, java.time.LocalDate to, String requestId) {
    return onSuccess(
        ask(id, r -> new KeyProtocol.Get(id, r)),
        reply -> usage.key(((KeyProtocol.One) checked(reply)).key(), from, to, requestId));
  }

  private Route list(Optional<String> tenant, String requestId) {
    return http.respond(
        registry
            .<KeyProtocol.Reply>ask(r -> new KeyProtocol.ChangesSince(0, r), http.settings.askTimeout())
            .thenApply(
                reply -> {
                  ObjectNode body = http.json.createObjectNode().put("object", "list");
                  ArrayNode data = body.putArray("data");
                  ((KeyProtocol.Many) checked(reply))
                      .keys().stream()
                          .filter(k -> tenant.isEmpty() || tenant.get().equals(k.tenant()))
                          .sorted(Comparator.comparing(ApiKey::tenant).thenComparing(ApiKey::id))
                          .forEach(k -> data.add(key(k, null)));
                  return http.json(StatusCodes.OK, body);
                }),
        requestId);
  }

  private Route create(JsonNode body, String requestId) {
    object(body);
    String tenant = body.path("tenant").asText("");
    if (!body.path("tenant").isTextual() || !KeyStore.validTenant(tenant)) {
      throw ApiError.invalid(
          "tenant", "Invalid 'tenant': expected 1 to 64 letters, digits, '_', '.' or '-', other than 'anonymous' and 'operator'.");
    }
    String name = name(body);
    List<String> models = models(body);
    KeyLimits limits = body.has("limits") ? limits(body.get("limits"), defaults) : defaults;
    if (body.has("budget")) {
      limits = limits.withBudget(budget(body.get("budget")));
    }
    ApiKeys.NewKey made = ApiKeys.generate();
    ApiKey key = new ApiKey(made.id(), tenant, name, made.sha256(), limits, models, null, null, null, 0, cache(body));
    return answer(ask(made.id(), r -> new KeyProtocol.Create(key, r)), StatusCodes.CREATED, made.secret(), requestId);
  }

  /** Fields the body lacks stay as they are, limits field by field too. */
  private Route update(String id, JsonNode body, String requestId) {
    object(body);
    String name = body.has("name") ? name(body) : null;
    List<String> models = body.has("models") ? models(body) : null;
    Boolean cache = cache(body);
    if (body.has("limits")) {
      limits(body.get("limits"), KeyLimits.UNLIMITED); // 400 before asking anything
    }
    Budget budget = body.has("budget") ? budget(body.get("budget")) : null;
    CompletionStage<KeyProtocol.Reply> updated =
        ask(id, r -> new KeyProtocol.Get(id, r))
            .thenCompose(
                current -> {
                  KeyLimits base = ((KeyProtocol.One) checked(current)).key().limits();
                  KeyLimits limits = body.has("limits") ? limits(body.get("limits"), base) : base;
                  if (body.has("budget")) {
                    limits = limits.withBudget(budget);
                  }
                  KeyLimits changed = body.has("limits") || body.has("budget") ? limits : null;
                  return ask(id, r -> new KeyProtocol.Update(id, name, changed, models, cache, r));
                });
    return answer(updated, StatusCodes.OK, null, requestId);
  }

  /** The new key answers; the old one, revoked in the same step, is refused here at once too. */
  private Route rotate(String id, String requestId) {
    ApiKeys.NewKey made = ApiKeys.generate();
    CompletionStage<KeyProtocol.Reply> rotated =
        ask(id, r -> new KeyProtocol.Rotate(id, made.id(), made.sha256(), r))
            .thenCompose(
                reply ->
                    reply instanceof KeyProtocol.Rejected
                        ? java.util.concurrent.CompletableFuture.completedFuture(reply)
                        : ask(id, r -> new KeyProtocol.Get(id, r))
                            .thenApply(
                                old -> {
                                  if (old instanceof KeyProtocol.One one) {
                                    keys.applyLocal(one.key());
                                  }
                                  return reply;
                                }));
    return answer(rotated, StatusCodes.CREATED, made.secret(), requestId);
  }

  /** Asks the registry about key {@code id}; 404 without asking when it cannot be an id. */
  private CompletionStage<KeyProtocol.Reply> ask(String id, Function<ActorRef<KeyProtocol.Reply>, KeyProtocol.Command> command) {
    if (!ApiKeys.isId(id) && !id.startsWith("cfg")) {
      throw new ApiError(ErrorCode.NOT_FOUND, "No API key with id '" + id + "'.", "id");
    }
    return registry.ask(command::apply, http.settings.askTimeout());
  }

  /** The key of a registry answer as JSON; applied to this node's copy at once. */
  private Route answer(CompletionStage<KeyProtocol.Reply> reply, StatusCode status, String secret, String requestId) {
    return http.respond(
        reply.thenApply(
            r -> {
              ApiKey key = ((KeyProtocol.One) checked(r)).key();
              keys.applyLocal(key);
              return http.json(status, key(key, secret));
            }),
        requestId);
  }

  private static KeyProtocol.Reply checked(KeyProtocol.Reply reply) {
    if (reply instanceof KeyProtocol.Rejected rejected) {
      throw ApiError.from(rejected.error());
    }
    return reply;
  }

  private ObjectNode key(ApiKey k, String secret) {
    ObjectNode n = http.json.createObjectNode();
    n.put("id", k.id());
    n.put("object", "api_key");
    if (secret != null) {
      n.put("key", secret);
      n.put("note", "Store this key now: it is not kept anywhere and cannot be shown again.");
    }
    n.put("tenant", k.tenant());
    n.put("name", k.name());
    n.put("status", k.revoked() ? "revoked" : "active");
    ArrayNode models = n.putArray("models");
    k.models().forEach(models::add);
    n.put("cache", k.cacheAllowed());
    ObjectNode limits = n.putObject("limits");
    limits.put("requests_per_minute", k.limits().requestsPerMinute());
    limits.put("tokens_per_minute", k.limits().tokensPerMinute());
    limits.put("max_concurrent_requests", k.limits().maxConcurrentRequests());
    limits.put("max_active_tasks", k.limits().maxActiveTasks());
    Budget budget = k.limits().budget();
    if (budget == null) {
      n.putNull("budget");
    } else {
      budget(n.putObject("budget"), budget);
    }
    if (k.createdAt() == null) {
      n.putNull("created_at");
    } else {
      n.put("created_at", k.createdAt().getEpochSecond());
    }
    if (k.revoked()) {
      n.put("revoked_at", k.revokedAt().getEpochSecond());
      n.put(
          "revocation",
          "Refused on this api-node now, and on every other api-node within "
              + refreshInterval.toMillis()
              + " ms plus one round trip to the key registry.");
    } else {
      n.putNull("revoked_at");
    }
    return n;
  }

  /** A budget as the API shows it: {@code {amount, period, alert_at}}, into {@code node}. */
  static ObjectNode budget(ObjectNode node, Budget budget) {
    return node.put("amount", budget.amountMicros() / 1_000_000.0)
        .put("period", budget.period().name().toLowerCase(Locale.ROOT))
        .put("alert_at", budget.alertAt());
  }

  private static void object(JsonNode body) {
    if (!body.isObject()) {
      throw ApiError.invalid(null, "Invalid request body: expected a JSON object, but got " + RequestValidation.typeOf(body) + ".");
    }
  }

  private static String name(JsonNode body) {
    JsonNode name = body.get("name");
    if (name == null || name.isNull()) {
      return "";
    }
    if (!name.isTextual() || name.asText().length() > MAX_NAME) {
      throw ApiError.invalid("name", "Invalid 'name': expected a string of at most " + MAX_NAME + " characters.");
    }
    return name.asText();
  }

  /** The optional {@code cache} switch (docs/adr/0009); null when the body lacks it. */
  private static Boolean cache(JsonNode body) {
    JsonNode cache = body.get("cache");
    if (cache == null || cache.isNull()) {
      return null;
    }
    if (!cache.isBoolean()) {
      throw ApiError.invalid("cache", "Invalid 'cache': expected true or false.");
    }
    return cache.booleanValue();
  }

  private static List<String> models(JsonNode body) {
    JsonNode models = body.get("models");
    if (models == null || models.isNull()) {
      return List.of();
    }
    if (!models.isArray()) {
      throw ApiError.invalid("models", "Invalid 'models': expected an array of model names (empty = every model).");
    }
    List<String> names = new ArrayList<>();
    for (JsonNode m : models) {
      if (!m.isTextual() || m.asText().isBlank()) {
        throw ApiError.invalid("models", "Invalid 'models': every entry must be a model name.");
      }
      names.add(m.asText());
    }
    return names;
  }

  /**
   * {@code budget}: {@code null} removes it; else {@code {amount, period: "day"|"month",
   * alert_at: 0..1}} with a positive amount in the price table's currency.
   */
  private static Budget budget(JsonNode node) {
    if (node.isNull()) {
      return null;
    }
    JsonNode amount = node.path("amount");
    // at least one millionth: budgets are kept in millionths
    if (!node.isObject() || !amount.isNumber() || amount.asDouble() < 0.000001 || amount.asDouble() > 1e9) {
      throw ApiError.invalid("budget.amount", "Invalid 'budget': expected {\"amount\": a positive number, \"period\": \"day\" or \"month\", \"alert_at\": 0 to 1}.");
    }
    String period = node.path("period").asText("month");
    if (!period.equals("day") && !period.equals("month")) {
      throw ApiError.invalid("budget.period", "Invalid 'budget.period': expected \"day\" or \"month\".");
    }
    JsonNode alert = node.path("alert_at");
    if (!alert.isMissingNode() && (!alert.isNumber() || alert.asDouble() < 0 || alert.asDouble() > 1)) {
      throw ApiError.invalid("budget.alert_at", "Invalid 'budget.alert_at': expected a share between 0 and 1.");
    }
    return new Budget(
        Math.round(amount.asDouble() * 1_000_000),
        period.equals("day") ? Budget.Period.DAY : Budget.Period.MONTH,
        alert.isMissingNode() ? 0 : alert.asDouble());
  }

  /** The {@code limits} object; fields it lacks come from {@code from}. */
  private static KeyLimits limits(JsonNode node, KeyLimits from) {
    if (!node.isObject()) {
      throw ApiError.invalid("limits", "Invalid 'limits': expected an object.");
    }
    return new KeyLimits(
        (int) count(node, "requests_per_minute", from.requestsPerMinute(), Integer.MAX_VALUE),
        count(node, "tokens_per_minute", from.tokensPerMinute(), Long.MAX_VALUE),
        (int) count(node, "max_concurrent_requests", from.maxConcurrentRequests(), Integer.MAX_VALUE),
        (int) count(node, "max_active_tasks", from.maxActiveTasks(), Integer.MAX_VALUE),
        from.budget());
  }

  private static long count(JsonNode limits, String field, long fallback, long max) {
    JsonNode v = limits.get(field);
    if (v == null || v.isNull()) {
      return fallback;
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0 || v.asLong() > max) {
      throw ApiError.invalid("limits." + field, "Invalid 'limits." + field + "': expected an integer from 0 (no limit) to " + max + ".");
    }
    return v.asLong();
  }
}
