package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.WorkerInfoProtocol.NodeShards;
import dev.mcpstack.shared.TaskView;
import dev.mcpstack.shared.WorkerInfoProtocol.RecentError;
import dev.mcpstack.shared.WorkerInfoProtocol.UpstreamList;
import dev.mcpstack.shared.WorkerInfoProtocol.UpstreamStatus;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.pattern.Patterns;
import java.util.function.Supplier;
import java.util.stream.StreamSupport;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.AddressFromURIString;
import org.apache.pekko.cluster.ClusterEvent.CurrentClusterState;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Leave;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * The operations API under {@code /admin}, for operators holding {@code mcp.api.admin-token}:
 * cluster members with their shards ({@code GET /admin/cluster}), draining a node
 * ({@code POST /admin/cluster/members/{address}/leave}), every worker's upstreams and breakers
 * ({@code GET /admin/upstreams}, {@code POST /admin/upstreams/{name}/reset}), any owner's task
 * ({@code GET /admin/tasks/{id}}), and for backups the intake switch ({@code /admin/intake}) and an
 * H2 journal backup ({@code POST /admin/journal/backup}: {@link MaintenanceRoutes}). Without a token the whole tree does not exist (404).
 */
final class AdminRoutes {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(AdminRoutes.class);

  private final HttpSupport http;
  private final TaskClient tasks;
  private final Workers workers;
  private final AdminToken token;
  private final Cluster cluster;
  private final KeyAdminRoutes keys;
  private final TaskRoutes taskRoutes;
  private final MaintenanceRoutes maintenance;

  AdminRoutes(HttpSupport http, TaskClient tasks, Workers workers, KeyAdminRoutes keys, TaskRoutes taskRoutes) {
    this.http = http;
    this.keys = keys;
    this.taskRoutes = taskRoutes;
    this.tasks = tasks;
    this.workers = workers;
    this.token = http.settings.adminToken();
    this.cluster = Cluster.get(http.system);
    this.maintenance = new MaintenanceRoutes(http);
  }

  Route route(String requestId) {
    if (!token.enabled()) {
      return reject();
    }
    return pathPrefix(
        "admin",
        () ->
            authorized(
                requestId,
                () ->
                    concat(
                        pathPrefix(
                            "cluster",
                            () ->
                                concat(
                                    pathEndOrSingleSlash(() -> get(() -> cluster(requestId))),
                                    path(
                                        segment("members").slash(segment()).slash("leave"),
                                        address -> post(() -> leave(address))))),
                        pathPrefix(
                            "upstreams",
                            () ->
                                concat(
                                    pathEndOrSingleSlash(() -> get(() -> upstreams(requestId))),
                                    path(
                                        segment().slash("reset"),
                                        name -> post(() -> reset(name, requestId))))),
                        keys.route(requestId),
                        maintenance.route(requestId),
                        path(
                            "tasks",
                            () ->
                                post(
                                    () ->
                                        http.jsonBody(
                                            body ->
                                                taskRoutes.submit(
                                                    body, Caller.OPERATOR, Optional.empty(), requestId)))),
                        path(segment("tasks").slash(segment()), id -> get(() -> task(id, requestId))))));
  }



  /**
   * 401 unless the request carries the admin token as its bearer token. A refusal is logged with
   * the client's address and answered {@code admin-failure-delay} later, to slow guessing.
   */
  private Route authorized(String requestId, Supplier<Route> inner) {
    return http.bearerToken(
        presented -> {
          if (token.matches(presented)) {
            return inner.get();
          }
          return extractClientIP(
              ip ->
                  extractRequest(
                      request -> {
                        LOG.warn(
                            "admin authentication failed: {} {} from {} ({})",
                            request.method().name(),
                            request.getUri().path(),
                            ip.getAddress().map(Object::toString).orElse("unknown address"),
                            presented.isPresent() ? "wrong token" : "no token");
                        ApiError refused =
                            ApiError.of(
                                ErrorCode.AUTHENTICATION,
                                "Incorrect or missing admin token. Send it as 'Authorization: Bearer <token>'.");
                        return completeWithFuture(
                            Patterns.after(
                                http.settings.adminFailureDelay(),
                                http.system.classicSystem().scheduler(),
                                http.system.executionContext(),
                                () -> CompletableFuture.completedFuture(http.failure(refused, requestId))));
                      }));
        });
  }

  // ---- cluster ----

  private Route cluster(String requestId) {
    return http.respond(
        workers
            .shards()
            .thenApply(
                answers -> {
                  Map<String, NodeShards> byNode = new HashMap<>();
                  answers.forEach(a -> byNode.put(a.node(), a));
                  CurrentClusterState state = cluster.state();
                  Set<Address> unreachable = new HashSet<>();
                  state.getUnreachable().forEach(m -> unreachable.add(m.address()));
                  ObjectNode body = http.json.createObjectNode();
                  body.put("self", cluster.selfMember().address().toString());
                  body.put("leader", state.getLeader() == null ? null : state.getLeader().toString());
                  ArrayNode members = body.putArray("members");
                  StreamSupport.stream(state.getMembers().spliterator(), false)
                      .sorted(Comparator.comparing(m -> m.address().toString()))
                      .forEach(m -> members.add(member(m, !unreachable.contains(m.address()), byNode)));
                  ArrayNode unreachableNode = body.putArray("unreachable");
                  unreachable.stream().map(Address::toString).sorted().forEach(unreachableNode::add);
                  return http.json(StatusCodes.OK, body);
                }),
        requestId);
  }

  /**
   * @param shards what each worker that answered in time said it hosts, by its address (a member
   *     missing here shows 0/0)
   */
  private ObjectNode member(Member m, boolean reachable, Map<String, NodeShards> shards) {
    ObjectNode n = http.json.createObjectNode();
    n.put("address", m.address().toString());
    ArrayNode roles = n.putArray("roles");
    // every member also has a "dc-<name>" role for its data centre: not a role anyone configured
    m.getRoles().stream().filter(r -> !r.startsWith("dc-")).sorted().forEach(roles::add);
    n.put("status", HealthRoutes.memberStatus(m.status()));
    n.put("reachable", reachable);
    NodeShards hosted = shards.get(m.address().toString());
    n.put("shards", hosted == null ? 0 : hosted.shards());
    n.put("entities", hosted == null ? 0 : hosted.entities());
    return n;
  }

  private Route leave(String given) {
    Address address = memberAddress(given);
    boolean known =
        StreamSupport.stream(cluster.state().getMembers().spliterator(), false)
            .anyMatch(m -> m.address().equals(address));
    if (!known) {
      throw new ApiError(ErrorCode.NOT_FOUND, "No cluster member has the address '" + address + "'.", "address");
    }
    http.system.log().info("node {} asked to leave the cluster by an operator", address);
    cluster.manager().tell(Leave.create(address));
    ObjectNode body = http.json.createObjectNode().put("address", address.toString()).put("status", "leaving");
    return complete(http.json(StatusCodes.ACCEPTED, body));
  }

  /**
   * A member address as {@code protocol://system@host:port} (percent-encoded in the path), or
   * {@code system@host:port} for this node's protocol; 400 when it is not one.
   */
  private Address memberAddress(String given) {
    String full = given.contains("://") ? given : cluster.selfMember().address().protocol() + "://" + given;
    Address address;
    try {
      address = AddressFromURIString.parse(full);
    } catch (Exception e) { // MalformedURLException, undeclared by the Scala signature
      address = null;
    }
    if (address == null || !address.hasGlobalScope() || address.port().isEmpty()) {
      throw ApiError.invalid(
          "address",
          "Invalid member address '" + given + "': expected protocol://system@host:port, e.g. "
              + cluster.selfMember().address() + " (percent-encoded in the URL).");
    }
    return address;
  }

  // ---- upstreams ----

  private Route upstreams(String requestId) {
    return http.respond(workers.upstreams().thenApply(lists -> http.json(StatusCodes.OK, upstreams(lists))), requestId);
  }

  private Route reset(String name, String requestId) {
    return http.respond(
        workers
            .resetBreaker(name)
            .thenApply(
                lists -> {
                  boolean known = lists.stream().anyMatch(l -> l.upstreams().stream().anyMatch(u -> u.name().equals(name)));
                  if (!known) {
                    throw new ApiError(ErrorCode.NOT_FOUND, "No worker has an upstream named '" + name + "'.", "name");
                  }
                  return http.json(StatusCodes.OK, upstreams(lists));
                }),
        requestId);
  }

  /** {@code {workers:[{node, upstreams:[...]}]}}, workers by node address. */
  private ObjectNode upstreams(List<UpstreamList> lists) {
    ObjectNode body = http.json.createObjectNode();
    ArrayNode workersNode = body.putArray("workers");
    lists.stream()
        .sorted(Comparator.comparing(UpstreamList::node))
        .forEach(
            l -> {
              ObjectNode w = workersNode.addObject();
              w.put("node", l.node());
              ArrayNode ups = w.putArray("upstreams");
              l.upstreams().forEach(u -> ups.add(upstream(u)));
            });
    return body;
  }

  private ObjectNode upstream(UpstreamStatus u) {
    ObjectNode n = http.json.createObjectNode();
    n.put("name", u.name());
    n.put("base_url", u.baseUrl());
    ArrayNode models = n.putArray("models");
    u.models().forEach(models::add);
    n.put("priority", u.priority());
    n.put("weight", u.weight());
    n.put("breaker", u.breaker());
    n.put("queue_depth", u.queueDepth());
    n.put("in_flight", u.inFlight());
    ObjectNode probe = n.putObject("probe");
    probe.put("state", u.probe() == null ? "unknown" : u.probe()); // null from a worker of an older version
    if (u.probedAt() == null) {
      probe.putNull("at");
    } else {
      probe.put("at", u.probedAt().getEpochSecond());
    }
    probe.put("detail", u.probeDetail());
    ArrayNode errors = n.putArray("recent_errors");
    for (RecentError e : u.recentErrors()) {
      ObjectNode err = errors.addObject();
      if (e.at() == null) {
        err.putNull("at");
      } else {
        err.put("at", e.at().getEpochSecond());
      }
      err.put("code", e.code());
      err.put("message", e.message());
    }
    return n;
  }

  // ---- tasks ----

  /**
   * Any task with its owner. The result only of tasks their owner may read back too: a transient
   * task's answer went to its client alone (docs/security-data.md).
   */
  /** Any owner's task, with where it lives: its shard and the node the task answered from. */
  private Route task(String id, String requestId) {
    TaskRoutes.checkPlausible(id);
    return http.respond(
        tasks
            .inspect(id)
            .thenApply(
                located -> {
                  TaskView view = located.view();
                  ObjectNode task = http.taskJson.task(view).put("owner", view.owner());
                  if (!TaskIds.readBack(id)) {
                    task.putNull("result");
                  }
                  task.put("shard", shardOf(id));
                  task.put("node", located.node());
                  return http.json(StatusCodes.OK, task);
                }),
        requestId);
  }

  /** The task's shard, as sharding's default message extractor computes it. */
  private String shardOf(String id) {
    int shards = http.system.settings().config().getInt("pekko.cluster.sharding.number-of-shards");
    return String.valueOf(Math.abs(id.hashCode() % shards));
  }
}
