#!/usr/bin/env bash
# Footprint of `errorwatch run` as deployed, NativeAOT (what ships) side by side with a self-contained
# ReadyToRun build of the same tree and with smartd, in one run. The default outputs are on: journald (a
# private one), the D-Bus service (a private system-like bus), the metrics endpoint; the store in a
# scratch state directory; FILESYSTEMS scratch ext4s watched. Per run of each variant, from
# benchmarks/tools/daemon-probe.py (CLOCK_MONOTONIC, /proc):
#   start -> READY=1     just before fork/exec to the READY=1 datagram (a stand-in NOTIFY_SOCKET)
#   idle                 after WARMUP s (past IdleMemory's 10 s quiet after the start): VmRSS, RssAnon,
#                        RssFile, CPU and wake-ups over IDLE s
#   storm                ERRORS trigger_fs_error writes spread over the FILESYSTEMS (one shell loop each):
#                        peak RSS (sampled every 50 ms, and VmHWM), RSS SETTLE s later, how long until it
#                        was back within 4 MiB of idle, and whether every error was counted (the stored
#                        reports' error counts against the growth of the kernel's errors_count)
#   SIGTERM -> exit      with a shell still raising errors when the signal arrives
# and once per variant what it ships (the publish directory) and the installed size (everything the
# package installs: packaging/install.sh --destdir). smartd (smartmontools, checking nothing: a VM has no SMART device) is the category's
# reference; an AOT app that only sleeps (benchmarks/IdleFloor) is the floor of any .NET process.
#   benchmarks/run-footprint.sh                         # VARIANTS="aot r2r" REPEAT=3
#   VARIANTS=aot REPEAT=1 benchmarks/run-footprint.sh   # just what ships
# Root; private mount namespace (its own /run for journald); removes everything it made. ~12 min.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/lib/scratch.sh
. benchmarks/lib/services.sh
bench_private_namespace "$0" "$@"

VARIANTS=${VARIANTS:-"aot r2r"}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-20}
IDLE=${IDLE:-10}
ERRORS=${ERRORS:-20000}
FILESYSTEMS=${FILESYSTEMS:-4}
SETTLE=${SETTLE:-60}
PORT=${PORT:-19465}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), dotnet $(dotnet --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
scratch_init
# Published into the scratch directory: never the artifacts/ a test run may be using.
aot=$SCRATCH/aot
packaging/publish.sh "$aot" >/dev/null
r2r=$SCRATCH/r2r
dotnet publish src/ErrorWatch.Cli -c Release -r linux-x64 --self-contained -p:PublishAot=false -p:PublishReadyToRun=true \
  --artifacts-path "$SCRATCH/build-r2r" -o "$r2r" -v q --nologo >/dev/null
floor=$SCRATCH/floor
dotnet publish benchmarks/IdleFloor -c Release -r linux-x64 --self-contained -p:PublishAot=true --artifacts-path "$SCRATCH/build-floor" -o "$floor" -v q --nologo >/dev/null

bench_journald
bench_bus

kib() { du -sk --apparent-size "$1" | cut -f1; }
# What the package installs (apparent sizes, as dpkg's Installed-Size): install.sh's tree from the AOT
# publish; for ReadyToRun the same tree with its publish directory in place of the executable.
packaging/install.sh --prefix /usr --destdir "$SCRATCH/stage" --from "$aot" --no-reload >/dev/null
rest_kb=$(( $(kib "$SCRATCH/stage") - $(kib "$aot") ))

for v in $VARIANTS; do
  case $v in
    # AOT_ENV: settings to try on what ships, e.g. AOT_ENV="DOTNET_gcConcurrent=0" (the GC setting before issue 15);
    # AOT_OFF: default outputs turned off, e.g. AOT_OFF="bus journal metrics" (what each one costs).
    aot) exe=$aot/errorwatch envs=(${AOT_ENV:-}) off=" ${AOT_OFF:-} " ;;
    # What the unit set for the ReadyToRun build before NativeAOT shipped: a 4 MiB gen0 budget.
    r2r) exe=$r2r/errorwatch envs=(DOTNET_GCgen0size=0x400000) off=" " ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  dir=$(dirname "$exe")
  echo "{\"label\": \"$v\", \"publish_kb\": $(kib "$dir"), \"publish_files\": $(find "$dir" -type f | wc -l), \"installed_kb\": $(( $(kib "$dir") + rest_kb ))}"
  for r in $(seq "$REPEAT"); do
    args=() triggers=() counts=() devices=()
    for i in $(seq "$FILESYSTEMS"); do
      scratch_ext4 "$v-$r-$i" 32
      args+=(-f "$FS_MNT"); triggers+=("$FS_TRIGGER"); counts+=("$FS_COUNT"); devices+=("$FS_LOOP")
    done
    state=$SCRATCH/state-$v-$r
    per=$((ERRORS / FILESYSTEMS))
    storm=""
    for t in "${triggers[@]}"; do storm+="(for i in \$(seq $per); do echo 1 > $t; done) & "; done
    storm+="wait"
    inflight="for i in \$(seq 30000); do echo 1 > ${triggers[0]}; done"
    before=0; for c in "${counts[@]}"; do before=$((before + $(cat "$c"))); done
    # Once the storm has settled, before SIGTERM and its in-flight errors: the kernel's count of the
    # storm against the error counts of the reports in the store.
    check=$SCRATCH/check-$v-$r.sh
    cat >"$check" <<CHECK
grown=\$(( \$(cat ${counts[*]} | awk '{s += \$1} END {print s}') - $before ))
stored=\$(/usr/bin/python3 benchmarks/tools/store-sum.py $state ${devices[*]} | awk '{for (i = 1; i <= NF; i++) if (\$i ~ /^errors=/) s += substr(\$i, 8)} END {print s + 0}')
echo "{\"errors_count_growth\": \$grown, \"stored\": \$stored}"
CHECK
    env "${envs[@]}" /usr/bin/python3 benchmarks/tools/daemon-probe.py --warmup "$WARMUP" --idle "$IDLE" \
      --storm "$storm" --settle "$SETTLE" --storm-check "bash $check" --in-flight "$inflight" --label "$v run $r" -- \
      "$exe" run "${args[@]}" --state-dir "$state" --bus "$([[ $off == *" bus "* ]] && echo none || echo "$BUS_ADDRESS")" \
      --metrics-listen "$([[ $off == *" metrics "* ]] && echo none || echo "127.0.0.1:$PORT")" \
      --journal "$([[ $off == *" journal "* ]] && echo no || echo yes)" --output none --log-level Warning
  done
done

"$floor/IdleFloor" & fp=$!; scratch_own $fp
sleep 3
echo "{\"label\": \"floor: NativeAOT app that only sleeps\", $(awk '/^(VmRSS|RssAnon|RssFile)/{gsub(":","");printf "\"%s_kb\": %s, ", tolower($1), $2}' /proc/$fp/status) \"threads\": $(ls /proc/$fp/task | wc -l)}"
kill -TERM $fp; wait $fp 2>/dev/null || true

if command -v smartd >/dev/null; then
  # In the foreground, checking nothing (no device answers SMART in a VM): the category's reference.
  smartd -n -q never -i 1800 -s /dev/null -A "$SCRATCH/smartd-" 2>/dev/null & sp=$!; scratch_own $sp
  sleep 2
  if kill -0 $sp 2>/dev/null; then
    echo "{\"label\": \"smartd (reference)\", $(awk '/^(VmRSS|RssAnon|RssFile)/{gsub(":","");printf "\"%s_kb\": %s, ", tolower($1), $2}' /proc/$sp/status) \"threads\": $(ls /proc/$sp/task | wc -l)}"
    kill -TERM $sp; wait $sp 2>/dev/null || true
  else
    echo '{"label": "smartd (reference)", "note": "exited"}'
  fi
else
  echo '{"label": "smartd (reference)", "note": "not installed (apt-get install smartmontools)"}'
fi
