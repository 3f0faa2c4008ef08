#!/usr/bin/env bash
# The hot path under concurrency (issue 9), one command: the model-runner simulator (zero
# latency) and the stack (one JVM, H2) on fixed loopback ports, the runner direct and the stack
# measured side by side, then the stack restarted on an embedded PostgreSQL for durable tasks.
# Prints one table (req/s, p50/p90/p99, added p50, ratio to direct, CPU of each process).
#
#   bench/hotpath.sh                       # ~5 minutes; builds the jar if it is missing
#   DURATION=15 bench/hotpath.sh           # longer measured windows
#   JFR=/tmp/stack.jfr STEPS=chat,stream bench/hotpath.sh   # profile the H2 stack (docs/benchmarks.md)
#
# Environment (all optional):
#   DURATION        measured seconds per step (default 10)
#   WARMUP          unmeasured seconds before each step, per target (default 3)
#   WARMUP_FIRST    unmeasured seconds at c=16 before the first step, per target (default 15)
#   TASKS_DURATION  seconds of task submissions on PostgreSQL (default 15)
#   STEPS           comma-separated subset of chat,stream,tasks (default all three)
#   JFR             file: start the H2 stack with a JFR recording (settings=profile) dumped there
#   STACK_JAVA_OPTS extra JVM options of the stack
#   RESULTS_DIR     keep the results (JSON lines), the table and the logs there
#   PORT_BASE       first of the fixed ports (default 21000): +80 API, +434 simulator, +520 Artery,
#                   +626 management, +95 metrics, +432 PostgreSQL
# Needs Java 17, Node 20 and npm (autocannon from bench/package.json, installed into
# bench/node_modules). Only 127.0.0.1 is used; every process started here is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
jar=$root/standalone/target/mcp-stack.jar
base=${PORT_BASE:-21000}
api_port=$((base + 80)) sim_port=$((base + 434)) artery_port=$((base + 520))
mgmt_port=$((base + 626)) metrics_port=$((base + 95)) pg_port=$((base + 432))
duration=${DURATION:-10} warmup=${WARMUP:-3} tasks_duration=${TASKS_DURATION:-15}
steps=${STEPS:-chat,stream,tasks}
sim_url=http://127.0.0.1:$sim_port/v1
stack_url=http://127.0.0.1:$api_port/v1
export CLK_TCK=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/mcp-hotpath.XXXXXX)
results=$work/results.jsonl
pids=() # started here, stopped in reverse order
log() { echo "[$(date +%T)] $*" >&2; }

stop_pid() { # pid [seconds]: TERM, wait, KILL
  local pid=$1 wait=${2:-20} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "pid $pid still running after ${wait}s: KILL"
  kill -KILL "$pid" 2>/dev/null || true
}
stop_postgres() { # the embedded server's postmaster, should its Java parent not have stopped it
  local f=$work/pgdata/postmaster.pid pm
  [ -f "$f" ] || return 0
  pm=$(head -1 "$f")
  [ -n "$pm" ] && stop_pid "$pm" 15
}
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}" 30; done
  stop_postgres
  if [ -n "${RESULTS_DIR:-}" ]; then mkdir -p "$RESULTS_DIR" && cp -r "$work"/*.log "$work"/*.jsonl "$work"/*.md "$RESULTS_DIR"/ 2>/dev/null || true; fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
forget() { local p=$1 kept=() q; for q in "${pids[@]}"; do [ "$q" = "$p" ] || kept+=("$q"); done; pids=("${kept[@]}"); }

wait_for() { # what seconds command...: probe until it succeeds
  local what=$1 secs=$2 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then log "$what not ready after ${secs}s"; return 1; fi
    sleep 0.2
  done
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
chat_ok() { curl -fsS -m 5 -H 'Content-Type: application/json' \
  -d '{"model":"sim-small","max_tokens":8,"messages":[{"role":"user","content":"ready?"}]}' "$1/chat/completions"; }

for p in $api_port $sim_port $artery_port $mgmt_port $metrics_port $pg_port; do
  port_free "$p" || { log "port $p is in use (another run?); set PORT_BASE"; exit 2; }
done

# ---- tools ----
if [ ! -f "$jar" ]; then
  log "building $jar"
  (cd "$root" && ./mvnw -B -q -o package -DskipTests)
fi
if [ ! -d "$here/node_modules/autocannon" ]; then
  log "installing autocannon into bench/node_modules"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
ld() { # a load step, in the background so that a signal to this script stops it at once
  local p rc=0
  timeout 600 node "$here/hotpath.mjs" "$@" --out "$results" &
  p=$!; pids+=("$p")
  wait "$p" || rc=$?
  forget "$p"
  return "$rc"
}

# ---- processes ----
start_sim() {
  env SIM_HOST=127.0.0.1 SIM_PORT=$sim_port SIM_LATENCY=0ms SIM_TIME_TO_FIRST_TOKEN=0ms SIM_TOKENS_PER_SECOND=0 \
    java -Xms256m -Xmx512m -cp "$jar" dev.mcpstack.sim.ModelRunnerSimulator >"$work/sim.log" 2>&1 &
  sim_pid=$!; pids+=("$sim_pid")
  wait_for simulator 60 curl -fsS -m 2 "$sim_url/models"
}
start_stack() { # name db-url db-user db-password extra-java-opts...
  local name=$1 url=$2 user=$3 password=$4; shift 4
  mkdir -p "$work/$name"
  (cd "$work/$name" && exec env API_HOST=127.0.0.1 API_PORT=$api_port \
    ARTERY_HOST=127.0.0.1 ARTERY_PORT=$artery_port SEED_NODES= \
    MANAGEMENT_HOST=127.0.0.1 MANAGEMENT_PORT=$mgmt_port METRICS_HOST=127.0.0.1 METRICS_PORT=$metrics_port \
    EMBEDDED_SIMULATOR=off MODEL_RUNNER_URL=$sim_url DB_URL=$url DB_USER=$user DB_PASSWORD=$password \
    java ${STACK_JAVA_OPTS:-} "$@" -jar "$jar" >"$work/$name.log" 2>&1) &
  stack_pid=$!; pids+=("$stack_pid")
  wait_for "stack ($name) /ready" 120 curl -fsS -m 2 "http://127.0.0.1:$mgmt_port/ready"
  wait_for "stack ($name) chat" 30 chat_ok "$stack_url"
  log "stack ($name) ready, pid $stack_pid"
}
stop_stack() { stop_pid "$stack_pid" 60; forget "$stack_pid"; }

has() { [[ ",$steps," == *",$1,"* ]]; }
echo "hot path benchmark $(date -u +%FT%TZ), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
  "$(nproc) cores, loadavg $(cut -d' ' -f1-3 /proc/loadavg) at start, ${duration}s per step after ${warmup}s warm-up," \
  "tasks ${tasks_duration}s" | tee "$work/header.md"

log "simulator on :$sim_port"
start_sim
jfr_opts=()
[ -n "${JFR:-}" ] && jfr_opts=("-XX:StartFlightRecording=filename=$JFR,settings=profile,dumponexit=true")
log "stack (H2) on :$api_port"
start_stack h2 "jdbc:h2:file:$work/h2/data/mcp-journal;DB_CLOSE_DELAY=-1" mcp "" "${jfr_opts[@]}"
sleep 2
ld rss --what "stack idle (H2)" --pid "$stack_pid"
ld idle --what "after start (H2)" --pids "sim=$sim_pid,stack=$stack_pid" --duration 5
common=(--duration "$duration" --warmup "$warmup" --pids "sim=$sim_pid,stack=$stack_pid")
targets="direct=$sim_url,stack-h2=$stack_url"
log "warm-up: both JVMs' JIT, c=16, ${WARMUP_FIRST:-15} s each"
ld warmup --targets "$targets" --conc 16 --duration "${WARMUP_FIRST:-15}"
if has chat; then log "non-streamed chat"; ld chat --targets "$targets" --conc 1,16,64 "${common[@]}"; fi
if has stream; then log "streamed chat"; ld stream --targets "$targets" --k 1,50 "${common[@]}"; fi
ld rss --what "stack after the load (H2)" --pid "$stack_pid"
ld idle --what "after the load (H2)" --pids "sim=$sim_pid,stack=$stack_pid" --duration 5
stop_stack

if has tasks; then
  log "embedded PostgreSQL on :$pg_port"
  cp_file=$work/pg.classpath
  (cd "$root" && { ./mvnw -B -q -o -pl worker-node dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$cp_file" \
    || ./mvnw -B -q -pl worker-node dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$cp_file"; }) >"$work/mvn.log" 2>&1
  java -cp "$(cat "$cp_file")" "$here/pg/EmbeddedPostgresMain.java" "$pg_port" "$work/pgdata" >"$work/postgres.log" 2>&1 &
  pg_pid=$!; pids+=("$pg_pid")
  wait_for postgres 90 grep -q '^ready ' "$work/postgres.log"
  log "stack (PostgreSQL) on :$api_port"
  start_stack pg "jdbc:postgresql://127.0.0.1:$pg_port/postgres" postgres postgres
  sleep 2
  ld rss --what "stack idle (PostgreSQL)" --pid "$stack_pid"
  ld warmup --targets "stack-pg=$stack_url" --conc 16 --duration 5
  # postgres+: the postmaster and its children (one backend per journal connection)
  pg_pids="sim=$sim_pid,stack=$stack_pid,postgres=$(head -1 "$work/pgdata/postmaster.pid")+"
  pg_common=(--duration "$duration" --warmup "$warmup" --pids "$pg_pids")
  log "non-streamed chat, stack on PostgreSQL"
  ld chat --targets "stack-pg=$stack_url" --conc 1,64 "${pg_common[@]}"
  log "durable tasks on PostgreSQL"
  ld tasks --targets "stack-pg=$stack_url" --conc 64 --duration "$tasks_duration" --pids "$pg_pids"
  stop_stack
fi

echo
{ cat "$work/header.md"; echo; ld report; } | tee "$work/table.md"
