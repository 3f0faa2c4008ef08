package dev.mcpstack.shared;

import com.fasterxml.jackson.annotation.JsonValue;

/** Where a task is in its life cycle. */
public enum TaskStatus {
  QUEUED("queued"),
  RUNNING("running"),
  RETRY_SCHEDULED("retry_scheduled"),
  SUCCEEDED("succeeded"),
  FAILED("failed"),
  CANCELLED("cancelled");

  private final String wireName;

  TaskStatus(String wireName) {
    this.wireName = wireName;
  }

  @JsonValue
  public String wireName() {
    return wireName;
  }

  public boolean isTerminal() {
    return this == SUCCEEDED || this == FAILED || this == CANCELLED;
  }
}
