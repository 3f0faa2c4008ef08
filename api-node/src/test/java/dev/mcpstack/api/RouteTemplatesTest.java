package dev.mcpstack.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class RouteTemplatesTest {
  @Test
  void pathsMapToTheirTemplatesAndIdsNeverLeakIntoTheRoute() {
    assertEquals("/v1/chat/completions", RouteTemplates.of("/v1/chat/completions"));
    assertEquals("/v1/chat/completions", RouteTemplates.of("/v1/chat/completions/"));
    assertEquals("/v1/chat/completions/{id}", RouteTemplates.of("/v1/chat/completions/chatcmpl-123"));
    assertEquals("/v1/tasks", RouteTemplates.of("/v1/tasks"));
    assertEquals("/v1/tasks/{id}", RouteTemplates.of("/v1/tasks/task_abc"));
    assertEquals("/v1/tasks/{id}/events", RouteTemplates.of("/v1/tasks/task_abc/events"));
    assertEquals("/v1/models/{id...}", RouteTemplates.of("/v1/models/ai/smollm2"));
    assertEquals("/v1/models", RouteTemplates.of("/v1/models"));
    assertEquals("/admin/keys/{id}/usage", RouteTemplates.of("/admin/keys/k123/usage"));
    assertEquals("/admin/cluster/members/{address}/leave", RouteTemplates.of("/admin/cluster/members/pekko:x@h:1/leave"));
    assertEquals("/health/ready", RouteTemplates.of("/health/ready"));
    assertEquals(RouteTemplates.UNMATCHED, RouteTemplates.of("/v1/tasks/a/b/c"));
    assertEquals(RouteTemplates.UNMATCHED, RouteTemplates.of("/v1/tasksx"));
    assertEquals(RouteTemplates.UNMATCHED, RouteTemplates.of("/v1/tasks//events"));
    assertEquals(RouteTemplates.UNMATCHED, RouteTemplates.of("/"));
    assertEquals(RouteTemplates.UNMATCHED, RouteTemplates.of(""));
  }
}
