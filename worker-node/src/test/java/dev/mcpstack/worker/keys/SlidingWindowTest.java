package dev.mcpstack.worker.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SlidingWindowTest {
  private final SlidingWindow window = new SlidingWindow(60, 1000);

  @Test
  void countsWhatIsInsideTheLastMinute() {
    window.add(0, 5);
    window.add(30_500, 7);
    assertEquals(12, window.sum(59_999));
    assertEquals(7, window.sum(60_000)); // the first second has left
    assertEquals(0, window.sum(90_999));
    assertTrue(window.isEmpty(91_000));
  }

  @Test
  void saysWhenAnAmountFitsAgain() {
    window.add(1_200, 3);
    window.add(10_000, 2);
    assertEquals(0, window.millisUntilFits(20_000, 5, 10));
    // 5 used, limit 5: one more fits when the slot of second 1 leaves, at 61 s
    assertEquals(41_000, window.millisUntilFits(20_000, 1, 5));
    // 4 more need both slots gone: second 10 leaves at 70 s
    assertEquals(50_000, window.millisUntilFits(20_000, 4, 5));
    assertEquals(-1, window.millisUntilFits(20_000, 6, 5));
  }

  @Test
  void settlesAnEarlierSlotWhileItIsInTheWindow() {
    long epoch = window.add(5_000, 100);
    window.add(6_000, 10);
    window.adjust(7_000, epoch, -70);
    assertEquals(40, window.sum(7_000));
    window.adjust(7_000, epoch, -1_000); // never below zero
    assertEquals(10, window.sum(7_000));
    long old = window.add(8_000, 50);
    window.adjust(70_000, old, 500); // that slot has left the window: nothing to settle
    assertEquals(0, window.sum(70_000));
  }

  @Test
  void aSlotReusedAfterAMinuteStartsFromZero() {
    window.add(1_000, 9);
    window.add(61_000, 1);
    assertEquals(1, window.sum(61_000));
  }
}
