#!/usr/bin/env bash
# A response-cache hit against a miss (docs/adr/0009): N sequential non-streamed chats at
# temperature 0, each with a prompt never sent before (misses: the runner is asked, the answer is
# stored), then N times one prompt already cached (hits: no runner call). Medians and p90.
#
#   CACHE_ENABLED=on java -jar standalone/target/mcp-stack.jar &     # stack on :8080
#   bench/cache-latency.sh [N] [stack-url]
#   KEY=sk-mcp-... bench/cache-latency.sh                            # with an API key
set -euo pipefail
n=${1:-200}
stack=${2:-http://127.0.0.1:8080/v1}
auth=${KEY:+Authorization: Bearer $KEY}
auth=${auth:-X-No-Auth: 1}
run=$(date +%s%N)

body() { # prompt
  printf '{"model":"sim-small","temperature":0,"max_tokens":16,"messages":[{"role":"user","content":"%s"}]}' "$1"
}

call() { # prompt -> "seconds x-cache"
  curl -s -o /dev/null -D - -w 'time %{time_total}\n' -H "$auth" -H 'Content-Type: application/json' \
    -d "$(body "$1")" "$stack/chat/completions" |
    awk 'tolower($1) == "x-cache:" { c = $2 } $1 == "time" { t = $2 } END { gsub(/\r/, "", c); print t, c }'
}

stats() { # label expected-x-cache < "seconds x-cache" lines
  sort -n | awk -v label="$1" -v want="$2" -v n="$n" '
    { a[NR] = $1 * 1000; if ($2 != want) bad++ }
    END { printf "%-6s: median %.2f ms, p90 %.2f ms (%d of %d not %s)\n", label, a[int((n + 1) / 2)], a[int(n * 0.9)], bad, n, want }'
}

for i in $(seq 1 20); do call "warm-up $run $i" >/dev/null; call "warm-up $run $i" >/dev/null; done
call "hit $run" >/dev/null # stored now
for i in $(seq 1 "$n"); do call "miss $run $i"; done | stats miss miss
for i in $(seq 1 "$n"); do call "hit $run"; done | stats hit hit
