package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;
import static org.apache.pekko.http.javadsl.server.PathMatchers.segment;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * What a backup or a restore needs from the stack (docs/adr/0011): {@code /admin/intake} pauses and
 * resumes the intake of journaled work on every api-node, {@code POST /admin/journal/backup} writes
 * a consistent copy of an H2 journal.
 */
final class MaintenanceRoutes {
  private final HttpSupport http;
  private final JournalGate gate;
  private final JournalBackup backup;

  MaintenanceRoutes(HttpSupport http) {
    this.http = http;
    this.gate = JournalGate.get(http.system);
    this.backup = new JournalBackup(http.system);
  }

  Route route(String requestId) {
    return concat(
        pathPrefix(
            "intake",
            () ->
                concat(
                    pathEndOrSingleSlash(() -> get(() -> complete(http.json(StatusCodes.OK, intake(gate.pausedSince()))))),
                    path("pause", () -> post(() -> change(gate.pause(http.settings.askTimeout()), "paused", requestId))),
                    path("resume", () -> post(() -> change(gate.resume(http.settings.askTimeout()), "resumed", requestId))))),
        path(
            segment("journal").slash("backup"),
            () ->
                post(
                    () ->
                        parameterOptional(
                            "format",
                            format -> backup(JournalBackup.Format.parse(format.orElse("zip")), requestId)))));
  }

  private Route change(CompletionStage<Optional<Instant>> done, String what, String requestId) {
    return http.respond(
        done.thenApply(
            since -> {
              http.system.log().info("intake of journaled work {} by an operator", what);
              return http.json(StatusCodes.OK, intake(since));
            }),
        requestId);
  }

  /** {@code {object, paused, paused_at, accepting}}; accepting is false during a journal outage too. */
  private ObjectNode intake(Optional<Instant> since) {
    ObjectNode body = http.json.createObjectNode();
    body.put("object", "intake");
    body.put("paused", since.isPresent());
    if (since.isPresent()) {
      body.put("paused_at", since.get().getEpochSecond());
    } else {
      body.putNull("paused_at");
    }
    body.put("accepting", gate.accepting());
    return body;
  }

  private Route backup(JournalBackup.Format format, String requestId) {
    return http.respond(
        backup
            .run(format)
            .thenApply(
                r -> {
                  ObjectNode body = http.json.createObjectNode();
                  body.put("object", "journal.backup");
                  body.put("file", r.file());
                  body.put("format", r.format().name().toLowerCase(Locale.ROOT));
                  if (r.bytes() >= 0) {
                    body.put("bytes", r.bytes());
                  } else {
                    body.putNull("bytes");
                  }
                  body.put("created_at", r.createdAt().getEpochSecond());
                  return http.json(StatusCodes.CREATED, body);
                }),
        requestId);
  }
}
