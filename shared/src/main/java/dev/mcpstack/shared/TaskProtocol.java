package dev.mcpstack.shared;

import java.time.Instant;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.util.ByteString;

/**
 * The task entity's protocol, shared by the api-node (which sends) and the worker-node (which hosts
 * the sharded entities). Renaming {@link #TYPE_KEY} would orphan every stored task.
 */
public interface TaskProtocol {
  EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Task");

  /**
   * Tasks whose events live only in their worker's memory: chats and embeddings answered on the
   * client's connection without an {@code Idempotency-Key} (docs/adr/0007). Same protocol; a crash
   * loses them, and the api-node holding the request submits it again or reports the break.
   */
  EntityTypeKey<Command> MEMORY_TYPE_KEY = EntityTypeKey.create(Command.class, "MemoryTask");

  /** Cluster role that hosts task entities. */
  String WORKER_ROLE = "worker";

  /** Everything a task entity accepts. The worker adds private commands of its own. */
  interface Command extends CborSerializable {}

  /**
   * Start a task, or, when a task with this id exists, answer with it if the spec is the same
   * (idempotent retry) or reject with {@link ErrorCode#CONFLICT}. With {@code follow} the answer
   * carries the task's updates ({@link TaskReply.Ok#updates()}), opened before the first attempt
   * starts, so the follower sees every delta. {@code keyId}, when not null, is the usage account of
   * the API key the task was submitted with (its usage is recorded there when the task ends), and
   * {@code holdId} the hold its key's limiter gave this submit (freed when the task ends; null when
   * none). {@code retention} says how long the finished task is kept; null (a sender of an older
   * version) means {@link TaskRetention#STANDARD}. {@code requestChunks}, when not null, carries
   * the request body out of band ({@link LargeJson}): {@code spec.request()} is then a JSON null.
   * {@code subscriber} is how nodes of the previous version follow a task (updates told one by
   * one, without backpressure); null from this version on. {@code background}: an async task of
   * {@code POST /v1/tasks}, a backlog item nobody waits for on a connection: while no runner has
   * room for it, it waits for one without spending its attempts. False for synchronous and
   * streamed calls, and from senders of an older version (the field is then missing). {@code
   * trace}: the request's trace context (the api-node's span, the client's tracestate, the request
   * id), which the task keeps and sends on to the model runners; null from senders of an older
   * version (the task then starts a trace of its own).
   */
  record Submit(
      TaskSpec spec,
      String owner,
      String keyId,
      String holdId,
      Instant deadline,
      TaskRetention retention,
      boolean follow,
      SourceRef<ByteString> requestChunks,
      ActorRef<TaskUpdate> subscriber,
      ActorRef<TaskReply> replyTo,
      boolean background,
      TraceContext trace)
      implements Command {
    public Submit {
      retention = retention == null ? TaskRetention.STANDARD : retention;
    }

    /** A submit without a trace context. */
    public Submit(
        TaskSpec spec,
        String owner,
        String keyId,
        String holdId,
        Instant deadline,
        TaskRetention retention,
        boolean follow,
        SourceRef<ByteString> requestChunks,
        ActorRef<TaskUpdate> subscriber,
        ActorRef<TaskReply> replyTo,
        boolean background) {
      this(spec, owner, keyId, holdId, deadline, retention, follow, requestChunks, subscriber, replyTo, background, null);
    }

    /** A submit that is not {@code background} (a call someone waits for). */
    public Submit(
        TaskSpec spec,
        String owner,
        String keyId,
        String holdId,
        Instant deadline,
        TaskRetention retention,
        boolean follow,
        SourceRef<ByteString> requestChunks,
        ActorRef<TaskUpdate> subscriber,
        ActorRef<TaskReply> replyTo) {
      this(spec, owner, keyId, holdId, deadline, retention, follow, requestChunks, subscriber, replyTo, false);
    }

    /** An anonymous caller's submit, kept for good, with the request inline. */
    public Submit(TaskSpec spec, String owner, Instant deadline, boolean follow, ActorRef<TaskReply> replyTo) {
      this(spec, owner, null, null, deadline, TaskRetention.STANDARD, follow, null, null, replyTo);
    }

    /** The same submit with its request body read back in. */
    public Submit withRequest(com.fasterxml.jackson.databind.JsonNode request) {
      return new Submit(
          new TaskSpec(spec.kind(), spec.model(), request),
          owner, keyId, holdId, deadline, retention, follow, null, subscriber, replyTo, background, trace);
    }
  }

  /** The task as it stands, if {@code owner} owns it (else not found). */
  record Get(String owner, ActorRef<TaskReply> replyTo) implements Command {}

  /** The task whoever owns it: for operators (the admin API), never for clients. */
  record Inspect(ActorRef<TaskReply> replyTo) implements Command {}

  /** Cancel the task if it has not finished; answers with the resulting view. */
  record Cancel(String owner, ActorRef<TaskReply> replyTo) implements Command {}

  /**
   * Follow the task: answers like {@link Get}, with the task's updates in {@link
   * TaskReply.Ok#updates()} (the current view first, then every change until the terminal one).
   */
  record Follow(String owner, ActorRef<TaskReply> replyTo) implements Command {}

  /**
   * How nodes of the previous version follow a task: every update told to {@code subscriber}
   * until it is terminal, the current view first. Answers like {@link Get}.
   */
  record Subscribe(String owner, ActorRef<TaskUpdate> subscriber, ActorRef<TaskReply> replyTo)
      implements Command {}
}
