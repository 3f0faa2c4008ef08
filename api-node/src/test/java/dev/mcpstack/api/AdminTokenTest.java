package dev.mcpstack.api;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class AdminTokenTest {
  @Test
  void emptyTokenTurnsTheAdminApiOff() {
    AdminToken off = AdminToken.of("");
    assertFalse(off.enabled());
    assertFalse(off.matches(Optional.of("")));
    assertFalse(off.matches(Optional.empty()));
  }

  @Test
  void onlyTheExactTokenMatches() {
    AdminToken token = AdminToken.of("s3cret");
    assertTrue(token.enabled());
    assertTrue(token.matches(Optional.of("s3cret")));
    assertFalse(token.matches(Optional.empty()));
    assertFalse(token.matches(Optional.of("")));
    assertFalse(token.matches(Optional.of("s3cre")));
    assertFalse(token.matches(Optional.of("s3cret ")));
    assertFalse(token.matches(Optional.of("S3CRET")));
  }

  @Test
  void theTokenNeverShowsInSettings() {
    AdminToken token = AdminToken.of("s3cret");
    assertFalse(token.toString().contains("s3cret"));
  }
}
