package dev.mcpstack.sim;

import static org.junit.jupiter.api.Assertions.*;

import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class SettingsAndFaultsTest {

  @Test
  void referenceConfigDefaults() {
    SimulatorSettings s = SimulatorSettings.fromConfig(ConfigFactory.defaultReference());
    assertEquals(List.of("sim-small", "sim-large"), s.models());
    assertEquals(8, s.embeddingDimensions());
    assertEquals(Faults.none(), s.defaults());
    assertEquals(Duration.ofSeconds(2), ModelRunnerSimulator.stopDeadline(ConfigFactory.empty()));
  }

  @Test
  void configOverrides() {
    SimulatorSettings s = SimulatorSettings.fromConfig(ConfigFactory.parseString("""
        mcp.simulator {
          host = "0.0.0.0", port = 0, models = ["a"], embedding-dimensions = 3
          faults { latency = 50ms, retry-after = 2s, fail-status = 503, fail-first = 1, drop-after-chunks = 4 }
        }""").withFallback(ConfigFactory.defaultReference()));
    assertEquals("0.0.0.0", s.host());
    assertEquals(0, s.port());
    assertEquals(Faults.none().withLatency(Duration.ofMillis(50)).withRetryAfter(Duration.ofSeconds(2))
        .withFailStatus(503).withFailFirst(1).withDropAfterChunks(4), s.defaults());
  }

  @Test
  void failureSchedule() {
    Faults first = Faults.none().withFailStatus(503).withFailFirst(2);
    assertTrue(first.failsRequest(1));
    assertTrue(first.failsRequest(2));
    assertFalse(first.failsRequest(3));
    Faults every = Faults.none().withFailStatus(503).withFailEvery(3);
    assertFalse(every.failsRequest(1));
    assertTrue(every.failsRequest(3));
    assertTrue(every.failsRequest(6));
    Faults both = every.withFailFirst(1);
    assertTrue(both.failsRequest(1));
    assertFalse(both.failsRequest(2));
    assertTrue(both.failsRequest(3));
    assertTrue(Faults.none().withFailStatus(500).failsRequest(7));
    assertFalse(Faults.none().withFailFirst(5).failsRequest(1));
  }

  @Test
  void aFailRatioFailsThatShareWithoutAPattern() {
    Faults flaky = Faults.none().withFailStatus(503).withFailRatio(0.3);
    int failed = 0;
    int longestRun = 0;
    int run = 0;
    for (long n = 1; n <= 10_000; n++) {
      boolean fails = flaky.failsRequest(n);
      assertEquals(fails, flaky.failsRequest(n), "the same request numbers fail every time");
      failed += fails ? 1 : 0;
      run = fails ? run + 1 : 0;
      longestRun = Math.max(longestRun, run);
    }
    assertEquals(3000, failed, 150);
    assertTrue(longestRun >= 3, "failures come in runs too, as from a flaky runner: " + longestRun);
    assertFalse(Faults.none().withFailRatio(0.5).failsRequest(1), "no status, no failures");
    assertThrows(IllegalArgumentException.class, () -> Faults.none().withFailRatio(1.5));
  }

  @Test
  void invalidKnobsAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> Faults.none().withFailStatus(200));
    assertThrows(IllegalArgumentException.class, () -> Faults.none().withLatency(Duration.ofMillis(-1)));
    assertThrows(IllegalArgumentException.class, () -> Faults.none().withTokensPerSecond(-1));
    assertThrows(IllegalArgumentException.class, () -> Faults.none().withDropAfterChunks(-2));
  }

  @Test
  void embeddingsAreUnitLengthAndStable() {
    float[] a = SimulatorRoutes.embedding("hello", 16);
    assertArrayEquals(a, SimulatorRoutes.embedding("hello", 16));
    double norm = 0;
    for (float x : a) norm += x * x;
    assertEquals(1.0, Math.sqrt(norm), 1e-5);
  }
}
