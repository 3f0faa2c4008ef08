#!/usr/bin/env bash
# Overhead of the stack over its model runner: N sequential non-streamed chat completions sent
# straight to the runner (baseline) and through the stack, same request, medians and ratio.
#
#   java -jar standalone/target/mcp-stack.jar &      # stack on :8080, simulator on :12434
#   bench/chat-latency.sh [N] [stack-url] [runner-url]
#   KEY=sk-mcp-... bench/chat-latency.sh              # through the stack with an API key (its
#                                                    # limits are checked on every call)
set -euo pipefail
n=${1:-200}
stack=${2:-http://127.0.0.1:8080/v1}
runner=${3:-http://127.0.0.1:12434/v1}
body='{"model":"sim-small","max_tokens":16,"messages":[{"role":"user","content":"measure the overhead of one hop"}]}'

measure() { # url [auth header] -> median ms, p90 ms
  local url=$1 auth=${2:-X-No-Auth: 1} times
  for _ in $(seq 1 20); do # warm-up
    curl -s -o /dev/null -H "$auth" -H 'Content-Type: application/json' -d "$body" "$url/chat/completions"
  done
  times=$(for _ in $(seq 1 "$n"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "$auth" -H 'Content-Type: application/json' -d "$body" "$url/chat/completions"
  done | sort -n)
  awk -v n="$n" '{ a[NR] = $1 * 1000 } END { printf "%.2f %.2f\n", a[int((n + 1) / 2)], a[int(n * 0.9)] }' <<<"$times"
}

read -r base_med base_p90 < <(measure "$runner")
read -r stack_med stack_p90 < <(measure "$stack" "${KEY:+Authorization: Bearer $KEY}")
echo "requests: $n sequential, non-streamed, max_tokens 16${KEY:+, with an API key}"
echo "runner direct : median ${base_med} ms, p90 ${base_p90} ms"
echo "through stack : median ${stack_med} ms, p90 ${stack_p90} ms"
awk -v b="$base_med" -v s="$stack_med" 'BEGIN { printf "overhead      : median +%.2f ms (x%.2f)\n", s - b, s / b }'
