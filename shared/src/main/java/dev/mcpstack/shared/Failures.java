package dev.mcpstack.shared;

import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/** Helpers for failures that arrive through futures. */
public final class Failures {
  private Failures() {}

  /** The real cause behind the {@link CompletionException}/{@link ExecutionException} wrappers. */
  public static Throwable unwrap(Throwable e) {
    Throwable t = e;
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }
}
