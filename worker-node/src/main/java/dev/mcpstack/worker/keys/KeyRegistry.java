package dev.mcpstack.worker.keys;

import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.CborSerializable;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.KeyProtocol;
import dev.mcpstack.shared.KeyProtocol.ChangesSince;
import dev.mcpstack.shared.KeyProtocol.Command;
import dev.mcpstack.shared.KeyProtocol.Create;
import dev.mcpstack.shared.KeyProtocol.Get;
import dev.mcpstack.shared.KeyProtocol.Reply;
import dev.mcpstack.shared.KeyProtocol.Revoke;
import dev.mcpstack.shared.KeyProtocol.Rotate;
import dev.mcpstack.shared.KeyProtocol.Update;
import dev.mcpstack.shared.TaskError;
import dev.mcpstack.shared.TaskProtocol;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;

/**
 * Every API key of the cluster, event-sourced in one entity ({@link KeyProtocol#REGISTRY_ID}): the
 * admin API creates, updates, revokes and rotates keys here; api-nodes copy the keys and follow
 * the changes by version. Keys are never deleted, only revoked, so "changed since version v" is
 * always the complete difference. Secrets never reach it: only their SHA-256.
 */
public final class KeyRegistry
    extends EventSourcedBehaviorWithEnforcedReplies<Command, KeyRegistry.Event, KeyRegistry.State> {

  public sealed interface Event extends CborSerializable permits KeyCreated, KeyUpdated, KeyRevoked {}

  public record KeyCreated(ApiKey key) implements Event {}

  /** {@code cache} is null in events written before the key's cache switch existed: unchanged. */
  public record KeyUpdated(String id, String name, KeyLimits limits, List<String> models, Boolean cache)
      implements Event {
    public KeyUpdated {
      models = models == null ? null : List.copyOf(models);
    }
  }

  public record KeyRevoked(String id, Instant at) implements Event {}

  /** The keys by id, and the number of changes so far (each key carries its last change's). */
  public record State(Map<String, ApiKey> keys, long version) implements CborSerializable {
    public State {
      keys = Map.copyOf(keys);
    }

    State with(ApiKey key) {
      Map<String, ApiKey> next = new HashMap<>(keys);
      next.put(key.id(), key);
      return new State(next, key.version());
    }

    State apply(Event event) {
      long v = version + 1;
      if (event instanceof KeyCreated c) {
        return with(c.key().withVersion(v));
      }
      if (event instanceof KeyUpdated u) {
        return with(keys.get(u.id()).updated(u.name(), u.limits(), u.models(), u.cache(), v));
      }
      KeyRevoked r = (KeyRevoked) event;
      return with(keys.get(r.id()).revokedAt(r.at(), v));
    }
  }

  public static void init(ActorSystem<?> system, Duration restartMin, Duration restartMax) {
    ClusterSharding.get(system)
        .init(
            Entity.of(KeyProtocol.TYPE_KEY, ctx -> create(Clock.systemUTC(), restartMin, restartMax))
                .withRole(TaskProtocol.WORKER_ROLE));
  }

  public static Behavior<Command> create(Clock clock, Duration restartMin, Duration restartMax) {
    return new KeyRegistry(clock, restartMin, restartMax);
  }

  private final Clock clock;

  private KeyRegistry(Clock clock, Duration restartMin, Duration restartMax) {
    super(
        PersistenceId.of(KeyProtocol.TYPE_KEY.name(), KeyProtocol.REGISTRY_ID),
        SupervisorStrategy.restartWithBackoff(restartMin, restartMax, 0.2));
    this.clock = clock;
  }

  @Override
  public State emptyState() {
    return new State(Map.of(), 0);
  }

  @Override
  public RetentionCriteria retentionCriteria() {
    return RetentionCriteria.snapshotEvery(100, 2);
  }

  @Override
  public CommandHandlerWithReply<Command, Event, State> commandHandler() {
    return newCommandHandlerWithReplyBuilder()
        .forAnyState()
        .onCommand(Create.class, this::onCreate)
        .onCommand(Update.class, this::onUpdate)
        .onCommand(Revoke.class, this::onRevoke)
        .onCommand(Rotate.class, this::onRotate)
        .onCommand(Get.class, (s, c) -> known(s, c.id(), c.replyTo(), k -> Effect().reply(c.replyTo(), new KeyProtocol.One(k))))
        .onCommand(ChangesSince.class, this::onChangesSince)
        .build();
  }

  private ReplyEffect<Event, State> onCreate(State state, Create cmd) {
    if (state.keys().containsKey(cmd.key().id())) {
      return Effect().reply(cmd.replyTo(), rejected(ErrorCode.CONFLICT, "a key with id '" + cmd.key().id() + "' exists"));
    }
    ApiKey key = cmd.key();
    ApiKey fresh =
        new ApiKey(key.id(), key.tenant(), key.name(), key.sha256(), key.limits(), key.models(), clock.instant(), null, null, 0,
            key.cache());
    return Effect()
        .persist(new KeyCreated(fresh))
        .thenReply(cmd.replyTo(), s -> new KeyProtocol.One(s.keys().get(key.id())));
  }

  private ReplyEffect<Event, State> onUpdate(State state, Update cmd) {
    return known(
        state,
        cmd.id(),
        cmd.replyTo(),
        k ->
            Effect()
                .persist(new KeyUpdated(cmd.id(), cmd.name(), cmd.limits(), cmd.models(), cmd.cache()))
                .thenReply(cmd.replyTo(), s -> new KeyProtocol.One(s.keys().get(cmd.id()))));
  }

  private ReplyEffect<Event, State> onRevoke(State state, Revoke cmd) {
    return known(
        state,
        cmd.id(),
        cmd.replyTo(),
        k ->
            k.revoked()
                ? Effect().reply(cmd.replyTo(), new KeyProtocol.One(k))
                : Effect()
                    .persist(new KeyRevoked(cmd.id(), clock.instant()))
                    .thenReply(cmd.replyTo(), s -> new KeyProtocol.One(s.keys().get(cmd.id()))));
  }

  private ReplyEffect<Event, State> onRotate(State state, Rotate cmd) {
    return known(
        state,
        cmd.id(),
        cmd.replyTo(),
        k -> {
          if (k.revoked()) {
            return Effect().reply(cmd.replyTo(), rejected(ErrorCode.CONFLICT, "key '" + cmd.id() + "' is revoked"));
          }
          if (state.keys().containsKey(cmd.newId())) {
            return Effect().reply(cmd.replyTo(), rejected(ErrorCode.CONFLICT, "a key with id '" + cmd.newId() + "' exists"));
          }
          Instant now = clock.instant();
          ApiKey replacement =
              new ApiKey(
                  cmd.newId(), k.tenant(), k.name(), cmd.newSha256(), k.limits(), k.models(), now, null, k.account(), 0,
                  k.cache());
          return Effect()
              .persist(List.of(new KeyRevoked(k.id(), now), new KeyCreated(replacement)))
              .thenReply(cmd.replyTo(), s -> new KeyProtocol.One(s.keys().get(cmd.newId())));
        });
  }

  private ReplyEffect<Event, State> onChangesSince(State state, ChangesSince cmd) {
    List<ApiKey> changed =
        state.keys().values().stream()
            .filter(k -> k.version() > cmd.version())
            .sorted(Comparator.comparingLong(ApiKey::version))
            .toList();
    return Effect().reply(cmd.replyTo(), new KeyProtocol.Many(changed, state.version()));
  }

  private ReplyEffect<Event, State> known(
      State state,
      String id,
      ActorRef<Reply> replyTo,
      java.util.function.Function<ApiKey, ReplyEffect<Event, State>> then) {
    ApiKey key = state.keys().get(id);
    return key == null ? Effect().reply(replyTo, rejected(ErrorCode.NOT_FOUND, "no key with id '" + id + "'")) : then.apply(key);
  }

  private static KeyProtocol.Rejected rejected(ErrorCode code, String message) {
    return new KeyProtocol.Rejected(TaskError.of(code, message));
  }

  @Override
  public EventHandler<State, Event> eventHandler() {
    return newEventHandlerBuilder().forAnyState().onAnyEvent(State::apply);
  }
}
