package dev.mcpstack.shared;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.SourceRef;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.stream.javadsl.StreamRefs;
import org.apache.pekko.util.ByteString;

/**
 * JSON bodies too big for one cluster message. Artery sends a message as one frame (256 KiB by
 * default) and drops what does not fit, so a body over {@link #INLINE_LIMIT} travels out of band:
 * the message carries a {@link SourceRef} of its JSON text in {@link #CHUNK_SIZE} pieces, which
 * the receiver reads with backpressure over the ordinary lanes (each piece is one small message,
 * acknowledged and re-ordered by the stream ref protocol). The receiver must start reading within
 * {@code pekko.stream.materializer.stream-ref.subscription-timeout}; a ref is read once.
 */
public final class LargeJson {
  /** Bodies up to this many bytes of JSON travel inside their message. */
  public static final int INLINE_LIMIT = 64 * 1024;

  static final int CHUNK_SIZE = 64 * 1024;
  private static final ObjectMapper JSON = new ObjectMapper();

  private LargeJson() {}

  /**
   * The chunks of {@code body} when it is too big to travel inline, else null. The ref is offered
   * by a stream on {@code mat}; it ends unread after the subscription timeout.
   */
  public static SourceRef<ByteString> chunksIfLarge(JsonNode body, Materializer mat) {
    if (body == null || body.isValueNode()) {
      return null;
    }
    byte[] bytes;
    try {
      bytes = JSON.writeValueAsBytes(body);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a JSON tree that cannot be written", e);
    }
    if (bytes.length <= INLINE_LIMIT) {
      return null;
    }
    ByteString all = ByteString.fromArrayUnsafe(bytes);
    List<ByteString> chunks = new ArrayList<>(bytes.length / CHUNK_SIZE + 1);
    for (int from = 0; from < bytes.length; from += CHUNK_SIZE) {
      chunks.add(all.slice(from, Math.min(bytes.length, from + CHUNK_SIZE)));
    }
    return Source.from(chunks).runWith(StreamRefs.sourceRef(), mat);
  }

  /** The body a {@link #chunksIfLarge} ref carries. */
  public static CompletionStage<JsonNode> read(SourceRef<ByteString> chunks, Materializer mat) {
    return chunks
        .getSource()
        .runWith(Sink.fold(ByteString.emptyByteString(), ByteString::concat), mat)
        .thenCompose(
            bytes -> {
              try {
                return CompletableFuture.completedFuture(JSON.readTree(bytes.toArrayUnsafe()));
              } catch (IOException e) {
                return CompletableFuture.failedFuture(e);
              }
            });
  }
}
