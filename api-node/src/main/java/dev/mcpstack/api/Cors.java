package dev.mcpstack.api;

import static org.apache.pekko.http.javadsl.server.Directives.*;

import dev.mcpstack.shared.ErrorCode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.Route;

/**
 * Cross-origin requests from browser pages, by {@link CorsSettings}:
 *
 * <ul>
 *   <li>A request without {@code Origin} is not touched (servers, SDKs, curl).
 *   <li>A preflight ({@code OPTIONS} with {@code Origin} and {@code Access-Control-Request-Method})
 *       is answered here, never by the routes: 204 with the allow headers when the origin, the
 *       method and every requested header are allowed, else 403 in OpenAI's error shape, naming
 *       what was refused and carrying no {@code Access-Control-Allow-Origin}.
 *   <li>Any other request from an allowed origin gets {@code Access-Control-Allow-Origin} and
 *       {@code Access-Control-Expose-Headers} on its response, errors included (404, 405, 5xx), so
 *       the page can read the error and the {@code X-Request-Id}.
 *   <li>Any other request from another origin is served without CORS headers: the browser keeps
 *       the response from the page. It is not refused, because a browser sends {@code Origin} on
 *       same-origin POSTs too, and a cross-origin page cannot send what the API acts on (a JSON
 *       body, an {@code Authorization} header) without a preflight it passed.
 * </ul>
 *
 * <p>{@code Access-Control-Allow-Credentials} is never sent: callers authenticate with a bearer
 * token in {@code Authorization}, which needs no credentials mode, and the API sets no cookies.
 * That also rules out credentials with {@code *}. {@code /admin} is not offered to browsers at
 * all: its preflights get 403 and its responses no CORS headers.
 */
final class Cors {
  private static final String VARY = "Vary";
  private static final String ALLOW_ORIGIN = "Access-Control-Allow-Origin";
  private static final String REQUEST_METHOD = "Access-Control-Request-Method";
  private static final String REQUEST_HEADERS = "Access-Control-Request-Headers";

  private final CorsSettings settings;
  private final ErrorResponses errors;
  private final HttpHeader exposeHeaders;

  Cors(CorsSettings settings, ErrorResponses errors) {
    this.settings = settings;
    this.errors = errors;
    this.exposeHeaders =
        RawHeader.create("Access-Control-Expose-Headers", String.join(", ", settings.exposedHeaders()));
  }

  /** From {@code mcp.api.cors}; throws {@link IllegalArgumentException} when production may not start. */
  static Cors of(HttpSupport http) {
    return new Cors(
        CorsSettings.fromConfig(http.system.settings().config(), http.settings.environment()), http.errors);
  }

  /** {@code inner} with CORS: preflights answered here, CORS headers on allowed origins' responses. */
  Route route(String requestId, Supplier<Route> inner) {
    return optionalHeaderValueByName(
        "Origin",
        origin -> {
          if (origin.isEmpty()) {
            return inner.get();
          }
          return extractRequest(
              request -> {
                boolean admin = request.getUri().path().startsWith("/admin");
                boolean allowed = !admin && settings.allows(origin.get());
                Optional<HttpHeader> method = request.getHeader(REQUEST_METHOD);
                if (request.method().equals(HttpMethods.OPTIONS) && method.isPresent()) {
                  return complete(preflight(request, origin.get(), method.get().value(), admin, allowed, requestId));
                }
                if (!allowed) {
                  return respondWithHeaders(vary(), inner);
                }
                List<HttpHeader> headers = new ArrayList<>(vary());
                headers.add(allowOrigin(origin.get()));
                if (!settings.exposedHeaders().isEmpty()) {
                  headers.add(exposeHeaders);
                }
                return respondWithHeaders(headers, inner);
              });
        });
  }

  private HttpResponse preflight(
      HttpRequest request, String origin, String method, boolean admin, boolean allowed, String requestId) {
    List<HttpHeader> vary = settings.mode() == CorsSettings.Mode.ANY
        ? List.of()
        : List.of(RawHeader.create(VARY, "Origin, " + REQUEST_METHOD + ", " + REQUEST_HEADERS));
    if (admin) {
      return refuse("The admin API cannot be called from a browser page (CORS).", requestId, vary);
    }
    if (!allowed) {
      return refuse(
          "Origin '" + abbreviate(origin) + "' is not allowed to call this API from a browser (CORS).",
          requestId,
          vary);
    }
    if (!settings.allowsMethod(method)) {
      return refuse(
          "Method '" + abbreviate(method) + "' is not allowed cross-origin; allowed: "
              + String.join(", ", settings.allowedMethods()) + ".",
          requestId,
          vary);
    }
    List<String> requested =
        request
            .getHeader(REQUEST_HEADERS)
            .map(h -> Arrays.stream(h.value().split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList())
            .orElse(List.of());
    for (String header : requested) {
      if (!settings.allowsHeader(header)) {
        return refuse(
            "Request header '" + abbreviate(header) + "' is not allowed cross-origin.", requestId, vary);
      }
    }
    List<HttpHeader> headers = new ArrayList<>(vary);
    headers.add(allowOrigin(origin));
    headers.add(RawHeader.create("Access-Control-Allow-Methods", String.join(", ", settings.allowedMethods())));
    if (!requested.isEmpty()) {
      // the requested names, each checked above: a prefix entry (x-stainless-*) cannot be listed as is
      headers.add(RawHeader.create("Access-Control-Allow-Headers", String.join(", ", requested)));
    }
    headers.add(RawHeader.create("Access-Control-Max-Age", Long.toString(settings.maxAge().toSeconds())));
    return HttpResponse.create().withStatus(StatusCodes.NO_CONTENT).addHeaders(headers);
  }

  private HttpResponse refuse(String message, String requestId, List<HttpHeader> headers) {
    return errors.render(ErrorCode.PERMISSION_DENIED, message, null, requestId, headers);
  }

  private HttpHeader allowOrigin(String origin) {
    return RawHeader.create(ALLOW_ORIGIN, settings.mode() == CorsSettings.Mode.ANY ? "*" : origin);
  }

  /** Whether the answer depends on Origin: always, except when any origin gets {@code *}. */
  private List<HttpHeader> vary() {
    return settings.mode() == CorsSettings.Mode.ANY ? List.of() : List.of(RawHeader.create(VARY, "Origin"));
  }

  private static String abbreviate(String s) {
    return s.length() > 100 ? s.substring(0, 100) + "…" : s;
  }
}
