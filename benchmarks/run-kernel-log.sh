#!/usr/bin/env bash
# What reading the kernel log from the journal costs next to /dev/kmsg (issue 15: the unit's
# ProtectKernelLogs=yes leaves the daemon only the journal's copy of the kernel's lines).
# In a private mount namespace: a private systemd-journald with Storage=persistent on a scratch
# /var/log/journal (JOURNAL_MB of entries in files of FILE_MB, KERNEL_LINES /dev/kmsg lines written
# among them so that kernel entries are spread over every file, as on a long-running machine) that
# also reads the real /dev/kmsg, a private bus, the metrics endpoint: the default outputs, as
# run-footprint.sh has them. Then `errorwatch run` (NativeAOT) watching one scratch ext4, once per
# source: kmsg (/dev/kmsg readable), journal (/dev/kmsg masked for the daemon only, as
# ProtectKernelLogs=yes masks it; journald keeps the descriptor it opened before), none
# (--no-kernel-log). Per run, from tools/daemon-probe.py after WARMUP s: VmRSS, RssAnon, RssFile,
# wake-ups over IDLE s; and from /proc/PID/smaps the resident pages of the journal files' mappings,
# and the descriptors on them.
#   benchmarks/run-kernel-log.sh                               # JOURNAL_MB=256 FILE_MB=32 KERNEL_LINES=100 REPEAT=3
#   BIN=artifacts/publish/linux-x64/errorwatch REPEAT=1 benchmarks/run-kernel-log.sh
# Root; removes everything it made. Writes KERNEL_LINES harmless "errorwatch-bench" lines to /dev/kmsg
# (user space's, never trusted), which push as many of the oldest lines out of the kernel's ring:
# keep it small on a machine where others read the ring. ~4 minutes, docs/performance.md has a run.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib/scratch.sh
. benchmarks/lib/services.sh
bench_private_namespace "$0" "$@"

JOURNAL_MB=${JOURNAL_MB:-256}
FILE_MB=${FILE_MB:-32}
KERNEL_LINES=${KERNEL_LINES:-100}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-15}
IDLE=${IDLE:-10}
SOURCES=${SOURCES:-"kmsg journal none"}
PORT=${PORT:-$((20000 + RANDOM % 20000))}

scratch_init
if [ -z "${BIN:-}" ]; then
  packaging/publish.sh "$SCRATCH/aot" >/dev/null
  BIN=$SCRATCH/aot/errorwatch
fi

# journald on a private /run (bench_journald), persistent on a scratch /var/log/journal, flushed
# there from the start, no rate limit (the fill is one client), reading /dev/kmsg.
mkdir -p "$SCRATCH/var-log-journal"
mount --bind "$SCRATCH/var-log-journal" /var/log/journal
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
touch /run/systemd/journal/flushed
cat >/run/systemd/journald.conf.d/bench.conf <<CONF
[Journal]
Storage=persistent
SystemMaxFileSize=${FILE_MB}M
SystemMaxUse=$((JOURNAL_MB * 4))M
RateLimitBurst=0
ReadKMsg=yes
ForwardToSyslog=no
ForwardToWall=no
ForwardToKMsg=no
ForwardToConsole=no
CONF
SYSTEMD_LOG_TARGET=console /usr/lib/systemd/systemd-journald >"$SCRATCH/journald.log" 2>&1 &
JOURNALD_PID=$!; scratch_own $JOURNALD_PID
for _ in $(seq 150); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
bench_bus

# ~300 bytes per entry in the file: lines of a service, with a kernel line every so often.
lines_per_mb=3500
chunk=$(( JOURNAL_MB * lines_per_mb / KERNEL_LINES ))
python3 - "$KERNEL_LINES" "$chunk" <<'PY' | systemd-cat -t errorwatch-bench-fill
import sys
kernel, chunk = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
for k in range(kernel):
    for i in range(chunk):
        out.write(f"fill line {k}.{i}: some service says something of ordinary length, as services do\n")
    out.flush()
    # A fresh descriptor per line: /dev/kmsg rate-limits writes per open file.
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(f"<6>errorwatch-bench {k}: a kernel line among the fill\n")
PY
sleep 2
journal_dir=$(ls -d /var/log/journal/*/ | head -1)
journal_kb() { du -sk "$journal_dir" | cut -f1; }
echo "{\"journal\": \"$journal_dir\", \"journal_kb\": $(journal_kb), \"files\": $(ls "$journal_dir" | wc -l), \"kernel_entries_this_boot\": $(journalctl -D "$journal_dir" -k -b -q --no-pager | wc -l)}"

scratch_ext4 watched 32
# samples: descriptors on journal files; resident kB of the journal files' mappings (smaps)
journal_fds='ls -l /proc/PID/fd | grep -c "\.journal" || true'
journal_rss="awk '/\\.journal/ {j = 1; next} /^[0-9a-f]+-[0-9a-f]+ / {j = 0} j && /^Rss:/ {s += \$2} END {print s + 0}' /proc/PID/smaps"
for r in $(seq "$REPEAT"); do
  for source in $SOURCES; do
    extra=()
    case $source in
      kmsg) ;;
      journal)
        # What ProtectKernelLogs=yes does: an inaccessible node over /dev/kmsg, for the daemon only.
        mknod "$SCRATCH/kmsg-gone" c 0 0 2>/dev/null || true
        chmod 0 "$SCRATCH/kmsg-gone"
        mount --bind "$SCRATCH/kmsg-gone" /dev/kmsg ;;
      none) extra=(--no-kernel-log) ;;
    esac
    out=$(/usr/bin/python3 benchmarks/tools/daemon-probe.py --warmup "$WARMUP" --idle "$IDLE" --label "$source run $r" \
      --sample "$journal_fds" --sample "$journal_rss" -- \
      "$BIN" run -f "$FS_MNT" --state-dir "$SCRATCH/state-$source-$r" --bus "$BUS_ADDRESS" --metrics-listen "127.0.0.1:$PORT" \
      --journal yes --output none --log-level Warning "${extra[@]}")
    [ "$source" = journal ] && umount /dev/kmsg
    echo "$out"
  done
done
