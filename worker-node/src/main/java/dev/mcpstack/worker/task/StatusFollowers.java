package dev.mcpstack.worker.task;

import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.javadsl.StreamRefs;

/**
 * The followers of a task that sends no deltas (a non-streamed chat, embeddings, a warm-up): its
 * only updates are a few status changes, at most two per attempt. Each follower is one small queue
 * behind its stream ref, filled by the entity; no broadcast hub and no materializer of the entity's
 * own, which {@link TaskUpdates} needs to relay a stream's deltas with backpressure, and which cost
 * a synchronous chat more than the rest of its task (docs/benchmarks.md, "Hot path under
 * concurrency"). A follower that lets {@code buffer} changes wait is failed, and follows again.
 *
 * <p>The streams run on the system's materializer, so they do not end with the entity by
 * themselves: the entity {@link #fail}s them when it stops, and its followers follow it again
 * wherever it lives next.
 */
final class StatusFollowers {
  private final Materializer mat;
  private final int buffer;
  private final List<BoundedSourceQueue<TaskUpdate>> queues = new CopyOnWriteArrayList<>();

  StatusFollowers(Materializer mat, int buffer) {
    this.mat = mat;
    this.buffer = buffer;
  }

  /**
   * A new follower: {@code current} first, then every status change until the terminal one.
   * {@code onEnd} runs when it leaves, whichever way.
   */
  SourceRef<TaskUpdate> follower(TaskView current, Runnable onEnd) {
    Pair<BoundedSourceQueue<TaskUpdate>, SourceRef<TaskUpdate>> follower =
        Source.<TaskUpdate>queue(buffer)
            .takeWhile(u -> !TaskUpdates.isTerminal(u), true)
            .map(u -> TaskUpdates.outOfBand(u, mat))
            .watchTermination(
                (queue, done) -> {
                  done.whenComplete(
                      (d, e) -> {
                        queues.remove(queue);
                        onEnd.run();
                      });
                  return queue;
                })
            .toMat(StreamRefs.sourceRef(), Keep.both())
            .run(mat);
    BoundedSourceQueue<TaskUpdate> queue = follower.first();
    queue.offer(new TaskUpdate.StatusChanged(current));
    queues.add(queue);
    return follower.second();
  }

  /**
   * Tells every follower; one that does not read is failed (it follows again). Never throws: it runs
   * inside the entity's handling of its own events (a follower whose stream already ended, and is
   * not yet forgotten, must not stop the task from finishing).
   */
  void publish(TaskUpdate update) {
    for (BoundedSourceQueue<TaskUpdate> queue : queues) {
      QueueOfferResult offered = queue.offer(update);
      if (offered == QueueOfferResult.dropped()) {
        end(queue, new IllegalStateException("the follower did not read the task's status changes"));
      } else if (offered != QueueOfferResult.enqueued()) {
        queues.remove(queue); // its stream has ended
      }
    }
  }

  /** The task ended (its terminal change was published): the followers end after it. */
  void complete() {
    queues.forEach(queue -> end(queue, null));
  }

  /** The entity stops: its followers' streams break, and they follow the task again. */
  void fail(Throwable why) {
    queues.forEach(queue -> end(queue, why));
  }

  /** Completes ({@code why} null) or fails one follower's queue, whatever state its stream is in. */
  private void end(BoundedSourceQueue<TaskUpdate> queue, Throwable why) {
    queues.remove(queue);
    try {
      if (why == null) {
        queue.complete();
      } else {
        queue.fail(why);
      }
    } catch (RuntimeException alreadyEnded) {
      // the follower's stream ended first: nothing to tell it
    }
  }
}
