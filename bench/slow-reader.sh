#!/usr/bin/env bash
# Memory held for a client that reads slowly: one streamed chat with a long answer, read at
# 1 byte per millisecond (1,000 bytes a second through a pipe), against the one-JVM stack. Prints the live heap
# (after a full GC) before the stream and after SECONDS_OPEN seconds of slow reading, and how much
# of the answer the runner has sent by then. Without backpressure the whole answer would be read
# from the runner at once and held in memory; with it, the runner's stream waits for the reader.
#
#   java -jar standalone/target/mcp-stack.jar &        # note its PID
#   bench/slow-reader.sh PID [seconds-open] [stack-url] [runner-admin-url]
set -euo pipefail
pid=$1
open_for=${2:-30}
stack=${3:-http://127.0.0.1:8080/v1}
runner_admin=${4:-http://127.0.0.1:12434/sim}
words=${WORDS:-200000}

live_heap_kb() { # used heap after a full GC, in KB
  jcmd "$pid" GC.run >/dev/null
  jcmd "$pid" GC.heap_info | awk '/used/ { for (i = 1; i <= NF; i++) if ($i == "used") { gsub("K", "", $(i + 1)); print $(i + 1); exit } }'
}

prompt=$(yes word | head -n "$words" | tr '\n' ' ' || true) # yes ends on SIGPIPE
body=$(printf '{"model":"sim-small","stream":true,"max_tokens":%d,"messages":[{"role":"user","content":"%s"}]}' "$((words + 10))" "$prompt")
printf '%s' "$body" >/tmp/slow-reader-body.json

before=$(live_heap_kb)
: >/tmp/slow-reader-out.txt
# the client: curl, read through a pipe 1,000 bytes a second (curl's --limit-rate would also slow
# the upload of the prompt); the pipe's back-pressure stops curl reading its socket
( curl -sN -H 'Content-Type: application/json' --data-binary @/tmp/slow-reader-body.json "$stack/chat/completions" |
    while IFS= read -r -d '' -n 1000 chunk; do printf '%s' "$chunk" >>/tmp/slow-reader-out.txt; sleep 1; done ) &
reader=$!
sleep "$open_for"
during=$(live_heap_kb)
read_bytes=$(stat -c %s /tmp/slow-reader-out.txt)
in_flight=$(curl -s "$runner_admin/stats" | sed -E 's/.*"inFlight":([0-9]+).*/\1/')
pkill -P "$reader" 2>/dev/null || true # the reader's curl and loop, by their parent's PID
kill "$reader" 2>/dev/null || true
wait "$reader" 2>/dev/null || true
echo "answer: about $words tokens (~$((words * 150 / 1024)) KB of SSE); read by the client in ${open_for} s: $((read_bytes / 1024)) KB"
echo "runner calls still open (held back by the reader): $in_flight"
echo "live heap before: $((before / 1024)) MB, with the slow stream open: $((during / 1024)) MB, difference: $(((during - before) / 1024)) MB"
