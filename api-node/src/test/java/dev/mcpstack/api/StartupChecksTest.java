package dev.mcpstack.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What the api role refuses to start with: production's requirements and unusable settings. */
class StartupChecksTest {
  private static final String TOKEN = "0123456789abcdef0123456789abcdef";

  private static List<String> problems(String settings) {
    Config config = ConfigFactory.parseString(settings).withFallback(ConfigFactory.load()).resolve();
    return ApiNode.startupProblems(config);
  }

  @Test
  void developmentStartsOnItsDefaults() {
    assertEquals(List.of(), problems("mcp.api.environment = development"));
  }

  @Test
  void productionStartsWithKeysAStrongAdminTokenAndExactOrigins() {
    assertEquals(
        List.of(),
        problems(
            "mcp.api { environment = production, admin-token = \"" + TOKEN + "\","
                + " cors.origins = \"https://app.example.com\" }"));
  }

  @Test
  void productionNamesEveryMissingRequirementAtOnce() {
    List<String> problems =
        problems("mcp.api { environment = production, admin-token = short, keys.required = off, cors.origins = \"*\" }");
    assertEquals(3, problems.size(), problems.toString());
    assertTrue(problems.get(0).contains("API_KEYS_REQUIRED=off"), problems.get(0));
    assertTrue(problems.get(1).contains("ADMIN_TOKEN") && problems.get(1).contains("it has 5"), problems.get(1));
    assertTrue(problems.get(2).contains("CORS_ORIGINS"), problems.get(2));
  }

  @Test
  void anyEnvironmentOtherThanDevelopmentIsProduction() {
    List<String> problems = problems("mcp.api { environment = staging, cors.origins = \"https://a.example\" }");
    assertEquals(1, problems.size(), problems.toString());
    assertTrue(problems.get(0).contains("ADMIN_TOKEN"), problems.get(0));
  }

  @Test
  void malformedDeclaredKeysStopTheNodeWithTheirReason() {
    List<String> problems = problems("mcp.api.keys.declared = \"acme:not-a-hash\"");
    assertEquals(1, problems.size(), problems.toString());
    assertTrue(problems.get(0).contains("not a SHA-256"), problems.get(0));
    assertTrue(
        problems("mcp.api.keys.declared = \"operator:" + "a".repeat(64) + "\"").get(0).contains("'operator'"),
        "reserved tenant names are refused in configuration too");
  }
}
