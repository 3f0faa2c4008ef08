package dev.mcpstack.shared;

/**
 * Marker for every message, event and state class that crosses a node boundary or lands in the
 * journal. Bound to Pekko's {@code jackson-cbor} serializer in {@code shared/reference.conf}.
 */
public interface CborSerializable {}
