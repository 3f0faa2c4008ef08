package dev.mcpstack.worker.keys;

/**
 * A count over the last {@code slots × slotMillis} milliseconds (a minute of one-second slots by
 * default), kept as a ring of per-slot sums. Any window of {@code slots} whole slots holds at most
 * what was admitted into it; a window that starts mid-slot may see up to one slot's worth more
 * (docs/adr/0005). Time is passed in, never read: the limiter decides what "now" is.
 */
final class SlidingWindow {
  private final long slotMillis;
  private final long[] amounts;
  private final long[] epochs;

  SlidingWindow(int slots, long slotMillis) {
    this.slotMillis = slotMillis;
    this.amounts = new long[slots];
    this.epochs = new long[slots];
    java.util.Arrays.fill(epochs, Long.MIN_VALUE);
  }

  /** The sum of the slots still inside the window at {@code now}. */
  long sum(long now) {
    long current = now / slotMillis;
    long total = 0;
    for (int i = 0; i < amounts.length; i++) {
      if (live(epochs[i], current)) {
        total += amounts[i];
      }
    }
    return total;
  }

  /** Adds {@code amount} at {@code now}; answers the slot's epoch, to settle it later. */
  long add(long now, long amount) {
    long epoch = now / slotMillis;
    int i = index(epoch);
    if (epochs[i] != epoch) {
      epochs[i] = epoch;
      amounts[i] = 0;
    }
    amounts[i] += amount;
    return epoch;
  }

  /** Corrects the amount added in slot {@code epoch}, if that slot is still in the window. */
  void adjust(long now, long epoch, long delta) {
    int i = index(epoch);
    if (epochs[i] == epoch && live(epoch, now / slotMillis)) {
      amounts[i] = Math.max(0, amounts[i] + delta);
    }
  }

  /**
   * Milliseconds from {@code now} until {@code amount} more fits under {@code limit}: 0 if it
   * fits now, -1 if it never can ({@code amount > limit}).
   */
  long millisUntilFits(long now, long amount, long limit) {
    if (amount > limit) {
      return -1;
    }
    long excess = sum(now) + amount - limit;
    if (excess <= 0) {
      return 0;
    }
    long current = now / slotMillis;
    // slots leave the window oldest first
    for (long epoch = current - amounts.length + 1; epoch <= current; epoch++) {
      int i = index(epoch);
      if (epochs[i] == epoch) {
        excess -= amounts[i];
        if (excess <= 0) {
          return (epoch + amounts.length) * slotMillis - now;
        }
      }
    }
    return (current + amounts.length) * slotMillis - now;
  }

  /** Whether nothing is counted at {@code now}. */
  boolean isEmpty(long now) {
    return sum(now) == 0;
  }

  private boolean live(long epoch, long current) {
    return epoch != Long.MIN_VALUE && epoch > current - amounts.length && epoch <= current;
  }

  private int index(long epoch) {
    return (int) Math.floorMod(epoch, (long) amounts.length);
  }
}
