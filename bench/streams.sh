#!/usr/bin/env bash
# Many concurrent slow streams, every frame checked: N streamed chat completions sent straight to
# the model runner (baseline), then the same N through the stack, in one run; figures and ratios.
# The runner must be the simulator (its answers are deterministic, so every stream is checked
# against the expected text and frame count). Needs Node 20 (bench/streams.mjs, no dependencies).
#
#   ulimit -n "$(ulimit -Hn)"      # one descriptor per connection; the stack holds 3 per stream
#   API_MAX_CONNECTIONS=12000 API_MAX_IN_FLIGHT=12000 java \
#     -Dmcp.worker.upstream-defaults.max-concurrency=12000 -Dpekko.http.server.backlog=4096 \
#     -jar standalone/target/mcp-stack.jar &
#   PIDS=$! bench/streams.sh [N] [stack-url] [runner-url]
#
# Why those settings, and the figures: docs/benchmarks.md ("Many open streams").
#
# The stack does not pass X-Sim-* headers on to its runner, so the pacing is set as the
# simulator's default for the run (PUT /sim/faults) and restored afterwards: both targets see the
# same slowness. Environment:
#   TOKENS_PER_SECOND  simulator pacing per stream (default 2)
#   WORDS              words per prompt; the reply is WORDS + 3 tokens (default 20: ~11 s per stream)
#   RAMP               streams opened per second, 0 = all at once (default 500)
#   WARMUP             streams sent to each target first and not counted (default 200)
#   PIDS               comma-separated PIDs whose memory is reported (the stack, the simulator)
#   TIMEOUT            seconds before a stream is given up (default 300)
#   KEY                an API key sent to the stack (its limits then apply)
#   JSON               also write the results to this file
#   DUMP               write every broken stream to this file (JSON lines)
#   ONLY               runner or stack: measure only that one
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:-1000}
stack=${2:-http://127.0.0.1:8080/v1}
runner=${3:-http://127.0.0.1:12434/v1}
sim=${runner%/v1}
sim=${sim%/engines}
sim=${sim%/engines/*}

# one socket per stream: the client needs N descriptors plus a few
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 100)) ]; then
  echo "warning: ulimit -n is $(ulimit -n) (hard limit $(ulimit -Hn)), below $n streams + 100" >&2
fi

previous=$(curl -fsS "$sim/sim/faults") || { echo "no simulator at $sim (GET /sim/faults)" >&2; exit 2; }
restore() { curl -fsS -X PUT -H 'Content-Type: application/json' -d "$previous" "$sim/sim/faults" >/dev/null || true; }
trap restore EXIT
curl -fsS -X PUT -H 'Content-Type: application/json' \
  -d "{\"tokensPerSecond\":${TOKENS_PER_SECOND:-2}}" "$sim/sim/faults" >/dev/null

echo "$(date -u +%FT%TZ) $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores," \
  "ulimit -n $(ulimit -n), simulator pacing ${TOKENS_PER_SECOND:-2} tokens/s"
args=(--n "$n" --runner "$runner" --stack "$stack" --words "${WORDS:-20}" --ramp "${RAMP:-500}" --warmup "${WARMUP:-200}" --timeout "${TIMEOUT:-300}")
[ -n "${PIDS:-}" ] && args+=(--pids "$PIDS")
[ -n "${KEY:-}" ] && args+=(--header "Authorization: Bearer $KEY")
[ -n "${JSON:-}" ] && args+=(--json "$JSON")
[ -n "${DUMP:-}" ] && args+=(--dump "$DUMP")
[ -n "${ONLY:-}" ] && args+=(--only "$ONLY")
node "$here/streams.mjs" "${args[@]}"
