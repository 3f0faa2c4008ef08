package dev.mcpstack.worker.task;

import dev.mcpstack.shared.LargeJson;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.NotUsed;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.OverflowStrategy;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.stream.javadsl.BroadcastHub;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.javadsl.SourceQueueWithComplete;
import org.apache.pekko.stream.javadsl.StreamRefs;
import org.apache.pekko.util.ByteString;

/**
 * One task's updates on their way to its followers: the entity offers status changes and the
 * running attempt offers its deltas to one queue, broadcast to every follower. Backpressured end
 * to end: a delta is accepted only when there is room, so the slowest follower's read rate reaches
 * the attempt's stream and through it the runner's connection; with no follower at all the updates
 * wait (up to the buffer) for the next one. Memory is bounded by {@code buffer} updates in the
 * queue and {@code buffer} in the broadcast, per task, and per follower by the stream ref's window
 * of elements of at most {@value #MAX_BATCH} updates each. Runs on the entity's materializer: when the
 * entity stops, every follower's stream fails and the follower re-follows wherever the task lives
 * next.
 */
final class TaskUpdates {
  /** Concurrent offers: the attempt's one delta at a time, plus the entity's status changes. */
  private static final int MAX_OFFERS = 16;
  /** Updates sent as one element at most, when the follower reads slower than they come. */
  private static final int MAX_BATCH = 16;

  private final SourceQueueWithComplete<TaskUpdate> queue;
  private final Source<TaskUpdate, NotUsed> broadcast;
  private final Materializer mat;

  TaskUpdates(Materializer mat, int buffer) {
    this.mat = mat;
    Pair<SourceQueueWithComplete<TaskUpdate>, Source<TaskUpdate, NotUsed>> running =
        Source.<TaskUpdate>queue(buffer, OverflowStrategy.backpressure(), MAX_OFFERS)
            // nothing is broadcast before the first follower is there (it registers asynchronously)
            .toMat(BroadcastHub.of(TaskUpdate.class, 1, buffer), Keep.both())
            .run(mat);
    this.queue = running.first();
    this.broadcast = running.second();
  }

  /** Completes once the update is queued: the caller's backpressure. */
  CompletionStage<Done> offer(TaskUpdate update) {
    return queue
        .offer(update)
        .thenCompose(
            result ->
                result == QueueOfferResult.enqueued()
                    ? CompletableFuture.completedFuture(Done.getInstance())
                    : CompletableFuture.failedFuture(
                        new IllegalStateException("the task's updates are closed: " + result)));
  }

  /** No more updates: followers end after the terminal one. */
  void complete() {
    queue.complete();
  }

  /**
   * A new follower's updates, as a ref the follower reads (on this or another node): {@code
   * current} first, then every update until the terminal status change. {@code onEnd} runs when
   * the follower leaves, whichever way.
   */
  SourceRef<TaskUpdate> follower(TaskView current, Runnable onEnd) {
    // concatLazy: the broadcast's consumer is materialized (registered) at once as with concat,
    // but nothing is prefetched, which saves two stages (Detachers) per follower
    return Source.<TaskUpdate>single(new TaskUpdate.StatusChanged(current))
        .concatLazy(broadcast)
        .takeWhile(u -> !isTerminal(u), true)
        .map(u -> outOfBand(u, mat))
        // while the follower keeps up every update is its own element; when it falls behind, what
        // waits goes as one (a stream ref's per-element messages are the relay's main cost)
        .batch(MAX_BATCH, first -> startBatch(first), TaskUpdates::addToBatch)
        .map(TaskUpdates::closeBatch)
        .watchTermination(
            (notUsed, done) -> {
              done.whenComplete((d, e) -> onEnd.run());
              return notUsed;
            })
        .runWith(StreamRefs.sourceRef(), mat);
  }

  /** A status change whose result body is too big for one message carries it as chunks. */
  static TaskUpdate outOfBand(TaskUpdate update, Materializer mat) {
    if (update instanceof TaskUpdate.StatusChanged sc && sc.view().result() != null) {
      SourceRef<ByteString> chunks = LargeJson.chunksIfLarge(sc.view().result().body(), mat);
      if (chunks != null) {
        return new TaskUpdate.StatusChanged(
            sc.view().withResultBody(com.fasterxml.jackson.databind.node.NullNode.getInstance()), chunks);
      }
    }
    return update;
  }

  private static java.util.List<TaskUpdate> startBatch(TaskUpdate first) {
    java.util.List<TaskUpdate> batch = new java.util.ArrayList<>();
    batch.add(first);
    return batch;
  }

  private static java.util.List<TaskUpdate> addToBatch(java.util.List<TaskUpdate> batch, TaskUpdate next) {
    batch.add(next);
    return batch;
  }

  private static TaskUpdate closeBatch(java.util.List<TaskUpdate> batch) {
    return batch.size() == 1 ? batch.get(0) : new TaskUpdate.Batch(batch.get(0).taskId(), batch);
  }

  static boolean isTerminal(TaskUpdate u) {
    return u instanceof TaskUpdate.StatusChanged sc && sc.view().status().isTerminal();
  }
}
