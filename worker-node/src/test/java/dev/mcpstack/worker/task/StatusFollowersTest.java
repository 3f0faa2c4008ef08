package dev.mcpstack.worker.task;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.mcpstack.shared.TaskKind;
import dev.mcpstack.shared.TaskSpec;
import dev.mcpstack.shared.TaskStatus;
import dev.mcpstack.shared.TaskUpdate;
import dev.mcpstack.shared.TaskView;
import com.fasterxml.jackson.databind.node.NullNode;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.testkit.TestSubscriber;
import org.apache.pekko.stream.testkit.javadsl.TestSink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The followers of a task without deltas, whatever state their streams are in when it ends. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StatusFollowersTest {
  private final ActorTestKit testKit = ActorTestKit.create();
  private final Materializer mat = Materializer.matFromSystem(testKit.system());

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private static TaskView view(TaskStatus status) {
    TaskState state =
        TaskState.blank("task-1")
            .submitted(
                new TaskEntity.TaskSubmitted(
                    new TaskSpec(TaskKind.CHAT, "m", NullNode.getInstance()), "alice", null, null,
                    Instant.EPOCH.plusSeconds(60), Instant.EPOCH, null, false));
    return status == TaskStatus.QUEUED ? state.toView() : state.cancelled(new TaskEntity.TaskCancelled(Instant.EPOCH)).toView();
  }

  @Test
  void endingFollowersNeverThrowsWhateverStateTheirStreamsAreIn() {
    StatusFollowers followers = new StatusFollowers(mat, 8);
    AtomicInteger ended = new AtomicInteger();
    TestSubscriber.Probe<TaskUpdate> reading =
        followers.follower(view(TaskStatus.QUEUED), ended::incrementAndGet).getSource().runWith(TestSink.probe(testKit.system().classicSystem()), mat);
    TestSubscriber.Probe<TaskUpdate> leaving =
        followers.follower(view(TaskStatus.QUEUED), ended::incrementAndGet).getSource().runWith(TestSink.probe(testKit.system().classicSystem()), mat);
    reading.request(10);
    assertEquals(TaskStatus.QUEUED, ((TaskUpdate.StatusChanged) reading.expectNext()).view().status());
    leaving.cancel(); // a follower gone before the end, maybe not yet forgotten

    // the task's end, then its entity stopping: these run inside the entity's own handling of its
    // events, where a throw would lose what follows (the task's usage report, once)
    followers.publish(new TaskUpdate.StatusChanged(view(TaskStatus.CANCELLED)));
    followers.complete();
    followers.complete();
    followers.fail(new IllegalStateException("the entity stopped"));

    assertEquals(TaskStatus.CANCELLED, ((TaskUpdate.StatusChanged) reading.expectNext()).view().status());
    reading.expectComplete();
  }
}
