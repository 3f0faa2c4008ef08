package dev.mcpstack.shared;

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

  /** A model and the upstreams that serve it. */
  record ModelInfo(String id, String ownedBy, List<String> upstreams) implements CborSerializable {}

  record ModelList(List<ModelInfo> models) implements CborSerializable {}

  /**
   * {@code upstreamsUsable}: upstreams whose breaker is not open; {@code detail} says what is wrong
   * when not ready.
   */
  record WorkerHealth(
      boolean journalReachable, int upstreamsUsable, int upstreamsTotal, String detail)
      implements CborSerializable {
    public boolean ready() {
      return journalReachable && upstreamsUsable > 0;
    }
  }
}
