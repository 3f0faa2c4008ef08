package dev.mcpstack.api;

import java.util.List;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/** Server-sent events framed by hand: {@code data: <json>\n\n}, keep-alive comments, [DONE]. */
final class Sse {
  static final ByteString KEEP_ALIVE = ByteString.fromString(": keep-alive\n\n");
  static final ByteString DONE = ByteString.fromString("data: [DONE]\n\n");

  private Sse() {}

  static ByteString data(String json) {
    return ByteString.fromString("data: " + json + "\n\n");
  }

  /** A 200 {@code text/event-stream} response streaming {@code events} chunk by chunk. */
  static HttpResponse response(Source<ByteString, ?> events) {
    return HttpResponse.create()
        .withStatus(StatusCodes.OK)
        .addHeaders(
            List.of(
                RawHeader.create("Cache-Control", "no-cache"),
                RawHeader.create("X-Accel-Buffering", "no")))
        .withEntity(HttpEntities.createChunked(MediaTypes.TEXT_EVENT_STREAM.toContentType(), events));
  }
}
