package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;

/**
 * The key registry's protocol: one event-sourced entity ({@link #REGISTRY_ID}) on the worker role
 * keeps every API key of the cluster. The admin API changes it; every api-node keeps a copy and
 * asks for {@link ChangesSince} its version a few times a second, so a revoked key stops working
 * everywhere within {@code mcp.api.keys.refresh-interval} plus one round trip.
 */
public interface KeyProtocol {
  EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "ApiKeys");

  /** The one registry entity's id. */
  String REGISTRY_ID = "registry";

  interface Command extends CborSerializable {}

  /** Adds {@code key} (its version is assigned by the registry); rejected if the id exists. */
  record Create(ApiKey key, ActorRef<Reply> replyTo) implements Command {}

  /** Changes the name, limits, models or cache switch of a key; null fields stay as they are. */
  record Update(
      String id, String name, KeyLimits limits, List<String> models, Boolean cache, ActorRef<Reply> replyTo)
      implements Command {
    public Update {
      models = models == null ? null : List.copyOf(models);
    }
  }

  /** Revokes a key for good; revoking a revoked key answers with it unchanged. */
  record Revoke(String id, ActorRef<Reply> replyTo) implements Command {}

  /**
   * Revokes {@code id} and creates a key {@code newId} with the same tenant, name, limits, models
   * and account in one step: answers with the new key.
   */
  record Rotate(String id, String newId, String newSha256, ActorRef<Reply> replyTo) implements Command {}

  record Get(String id, ActorRef<Reply> replyTo) implements Command {}

  /** Every key changed after {@code version} (0 = all), and the registry's current version. */
  record ChangesSince(long version, ActorRef<Reply> replyTo) implements Command {}

  @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
  @JsonSubTypes({
    @JsonSubTypes.Type(value = KeyProtocol.One.class, name = "one"),
    @JsonSubTypes.Type(value = KeyProtocol.Many.class, name = "many"),
    @JsonSubTypes.Type(value = KeyProtocol.Rejected.class, name = "rejected")
  })
  sealed interface Reply extends CborSerializable {}

  record One(ApiKey key) implements Reply {}

  record Many(List<ApiKey> keys, long version) implements Reply {
    public Many {
      keys = List.copyOf(keys);
    }
  }

  record Rejected(TaskError error) implements Reply {}
}
