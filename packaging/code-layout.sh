#!/usr/bin/env bash
# Regenerates src/ErrorWatch.Cli/errorwatch.order, the order in which the NativeAOT compiler lays out
# the executable's methods (IlcOrderFile): the code the daemon runs first, in one stretch, the rest after.
#
# Why: the kernel maps a file-backed page of an executable together with its neighbours (fault-around,
# 64 KiB), so code spread over the whole 8 MiB text keeps nearly all of it resident even though the
# daemon runs a tenth of it. Laid out this way, an idle daemon maps a few MiB of its text instead of
# ~7 (docs/performance.md, footprint). A stale file costs memory, never correctness: names the compiler
# no longer produces are ignored, and methods it does not name are laid out after the ones it does.
#
#   sudo packaging/code-layout.sh          # publishes, profiles, writes the file; commit it with the change
#
# How: the published executable runs under valgrind's callgrind (every executed instruction, all threads)
# through what a deployed daemon does: `errorwatch run` with its default outputs (journald, D-Bus service,
# metrics endpoint) and a hook, on a scratch ext4 (metadata_csum; an inode with a bad checksum read by
# path, trigger_fs_error) and a scratch XFS (forced shutdown), scraped, asked over D-Bus, reloaded with
# SIGHUP, an error storm (5,000 errors), quiet, and stopped with SIGTERM: once started as the unit starts it, once with command-line
# options; then `errorwatch demo` (the decoders on six ext4 and two XFS corruptions). Executed
# addresses are mapped to the symbols in errorwatch.dbg; the file lists those symbols in the order
# they first ran.
# Root (loop devices, mounts, a private journald and bus in a private mount namespace); valgrind,
# mkfs.ext4, debugfs, mkfs.xfs, xfs_io, busctl, curl. About 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
. benchmarks/lib/scratch.sh
. benchmarks/lib/services.sh
bench_private_namespace "$0" "$@"

for tool in valgrind nm mkfs.ext4 debugfs mkfs.xfs xfs_io busctl curl setpriv; do
  command -v "$tool" >/dev/null || { echo "code-layout.sh: $tool is required" >&2; exit 1; }
done
out=src/ErrorWatch.Cli/errorwatch.order
port=19471

scratch_init
publish=$SCRATCH/publish
packaging/publish.sh "$publish" >/dev/null
exe=$publish/errorwatch
symbols=$publish.dbg/errorwatch.dbg

bench_journald
bench_bus
# ext4 with an inode whose checksum is wrong: reading it by path raises EFSBADCRC with its handle.
truncate -s 64M "$SCRATCH/ext4.img"
mkfs.ext4 -q -F -O metadata_csum -L layout "$SCRATCH/ext4.img"
debugfs -w -R "mkdir photos" "$SCRATCH/ext4.img" >/dev/null 2>&1
debugfs -w -R "sif <2> links_count 4" "$SCRATCH/ext4.img" >/dev/null 2>&1
inode=$(debugfs -R "stat photos" "$SCRATCH/ext4.img" 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p')
debugfs -w -R "sif <$inode> checksum 0x1234" "$SCRATCH/ext4.img" >/dev/null 2>&1
FS_LOOP=$(losetup --find --show "$SCRATCH/ext4.img"); SCRATCH_LOOPS+=("$FS_LOOP")
ext4=$SCRATCH/ext4; mkdir -p "$ext4"
mount -o errors=continue "$FS_LOOP" "$ext4"; SCRATCH_MOUNTS+=("$ext4")
trigger=/sys/fs/ext4/$(basename "$FS_LOOP")/trigger_fs_error
truncate -s 320M "$SCRATCH/xfs.img"
mkfs.xfs -q -f "$SCRATCH/xfs.img"
xfs_loop=$(losetup --find --show "$SCRATCH/xfs.img"); SCRATCH_LOOPS+=("$xfs_loop")
xfs=$SCRATCH/xfs; mkdir -p "$xfs"
mount "$xfs_loop" "$xfs"; SCRATCH_MOUNTS+=("$xfs")

# The unit's way: `run --output none`, settings from $CONFIGURATION_DIRECTORY/errorwatch.conf, the
# store in $STATE_DIRECTORY, the system bus from $DBUS_SYSTEM_BUS_ADDRESS (here a private bus).
mkdir -p "$SCRATCH/etc" "$SCRATCH/state-unit" "$SCRATCH/state-cli"
cat >"$SCRATCH/etc/errorwatch.conf" <<CONF
[Watch]
Filesystems=$ext4 $xfs
[Metrics]
Listen=127.0.0.1:$port
[Hook "layout"]
Exec=/bin/true
CONF

# Started with only the capabilities it keeps, so it has nothing to drop and does not execute itself
# again (which valgrind could not follow). env, setpriv and valgrind each execute the next, so the pid
# is the daemon's own (signals reach it).
callgrind() { # name: the valgrind command line that writes $SCRATCH/name.callgrind
  profiled=(setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all,+sys_admin,+dac_read_search,+syslog
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$SCRATCH/$1.callgrind")
}

# A daemon's life under callgrind: start, errors (fs-wide, an inode read by path, an XFS shutdown the
# first time), scrapes, D-Bus calls, SIGHUP, more errors, quiet past IdleMemory.Quiet, SIGTERM.
session() { # name, then the command that starts it
  local name=$1; shift
  (exec "$@" >"$SCRATCH/$name.log" 2>&1) &
  local daemon=$!; scratch_own $daemon
  for _ in $(seq 1200); do
    busctl --address="$BUS_ADDRESS" status io.github.errorwatch.ErrorWatch1 >/dev/null 2>&1 && break
    kill -0 $daemon 2>/dev/null || { cat "$SCRATCH/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 5
  echo "code-layout: $name: daemon up under callgrind; raising errors" >&2
  for _ in $(seq 20); do echo 1 >"$trigger"; done
  ls -l "$ext4/photos" >/dev/null 2>&1 || true
  sleep 5
  [ "$name" = unit ] && { xfs_io -x -c "shutdown" "$xfs" || true; sleep 5; }
  for _ in $(seq 3); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null; done
  curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "http://127.0.0.1:$port/metrics" >/dev/null
  busctl --address="$BUS_ADDRESS" call io.github.errorwatch.ErrorWatch1 /io/github/errorwatch/ErrorWatch1 \
    io.github.errorwatch.ErrorWatch1.Manager GetReports tu 0 100 >/dev/null || true
  busctl --address="$BUS_ADDRESS" tree io.github.errorwatch.ErrorWatch1 >/dev/null || true
  busctl --address="$BUS_ADDRESS" introspect io.github.errorwatch.ErrorWatch1 /io/github/errorwatch/ErrorWatch1 >/dev/null || true
  kill -HUP $daemon
  sleep 5
  for _ in $(seq 20); do echo 1 >"$trigger"; done
  # A storm: the hand-off folds, the journal summarises, D-Bus signals are dropped, and once it is
  # quiet IdleMemory collects and trims; code an idle daemon keeps mapped after its first storm.
  [ "$name" = unit ] && for _ in $(seq 5000); do echo 1 >"$trigger"; done
  sleep 15
  kill -TERM $daemon
  wait $daemon || true
}

callgrind unit
session unit env CONFIGURATION_DIRECTORY="$SCRATCH/etc" STATE_DIRECTORY="$SCRATCH/state-unit" DBUS_SYSTEM_BUS_ADDRESS="$BUS_ADDRESS" \
  "${profiled[@]}" "$exe" run --output none
# The command line an admin or a benchmark uses instead.
callgrind cli
session cli "${profiled[@]}" "$exe" run -f "$ext4" --state-dir "$SCRATCH/state-cli" --bus "$BUS_ADDRESS" \
  --metrics-listen "127.0.0.1:$port" --journal yes --output json --log-level Warning

echo "code-layout: errorwatch demo under callgrind" >&2
callgrind demo
(cd "$SCRATCH" && exec "${profiled[@]}" "$exe" demo >"$SCRATCH/demo.log" 2>&1) || { cat "$SCRATCH/demo.log" >&2; exit 1; }

nm -n -S --defined-only "$symbols" | awk 'NF == 4 && ($3 == "t" || $3 == "T") {print $1, $2, $4}' >"$SCRATCH/symbols"
base=$(printf '%x' 0x108000) # where valgrind loads a position-independent executable
/usr/bin/python3 - "$SCRATCH/symbols" "$exe" "$base" "$SCRATCH/unit.callgrind" "$SCRATCH/cli.callgrind" "$SCRATCH/demo.callgrind" >"$SCRATCH/order" <<'PY'
import bisect, re, sys
symbols_file, exe, base = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
starts, ends, names = [], [], []
for line in open(symbols_file):
    a, s, n = line.split()
    starts.append(int(a, 16)); ends.append(int(a, 16) + max(int(s, 16), 1)); names.append(n)
position = re.compile(r'(0x[0-9a-fA-F]+|[+-]\d+|\*)')
order, seen = [], set()
for profile in sys.argv[4:]:
    objects, current, address = {}, None, 0
    for line in open(profile, errors='replace'):
        if line.startswith(('ob=', 'cob=')):
            key, rest = line.rstrip('\n').split('=', 1)
            m = re.match(r'\((\d+)\)(?: (.*))?', rest)
            if m.group(2): objects[m.group(1)] = m.group(2)
            if key == 'ob': current = objects.get(m.group(1))
            continue
        # Call and jump targets do not move the position; cost lines do (callgrind's relative positions).
        if not line or line[0] not in '0x+-*' or line.startswith(('calls=', 'jump=', 'jcnd=')):
            continue
        token = position.match(line).group(1)
        if token.startswith('0x'): address = int(token, 16)
        elif token != '*': address += int(token)
        # valgrind names the executable for the part of its text it found symbols for, '???' with
        # absolute addresses for the rest.
        if current == exe: at = address
        elif current == '???' and address >= base: at = address - base
        else: continue
        i = bisect.bisect_right(starts, at) - 1
        if i >= 0 and at < ends[i] and names[i] not in seen:
            seen.add(names[i]); order.append(names[i])
print('\n'.join(order))
PY
count=$(wc -l <"$SCRATCH/order")
[ "$count" -gt 1000 ] || { echo "code-layout.sh: only $count symbols executed; the profile failed (see $SCRATCH)" >&2; exit 1; }
{
  echo "# Generated by packaging/code-layout.sh from $(git rev-parse --short HEAD 2>/dev/null || echo a working tree): do not edit."
  cat "$SCRATCH/order"
} >"$out"
echo "code-layout: $count symbols -> $out" >&2
