#!/usr/bin/env bash
# ecaphost benchmarks B1-B5 (issue 5): measures ecaphost and its baselines side by side in one
# run, against the built-in simulator on loopback, and prints a table with ratios.
# Usage: bench/run.sh [--quick] [--journal]
#   --quick: fewer calls, for a smoke run
#   --journal: the call journal's benchmark J1-J4 (issue 9) instead of B1-B5
# Needs: curl, GNU time (/usr/bin/time); strace for the fsync count (J4, skipped without it).
# Builds a Release tree in build-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK= JOURNAL=
for a in "$@"; do
  case $a in
    --quick) QUICK=$a ;;
    --journal) JOURNAL=$a ;;
    *) echo "usage: bench/run.sh [--quick] [--journal]" >&2; exit 2 ;;
  esac
done
B=build-bench
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" -j2 >/dev/null
cmake --build "$B" --target bench_json -j2 >/dev/null 2>&1 || true
BIN=$PWD/$B/ecaphost
OUT=$(mktemp -d)
# Simulators are started inside $(...) subshells: their pids go to a file, killed on exit.
trap 'kill $(cat "$OUT"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$OUT"' EXIT
export ECAP_API_KEY=bench-key ECAP_CONFIG=/dev/null

N1=5000; N1CURL=300; N2=2000; N3=200
[ "$QUICK" = --quick ] && { N1=1000; N1CURL=100; N2=400; N3=50; }

now() { date +%s.%N; }
elapsed() { # elapsed cmd... -> wall time in seconds
  local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
  echo "$t1 - $t0" | bc -l
}
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
best_of() { # best_of N cmd... -> prints the best wall time in seconds
  local n=$1 best=; shift
  for _ in $(seq "$n"); do best=$(min "$best" "$(elapsed "$@")"); done
  echo "$best"
}
# This VM's speed drifts by 2x over minutes: the two sides of a comparison run interleaved
# (A, B, A, B, ...), and each keeps its best, so a ratio compares like with like.
A_BEST= B_BEST=
pair_best() { # pair_best N -- cmdA... -- cmdB...
  local n=$1; shift; shift
  local a=() b=() in_b=0
  for w in "$@"; do
    if [ "$w" = -- ] && [ $in_b = 0 ]; then in_b=1; continue; fi
    if [ $in_b = 0 ]; then a+=("$w"); else b+=("$w"); fi
  done
  A_BEST= B_BEST=
  for _ in $(seq "$n"); do
    A_BEST=$(min "$A_BEST" "$(elapsed "${a[@]}")")
    B_BEST=$(min "$B_BEST" "$(elapsed "${b[@]}")")
  done
}
start_sim() { # start_sim LATENCY -> prints the URL
  local log=$OUT/sim.$1
  "$BIN" sim --port 0 --quiet --latency "$1" --api-key bench-key >"$log" 2>&1 &
  echo $! >"$OUT/sim.$1.pid"
  for _ in $(seq 50); do grep -q listening "$log" 2>/dev/null && break; sleep 0.05; done
  sed -n 's/^listening on //p' "$log"
}

URL0=$(start_sim 0ms)
[ -n "$JOURNAL" ] && . bench/journal.sh   # runs J1-J4, prints their table and exits
URL50=$(start_sim 50ms)

# ---- B1: sequential calls, latency 0 ----------------------------------------------------------
cat >"$OUT/b1.lua" <<'LUA'
local n = tonumber(arg[1])
for _ = 1, n do ecap.request("GET", "/api/v3/meter/1") end
LUA
for _ in $(seq "$N1"); do printf 'url = "%s/api/v3/meter/1"\noutput = "/dev/null"\n' "$URL0"; done >"$OUT/b1.curl"
pair_best 5 -- "$BIN" run -q --base-url "$URL0" "$OUT/b1.lua" "$N1" -- curl -s -H "ECI-ApiKey: bench-key" -K "$OUT/b1.curl"
b1_ecap=$A_BEST b1_curl=$B_BEST
one_by_one() { for _ in $(seq "$N1CURL"); do curl -s -o /dev/null -H "ECI-ApiKey: bench-key" "$URL0/api/v3/meter/1"; done; }
b1_each=$(best_of 1 one_by_one)
b1_each=$(echo "$b1_each * $N1 / $N1CURL" | bc -l)   # extrapolated from N1CURL processes

# ---- B2 / B4: ecap.parallel, concurrency 32, latency 50 ms -----------------------------------
cat >"$OUT/b2.lua" <<'LUA'
local n = tonumber(arg[1])
local items = {}
for i = 1, n do items[i] = (i % 20) + 1 end
local _, errs = ecap.parallel(items, function(id)
  ecap.request("GET", "/api/v3/meter/" .. id)   -- the body is dropped: fn keeps nothing
end, { concurrency = 32 })
assert(next(errs) == nil, "errors in the benchmark")
LUA
for i in $(seq "$N2"); do printf 'url = "%s/api/v3/meter/%d"\noutput = "/dev/null"\n' "$URL50" $(( (i % 20) + 1 )); done >"$OUT/b2.curl"
pair_best 3 -- "$BIN" run -q --base-url "$URL50" "$OUT/b2.lua" "$N2" -- curl -s --parallel --parallel-max 32 -H "ECI-ApiKey: bench-key" -K "$OUT/b2.curl"
b2_ecap=$A_BEST b2_curl=$B_BEST
b2_limit=$(echo "$N2 * 0.05 / 32" | bc -l)
/usr/bin/time -f %M -o "$OUT/b4" "$BIN" run -q --base-url "$URL50" "$OUT/b2.lua" "$N2" >/dev/null
b4_kb=$(cat "$OUT/b4")

# ---- B3: start-up ------------------------------------------------------------------------------
: >"$OUT/empty.lua"
startup_ecap() { for _ in $(seq "$N3"); do "$BIN" run -q --base-url http://127.0.0.1:9 "$OUT/empty.lua"; done; }
startup_curl() { for _ in $(seq "$N3"); do curl --version; done; }
pair_best 3 -- startup_ecap -- startup_curl
b3_ecap=$(echo "$A_BEST * 1000 / $N3" | bc -l)
b3_curl=$(echo "$B_BEST * 1000 / $N3" | bc -l)

# ---- B5: JSON decode + normalise vs raw cjson ---------------------------------------------------
b5_line="(bench_json not built)"
b5_ratio=""
if [ -x "$B/bench_json" ]; then
  "$B/bench_json" 10 5 >"$OUT/b5" 2>&1 || true
  # "decode: json_decode (ours)  <ms GC off> <ratio> <ms GC on> <ratio>", against raw cjson.decode
  read -r b5_ms b5_ratio < <(awk '/json_decode \(ours\)/ {print $6, $7}' "$OUT/b5")
  b5_cjson=$(awk '/cjson.decode \(raw/ {print $8}' "$OUT/b5")
  b5_line="${b5_ms} ms (cjson.decode ${b5_cjson} ms)"
  b5_ratio=${b5_ratio%x}
fi

r() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
f() { printf '%.3f' "$1"; }
echo
echo "ecaphost benchmarks — $(nproc) cores, $(date -u +%Y-%m-%d), Release build; wall-clock, best of 5 (B1) or 3, the two sides interleaved"
echo
printf '| id | what | ecaphost | baseline | ratio | target |\n|---|---|---|---|---|---|\n'
printf '| B1 | %d sequential GETs, latency 0 | %s s | one curl process, keep-alive: %s s | %s× | ≤ 1.5× |\n' \
  "$N1" "$(f "$b1_ecap")" "$(f "$b1_curl")" "$(r "$b1_ecap" "$b1_curl")"
printf '| B1 | same, vs a curl process per call (%d run, scaled) | %s s | %s s | %s× faster | ≥ 20× faster |\n' \
  "$N1CURL" "$(f "$b1_ecap")" "$(f "$b1_each")" "$(r "$b1_each" "$b1_ecap")"
printf '| B2 | %d calls, ecap.parallel concurrency 32, latency 50 ms | %s s | limit %s s; curl --parallel-max 32: %s s | %s× limit, %s× curl | ≤ 1.15× limit, ≤ 1× curl |\n' \
  "$N2" "$(f "$b2_ecap")" "$(f "$b2_limit")" "$(f "$b2_curl")" "$(r "$b2_ecap" "$b2_limit")" "$(r "$b2_ecap" "$b2_curl")"
printf '| B3 | start-up: run empty.lua (mean of %d) | %s ms | curl --version: %s ms | %s× | ≤ 1.2× |\n' \
  "$N3" "$(printf %.2f "$b3_ecap")" "$(printf %.2f "$b3_curl")" "$(r "$b3_ecap" "$b3_curl")"
printf '| B4 | peak RSS of B2 | %s MB | — | — | ≤ 20 MB |\n' "$(echo "$b4_kb / 1024" | bc -l | xargs printf '%.1f')"
printf '| B5 | decode + normalise 10 MB JSON array of meters | %s | raw cjson.decode | %s× | ≤ 1.3× |\n' "$b5_line" "${b5_ratio:-?}"
