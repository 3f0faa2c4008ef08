package dev.mcpstack.shared;

import org.apache.pekko.cluster.ddata.Key;
import org.apache.pekko.cluster.ddata.ORSet;
import org.apache.pekko.cluster.ddata.ORSetKey;

/**
 * Which worker nodes see the task journal's database unreachable, shared through Distributed Data
 * so that every api-node knows it without asking: a worker adds its cluster address when its
 * journal stops answering and removes it when it answers again (docs/adr/0010). An api-node
 * refuses work that needs the journal at once (503) while an Up member is in the set.
 */
public interface JournalStatus {
  Key<ORSet<String>> UNREACHABLE = ORSetKey.create("mcp-journal-unreachable");

  /**
   * Whether an operator paused the intake of journaled work (docs/adr/0011), for a backup or a
   * restore: empty when not paused, else the epoch millisecond of the pause. While it is not
   * empty every api-node refuses new journaled work as it does during an outage; running tasks go
   * on. Kept in memory by Distributed Data: a cluster started anew (after a restore) is not paused.
   */
  Key<ORSet<String>> INTAKE_PAUSED = ORSetKey.create("mcp-intake-paused");
}
