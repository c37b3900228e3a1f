#!/usr/bin/env bash
# Detection latency: from a trigger_fs_error write to each place an error shows up, next to the C floor.
#
# On one scratch ext4 (errors=continue) both ../shared/anchors/fanotify-reader.c (cc -O2) and the daemon
# (errorwatch run, D-Bus on a private bus, metrics endpoint on 127.0.0.1, journal on a private journald,
# store in a scratch state dir) place a FAN_FS_ERROR mark. benchmarks/tools/trigger.c then writes
# trigger_fs_error COUNT times, SPACING_US apart, timestamping each write with CLOCK_MONOTONIC, and
# every observer timestamps what it sees with CLOCK_MONOTONIC too:
#   C reader   when read(2) returns (fanotify-reader.c itself)
#   store      inotify IN_MODIFY on the segment the record was appended to: a C client (tools/store-observer.c),
#              the row the target is checked on, and a Python one (tools/store-observer.py)
#   journal    journald's __MONOTONIC_TIMESTAMP of the entry (when journald received it)
#   D-Bus      when a client receives ReportAdded: an sd-bus one in C (tools/dbus-observer.c), the row the
#              target is checked on, and a python3-dbus one (tools/dbus-observer.py), what a script sees
#   metric     when a scrape first shows the grown errorwatch_filesystem_errors_total
#              (tools/metrics-observer.py, a scrape every 2 ms; the endpoint caches a collection 300 ms)
# The D-Bus floor (tools/dbus-floor.c) is a C reader that emits a ReportAdded of the same shape at once
# (no store, no JSON, no thread hand-off): its row is what D-Bus itself costs on this machine.
# Both floors run with the scheduling the daemon gives its read and decode threads ([Watch] PriorityBoost,
# tools/boosted.c), so neither side wins the CPUs by priority alone.
# tools/latency-report.py prints p50/p99/max per observer and the differences to the C reader.
# WARMUP triggers (not measured) first let the JIT compile the report path.
#   benchmarks/run-latency.sh                         # COUNT=1000 SPACING_US=5000 WARMUP=50
#   BIN=artifacts/footprint/r2r/errorwatch benchmarks/run-latency.sh
#   PRIORITY_BOOST=0 benchmarks/run-latency.sh        # [Watch] PriorityBoost= (default 4: the event threads boosted)
# Root. Runs in a private mount namespace (its own /run for journald); creates and removes everything it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib/scratch.sh
. benchmarks/lib/services.sh
bench_private_namespace "$0" "$@"

COUNT=${COUNT:-1000}
SPACING_US=${SPACING_US:-5000}
WARMUP=${WARMUP:-50}
PORT=${PORT:-19466}
SCRAPE_MS=${SCRAPE_MS:-2}
BIN=${BIN:-src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch}
OUT=${OUT:-}
PRIORITY_BOOST=${PRIORITY_BOOST:-}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$BIN" = src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch ] && dotnet build src/ErrorWatch.Cli -c Release -v q >/dev/null
echo "daemon: $BIN${PRIORITY_BOOST:+ ([Watch] PriorityBoost=$PRIORITY_BOOST)}"

scratch_init
bench_build_native
scratch_ext4 latency 64
bench_journald
bench_bus
d=$SCRATCH/results
mkdir -p "$d"
cat >"$SCRATCH/errorwatch.conf" <<CONF
${PRIORITY_BOOST:+[Watch]
PriorityBoost=$PRIORITY_BOOST
}
[Journal]
# Every report gets its own entry in this run (storm control is the storm benchmark's subject).
MaxEntriesPerInterval=100000
Interval=1min
CONF

# The floors run with the daemon's event-thread scheduling (PriorityBoost, default 4: nice -4 and a 0.1 ms
# slice, tools/boosted.c): boosting only the daemon would let it win the CPUs from them and flatter it.
FLOOR=("$SCRATCH/bin/boosted" "${PRIORITY_BOOST:-4}")
"${FLOOR[@]}" "$SCRATCH/bin/fanotify-reader" "$FS_MNT" >"$d/c-reader.txt" & scratch_own $!
bench_wait_ready "$d/c-reader.txt"
"${FLOOR[@]}" "$SCRATCH/bin/dbus-floor" "$BUS_ADDRESS" "$FS_MNT" "/sys/fs/ext4/$(basename "$FS_LOOP")" "$FS_LOOP" >"$SCRATCH/dbus-floor.out" & scratch_own $!
bench_wait_ready "$SCRATCH/dbus-floor.out"

"$BIN" run -c "$SCRATCH/errorwatch.conf" -f "$FS_MNT" --state-dir "$SCRATCH/state" --bus "$BUS_ADDRESS" \
  --metrics-listen "127.0.0.1:$PORT" --journal yes --output none --log-level Warning 2>"$SCRATCH/daemon.log" &
DAEMON=$!; scratch_own $DAEMON
for _ in $(seq 300); do
  busctl --address="$BUS_ADDRESS" status io.github.errorwatch.ErrorWatch1 >/dev/null 2>&1 \
    && curl -sf -o /dev/null "http://127.0.0.1:$PORT/metrics" && break
  kill -0 $DAEMON || { cat "$SCRATCH/daemon.log" >&2; exit 1; }
  sleep 0.1
done

# Warm-up: the first reports compile the report path (JIT); they are not part of the measurement.
"$SCRATCH/bin/trigger" "$FS_TRIGGER" "$WARMUP" 20000 >/dev/null
sleep 2

"$SCRATCH/bin/dbus-observer" "$BUS_ADDRESS" "$d/dbus.txt" >"$SCRATCH/dbus-observer.out" & scratch_own $!
/usr/bin/python3 benchmarks/tools/dbus-observer.py "$BUS_ADDRESS" "$d/dbus-py.txt" >"$SCRATCH/dbus-py-observer.out" & scratch_own $!
"$SCRATCH/bin/store-observer" "$SCRATCH/state" "$d/store.txt" >"$SCRATCH/store-observer.out" & scratch_own $!
/usr/bin/python3 benchmarks/tools/store-observer.py "$SCRATCH/state" "$d/store-py.txt" >"$SCRATCH/store-py-observer.out" & scratch_own $!
/usr/bin/python3 benchmarks/tools/metrics-observer.py "127.0.0.1:$PORT" "$FS_LOOP" "$d/metrics.txt" "$SCRAPE_MS" >"$SCRATCH/metrics-observer.out" & scratch_own $!
for o in dbus dbus-py store store-py metrics; do bench_wait_ready "$SCRATCH/$o-observer.out"; done
sleep 0.5

count0=$(cat "$FS_COUNT")
start_us=$(($(date +%s%N) / 1000))
"$SCRATCH/bin/trigger" "$FS_TRIGGER" "$COUNT" "$SPACING_US" >"$d/triggers.txt"
sleep 3 # the last reports, the 300 ms scrape cache, journald's writes
count1=$(cat "$FS_COUNT")
journalctl -o json --all --no-pager MESSAGE_ID=bd42365c534f459287726f415119295b --since "@$((start_us / 1000000 - 1))" >"$d/journal.json" 2>/dev/null || true

# Only what came after the first measured trigger counts (the C reader saw the warm-up too).
first=$(head -1 "$d/triggers.txt")
for f in c-reader store store-py dbus dbus-py; do
  awk -v f="$first" '$1 ~ /^[0-9]+$/ && $1 >= f' "$d/$f.txt" >"$d/$f.tmp" && mv "$d/$f.tmp" "$d/$f.txt"
done
# The metric is a running total: make it count from the last value scraped before the first trigger.
awk -v f="$first" '$1 < f {base=$2} $1 >= f {print $1, $2 - base}' "$d/metrics.txt" >"$d/metrics.tmp" && mv "$d/metrics.tmp" "$d/metrics.txt"
/usr/bin/python3 - "$d/journal.json" "$first" <<'PY'
import json, sys
path, first = sys.argv[1], int(sys.argv[2]) // 1000
keep = [l for l in open(path) if l.strip() and int(json.loads(l)["__MONOTONIC_TIMESTAMP"]) >= first]
open(path, "w").writelines(keep)
PY

echo "errors_count grew by $((count1 - count0)) for $COUNT triggers, ${SPACING_US} us apart"
reader_sum=$(awk '{s += $3} END {print s + 0}' "$d/c-reader.txt")
store_sum=$(awk '$3 == "fanotify" {s += $2} END {print s + 0}' "$d/store.txt")
other=$(awk '$3 != "fanotify" {n++} END {print n + 0}' "$d/store.txt")
echo "C reader counted $reader_sum; the store $store_sum in fanotify reports ($other other reports); journal entries: $(wc -l <"$d/journal.json"); D-Bus signals: $(grep -vc " c-floor " "$d/dbus.txt") (C client), $(grep -vc " c-floor " "$d/dbus-py.txt") (Python client), $(grep -c " c-floor " "$d/dbus.txt") from the C floor"
/usr/bin/python3 benchmarks/tools/latency-report.py "$d" "$FS_LOOP"
echo "daemon: $(awk '/VmRSS|VmHWM/{printf "%s %s kB  ", $1, $2}' /proc/$DAEMON/status)cpu $(awk '{print ($14+$15)*10}' /proc/$DAEMON/stat) ms"
[ -n "$OUT" ] && cp -r "$d" "$OUT"
grep -v '^$' "$SCRATCH/daemon.log" | tail -5 >&2 || true
