package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.JournalStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.ddata.ORSet;
import org.apache.pekko.cluster.ddata.SelfUniqueAddress;
import org.apache.pekko.cluster.ddata.typed.javadsl.DistributedData;
import org.apache.pekko.cluster.ddata.typed.javadsl.Replicator;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * Whether work that needs the task journal can be accepted (docs/adr/0010): not while a worker that
 * is an Up member says its journal database is unreachable ({@link JournalStatus}). Such work is
 * then refused at once with a retryable 503 instead of waiting for asks that cannot be answered; a
 * worker's report reaches this node through Distributed Data, with no ask per request. Work kept in
 * memory (docs/adr/0007) never asks.
 *
 * <p>An operator can close the same gate on purpose: {@link #pause} (for a backup or a restore,
 * docs/adr/0011) puts a mark into Distributed Data ({@link JournalStatus#INTAKE_PAUSED}) that every
 * api-node reads the same way; {@link #resume} takes it out.
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
  /** Epoch milliseconds of the pauses in force (empty: not paused). */
  private volatile Set<String> paused = Set.of();

  private JournalGate(ActorSystem<?> system) {
    this.system = system;
    system.systemActorOf(subscriber(), "journal-gate", Props.empty());
  }

  private Behavior<Replicator.SubscribeResponse<ORSet<String>>> subscriber() {
    return Behaviors.setup(
        ctx -> {
          ActorRef<Replicator.Command> replicator = DistributedData.get(system).replicator();
          replicator.tell(new Replicator.Subscribe<>(JournalStatus.UNREACHABLE, ctx.getSelf()));
          replicator.tell(new Replicator.Subscribe<>(JournalStatus.INTAKE_PAUSED, ctx.getSelf()));
          return Behaviors.receiveMessage(
              msg -> {
                Set<String> elements =
                    msg instanceof Replicator.Changed<ORSet<String>> changed
                        ? Set.copyOf(changed.dataValue().getElements())
                        : Set.of();
                if (msg.key().equals(JournalStatus.INTAKE_PAUSED)) {
                  paused = elements;
                } else {
                  unreachable = elements;
                }
                return Behaviors.same();
              });
        });
  }

  /**
   * False while an operator has paused the intake, or while an Up worker reports the journal
   * unreachable (a departed one's report is ignored).
   */
  boolean accepting() {
    if (!paused.isEmpty()) {
      return false;
    }
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

  /** Since when an operator has paused the intake (the earliest pause in force), if paused. */
  Optional<Instant> pausedSince() {
    return paused.stream().map(Long::parseLong).min(Long::compare).map(Instant::ofEpochMilli);
  }

  /**
   * Pauses the intake of journaled work on every api-node. Completes once every reachable node has
   * the mark (Distributed Data's write-all within {@code timeout}); on a timeout the mark still
   * spreads by gossip, so the pause is not undone.
   */
  CompletionStage<Optional<Instant>> pause(Duration timeout) {
    String now = Long.toString(System.currentTimeMillis());
    return update(timeout, (self, set) -> set.getElements().isEmpty() ? set.add(self, now) : set);
  }

  /** Takes every pause mark out: journaled work is accepted again (unless the journal is down). */
  CompletionStage<Optional<Instant>> resume(Duration timeout) {
    return update(timeout, (self, set) -> set.clear(self));
  }

  private interface Change {
    ORSet<String> apply(SelfUniqueAddress self, ORSet<String> set);
  }

  private CompletionStage<Optional<Instant>> update(Duration timeout, Change change) {
    SelfUniqueAddress self = DistributedData.get(system).selfUniqueAddress();
    return AskPattern.<Replicator.Command, Replicator.UpdateResponse<ORSet<String>>>ask(
            DistributedData.get(system).replicator(),
            replyTo ->
                new Replicator.Update<>(
                    JournalStatus.INTAKE_PAUSED,
                    ORSet.empty(),
                    new Replicator.WriteAll(timeout),
                    replyTo,
                    set -> change.apply(self, set)),
            timeout.plusSeconds(1),
            system.scheduler())
        .thenCompose(
            response -> {
              if (response instanceof Replicator.UpdateSuccess
                  || response instanceof Replicator.UpdateTimeout) {
                // the local replica has it either way; read it back as every api-node will
                return AskPattern.<Replicator.Command, Replicator.GetResponse<ORSet<String>>>ask(
                        DistributedData.get(system).replicator(),
                        replyTo ->
                            new Replicator.Get<>(JournalStatus.INTAKE_PAUSED, Replicator.readLocal(), replyTo),
                        timeout,
                        system.scheduler())
                    .thenApply(
                        got -> {
                          Set<String> now =
                              got instanceof Replicator.GetSuccess<ORSet<String>> ok
                                  ? Set.copyOf(ok.dataValue().getElements())
                                  : Set.of();
                          paused = now; // this node's own answer reflects the change at once
                          return pausedSince();
                        });
              }
              throw ApiError.of(ErrorCode.UNAVAILABLE, "The intake switch could not be changed; try again.");
            });
  }

  /** Why journaled work is refused now: the operator's pause, or the journal's outage. */
  ApiError refusal() {
    if (!paused.isEmpty()) {
      return ApiError.of(
          ErrorCode.UNAVAILABLE,
          "New work that needs the task journal (an async task, a stored completion or an Idempotency-Key)"
              + " is paused by an operator for maintenance. Running tasks go on; try again shortly.");
    }
    return outage();
  }

  static ApiError outage() {
    return ApiError.of(
        ErrorCode.UNAVAILABLE,
        "The task journal's database is unreachable: this request needs it (an async task, a stored"
            + " completion or an Idempotency-Key). Try again shortly.");
  }
}
