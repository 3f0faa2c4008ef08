package dev.mcpstack.shared;

import java.time.LocalDate;

/**
 * How much one key may spend per {@link Period} (UTC days or calendar months), in millionths of
 * the price table's currency (USD by convention), and the share of it at which an alert metric
 * fires ({@code alertAt}, 0..1; 0 = no alert).
 */
public record Budget(long amountMicros, Period period, double alertAt) implements CborSerializable {
  public enum Period {
    DAY,
    MONTH
  }

  public Budget {
    if (amountMicros <= 0) {
      throw new IllegalArgumentException("a budget must be positive");
    }
    if (period == null) {
      period = Period.MONTH;
    }
    if (alertAt < 0 || alertAt > 1) {
      throw new IllegalArgumentException("alertAt must be between 0 and 1");
    }
  }

  /** The first day of the period that holds {@code day}. */
  public LocalDate periodStart(LocalDate day) {
    return period == Period.DAY ? day : day.withDayOfMonth(1);
  }
}
