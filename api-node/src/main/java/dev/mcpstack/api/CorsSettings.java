package dev.mcpstack.api;

import com.typesafe.config.Config;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The {@code mcp.api.cors} block: which browser origins may call the API and what they may send
 * and read. Built once at start by {@link #fromConfig}, which refuses what production must not run
 * with (no origins, {@code *}) and any entry that is not an origin.
 *
 * @param mode which origins are allowed
 * @param origins the exact allowed origins in browser form ({@code scheme://host[:port]}, lower
 *     case, default port left out); used in {@link Mode#LIST} only
 * @param allowedMethods methods a preflight may ask for (upper case)
 * @param allowedHeaders request headers a preflight may ask for (lower case); an entry ending in
 *     {@code *} allows every header starting with what precedes it
 * @param exposedHeaders response headers a page may read beyond the CORS-safelisted ones
 * @param maxAge how long a browser may cache a preflight answer
 */
record CorsSettings(
    Mode mode,
    Set<String> origins,
    List<String> allowedMethods,
    List<String> allowedHeaders,
    List<String> exposedHeaders,
    Duration maxAge) {

  enum Mode {
    /** Exactly the configured origins. */
    LIST,
    /** Development default: http(s) on localhost, 127.0.0.1 or [::1], any port. */
    LOCALHOST,
    /** Development only, {@code CORS_ORIGINS=*}: any origin, answered with {@code *}. */
    ANY
  }

  /** Methods a browser never needs allowed explicitly (Fetch standard's CORS-safelisted methods). */
  private static final Set<String> SAFELISTED_METHODS = Set.of("GET", "HEAD", "POST");

  private static final Set<String> LOCAL_HOSTS = Set.of("localhost", "127.0.0.1", "[::1]");
  private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

  CorsSettings {
    origins = Set.copyOf(origins);
    allowedMethods = allowedMethods.stream().map(m -> m.toUpperCase(Locale.ROOT)).toList();
    allowedHeaders = allowedHeaders.stream().map(h -> h.toLowerCase(Locale.ROOT)).toList();
    exposedHeaders = List.copyOf(exposedHeaders);
    for (String name : allowedMethods) {
      requireToken(name, "allowed-methods");
    }
    for (String name : allowedHeaders) {
      requireToken(name, "allowed-headers");
    }
    for (String name : exposedHeaders) {
      requireToken(name, "exposed-headers");
    }
    if (maxAge.isNegative()) {
      throw new IllegalArgumentException("mcp.api.cors.max-age must not be negative, got " + maxAge);
    }
  }

  /**
   * Reads {@code mcp.api.cors} of {@code root} for the node's {@code environment}
   * ({@code mcp.api.environment}).
   *
   * @throws IllegalArgumentException with a one-line reason when production has no origins or
   *     {@code *}, when {@code *} is not alone, or when an entry is not an origin
   */
  static CorsSettings fromConfig(Config root, String environment) {
    Config c = root.getConfig("mcp.api.cors");
    boolean development = "development".equalsIgnoreCase(environment);
    List<String> entries =
        Arrays.stream(c.getString("origins").split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    Mode mode;
    Set<String> origins = new LinkedHashSet<>();
    if (entries.isEmpty()) {
      if (!development) {
        throw new IllegalArgumentException(
            "CORS_ORIGINS (mcp.api.cors.origins) is empty: outside development it must list the exact"
                + " browser origins allowed to call the API, e.g. https://app.example.com");
      }
      mode = Mode.LOCALHOST;
    } else if (entries.contains("*")) {
      if (!development) {
        throw new IllegalArgumentException(
            "CORS_ORIGINS (mcp.api.cors.origins) is '*': any origin is allowed only in development;"
                + " list the exact origins, e.g. https://app.example.com");
      }
      if (entries.size() > 1) {
        throw new IllegalArgumentException(
            "CORS_ORIGINS (mcp.api.cors.origins) mixes '*' with origins: use '*' alone or list origins only");
      }
      mode = Mode.ANY;
    } else {
      for (String entry : entries) {
        origins.add(
            normalize(entry)
                .orElseThrow(
                    () ->
                        new IllegalArgumentException(
                            "CORS_ORIGINS (mcp.api.cors.origins) entry '" + entry + "' is not an origin:"
                                + " expected http(s)://host[:port] with no path, not even a trailing '/'")));
      }
      mode = Mode.LIST;
    }
    return new CorsSettings(
        mode,
        origins,
        c.getStringList("allowed-methods"),
        c.getStringList("allowed-headers"),
        c.getStringList("exposed-headers"),
        c.getDuration("max-age"));
  }

  /** Whether a browser page served from {@code origin} (an {@code Origin} header) may call the API. */
  boolean allows(String origin) {
    if (mode == Mode.ANY) {
      return true;
    }
    Optional<String> normalized = normalize(origin);
    if (normalized.isEmpty()) {
      return false;
    }
    if (mode == Mode.LIST) {
      return origins.contains(normalized.get());
    }
    String host = URI.create(normalized.get()).getHost();
    return LOCAL_HOSTS.contains(host);
  }

  /** Whether a preflight may ask for {@code method} ({@code Access-Control-Request-Method}). */
  boolean allowsMethod(String method) {
    return SAFELISTED_METHODS.contains(method) || allowedMethods.contains(method);
  }

  /** Whether a preflight may ask for request header {@code name}. */
  boolean allowsHeader(String name) {
    String lower = name.toLowerCase(Locale.ROOT);
    for (String allowed : allowedHeaders) {
      if (allowed.endsWith("*") ? lower.startsWith(allowed.substring(0, allowed.length() - 1)) : lower.equals(allowed)) {
        return true;
      }
    }
    return false;
  }

  /**
   * {@code value} in the form browsers send in {@code Origin}: http or https, lower-case host,
   * the port only when it is not the scheme's default, nothing after it. Empty when {@code value}
   * is no such origin ({@code null}, a path, user info, a query, another scheme, ...).
   */
  static Optional<String> normalize(String value) {
    if (value == null || value.isEmpty() || !value.strip().equals(value)) {
      return Optional.empty();
    }
    URI uri;
    try {
      uri = new URI(value);
    } catch (URISyntaxException e) {
      return Optional.empty();
    }
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    int defaultPort =
        switch (scheme) {
          case "http" -> 80;
          case "https" -> 443;
          default -> -1;
        };
    if (defaultPort < 0
        || uri.getHost() == null
        || uri.getRawUserInfo() != null
        || (uri.getRawPath() != null && !uri.getRawPath().isEmpty())
        || uri.getRawQuery() != null
        || uri.getRawFragment() != null) {
      return Optional.empty();
    }
    int port = uri.getPort();
    if (port == 0 || port > 65535) {
      return Optional.empty();
    }
    String host = uri.getHost().toLowerCase(Locale.ROOT);
    return Optional.of(scheme + "://" + host + (port < 0 || port == defaultPort ? "" : ":" + port));
  }

  private static void requireToken(String name, String key) {
    if (!TOKEN.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "mcp.api.cors." + key + " entry '" + name + "' is not an HTTP header or method name");
    }
  }
}
