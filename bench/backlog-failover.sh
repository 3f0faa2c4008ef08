#!/usr/bin/env bash
# The durable backlog under a crash: the local cluster (deploy/local/cluster.sh: api-node, three
# workers, simulator, shared H2 journal, each its own JVM), N async tasks at once against a slow
# runner (bench/backlog.sh), and kill -9 of worker-1 (the oldest worker: it also hosts the shard
# coordinator) KILL_AFTER seconds into the burst. Every task must succeed, none twice (each keeps
# its own Idempotency-Key; the attempts histogram shows the resumed ones).
#
#   bench/backlog-failover.sh [N] [latency-ms] [kill-after-s]     # defaults 10000, 300, 20
#
# Ports (loopback only): API_PORT 18090, SIM_PORT 22490, H2_PORT 29190, ARTERY_BASE 26590,
# MANAGEMENT_BASE 27690, METRICS_BASE 28190; state in CLUSTER_DIR (default ./data/backlog-failover).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
latency=${2:-300}
kill_after=${3:-20}
export CLUSTER_DIR=${CLUSTER_DIR:-$root/data/backlog-failover}
export API_PORT=${API_PORT:-18090} SIM_PORT=${SIM_PORT:-22490} H2_PORT=${H2_PORT:-29190}
export ARTERY_BASE=${ARTERY_BASE:-26590} MANAGEMENT_BASE=${MANAGEMENT_BASE:-27690} METRICS_BASE=${METRICS_BASE:-28190}
export LOG_LEVEL=${LOG_LEVEL:-WARN}
cluster="$root/deploy/local/cluster.sh"
"$cluster" stop >/dev/null 2>&1 || true
"$cluster" start
trap '"$cluster" stop >/dev/null 2>&1 || true' EXIT
(
  sleep "$kill_after"
  pid=$(cat "$CLUSTER_DIR/pids/worker-1.pid")
  kill -9 "$pid" && echo "kill -9 worker-1 (pid $pid) ${kill_after}s into the burst"
) &
killer=$!
STACK="http://127.0.0.1:$API_PORT" SIM="http://127.0.0.1:$SIM_PORT" "$root/bench/backlog.sh" "$n" "$latency"
wait "$killer" || true
