#!/usr/bin/env bash
# The call journal's benchmark J1-J4 (issue 9), a section of bench/run.sh: run it as
# `bench/run.sh --journal [--quick]` (or this file, which does just that). It uses run.sh's
# helpers (now, min, start_sim), $BIN, $OUT and the 0 ms simulator at $URL0.
#
# J1: NJ mutating calls (meters.apply_release) through ecap.parallel, concurrency 128,
#     --max-in-flight 128, at 100 ms simulated latency, each item returning true and the
#     results kept: with --journal (a fresh file each run) against the same run without it,
#     interleaved, best of 3, and against the limit NJ / 128 x 0.1 s.
# J2: peak RSS (GNU time %M) of those runs.
# J3: journaled calls per second at 0 ms latency, concurrency 128 (and without the journal).
# J4: the fsyncs of one journaled J1 run (strace -c): how many calls share one group commit.
# The simulators' CPU time and peak RSS are read from /proc, to show they keep up.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then exec "$(dirname "$0")/run.sh" --journal "$@"; fi

NJ=20000 NJ0=20000 CONC=128 ROUNDS=3
[ "$QUICK" = --quick ] && { NJ=2000; NJ0=2000; }
URL100=$(start_sim 100ms)
SIM0=$(cat "$OUT/sim.0ms.pid") SIM100=$(cat "$OUT/sim.100ms.pid")
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)

cat >"$OUT/journal.lua" <<'LUA'
-- arg[1] releases in ecap.parallel (concurrency arg[2]); each item returns true, results kept
local n, conc = tonumber(arg[1]), tonumber(arg[2])
local items = {}
for i = 1, n do items[i] = 7 + i % 4 end -- the demo meters 7..10 take a release
local body = { accountNumber = "200000000001", nameOnBill = "Bench", serviceAddress = "1 Main St" }
local results, errs = ecap.parallel(items, function(id)
  ecap.meters.apply_release(id, body)
  return true
end, { concurrency = conc })
local i, e = next(errs)
assert(i == nil, i and ("item " .. i .. ": " .. tostring(e.message)))
assert(#results == n, "every result kept")
LUA

sim_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, clock ticks
TICK=$(getconf CLK_TCK)

# measure LABEL SIMPID cmd...: runs cmd once (it must succeed) and appends to $OUT/j.runs
# "LABEL wall_s peak_rss_kb client_cpu_s sim_cpu_s".
measure() {
  local label=$1 sim=$2 t0 t1 s0 s1 rss u s; shift 2
  s0=$(sim_ticks "$sim"); t0=$(now)
  if ! /usr/bin/time -f '%M %U %S' -o "$OUT/time" "$@" >"$OUT/out" 2>&1; then
    echo "bench: $label failed: $*" >&2; cat "$OUT/out" >&2; exit 1
  fi
  t1=$(now); s1=$(sim_ticks "$sim")
  read -r rss u s <"$OUT/time"
  echo "$label $(echo "$t1 - $t0" | bc -l) $rss $(echo "$u + $s" | bc -l) $(echo "($s1 - $s0) / $TICK" | bc -l)" >>"$OUT/j.runs"
}
: >"$OUT/j.runs"
RUN=("$BIN" run -q --max-in-flight "$CONC")
for round in $(seq "$ROUNDS"); do
  measure j1-journal "$SIM100" "${RUN[@]}" --base-url "$URL100" --journal "$OUT/j1.$round" "$OUT/journal.lua" "$NJ" "$CONC"
  rm -f "$OUT/j1.$round"
  measure j1-plain "$SIM100" "${RUN[@]}" --base-url "$URL100" "$OUT/journal.lua" "$NJ" "$CONC"
done
for round in $(seq "$ROUNDS"); do
  measure j3-journal "$SIM0" "${RUN[@]}" --base-url "$URL0" --journal "$OUT/j3.$round" "$OUT/journal.lua" "$NJ0" "$CONC"
  rm -f "$OUT/j3.$round"
  measure j3-plain "$SIM0" "${RUN[@]}" --base-url "$URL0" "$OUT/journal.lua" "$NJ0" "$CONC"
done
LOAD_END=$(loadavg)
# fsyncs URL N: the fdatasyncs of one journaled run (strace -c), or nothing without strace
fsyncs() {
  command -v strace >/dev/null || return 0
  rm -f "$OUT/j4"
  strace -f -c -e trace=fdatasync,fsync -o "$OUT/strace" "${RUN[@]}" --base-url "$1" \
    --journal "$OUT/j4" "$OUT/journal.lua" "$2" "$CONC" >/dev/null 2>&1
  awk '$NF == "fdatasync" || $NF == "fsync" {n += $4} END {print n + 0}' "$OUT/strace"
}
FSYNCS=$(fsyncs "$URL100" "$NJ") FSYNCS0=$(fsyncs "$URL0" "$NJ0")

# col LABEL FIELD AGG: the min (the best, for times) or max of a column over the label's runs
col() { awk -v l="$1" -v f="$2" -v agg="$3" '$1 == l { v = $f; if (n++ == 0 || (agg == "min" ? v < r : v > r)) r = v } END { print r }' "$OUT/j.runs"; }
# the column of the best (fastest) run of a label
at_best() { awk -v l="$1" -v f="$2" '$1 == l && (n++ == 0 || $2 < w) { w = $2; r = $f } END { print r }' "$OUT/j.runs"; }
r() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }
f() { printf '%.2f' "$1"; }
mb() { echo "$1 / 1024" | bc -l | xargs printf '%.1f'; }
pct() { echo "100 * $1 / $2" | bc -l | xargs printf '%.0f'; }
sim_hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

j1=$(col j1-journal 2 min) j1p=$(col j1-plain 2 min)
limit=$(echo "$NJ / $CONC * 0.1" | bc -l)
j3=$(col j3-journal 2 min) j3p=$(col j3-plain 2 min)
echo
echo "ecaphost journal benchmark — $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), Release build; wall-clock, best of $ROUNDS, journaled and plain runs interleaved"
echo "load average (1, 5, 15 min): $LOAD_START at the start, $LOAD_END at the end; journal on $(df -P "$OUT" | awk 'NR == 2 {print $1}') ($(findmnt -n -o FSTYPE --target "$OUT" 2>/dev/null || echo ?))"
echo
printf '| id | what | journaled | without journal | ratio | target |\n|---|---|---|---|---|---|\n'
printf '| J1 | %d `meters.apply_release` in `ecap.parallel` (concurrency %d, `--max-in-flight %d`), latency 100 ms, results kept | %s s | %s s; limit %s s | %s× limit, %s× plain | ≤ 1.05× limit, ≤ 1.05× plain |\n' \
  "$NJ" "$CONC" "$CONC" "$(f "$j1")" "$(f "$j1p")" "$(f "$limit")" "$(r "$j1" "$limit")" "$(r "$j1" "$j1p")"
printf '| J2 | peak RSS of J1 (max of the runs) | %s MB | %s MB | — | ≤ 24 MB journaled |\n' \
  "$(mb "$(col j1-journal 3 max)")" "$(mb "$(col j1-plain 3 max)")"
printf '| J3 | mutating calls per second, latency 0, concurrency %d (%d calls) | %.0f/s | %.0f/s | %s× plain rate | ≥ 3,000/s journaled |\n' \
  "$CONC" "$NJ0" "$(echo "$NJ0 / $j3" | bc -l)" "$(echo "$NJ0 / $j3p" | bc -l)" "$(r "$j3p" "$j3")"
per() { [ -n "$2" ] && [ "$2" -gt 0 ] && echo "$1 / $2" | bc -l | xargs printf '%.1f' || echo ?; }
printf '| J4 | fdatasyncs in one journaled run (strace -f -c): J1 (100 ms); J3 (0 ms) | %s (%s calls each); %s (%s calls each) | — | — | shared (group commit) |\n' \
  "${FSYNCS:-not measured}" "$(per "$NJ" "$FSYNCS")" "${FSYNCS0:-not measured}" "$(per "$NJ0" "$FSYNCS0")"
echo
echo "CPU time (client; simulator) in the best run: J1 journaled $(f "$(at_best j1-journal 4)") s; $(f "$(at_best j1-journal 5)") s ($(pct "$(at_best j1-journal 5)" "$j1")% of one core)," \
  "plain $(f "$(at_best j1-plain 4)") s; $(f "$(at_best j1-plain 5)") s. J3 journaled $(f "$(at_best j3-journal 4)") s; $(f "$(at_best j3-journal 5)") s ($(pct "$(at_best j3-journal 5)" "$j3")% of one core)," \
  "plain $(f "$(at_best j3-plain 4)") s; $(f "$(at_best j3-plain 5)") s."
echo "Simulator peak RSS: $(mb "$(sim_hwm "$SIM100")") MB (100 ms), $(mb "$(sim_hwm "$SIM0")") MB (0 ms)."
echo
echo "Commands (URL: \`ecaphost sim --port 0 --quiet --latency 100ms\` or \`--latency 0ms\`; journal.lua as above in bench/journal.sh):"
echo "  ecaphost run -q --max-in-flight $CONC --base-url URL [--journal FRESH_FILE] journal.lua $NJ $CONC"
exit 0
