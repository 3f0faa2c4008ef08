package dev.mcpstack.api;

import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.TaskProtocol;
import dev.mcpstack.shared.TaskUpdate;
import java.time.Duration;
import java.util.Optional;
import org.apache.pekko.Done;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.OverflowStrategy;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.typed.javadsl.ActorSource;
import java.util.concurrent.CompletionStage;

/**
 * One client's view of one task's updates: an actor-backed source the entity pushes to (pass
 * {@link #subscriber()} in Submit or Subscribe). While the source runs it re-subscribes every
 * resubscribe-interval, because a worker crash loses the entity's runtime subscribers and the
 * task resumes elsewhere; re-subscribing is idempotent. {@link #updates()} ends after the terminal
 * status change and fails with a 504 {@link ApiError} when none arrives by the give-up time.
 * Single use: materialize {@link #updates()} once, or call {@link #close()}.
 */
final class TaskWatch {
  private enum Signal {
    GIVE_UP
  }

  private final ActorRef<Object> ref;
  private final Source<TaskUpdate, NotUsed> updates;
  private final Cancellable resubscribe;
  private final Cancellable giveUp;

  TaskWatch(
      ActorSystem<?> system,
      EntityRef<TaskProtocol.Command> entity,
      String owner,
      ApiSettings settings,
      Duration giveUpAfter) {
    Pair<Pair<ActorRef<Object>, CompletionStage<Done>>, Source<Object, NotUsed>> pre =
        ActorSource.<Object>actorRef(
                m -> false,
                m ->
                    m == Signal.GIVE_UP
                        ? Optional.of(
                            ApiError.of(
                                ErrorCode.TIMEOUT,
                                "the task did not finish within " + giveUpAfter.toSeconds() + " s"))
                        : Optional.empty(),
                settings.streamBufferSize(),
                OverflowStrategy.fail())
            .watchTermination(Keep.both())
            .preMaterialize(system);
    this.ref = pre.first().first();
    ActorRef<TaskUpdate> subscriber = ref.narrow();
    this.resubscribe =
        system
            .scheduler()
            .scheduleAtFixedRate(
                settings.resubscribeInterval(),
                settings.resubscribeInterval(),
                () -> entity.tell(new TaskProtocol.Subscribe(owner, subscriber, system.ignoreRef())),
                system.executionContext());
    this.giveUp =
        system
            .scheduler()
            .scheduleOnce(giveUpAfter, () -> ref.tell(Signal.GIVE_UP), system.executionContext());
    pre.first().second().whenComplete((done, e) -> stopTimers());
    this.updates =
        pre.second()
            .filter(m -> m instanceof TaskUpdate)
            .map(m -> (TaskUpdate) m)
            .takeWhile(u -> !isTerminal(u), true);
  }

  ActorRef<TaskUpdate> subscriber() {
    return ref.narrow();
  }

  /** The task's updates, ending with (and including) its terminal status change. */
  Source<TaskUpdate, NotUsed> updates() {
    return updates;
  }

  /** Stops watching when {@link #updates()} will not be run (the submit failed). */
  void close() {
    stopTimers();
    ref.tell(Signal.GIVE_UP);
  }

  private void stopTimers() {
    resubscribe.cancel();
    giveUp.cancel();
  }

  static boolean isTerminal(TaskUpdate u) {
    return u instanceof TaskUpdate.StatusChanged sc && sc.view().status().isTerminal();
  }
}
