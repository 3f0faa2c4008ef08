package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

/** Requests to a node on this machine, for tests that start nodes of their own. */
final class LoopbackHttp {
  static final ObjectMapper JSON = new ObjectMapper();

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  /** {@code body} as JSON when not null; {@code headers} added as they are. */
  HttpResponse<String> send(String method, int port, String path, String body, Map<String, String> headers)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(30));
    headers.forEach(b::header);
    if (body != null) {
      b.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
    } else {
      b.method(method, HttpRequest.BodyPublishers.noBody());
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** A POST that must answer {@code expected}; its JSON body. */
  JsonNode post(int port, String path, String body, int expected) throws Exception {
    HttpResponse<String> r = send("POST", port, path, body, Map.of());
    assertEquals(expected, r.statusCode(), path + ": " + r.body());
    return JSON.readTree(r.body());
  }
}
