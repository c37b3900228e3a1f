#!/usr/bin/env bash
# Scale: N small loop-mounted ext4 filesystems (4 MiB images, no journal) watched by one daemon.
#   time to watch all   start -> READY=1 (READY=1 comes after every mark is placed), N filesystems vs 1
#   RSS per filesystem  (idle RSS with N - idle RSS with 1) / (N - 1), after IDLE seconds
#   first vs last       ROUNDS errors on the 1st and on the Nth filesystem, alternating, GAP_MS apart:
#                       trigger -> store (inotify on the segment) for each, p50/max
# The daemon gives each filesystem a fanotify group while fs.fanotify.max_user_groups (default 128, for
# all of root's processes) allows, and marks the rest in its shared spill group (events told apart by
# fsid): with N=200 the last ones, the Nth included, are in the spill group. RAISE_GROUPS=1 raises the
# limit to N + 64 for the run (every filesystem its own group) and sets it back afterwards. Store, D-Bus
# and journal as deployed except the journal (off: this is about watching, not output).
#   benchmarks/run-scale.sh                     # N=200 ROUNDS=20 GAP_MS=100 IDLE=5 RAISE_GROUPS=0
# Root; creates and removes its own loop devices and mounts (and restores the sysctl) even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib/scratch.sh
. benchmarks/lib/services.sh
bench_private_namespace "$0" "$@"

N=${N:-200}
ROUNDS=${ROUNDS:-20}
GAP_MS=${GAP_MS:-100}
IDLE=${IDLE:-5}
BIN=${BIN:-src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$BIN" = src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch ] && dotnet build src/ErrorWatch.Cli -c Release -v q >/dev/null
echo "daemon: $BIN"
scratch_init
bench_build_native
bench_bus
groups_before=$(cat /proc/sys/fs/fanotify/max_user_groups)
restore_groups() { echo "$groups_before" >/proc/sys/fs/fanotify/max_user_groups; }
trap 'rc=$?; restore_groups; (exit $rc); scratch_cleanup' EXIT
if [ "${RAISE_GROUPS:-0}" = 1 ]; then
  [ "$groups_before" -ge $((N + 64)) ] || echo $((N + 64)) >/proc/sys/fs/fanotify/max_user_groups
fi
echo "fs.fanotify.max_user_groups = $(cat /proc/sys/fs/fanotify/max_user_groups)"

t0=$(date +%s%N)
mounts=() devices=() triggers=()
for i in $(seq "$N"); do
  truncate -s 4M "$SCRATCH/s$i.img"
  mkfs.ext4 -q -F -O ^has_journal -N 64 "$SCRATCH/s$i.img" >/dev/null
  FS_LOOP=$(losetup --find --show "$SCRATCH/s$i.img"); SCRATCH_LOOPS+=("$FS_LOOP")
  mkdir -p "$SCRATCH/s$i"; mount -o errors=continue "$FS_LOOP" "$SCRATCH/s$i"; SCRATCH_MOUNTS+=("$SCRATCH/s$i")
  mounts+=("$SCRATCH/s$i"); devices+=("$FS_LOOP"); triggers+=("/sys/fs/ext4/$(basename "$FS_LOOP")/trigger_fs_error")
done
echo "$N filesystems made and mounted in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

probe() { # label, mounts...
  local label=$1; shift
  local args=() m
  for m in "$@"; do args+=(-f "$m"); done
  /usr/bin/python3 benchmarks/tools/daemon-probe.py --warmup "$IDLE" --idle 1 --label "$label" -- \
    "$BIN" run "${args[@]}" --state-dir "$SCRATCH/state-$label" --bus "$BUS_ADDRESS" --metrics-listen none --journal no --output none --log-level Warning
}
echo "== start -> READY=1 and idle RSS"
probe one "${mounts[0]}" | tee "$SCRATCH/one.json"
probe all "${mounts[@]}" | tee "$SCRATCH/all.json"
/usr/bin/python3 - "$SCRATCH/one.json" "$SCRATCH/all.json" "$N" <<'PY'
import json, sys
one, all_, n = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
print(f"READY=1 after {one['ready_ms']} ms with 1 filesystem, {all_['ready_ms']} ms with {n}: "
      f"{(all_['ready_ms'] - one['ready_ms']) / (n - 1):.2f} ms per extra filesystem")
print(f"idle RSS {one['vmrss_kb'] / 1024:.1f} MiB with 1, {all_['vmrss_kb'] / 1024:.1f} MiB with {n}: "
      f"{(all_['vmrss_kb'] - one['vmrss_kb']) / (n - 1):.1f} KiB per extra filesystem (anon {(all_['rssanon_kb'] - one['rssanon_kb']) / (n - 1):.1f} KiB)")
PY

echo "== one error on the 1st and on the ${N}th filesystem, alternating, $ROUNDS rounds"
state=$SCRATCH/state-latency
args=()
for m in "${mounts[@]}"; do args+=(-f "$m"); done
"$BIN" run "${args[@]}" --state-dir "$state" --bus "$BUS_ADDRESS" --metrics-listen none --journal no --output none --log-level Warning 2>"$SCRATCH/daemon.log" &
pid=$!; scratch_own $pid
for _ in $(seq 600); do
  busctl --address="$BUS_ADDRESS" status io.github.errorwatch.ErrorWatch1 >/dev/null 2>&1 && break
  kill -0 $pid || { cat "$SCRATCH/daemon.log" >&2; exit 1; }
  sleep 0.1
done
sleep 3
# Warm-up on a filesystem in the middle: JIT of the report path.
"$SCRATCH/bin/trigger" "${triggers[$((N / 2))]}" 20 20000 >/dev/null
sleep 2
mkdir -p "$SCRATCH/first" "$SCRATCH/last"
/usr/bin/python3 benchmarks/tools/store-observer.py "$state" "$SCRATCH/store.txt" >"$SCRATCH/store-observer.out" & scratch_own $!
bench_wait_ready "$SCRATCH/store-observer.out"
for r in $(seq "$ROUNDS"); do
  "$SCRATCH/bin/trigger" "${triggers[0]}" 1 0 >>"$SCRATCH/first/triggers.txt"
  sleep "$(awk -v g="$GAP_MS" 'BEGIN {print g / 1000}')"
  "$SCRATCH/bin/trigger" "${triggers[$((N - 1))]}" 1 0 >>"$SCRATCH/last/triggers.txt"
  sleep "$(awk -v g="$GAP_MS" 'BEGIN {print g / 1000}')"
done
sleep 1
cp "$SCRATCH/store.txt" "$SCRATCH/first/store.txt"; cp "$SCRATCH/store.txt" "$SCRATCH/last/store.txt"
echo "-- 1st filesystem (${devices[0]})"
/usr/bin/python3 benchmarks/tools/latency-report.py "$SCRATCH/first" "${devices[0]}" | grep -v "not measured"
echo "-- ${N}th filesystem (${devices[$((N - 1))]})"
/usr/bin/python3 benchmarks/tools/latency-report.py "$SCRATCH/last" "${devices[$((N - 1))]}" | grep -v "not measured"
echo "filesystems in the shared spill group: $(grep -c 'in the shared group' "$SCRATCH/daemon.log" || true); not watched: $(grep -c 'Not watching' "$SCRATCH/daemon.log" || true)"
echo "daemon with $N filesystems: $(awk '/VmRSS|VmHWM|Threads/{printf "%s %s  ", $1, $2}' /proc/$pid/status), fds $(ls /proc/$pid/fd | wc -l)"
