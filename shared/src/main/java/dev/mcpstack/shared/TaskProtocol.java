package dev.mcpstack.shared;

import java.time.Instant;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The task entity's protocol, shared by the api-node (which sends) and the worker-node (which hosts
 * the sharded entities). Renaming {@link #TYPE_KEY} would orphan every stored task.
 */
public interface TaskProtocol {
  EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Task");

  /** Cluster role that hosts task entities. */
  String WORKER_ROLE = "worker";

  /** Everything a task entity accepts. The worker adds private commands of its own. */
  interface Command extends CborSerializable {}

  /**
   * Start a task, or, when a task with this id exists, answer with it if the spec is the same
   * (idempotent retry) or reject with {@link ErrorCode#CONFLICT}. {@code subscriber} may be null;
   * when given it is subscribed before the first attempt starts, so a streaming client sees every
   * delta. {@code keyId}, when not null, is the API key the task was submitted with: its limiter
   * is told when the task ends (to free the key's slot and settle its tokens). {@code retention}
   * says how long the finished task is kept; null (a sender of an older version) means {@link
   * TaskRetention#STANDARD}.
   */
  record Submit(
      TaskSpec spec,
      String owner,
      String keyId,
      Instant deadline,
      TaskRetention retention,
      ActorRef<TaskUpdate> subscriber,
      ActorRef<TaskReply> replyTo)
      implements Command {
    public Submit {
      retention = retention == null ? TaskRetention.STANDARD : retention;
    }

    public Submit(
        TaskSpec spec,
        String owner,
        String keyId,
        Instant deadline,
        ActorRef<TaskUpdate> subscriber,
        ActorRef<TaskReply> replyTo) {
      this(spec, owner, keyId, deadline, TaskRetention.STANDARD, subscriber, replyTo);
    }

    public Submit(
        TaskSpec spec, String owner, Instant deadline, ActorRef<TaskUpdate> subscriber, ActorRef<TaskReply> replyTo) {
      this(spec, owner, null, deadline, subscriber, replyTo);
    }
  }

  /** The task as it stands, if {@code owner} owns it (else not found). */
  record Get(String owner, ActorRef<TaskReply> replyTo) implements Command {}

  /** The task whoever owns it: for operators (the admin API), never for clients. */
  record Inspect(ActorRef<TaskReply> replyTo) implements Command {}

  /** Cancel the task if it has not finished; answers with the resulting view. */
  record Cancel(String owner, ActorRef<TaskReply> replyTo) implements Command {}

  /**
   * Push every update of the task to {@code subscriber} until it is terminal; the first update is
   * the current view. Answers like {@link Get}.
   */
  record Subscribe(String owner, ActorRef<TaskUpdate> subscriber, ActorRef<TaskReply> replyTo)
      implements Command {}
}
