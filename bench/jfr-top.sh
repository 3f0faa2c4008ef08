#!/usr/bin/env bash
# Top frames of a JFR recording (Java 17's `jfr`, which has no `jfr view`): CPU samples by top
# frame, by package anywhere on the stack (inclusive) and by thread; allocation samples by class
# and by allocating frame (weighted); GC pauses. Recipe: docs/benchmarks.md ("Profiling").
#
#   JFR=/tmp/stack.jfr STEPS=chat,stream bench/hotpath.sh    # records the H2 stack under load
#   bench/jfr-top.sh /tmp/stack.jfr [N]                       # N rows per list (default 20)
set -eu # no pipefail: head closes the pipes early
f=$1
n=${2:-20}
[ -f "$f" ] || { echo "no recording at $f" >&2; exit 2; }
echo "== jfr summary (largest event types)"
jfr summary "$f" | awk '/^ *Event Type/ { on = 1; next } on && NF >= 3 && $2 ~ /^[0-9]+$/ { print }' | sort -k2 -nr | head -12

# Each event: a header, fields, then "stackTrace = [" frames "]". Frames look like
#   org.foo.Bar.method(int, String) line: 12
frames() { sed -E 's/^ +//; s/\(.*$//'; }
echo
echo "== CPU: execution samples by top frame"
jfr print --events jdk.ExecutionSample --stack-depth 1 "$f" |
  awk '/stackTrace = \[/ { getline; sub(/^ +/, ""); sub(/\(.*$/, ""); c[$0]++; t++ }
       END { for (k in c) printf "%6d %5.1f%%  %s\n", c[k], 100 * c[k] / t, k; printf "%6d samples\n", t > "/dev/stderr" }' |
  sort -nr | head -"$n"

echo
echo "== CPU: share of samples with a package anywhere on the stack (first 64 frames; inclusive, so they overlap)"
jfr print --events jdk.ExecutionSample --stack-depth 64 "$f" |
  awk '/^jdk.ExecutionSample/ { t++; delete seen }
       /^ +[a-zA-Z_$][a-zA-Z0-9_$.]*\(.*line:/ {
         s = $1; sub(/\(.*$/, "", s); k = split(s, p, "."); pk = p[1] "." p[2] (k > 4 ? "." p[3] : "") (k > 5 ? "." p[4] : "")
         if (!(pk in seen)) { seen[pk] = 1; c[pk]++ } }
       END { for (k in c) printf "%6d %5.1f%%  %s\n", c[k], 100 * c[k] / t, k }' |
  sort -nr | head -"$n"

echo
echo "== CPU: samples by thread (digits folded)"
jfr print --events jdk.ExecutionSample --stack-depth 1 "$f" |
  awk -F'"' '/sampledThread = / { s = $2; gsub(/[0-9]+/, "N", s); c[s]++; t++ }
             END { for (k in c) printf "%6d %5.1f%%  %s\n", c[k], 100 * c[k] / t, k }' |
  sort -nr | head -"$n"

# weight = 12.3 MB / 512 bytes / 3.4 kB / 1.2 GB
weight='function mb(v, u) { return u ~ /^G/ ? v * 1024 : u ~ /^M/ ? v : u ~ /^k/ ? v / 1024 : v / 1048576 }'
echo
echo "== Allocation: sampled weight by class"
jfr print --events jdk.ObjectAllocationSample --stack-depth 1 "$f" |
  awk "$weight"'
       /objectClass = / { cls = $3 }
       /weight = / { w = mb($3, $4); c[cls] += w; t += w }
       END { for (k in c) printf "%9.1f MB %5.1f%%  %s\n", c[k], 100 * c[k] / t, k }' |
  sort -nr | head -"$n"

echo
echo "== Allocation: sampled weight by allocating frame"
jfr print --events jdk.ObjectAllocationSample --stack-depth 1 "$f" |
  awk "$weight"'
       /weight = / { w = mb($3, $4) }
       /stackTrace = \[/ { getline; sub(/^ +/, ""); sub(/\(.*$/, ""); c[$0] += w; t += w }
       END { for (k in c) printf "%9.1f MB %5.1f%%  %s\n", c[k], 100 * c[k] / t, k }' |
  sort -nr | head -"$n"

echo
echo "== GC"
jfr print --events jdk.GarbageCollection "$f" |
  awk '/name = / { gsub(/"/, "", $3); name = $3 }
       /sumOfPauses = / { v = $3; u = $4; ms = u ~ /^ms/ ? v : u ~ /^s/ ? v * 1000 : u ~ /^us/ ? v / 1000 : v / 1e6; c[name]++; p[name] += ms }
       END { for (k in c) printf "%s: %d collections, %.0f ms of pauses\n", k, c[k], p[k] }'
