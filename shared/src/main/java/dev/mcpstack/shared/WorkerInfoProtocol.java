package dev.mcpstack.shared;

import java.time.Instant;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * What a worker node tells api-nodes about itself: the models its upstreams serve and whether it
 * can do work (journal reachable, an upstream usable). Every worker registers one actor under
 * {@link #SERVICE_KEY} with the receptionist.
 */
public interface WorkerInfoProtocol {
  ServiceKey<Command> SERVICE_KEY = ServiceKey.create(Command.class, "worker-info");

  interface Command extends CborSerializable {}

  record ListModels(ActorRef<ModelList> replyTo) implements Command {}

  record CheckHealth(ActorRef<WorkerHealth> replyTo) implements Command {}

  /** The state of every upstream of this worker. */
  record ListUpstreams(ActorRef<UpstreamList> replyTo) implements Command {}

  /**
   * Closes the named upstream's circuit breaker (an operator knows the runner is back); answers
   * with the worker's upstreams afterwards. An unknown name changes nothing.
   */
  record ResetBreaker(String upstream, ActorRef<UpstreamList> replyTo) implements Command {}

  /** The task shards and entities this worker hosts. */
  record ListShards(ActorRef<NodeShards> replyTo) implements Command {}

  /**
   * {@code node}: the worker's cluster address; {@code shards}: task shards it hosts, of both kinds
   * (journaled and in memory); {@code entities}: task entities alive in them.
   */
  record NodeShards(String node, int shards, long entities) implements CborSerializable {}

  /** A model and the upstreams that serve it. */
  record ModelInfo(String id, String ownedBy, List<String> upstreams) implements CborSerializable {}

  record ModelList(List<ModelInfo> models) implements CborSerializable {}

  /**
   * {@code upstreamsUsable}: upstreams whose breaker is not open and that the probes did not find down; {@code detail} says what is wrong
   * when not ready.
   */
  record WorkerHealth(
      boolean journalReachable, int upstreamsUsable, int upstreamsTotal, String detail)
      implements CborSerializable {
    public boolean ready() {
      return journalReachable && upstreamsUsable > 0;
    }
  }

  /** {@code node}: the worker's cluster address. */
  record UpstreamList(String node, List<UpstreamStatus> upstreams) implements CborSerializable {}

  /**
   * {@code breaker}: closed, half-open or open. {@code probe}: up, down or unknown (not probed yet,
   * or probes off); {@code probedAt} when the last probe ended (null: never), {@code probeDetail}
   * what it found.
   */
  record UpstreamStatus(
      String name,
      String baseUrl,
      List<String> models,
      int priority,
      int weight,
      String breaker,
      int queueDepth,
      int inFlight,
      List<RecentError> recentErrors,
      String probe,
      Instant probedAt,
      String probeDetail)
      implements CborSerializable {}

  record RecentError(Instant at, String code, String message) implements CborSerializable {}
}
