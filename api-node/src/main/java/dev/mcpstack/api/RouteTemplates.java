package dev.mcpstack.api;

import java.util.List;

/**
 * The route template of a request path ({@code /v1/tasks/{id}} for {@code /v1/tasks/task_abc}), so
 * that logs and metrics group requests by route, never by id: the metric's cardinality is the
 * number of templates. A path no template matches is {@link #UNMATCHED}. A new route adds its
 * template here ({@code RouteTemplatesTest} lists them). Matching walks the path string in place:
 * no allocation per request.
 */
final class RouteTemplates {
  static final String UNMATCHED = "unmatched";

  /** {@code {x}} matches one segment, {@code {x...}} the rest of the path (one segment or more). */
  static final List<String> TEMPLATES =
      List.of(
          "/health/live",
          "/health/ready",
          "/v1/chat/completions",
          "/v1/chat/completions/{id}",
          "/v1/embeddings",
          "/v1/models",
          "/v1/models/{id...}",
          "/v1/tasks",
          "/v1/tasks/{id}",
          "/v1/tasks/{id}/events",
          "/v1/usage",
          "/mcp",
          "/admin/cluster",
          "/admin/cluster/members/{address}/leave",
          "/admin/upstreams",
          "/admin/upstreams/{name}/reset",
          "/admin/keys",
          "/admin/keys/{id}",
          "/admin/keys/{id}/revoke",
          "/admin/keys/{id}/rotate",
          "/admin/keys/{id}/usage",
          "/admin/tasks",
          "/admin/tasks/{id}");

  private static final String[][] SEGMENTS =
      TEMPLATES.stream().map(t -> t.substring(1).split("/")).toArray(String[][]::new);

  private RouteTemplates() {}

  /** The template {@code path} matches (one trailing slash ignored), or {@link #UNMATCHED}. */
  static String of(String path) {
    return name(index(path));
  }

  /** The index in {@link #TEMPLATES} of the template {@code path} matches, or -1. */
  static int index(String path) {
    int end = path.length();
    if (end > 1 && path.charAt(end - 1) == '/') {
      end--;
    }
    for (int t = 0; t < SEGMENTS.length; t++) {
      if (matches(SEGMENTS[t], path, end)) {
        return t;
      }
    }
    return -1;
  }

  /** The template of {@link #index}, or {@link #UNMATCHED} for -1. */
  static String name(int index) {
    return index < 0 ? UNMATCHED : TEMPLATES.get(index);
  }

  private static boolean matches(String[] template, String path, int end) {
    int pos = 0;
    for (String segment : template) {
      if (pos >= end || path.charAt(pos) != '/') {
        return false;
      }
      pos++;
      int next = path.indexOf('/', pos);
      if (next < 0 || next > end) {
        next = end;
      }
      if (segment.startsWith("{")) {
        if (next == pos) {
          return false;
        }
        if (segment.endsWith("...}")) {
          return true;
        }
      } else if (next - pos != segment.length() || !path.regionMatches(pos, segment, 0, segment.length())) {
        return false;
      }
      pos = next;
    }
    return pos == end;
  }
}
