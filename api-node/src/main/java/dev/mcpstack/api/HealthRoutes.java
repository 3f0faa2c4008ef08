package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.WorkerInfoProtocol.WorkerHealth;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * {@code GET /health/live}: the process answers. {@code GET /health/ready}: this node is an Up
 * cluster member and at least one worker reports its journal reachable and an upstream usable.
 */
final class HealthRoutes {
  private final HttpSupport http;
  private final Workers workers;

  HealthRoutes(HttpSupport http, Workers workers) {
    this.http = http;
    this.workers = workers;
  }

  Route route(String requestId) {
    return pathPrefix(
        "health",
        () ->
            concat(
                path("live", () -> get(() -> complete(http.json(StatusCodes.OK, status("ok"))))),
                path("ready", () -> get(() -> ready(requestId)))));
  }

  private Route ready(String requestId) {
    MemberStatus self = Cluster.get(http.system).selfMember().status();
    boolean up = self == MemberStatus.up();
    return http.respond(
        workers
            .health()
            .exceptionally(e -> List.of())
            .thenApply(
                health -> {
                  boolean anyReady = health.stream().anyMatch(WorkerHealth::ready);
                  ObjectNode body = status(up && anyReady ? "ok" : "unavailable");
                  ObjectNode checks = body.putObject("checks");
                  checks.put("cluster_member", memberStatus(self));
                  checks.put("workers_answering", health.size());
                  checks.put("workers_ready", health.stream().filter(WorkerHealth::ready).count());
                  checks.put("journal", health.stream().anyMatch(WorkerHealth::journalReachable) ? "reachable" : "unreachable");
                  checks.put("upstreams_usable", health.stream().mapToInt(WorkerHealth::upstreamsUsable).sum());
                  String problems =
                      health.stream()
                          .map(WorkerHealth::detail)
                          .filter(d -> d != null && !d.isBlank())
                          .distinct()
                          .collect(Collectors.joining("; "));
                  if (!up) {
                    problems = "this node is not an Up cluster member" + (problems.isEmpty() ? "" : "; " + problems);
                  } else if (health.isEmpty()) {
                    problems = "no worker node answered";
                  }
                  if (!problems.isEmpty()) {
                    checks.put("detail", problems);
                  }
                  if (up && anyReady) {
                    return http.json(StatusCodes.OK, body);
                  }
                  HttpResponse unavailable = http.json(StatusCodes.SERVICE_UNAVAILABLE, body);
                  return unavailable.addHeader(
                      RawHeader.create("Retry-After", Long.toString(Math.max(1, http.settings.retryAfter().toSeconds()))));
                }),
        requestId);
  }

  /** A member status as the API writes it: {@code up}, {@code weakly_up}, {@code leaving}, ... */
  static String memberStatus(MemberStatus status) {
    return status.toString().replaceAll("([a-z])([A-Z])", "$1_$2").toLowerCase(Locale.ROOT);
  }

  private ObjectNode status(String value) {
    return http.json.createObjectNode().put("status", value);
  }
}
