package dev.mcpstack.shared;

/**
 * Why a task (or one attempt of it) failed. {@code upstreamStatus} is the runner's HTTP status when
 * there was one, 0 otherwise.
 */
public record TaskError(ErrorCode code, String message, int upstreamStatus)
    implements CborSerializable {
  public static TaskError of(ErrorCode code, String message) {
    return new TaskError(code, message, 0);
  }

  /**
   * The answer for a task id that is not there, or not the caller's: one wording for both, so a
   * caller cannot tell another owner's task from no task.
   */
  public static TaskError unknownTask(String id) {
    return of(ErrorCode.NOT_FOUND, "no task with id '" + id + "'");
  }
}
