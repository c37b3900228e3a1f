#!/usr/bin/env bash
# Idle cost of the native health stage: CPU time and wakeups of the errorwatch-health thread over a
# fixed window, on one scratch ext4 and one scratch XFS, with the default 30 s check interval and
# with a 1 s interval (to show the cost per check). Root; creates and removes its own loop devices.
set -euo pipefail
cd "$(dirname "$0")/.."
WINDOW=${WINDOW:-30}
BIN=${BIN:-src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch}
dotnet build src/ErrorWatch.Cli -c Release -v q >/dev/null
DIR=$(mktemp -d /tmp/errorwatch-idle-XXXXXX)
E=""; X=""
cleanup() {
  umount "$DIR/e" 2>/dev/null || true; umount "$DIR/x" 2>/dev/null || true
  [ -n "$E" ] && losetup -d "$E" 2>/dev/null || true
  [ -n "$X" ] && losetup -d "$X" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
truncate -s 64M "$DIR/e.img"; mkfs.ext4 -q -F "$DIR/e.img"
truncate -s 2G "$DIR/x.img"; mkfs.xfs -q -f -d agcount=16 "$DIR/x.img"
E=$(losetup -f --show "$DIR/e.img"); mkdir "$DIR/e"; mount -o errors=continue "$E" "$DIR/e"
X=$(losetup -f --show "$DIR/x.img"); mkdir "$DIR/x"; mount "$X" "$DIR/x"
tick=$(getconf CLK_TCK)
for interval in ${INTERVALS:-30 1}; do
  "$BIN" run --output none -f "$DIR/e" -f "$DIR/x" --state-dir "$DIR/state" --check-interval "$interval" 2>/dev/null &
  pid=$!
  sleep ${WARMUP:-3} # startup (JIT, first checks) is not idle
  tid=$(grep -l errorwatch-heal /proc/$pid/task/*/comm | head -1 | cut -d/ -f5)
  declare -A before=()
  for t in /proc/$pid/task/*; do before[$(basename $t)]=$(awk '{print $14+$15}' $t/stat); done
  read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
  read -r hu0 hs0 < <(awk '{print $14, $15}' /proc/$pid/task/$tid/stat)
  c0=$(awk '/^voluntary_ctxt_switches/{print $2}' /proc/$pid/task/$tid/status)
  sleep "$WINDOW"
  read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
  read -r hu1 hs1 < <(awk '{print $14, $15}' /proc/$pid/task/$tid/stat)
  c1=$(awk '/^voluntary_ctxt_switches/{print $2}' /proc/$pid/task/$tid/status)
  rss=$(awk '/^VmRSS/{print $2}' /proc/$pid/status)
  busy=""
  for t in /proc/$pid/task/*; do
    n=$(basename $t); d=$(( $(awk '{print $14+$15}' $t/stat) - ${before[$n]:-0} ))
    [ "$d" -gt 0 ] && busy="$busy $(cat $t/comm | tr ' ' _)=$((d*1000/tick))ms"
  done
  kill -TERM $pid; wait $pid || true
  echo "check-interval=${interval}s window=${WINDOW}s: process cpu=$(( (u1+s1-u0-s0)*1000/tick )) ms, health thread cpu=$(( (hu1+hs1-hu0-hs0)*1000/tick )) ms, health thread wakeups=$((c1-c0)), rss=${rss} kB; threads with cpu:${busy:- none}"
done
