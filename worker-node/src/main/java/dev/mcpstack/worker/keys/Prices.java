package dev.mcpstack.worker.keys;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValue;
import dev.mcpstack.shared.Usage;
import java.util.HashMap;
import java.util.Map;

/**
 * The price table ({@code mcp.worker.prices}): per model, the price of a million prompt and of a
 * million completion tokens, in the operator's currency (USD by convention). A model without a
 * price, and the {@code default} entry when it is absent, cost nothing.
 */
public final class Prices {
  private record Price(double promptPerMillion, double completionPerMillion) {}

  private final Map<String, Price> byModel;
  private final Price fallback;

  private Prices(Map<String, Price> byModel, Price fallback) {
    this.byModel = Map.copyOf(byModel);
    this.fallback = fallback;
  }

  public static Prices fromConfig(Config root) {
    Config table = root.getConfig("mcp.worker.prices");
    Map<String, Price> prices = new HashMap<>();
    for (Map.Entry<String, ConfigValue> e : table.root().entrySet()) {
      Config c = table.getConfig("\"" + e.getKey() + "\"");
      double prompt = c.getDouble("prompt");
      double completion = c.getDouble("completion");
      if (prompt < 0 || completion < 0) {
        throw new IllegalArgumentException("mcp.worker.prices." + e.getKey() + ": prices must not be negative");
      }
      prices.put(e.getKey(), new Price(prompt, completion));
    }
    Price fallback = prices.getOrDefault("default", new Price(0, 0));
    return new Prices(prices, fallback);
  }

  /** The cost of {@code usage} of {@code model}, in millionths of the currency unit. */
  public long costMicros(String model, Usage usage) {
    Price p = byModel.getOrDefault(model, fallback);
    // price per million tokens × tokens / 1e6 = currency; × 1e6 = micros: the two cancel out
    return Math.round(p.promptPerMillion() * usage.promptTokens() + p.completionPerMillion() * usage.completionTokens());
  }
}
