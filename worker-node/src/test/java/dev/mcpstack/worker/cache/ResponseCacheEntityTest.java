package dev.mcpstack.worker.cache;

import static org.junit.jupiter.api.Assertions.*;

import dev.mcpstack.shared.CacheProtocol;
import dev.mcpstack.shared.CacheSettings;
import dev.mcpstack.shared.Usage;
import dev.mcpstack.worker.testkit.MutableClock;
import java.time.Duration;
import java.time.Instant;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** One cache partition on its own, with a clock the test moves: TTL, both bounds, tenants. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ResponseCacheEntityTest {
  private static final ActorTestKit testKit = ActorTestKit.create();
  private static final Usage USAGE = new Usage(3, 5, 8);

  @AfterAll
  void stop() {
    testKit.shutdownTestKit();
  }

  private static CacheSettings settings(long maxBytes, int maxEntries) {
    return new CacheSettings(true, Duration.ofMinutes(5), maxBytes, maxEntries, 1024, 1, Duration.ofHours(1), Duration.ofSeconds(1));
  }

  private CacheProtocol.Found lookup(ActorRef<CacheProtocol.Command> cache, String key, String tenant) {
    TestProbe<CacheProtocol.Found> probe = testKit.createTestProbe();
    cache.tell(new CacheProtocol.Lookup(key, tenant, probe.ref()));
    return probe.receiveMessage();
  }

  @Test
  void anAnswerIsFoundByItsTenantUntilItExpires() {
    MutableClock clock = new MutableClock(Instant.parse("2026-11-28T10:00:00Z"));
    ActorRef<CacheProtocol.Command> cache = testKit.spawn(ResponseCacheEntity.create(settings(0, 0), clock));
    cache.tell(new CacheProtocol.Store("k", "alpha", "{\"a\":1}", USAGE));
    assertEquals(new CacheProtocol.Found("{\"a\":1}", USAGE), lookup(cache, "k", "alpha"));
    assertFalse(lookup(cache, "k", "beta").hit(), "another tenant's entry is a miss");
    clock.advance(Duration.ofMinutes(5).minusSeconds(1));
    assertTrue(lookup(cache, "k", "alpha").hit());
    clock.advance(Duration.ofSeconds(1));
    assertFalse(lookup(cache, "k", "alpha").hit(), "expired at its TTL");
  }

  @Test
  void theLeastRecentlyUsedGoesFirstAtTheEntryBound() {
    MutableClock clock = new MutableClock(Instant.parse("2026-11-28T10:00:00Z"));
    ActorRef<CacheProtocol.Command> cache = testKit.spawn(ResponseCacheEntity.create(settings(0, 2), clock));
    cache.tell(new CacheProtocol.Store("a", "t", "A", USAGE));
    cache.tell(new CacheProtocol.Store("b", "t", "B", USAGE));
    assertTrue(lookup(cache, "a", "t").hit()); // a is now more recent than b
    cache.tell(new CacheProtocol.Store("c", "t", "C", USAGE));
    assertTrue(lookup(cache, "a", "t").hit());
    assertFalse(lookup(cache, "b", "t").hit(), "b was used least recently");
    assertTrue(lookup(cache, "c", "t").hit());
  }

  @Test
  void theByteBoundEvictsAndTooLargeAnswersAreNotKept() {
    MutableClock clock = new MutableClock(Instant.parse("2026-11-28T10:00:00Z"));
    // every entry costs its body + key + 200: two 300-byte bodies do not fit in 1000 bytes
    ActorRef<CacheProtocol.Command> cache = testKit.spawn(ResponseCacheEntity.create(settings(1000, 0), clock));
    cache.tell(new CacheProtocol.Store("a", "t", "x".repeat(300), USAGE));
    cache.tell(new CacheProtocol.Store("b", "t", "y".repeat(300), USAGE));
    assertFalse(lookup(cache, "a", "t").hit());
    assertTrue(lookup(cache, "b", "t").hit());
    cache.tell(new CacheProtocol.Store("c", "t", "z".repeat(1025), USAGE));
    assertFalse(lookup(cache, "c", "t").hit(), "beyond max-entry-bytes");
    assertTrue(lookup(cache, "b", "t").hit(), "a refused answer evicts nothing");
  }

  @Test
  void partitionsAreChosenFromTheKey() {
    String key = "f".repeat(64);
    assertEquals(CacheProtocol.partitionOf(key, 32), CacheProtocol.partitionOf(key, 32));
    assertEquals("p0", CacheProtocol.partitionOf(key, 1));
    assertTrue(CacheProtocol.partitionOf("0123456789abcdef" + "0".repeat(48), 7).matches("p[0-6]"));
  }
}
