#!/usr/bin/env bash
# Time from start to the first REPL prompt (then Ctrl-D), through the spec tree's pty helper:
# `ecaphost repl` (no simulator, and with --sim) beside `lua5.4 -i`, and `ecaphost run -e ''`
# (no prompt: the start-up of the process and the sandbox) for reference. Best and median of N
# interleaved rounds, in ms. Usage: bench/repl_start.sh [N]   (builds a Release tree in build-bench/)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
B=build-bench
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" -j2 --target ecaphost pty >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
printf 'expect > \nsend \\x04\n' >"$OUT/steps"
printf '' >"$OUT/none"
export XDG_STATE_HOME=$OUT/state ECAP_CONFIG=/dev/null ECAP_API_KEY=bench-key
us() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(((e - s) / 1000)); }
for _ in $(seq "$N"); do
  echo "lua5.4-i $(us "$B/pty" "$OUT/steps" lua5.4 -i)"
  echo "repl $(us "$B/pty" "$OUT/steps" "$B/ecaphost" repl --base-url http://127.0.0.1:9)"
  echo "repl--sim $(us "$B/pty" "$OUT/steps" "$B/ecaphost" repl --sim)"
  echo "run-e $(us "$B/pty" "$OUT/none" "$B/ecaphost" run -q --base-url http://127.0.0.1:9 -e '')"
done >"$OUT/times"
printf '%-10s %8s %8s\n' what best_ms median_ms
for k in lua5.4-i repl repl--sim run-e; do
  grep "^$k " "$OUT/times" | awk '{print $2}' | sort -n |
    awk -v k="$k" '{a[NR] = $1} END {printf "%-10s %8.1f %8.1f\n", k, a[1] / 1000, a[int((NR + 1) / 2)] / 1000}'
done
