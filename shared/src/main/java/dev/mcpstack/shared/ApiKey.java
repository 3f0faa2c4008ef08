package dev.mcpstack.shared;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * One API key as the cluster keeps it: never the secret, only its SHA-256 ({@code sha256}, hex).
 * {@code id} is public (logs, admin API); {@code tenant} owns every task the key creates;
 * {@code models} lists the models the key may use (empty = all); {@code account} names the key's
 * limiter and usage account, carried over when a key is rotated so that the new secret inherits
 * the old one's minute, budget and usage (null = the key's own id); {@code version} is the key
 * registry's version at the key's last change, which lets api-nodes fetch only what changed;
 * {@code cache} says whether the key's requests may use the response cache (docs/adr/0009) when it
 * is on: keys stored before the field existed read as null, which means yes.
 */
public record ApiKey(
    String id,
    String tenant,
    String name,
    String sha256,
    KeyLimits limits,
    List<String> models,
    Instant createdAt,
    Instant revokedAt,
    String account,
    long version,
    Boolean cache)
    implements CborSerializable {

  public ApiKey {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(tenant, "tenant");
    Objects.requireNonNull(sha256, "sha256");
    limits = limits == null ? KeyLimits.UNLIMITED : limits;
    models = models == null ? List.of() : List.copyOf(models);
    name = name == null ? "" : name;
    account = account == null ? id : account;
    cache = cache == null ? Boolean.TRUE : cache;
  }

  /** Whether this key's requests may be answered from, and stored in, the response cache. */
  public boolean cacheAllowed() {
    return cache;
  }

  public boolean revoked() {
    return revokedAt != null;
  }

  /** Whether this key may use {@code model}. */
  public boolean allows(String model) {
    return models.isEmpty() || models.contains(model);
  }

  public ApiKey withVersion(long v) {
    return new ApiKey(id, tenant, name, sha256, limits, models, createdAt, revokedAt, account, v, cache);
  }

  public ApiKey revokedAt(Instant at, long v) {
    return new ApiKey(id, tenant, name, sha256, limits, models, createdAt, at, account, v, cache);
  }

  /** This key with the given fields changed; null ones stay as they are. */
  public ApiKey updated(String newName, KeyLimits newLimits, List<String> newModels, Boolean newCache, long v) {
    return new ApiKey(
        id,
        tenant,
        newName == null ? name : newName,
        sha256,
        newLimits == null ? limits : newLimits,
        newModels == null ? models : newModels,
        createdAt,
        revokedAt,
        account,
        v,
        newCache == null ? cache : newCache);
  }
}
