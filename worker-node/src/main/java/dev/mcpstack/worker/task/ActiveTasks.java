package dev.mcpstack.worker.task;

import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;

/**
 * How many unfinished tasks this worker holds, against {@code mcp.worker.tasks.max-active}: the
 * bound that keeps a burst from every tenant together from running a worker out of memory. New
 * tasks take a place or are refused; tasks recovered after a crash always take one.
 */
public final class ActiveTasks implements Extension {
  private final AtomicInteger count = new AtomicInteger();
  private final int max;

  private ActiveTasks(int max) {
    this.max = max;
  }

  public static final ExtensionId<ActiveTasks> ID =
      new ExtensionId<>() {
        @Override
        public ActiveTasks createExtension(ActorSystem<?> system) {
          return new ActiveTasks(system.settings().config().getInt("mcp.worker.tasks.max-active"));
        }
      };

  public static ActiveTasks get(ActorSystem<?> system) {
    return ID.apply(system);
  }

  /** Takes a place for a new task; false when the worker is full. */
  boolean tryTake() {
    int now;
    do {
      now = count.get();
      if (now >= max) {
        return false;
      }
    } while (!count.compareAndSet(now, now + 1));
    return true;
  }

  /** Takes a place for accepted work, whatever the bound. */
  void take() {
    count.incrementAndGet();
  }

  void release() {
    count.decrementAndGet();
  }

  public int count() {
    return count.get();
  }

  public int max() {
    return max;
  }
}
