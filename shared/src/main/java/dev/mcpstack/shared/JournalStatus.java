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
}
