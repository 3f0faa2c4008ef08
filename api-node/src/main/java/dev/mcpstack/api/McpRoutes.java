package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;

import dev.mcpstack.shared.ErrorCode;
import io.modelcontextprotocol.json.McpJsonMapper;
import io.modelcontextprotocol.json.McpJsonDefaults;
import io.modelcontextprotocol.json.schema.jackson2.DefaultJsonSchemaValidator;
import io.modelcontextprotocol.server.McpAsyncServer;
import io.modelcontextprotocol.server.McpServer;
import io.modelcontextprotocol.spec.McpSchema;
import java.time.Duration;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * {@code /mcp}: the Model Context Protocol over Streamable HTTP, for agents and desktop clients.
 * The SDK's server ({@link McpAsyncServer}) with the tools of {@link McpTools}, on the transport of
 * {@link McpTransport}. Authenticated like the OpenAI API (the same bearer keys, 401 before any
 * MCP message), and, since browsers could reach it, refused (403) to pages of origins that CORS
 * does not allow (the protocol's guard against DNS rebinding). Off with {@code MCP_ENABLED=off}:
 * then {@code /mcp} does not exist (404).
 */
final class McpRoutes {
  static final String PATH = "mcp";

  private final HttpSupport http;
  private final McpSettings settings;
  private final CorsSettings cors;
  private final McpTransport transport;
  private final McpAsyncServer server;

  McpRoutes(HttpSupport http, TaskClient taskClient, TaskRoutes taskRoutes, RequestValidation validation, Workers workers) {
    this.http = http;
    this.settings = McpSettings.fromConfig(http.system.settings().config());
    this.cors = CorsSettings.fromConfig(http.system.settings().config(), http.settings.environment());
    // The SDK's own Jackson mapper, not Pekko's: Pekko's reads untyped JSON (a notification's
    // params, a tool's nested arguments) into Scala collections, which the SDK does not expect.
    McpJsonMapper mapper = McpJsonDefaults.getMapper();
    this.transport = new McpTransport(mapper, settings, http.settings.keepaliveInterval());
    McpTools tools = new McpTools(http, taskClient, taskRoutes, validation, workers, mapper, settings);
    this.server =
        settings.enabled()
            ? McpServer.async(transport)
                .serverInfo("mcp-stack", version())
                .instructions(
                    "Runs chat and embeddings models of this MCP Stack cluster: list_models tells which;"
                        + " ask_model and embed_texts wait for the answer; submit_task and get_task run"
                        + " work in the background.")
                .capabilities(McpSchema.ServerCapabilities.builder().tools(false).build())
                .jsonMapper(mapper)
                .jsonSchemaValidator(new DefaultJsonSchemaValidator())
                .tools(tools.all())
                .build()
            : null;
    if (settings.enabled()) {
      Duration sweep = settings.sessionIdleTimeout().dividedBy(4);
      Duration every = sweep.compareTo(Duration.ofMinutes(1)) > 0 ? Duration.ofMinutes(1) : sweep;
      http.system.scheduler().scheduleAtFixedRate(every, every, transport::expireIdle, http.system.executionContext());
      http.system.getWhenTerminated().thenRun(() -> server.closeGracefully().subscribe(x -> {}, e -> {}));
    }
  }

  private static String version() {
    String v = McpRoutes.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }

  int sessionCount() {
    return transport.sessionCount();
  }

  Route route(String requestId) {
    if (!settings.enabled()) {
      return reject();
    }
    return path(
        PATH,
        () ->
            originAllowed(
                () ->
                    http.authenticated(
                        caller ->
                            optionalHeaderValueByName(
                                McpTransport.SESSION_HEADER,
                                session ->
                                    concat(
                                        post(
                                            () ->
                                                http.jsonBody(
                                                    body ->
                                                        completeWithFuture(
                                                            transport.post(
                                                                caller, requestId, session, http.errors.text(body))))),
                                        delete(() -> completeWithFuture(transport.delete(caller, session))),
                                        get(
                                            () ->
                                                complete(
                                                    http.errors.render(
                                                        ErrorCode.METHOD_NOT_ALLOWED,
                                                        "This MCP server sends nothing outside a request: it has no GET stream.",
                                                        null,
                                                        requestId,
                                                        java.util.List.of(
                                                            org.apache.pekko.http.javadsl.model.headers.RawHeader.create(
                                                                "Allow", "POST, DELETE"))))))))));
  }

  /** 403 for a browser page of an origin that CORS does not allow; requests without Origin pass. */
  private Route originAllowed(java.util.function.Supplier<Route> inner) {
    return optionalHeaderValueByName(
        "Origin",
        origin -> {
          if (origin.isPresent() && !cors.allows(origin.get())) {
            throw ApiError.of(ErrorCode.PERMISSION_DENIED, "Origin '" + origin.get() + "' may not use the MCP endpoint.");
          }
          return inner.get();
        });
  }
}
