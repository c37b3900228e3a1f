#!/usr/bin/env bash
# Error storm: ERRORS trigger_fs_error writes as fast as a shell loop makes them (`echo 1 > trigger`),
# on one scratch ext4, then spread over FILESYSTEMS scratch ext4s (one shell loop each, in parallel).
# The daemon runs as deployed: journal (a private journald), D-Bus (a private bus), metrics endpoint,
# store. Measured, per scenario:
#   fidelity     the sum of error.count over every stored report (every source: fanotify, and the
#                health loop's ext4-sysfs reconciliation) against the growth of sysfs errors_count,
#                waited for until equal (at most SETTLE s after the storm)
#   CPU          the daemon's utime+stime from just before the storm until the counts agree,
#                per 10,000 errors
#   peak RSS     VmHWM of the daemon (started fresh for each scenario)
#   journal      report entries and storm summaries journald received (storm control: [Journal]
#                MaxEntriesPerInterval per filesystem per Interval, then one summary each)
#   benchmarks/run-storm.sh                          # ERRORS=100000 FILESYSTEMS=8 SETTLE=90
#   BIN=artifacts/footprint/r2r/errorwatch benchmarks/run-storm.sh
# Root; runs in a private mount namespace (its own /run for journald); removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib/scratch.sh
. benchmarks/lib/services.sh
bench_private_namespace "$0" "$@"

ERRORS=${ERRORS:-100000}
FILESYSTEMS=${FILESYSTEMS:-8}
SETTLE=${SETTLE:-90}
PORT=${PORT:-19467}
BIN=${BIN:-src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch}
TICK=$(getconf CLK_TCK)

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$BIN" = src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch ] && dotnet build src/ErrorWatch.Cli -c Release -v q >/dev/null
echo "daemon: $BIN"
scratch_init
bench_journald
bench_bus

cpu_ms() { awk -v t="$TICK" '{print ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
journal_count() { journalctl -o cat --no-pager "MESSAGE_ID=$1" "$2" 2>/dev/null | wc -l; }

storm() { # label, number of filesystems
  local label=$1 n=$2 per=$((ERRORS / $2)) i
  local mounts=() triggers=() counts=() devices=() args=()
  for i in $(seq "$n"); do
    scratch_ext4 "storm-$label-$i" 32
    mounts+=("$FS_MNT"); triggers+=("$FS_TRIGGER"); counts+=("$FS_COUNT"); devices+=("$FS_LOOP"); args+=(-f "$FS_MNT")
  done
  local state=$SCRATCH/state-$label
  "$BIN" run "${args[@]}" --state-dir "$state" --bus "$BUS_ADDRESS" --metrics-listen "127.0.0.1:$PORT" \
    --journal yes --output none --log-level Warning 2>"$SCRATCH/daemon-$label.log" &
  local pid=$!; scratch_own $pid
  for _ in $(seq 300); do
    busctl --address="$BUS_ADDRESS" status io.github.errorwatch.ErrorWatch1 >/dev/null 2>&1 && break
    kill -0 $pid || { cat "$SCRATCH/daemon-$label.log" >&2; return 1; }
    sleep 0.1
  done
  sleep 3 # start-up done (JIT of the start path, first health checks)
  local before=0 c
  for c in "${counts[@]}"; do before=$((before + $(cat "$c"))); done
  local since; since=$(date +%s)
  local cpu0; cpu0=$(cpu_ms $pid)
  local t0; t0=$(date +%s%N)
  local loops=()
  for t in "${triggers[@]}"; do
    ( for ((k = 0; k < per; k++)); do echo 1 >"$t"; done ) & loops+=($!)
  done
  wait "${loops[@]}"
  local t1; t1=$(date +%s%N)
  local after=0
  for c in "${counts[@]}"; do after=$((after + $(cat "$c"))); done
  local grown=$((after - before)) stored=0 waited=0
  while :; do
    stored=$(/usr/bin/python3 benchmarks/tools/store-sum.py "$state" "${devices[@]}" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^errors=/) s += substr($i, 8)} END {print s + 0}')
    [ "$stored" -ge "$grown" ] || [ "$waited" -ge "$((SETTLE * 10))" ] || { sleep 0.1; waited=$((waited + 1)); continue; }
    break
  done
  local t2; t2=$(date +%s%N)
  local cpu1; cpu1=$(cpu_ms $pid)
  local hwm; hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
  # SIGTERM flushes storm control: the summary of what it held back is written at exit.
  local t_term; t_term=$(date +%s%N)
  kill -TERM $pid; wait $pid || true
  local stop_ms=$(( ($(date +%s%N) - t_term) / 1000000 ))
  sleep 1
  local entries summaries
  entries=$(journal_count bd42365c534f459287726f415119295b "_PID=$pid")
  summaries=$(journal_count ac18a8be8c6b450a97e17081ce13dcb2 "_PID=$pid")
  echo "== $label: $ERRORS errors over $n filesystem(s) ($per each, one shell loop per filesystem)"
  echo "storm took $(( (t1 - t0) / 1000000 )) ms ($(( ERRORS * 1000000000 / (t1 - t0 + 1) )) errors/s); reports caught up $(( (t2 - t1) / 1000000 )) ms after the last write"
  echo "errors_count grew by $grown; stored reports add up to $stored: $([ "$stored" = "$grown" ] && echo EXACT || echo "MISMATCH ($((stored - grown)))")"
  /usr/bin/python3 benchmarks/tools/store-sum.py "$state" "${devices[@]}" | sed 's/^/  /'
  awk -v c=$((cpu1 - cpu0)) -v e="$grown" 'BEGIN {printf "daemon CPU %.2f s for the storm = %.3f CPU s per 10,000 errors\n", c / 1000, c / 1000 / (e / 10000)}'
  echo "peak RSS (VmHWM) $((hwm / 1024)) MiB"
  echo "journal: $entries report entries, $summaries storm summaries (MaxEntriesPerInterval=20 per filesystem per 1 min by default, then one summary at the interval's end or at exit)"
  echo "SIGTERM -> exit ${stop_ms} ms"
  grep -v '^$' "$SCRATCH/daemon-$label.log" | sort | uniq -c | sort -rn | head -5 || true
}

storm one 1
storm spread "$FILESYSTEMS"
