#!/usr/bin/env bash
# A durable backlog: N async tasks submitted at once (POST /v1/tasks) against a slow runner, then
# polled (GET /v1/tasks/{id}) until every one is terminal. Prints counts by status, a histogram of
# attempts and the total time. Needs Node 20 (no packages).
#
#   java -jar standalone/target/mcp-stack.jar &      # stack on :8080, simulator on :12434
#   bench/backlog.sh [N] [runner-latency-ms]         # defaults: 10000 tasks, 3000 ms
#   KEY=sk-mcp-... STACK=http://host:8080 SIM=http://host:12434 bench/backlog.sh 2000 300
#
# The latency is set on the simulator (PUT /sim/faults) before the burst and reset after it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export N=${1:-10000}
latency=${2:-3000}
sim=${SIM:-http://127.0.0.1:12434}
curl -fsS -X PUT "$sim/sim/faults" -H 'Content-Type: application/json' -d "{\"latencyMs\":$latency}" >/dev/null
trap 'curl -fsS -X PUT "$sim/sim/faults" -H "Content-Type: application/json" -d "{\"latencyMs\":0}" >/dev/null || true' EXIT
echo "runner latency: $latency ms"
node "$here/backlog.mjs"
