package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.Budget;
import dev.mcpstack.shared.AccountProtocol;
import dev.mcpstack.shared.AccountProtocol.UsageLine;
import dev.mcpstack.shared.AccountProtocol.UsageReport;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * {@code GET /v1/usage}: the caller's tenant's usage and cost per model and UTC day, summed over
 * its keys ({@code start_date}, {@code end_date} as {@code YYYY-MM-DD}, both included; the last
 * 30 days by default); and, for the admin API, one key's usage with its budget.
 */
final class UsageRoutes {
  static final int MAX_DAYS = 366;

  private final HttpSupport http;
  private final KeyStore keys;
  private final ClusterSharding sharding;

  UsageRoutes(HttpSupport http, KeyStore keys) {
    this.http = http;
    this.keys = keys;
    this.sharding = ClusterSharding.get(http.system);
  }

  Route route(String requestId) {
    return path(
        segment("v1").slash("usage"),
        () -> get(() -> http.authenticated(caller -> range((from, to) -> tenant(caller, from, to, requestId)))));
  }

  /** The {@code start_date} and {@code end_date} query parameters, checked. */
  Route range(java.util.function.BiFunction<LocalDate, LocalDate, Route> inner) {
    return parameterOptional(
        "start_date",
        start ->
            parameterOptional(
                "end_date",
                end -> {
                  LocalDate to = end.map(e -> date("end_date", e)).orElse(LocalDate.now(ZoneOffset.UTC));
                  LocalDate from = start.map(s -> date("start_date", s)).orElse(to.minusDays(29));
                  if (from.isAfter(to) || ChronoUnit.DAYS.between(from, to) >= MAX_DAYS) {
                    throw ApiError.invalid(
                        "start_date", "Invalid date range: start_date must not be after end_date, and the range at most " + MAX_DAYS + " days.");
                  }
                  return inner.apply(from, to);
                }));
  }

  private static LocalDate date(String param, String value) {
    try {
      return LocalDate.parse(value);
    } catch (DateTimeParseException e) {
      throw ApiError.invalid(param, "Invalid '" + param + "': expected a date as YYYY-MM-DD.");
    }
  }

  private Route tenant(Caller caller, LocalDate from, LocalDate to, String requestId) {
    List<ApiKey> tenantKeys = caller.keyless() ? List.of() : keys.keysOf(caller.tenant());
    List<CompletionStage<UsageReport>> reports = new ArrayList<>();
    // the keys of one rotation share an account: ask each account once
    tenantKeys.stream()
        .collect(java.util.stream.Collectors.toMap(ApiKey::account, k -> k, (a, b) -> a))
        .values()
        .forEach(k -> reports.add(report(k, from, to)));
    CompletionStage<List<UsageLine>> all = CompletableFuture.completedFuture(new ArrayList<>());
    for (CompletionStage<UsageReport> r : reports) {
      all = all.thenCombine(r, (acc, one) -> {
        acc.addAll(one.lines());
        return acc;
      });
    }
    return http.respond(
        all.thenApply(
            lines -> {
              ObjectNode body = body(caller.tenant(), from, to, lines);
              return http.json(StatusCodes.OK, body);
            }),
        requestId);
  }

  CompletionStage<UsageReport> report(ApiKey key, LocalDate from, LocalDate to) {
    return sharding
        .entityRefFor(AccountProtocol.TYPE_KEY, key.account())
        .ask(replyTo -> new AccountProtocol.GetUsage(from, to, key.limits().budget(), replyTo), http.settings.askTimeout());
  }

  /** {@code {object: "usage", tenant, start_date, end_date, data: [...], total: {...}}}. */
  ObjectNode body(String tenant, LocalDate from, LocalDate to, List<UsageLine> lines) {
    Map<String, UsageLine> merged = new TreeMap<>();
    for (UsageLine l : lines) {
      merged.merge(l.day() + "/" + l.model(), l, UsageLine::add);
    }
    ObjectNode body = http.json.createObjectNode().put("object", "usage").put("tenant", tenant);
    body.put("start_date", from.toString()).put("end_date", to.toString());
    ArrayNode data = body.putArray("data");
    UsageLine total = new UsageLine(from, "", 0, 0, 0, 0);
    for (UsageLine l : merged.values().stream().sorted(Comparator.comparing(UsageLine::day).thenComparing(UsageLine::model)).toList()) {
      ObjectNode n = line(l);
      n.put("date", l.day().toString()).put("model", l.model());
      data.add(n);
      total = total.add(l);
    }
    body.set("total", line(total));
    return body;
  }

  private ObjectNode line(UsageLine l) {
    return http.json
        .createObjectNode()
        .put("requests", l.requests())
        .put("prompt_tokens", l.promptTokens())
        .put("completion_tokens", l.completionTokens())
        .put("total_tokens", l.promptTokens() + l.completionTokens())
        .put("cost", l.costMicros() / 1_000_000.0);
  }

  /** One key's usage, with its budget's standing when it has one (admin API). */
  Route key(ApiKey key, LocalDate from, LocalDate to, String requestId) {
    return http.respond(
        report(key, from, to)
            .thenApply(
                report -> {
                  ObjectNode body = body(key.tenant(), from, to, report.lines());
                  body.put("key_id", key.id());
                  Budget budget = key.limits().budget();
                  if (budget != null) {
                    KeyAdminRoutes.budget(body.putObject("budget"), budget)
                        .put("period_start", String.valueOf(report.periodStart()))
                        .put("spent", report.spentMicros() / 1_000_000.0);
                  }
                  return http.json(StatusCodes.OK, body);
                }),
        requestId);
  }
}
