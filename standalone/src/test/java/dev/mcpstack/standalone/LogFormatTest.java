package dev.mcpstack.standalone;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.joran.JoranConfigurator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.slf4j.Logger;

/**
 * The node's logback.xml as shipped: LOG_FORMAT=json writes one JSON object per line whose fields
 * include the access log's key-value pairs and the MDC; the default writes readable text with the
 * same pairs as key=value.
 */
class LogFormatTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What the shipped configuration writes to stdout for one access-log line and one library line. */
  private static List<String> logged(String format) throws Exception {
    org.slf4j.LoggerFactory.getILoggerFactory(); // the test's own logging first, outside the capture
    URL config = LogFormatTest.class.getClassLoader().getResource("logback.xml");
    LoggerContext context = new LoggerContext();
    context.setMDCAdapter(org.slf4j.MDC.getMDCAdapter());
    if (format != null) {
      context.putProperty("LOG_FORMAT", format);
    }
    PrintStream original = System.out;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      JoranConfigurator configurator = new JoranConfigurator();
      configurator.setContext(context);
      configurator.doConfigure(config);
      Logger access = context.getLogger("mcp.access");
      access.atInfo()
          .addKeyValue("request_id", "req-42")
          .addKeyValue("route", "/v1/tasks/{id}")
          .addKeyValue("status", 404)
          .addKeyValue("duration_ms", 1.25)
          .log("{} {} {}", "GET", "/v1/tasks/{id}", 404);
      org.slf4j.MDC.put("pekkoAddress", "pekko://mcp-stack@127.0.0.1:25520");
      context.getLogger("org.apache.pekko.cluster.Cluster").warn("a library line");
      org.slf4j.MDC.clear();
      context.stop(); // flushes the async appender
    } finally {
      System.setOut(original);
    }
    // only this test's two lines: another thread of the JVM may print meanwhile
    return out.toString(StandardCharsets.UTF_8).lines()
        .filter(l -> l.contains("req-42") || l.contains("a library line"))
        .toList();
  }

  @Test
  void jsonLinesCarryTheAccessLogFieldsAndTheMdc() throws Exception {
    List<String> lines = logged("json");
    assertEquals(2, lines.size(), String.join("\n", lines));
    JsonNode access = JSON.readTree(lines.get(0));
    assertEquals("req-42", access.path("request_id").asText(), lines.get(0));
    assertEquals("/v1/tasks/{id}", access.path("route").asText());
    assertEquals(404, access.path("status").asInt());
    assertEquals(1.25, access.path("duration_ms").asDouble());
    assertEquals("mcp.access", access.path("logger_name").asText());
    assertEquals("GET /v1/tasks/{id} 404", access.path("message").asText());
    assertTrue(access.has("@timestamp"), lines.get(0));
    JsonNode library = JSON.readTree(lines.get(1));
    assertEquals("WARN", library.path("level").asText());
    assertEquals("pekko://mcp-stack@127.0.0.1:25520", library.path("pekkoAddress").asText(), lines.get(1));
  }

  @Test
  void textIsTheDefaultWithTheSamePairs() throws Exception {
    List<String> lines = logged(null);
    assertEquals(2, lines.size(), String.join("\n", lines));
    String access = lines.get(0);
    assertTrue(!access.startsWith("{") && access.contains("GET /v1/tasks/{id} 404"), access);
    assertTrue(access.contains("request_id=\"req-42\"") && access.contains("status=\"404\""), access);
  }
}
