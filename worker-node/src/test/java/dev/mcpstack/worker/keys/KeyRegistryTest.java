package dev.mcpstack.worker.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.mcpstack.shared.ApiKey;
import dev.mcpstack.shared.ErrorCode;
import dev.mcpstack.shared.KeyLimits;
import dev.mcpstack.shared.KeyProtocol;
import dev.mcpstack.worker.testkit.MutableClock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The key registry's commands and its recovery, through the serializer (the test kit's default). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class KeyRegistryTest {
  private final ActorTestKit testKit = ActorTestKit.create(EventSourcedBehaviorTestKit.config());
  private EventSourcedBehaviorTestKit<KeyProtocol.Command, KeyRegistry.Event, KeyRegistry.State> kit;
  private final MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));

  @BeforeEach
  void setUp() {
    kit =
        EventSourcedBehaviorTestKit.create(
            testKit.system(), KeyRegistry.create(clock, Duration.ofMillis(100), Duration.ofSeconds(1)));
    kit.clear();
  }

  @AfterAll
  void tearDown() {
    testKit.shutdownTestKit();
  }

  private static ApiKey key(String id, String tenant) {
    return new ApiKey(id, tenant, "ci", id.repeat(6).substring(0, 64), new KeyLimits(60, 0, 0, 0), List.of("m"), null, null, null, 0, null);
  }

  private KeyProtocol.Reply run(java.util.function.Function<org.apache.pekko.actor.typed.ActorRef<KeyProtocol.Reply>, KeyProtocol.Command> command) {
    return kit.<KeyProtocol.Reply>runCommand(command::apply).reply();
  }

  @Test
  void createsUpdatesRevokesAndRotatesWithAVersionPerChange() {
    ApiKey created = assertInstanceOf(KeyProtocol.One.class, run(r -> new KeyProtocol.Create(key("aaaaaaaaaaaa", "acme"), r))).key();
    assertEquals(1, created.version());
    assertEquals(clock.instant(), created.createdAt());
    assertEquals(ErrorCode.CONFLICT, assertInstanceOf(KeyProtocol.Rejected.class, run(r -> new KeyProtocol.Create(key("aaaaaaaaaaaa", "other"), r))).error().code());

    ApiKey updated =
        assertInstanceOf(KeyProtocol.One.class, run(r -> new KeyProtocol.Update("aaaaaaaaaaaa", null, new KeyLimits(5, 100, 1, 1), null, null, r))).key();
    assertEquals(new KeyLimits(5, 100, 1, 1), updated.limits());
    assertEquals(List.of("m"), updated.models());
    assertEquals(2, updated.version());

    ApiKey rotated = assertInstanceOf(KeyProtocol.One.class, run(r -> new KeyProtocol.Rotate("aaaaaaaaaaaa", "bbbbbbbbbbbb", "f".repeat(64), r))).key();
    assertEquals("acme", rotated.tenant());
    assertEquals(new KeyLimits(5, 100, 1, 1), rotated.limits());
    assertFalse(rotated.revoked());
    assertEquals(4, rotated.version());
    ApiKey old = assertInstanceOf(KeyProtocol.One.class, run(r -> new KeyProtocol.Get("aaaaaaaaaaaa", r))).key();
    assertTrue(old.revoked());
    assertEquals(ErrorCode.CONFLICT, assertInstanceOf(KeyProtocol.Rejected.class, run(r -> new KeyProtocol.Rotate("aaaaaaaaaaaa", "cccccccccccc", "e".repeat(64), r))).error().code());

    ApiKey revoked = assertInstanceOf(KeyProtocol.One.class, run(r -> new KeyProtocol.Revoke("bbbbbbbbbbbb", r))).key();
    assertNotNull(revoked.revokedAt());
    ApiKey again = assertInstanceOf(KeyProtocol.One.class, run(r -> new KeyProtocol.Revoke("bbbbbbbbbbbb", r))).key();
    assertEquals(revoked.version(), again.version()); // revoking twice changes nothing
    assertEquals(ErrorCode.NOT_FOUND, assertInstanceOf(KeyProtocol.Rejected.class, run(r -> new KeyProtocol.Revoke("dddddddddddd", r))).error().code());
  }

  @Test
  void answersOnlyWhatChangedSinceAVersionAndSurvivesARestart() {
    run(r -> new KeyProtocol.Create(key("aaaaaaaaaaaa", "acme"), r));
    run(r -> new KeyProtocol.Create(key("bbbbbbbbbbbb", "beta"), r));
    run(r -> new KeyProtocol.Revoke("aaaaaaaaaaaa", r));
    KeyProtocol.Many since2 = assertInstanceOf(KeyProtocol.Many.class, run(r -> new KeyProtocol.ChangesSince(2, r)));
    assertEquals(3, since2.version());
    assertEquals(List.of("aaaaaaaaaaaa"), since2.keys().stream().map(ApiKey::id).toList());
    assertTrue(since2.keys().get(0).revoked());

    kit.restart();
    KeyProtocol.Many all = assertInstanceOf(KeyProtocol.Many.class, run(r -> new KeyProtocol.ChangesSince(0, r)));
    assertEquals(3, all.version());
    assertEquals(List.of("bbbbbbbbbbbb", "aaaaaaaaaaaa"), all.keys().stream().map(ApiKey::id).toList());
  }
}
