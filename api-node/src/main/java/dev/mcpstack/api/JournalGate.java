package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.JournalStatus;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.ddata.ORSet;
import org.apache.pekko.cluster.ddata.typed.javadsl.DistributedData;
import org.apache.pekko.cluster.ddata.typed.javadsl.Replicator;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * Whether work that needs the task journal can be accepted (docs/adr/0010): not while a worker that
 * is an Up member says its journal database is unreachable ({@link JournalStatus}). Such work is
 * then refused at once with a retryable 503 instead of waiting for asks that cannot be answered; a
 * worker's report reaches this node through Distributed Data, with no ask per request. Work kept in
 * memory (docs/adr/0007) never asks.
 */
final class JournalGate implements Extension {
  static final ExtensionId<JournalGate> ID =
      new ExtensionId<>() {
        @Override
        public JournalGate createExtension(ActorSystem<?> system) {
          return new JournalGate(system);
        }
      };

  static JournalGate get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  private final ActorSystem<?> system;
  private volatile Set<String> unreachable = Set.of();

  private JournalGate(ActorSystem<?> system) {
    this.system = system;
    system.systemActorOf(subscriber(), "journal-gate", Props.empty());
  }

  private Behavior<Replicator.SubscribeResponse<ORSet<String>>> subscriber() {
    return Behaviors.setup(
        ctx -> {
          DistributedData.get(system)
              .replicator()
              .tell(new Replicator.Subscribe<>(JournalStatus.UNREACHABLE, ctx.getSelf()));
          return Behaviors.receiveMessage(
              msg -> {
                if (msg instanceof Replicator.Changed<ORSet<String>> changed) {
                  unreachable = Set.copyOf(changed.get(JournalStatus.UNREACHABLE).getElements());
                } else {
                  unreachable = Set.of();
                }
                return Behaviors.same();
              });
        });
  }

  /** False while an Up worker reports the journal unreachable (a departed one's report is ignored). */
  boolean accepting() {
    Set<String> down = unreachable;
    if (down.isEmpty()) {
      return true;
    }
    for (org.apache.pekko.cluster.Member m : Cluster.get(system).state().getMembers()) {
      if (m.status() == MemberStatus.up() && down.contains(m.address().toString())) {
        return false;
      }
    }
    return true;
  }

  static ApiError refusal() {
    return ApiError.of(
        ErrorCode.UNAVAILABLE,
        "The task journal's database is unreachable: this request needs it (an async task, a stored"
            + " completion or an Idempotency-Key). Try again shortly.");
  }
}
