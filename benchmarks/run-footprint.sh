#!/usr/bin/env bash
# Footprint of an idle `errorwatch run` watching one scratch ext4 (D-Bus, metrics endpoint, journal and
# stdout off unless a variant says otherwise), for each way of building it and each runtime knob:
#   start -> READY=1 (stand-in NOTIFY_SOCKET), idle RSS (VmRSS, RssAnon, RssFile, RssShmem) and CPU and
#   wakeups over an idle window, SIGTERM -> exit with errors still being raised (trigger_fs_error),
# all from benchmarks/tools/daemon-probe.py (CLOCK_MONOTONIC, /proc). Root; one scratch ext4 of its own.
#   benchmarks/run-footprint.sh                  # every variant, IDLE=10 s each
#   VARIANTS="adopted" IDLE=60 benchmarks/run-footprint.sh
#   REPEAT=3 ...                                 # each variant 3 times (start-up times vary)
# Publishes into artifacts/footprint/<variant>/ (git-ignored). Reference: smartd (smartmontools), if it runs here.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
. benchmarks/lib/scratch.sh
IDLE=${IDLE:-10}
WARMUP=${WARMUP:-5}
REPEAT=${REPEAT:-1}
VARIANTS=${VARIANTS:-"build build+pgo0 build+tc0 build+gen0 build+hardlimit build+wx0 r2r r2r+trim r2r+composite+trim r2r+tc0 adopted adopted+wx0 adopted+all with-outputs"}

publish() { # dir, extra publish properties...
  local dir=$1; shift
  [ -x "$dir/errorwatch" ] && [ -z "${REPUBLISH:-}" ] && return
  echo "publishing $dir ($*)" >&2
  dotnet publish src/ErrorWatch.Cli -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true "$@" -o "$dir" -v q >&2
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), dotnet $(dotnet --version)"
dotnet build src/ErrorWatch.Cli -c Release -v q >/dev/null
build=src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch
publish artifacts/footprint/r2r
# Serilog 3.1 reports trim warnings (reflection in {@x} destructuring, which ErrorWatch does not use):
# trimming is measured here, not adopted (see docs/performance.md).
publish artifacts/footprint/r2r-trim -p:PublishTrimmed=true -p:TreatWarningsAsErrors=false
publish artifacts/footprint/r2r-composite-trim -p:PublishTrimmed=true -p:PublishReadyToRunComposite=true -p:TreatWarningsAsErrors=false

scratch_init
# What deploy/systemd/errorwatch.service sets (see its comments): a 4 MiB gen0 budget.
adopted_env=(DOTNET_GCgen0size=0x400000)

n=0
for v in $VARIANTS; do
  for r in $(seq "$REPEAT"); do
    # A fresh filesystem and state directory each time: errors raised for the previous run's
    # SIGTERM would otherwise be history reported (and JIT-compiled for) during this run's idle window.
    n=$((n + 1))
    scratch_ext4 "footprint$n" 32
    args=(run -f "$FS_MNT" --state-dir "$SCRATCH/state$n" --journal no --output none --bus none --metrics-listen none --log-level Warning)
    inflight="for i in \$(seq 30000); do echo 1 > $FS_TRIGGER; done"
    envs=() exe=$build
    case $v in
      build) ;;
      build+pgo0) envs=(DOTNET_TieredPGO=0) ;;
      build+tc0) envs=(DOTNET_TieredCompilation=0) ;;
      build+gen0) envs=(DOTNET_GCgen0size=0x400000) ;;
      build+hardlimit) envs=(DOTNET_GCHeapHardLimit=0x2000000) ;;
      build+wx0) envs=(DOTNET_EnableWriteXorExecute=0) ;;
      r2r) exe=artifacts/footprint/r2r/errorwatch ;;
      r2r+trim) exe=artifacts/footprint/r2r-trim/errorwatch ;;
      r2r+composite+trim) exe=artifacts/footprint/r2r-composite-trim/errorwatch ;;
      r2r+tc0) exe=artifacts/footprint/r2r/errorwatch envs=(DOTNET_TieredCompilation=0) ;;
      adopted) exe=artifacts/footprint/r2r/errorwatch envs=("${adopted_env[@]}") ;;
      adopted+wx0) exe=artifacts/footprint/r2r/errorwatch envs=("${adopted_env[@]}" DOTNET_EnableWriteXorExecute=0) ;;
      adopted+all) exe=artifacts/footprint/r2r-composite-trim/errorwatch envs=("${adopted_env[@]}" DOTNET_EnableWriteXorExecute=0 DOTNET_GCHeapHardLimit=0x2000000) ;;
      with-outputs) exe=artifacts/footprint/r2r/errorwatch envs=("${adopted_env[@]}") ;;
      *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
    a=("${args[@]}")
    [ "$v" = with-outputs ] && a=(run -f "$FS_MNT" --state-dir "$SCRATCH/state$n" --journal no --output none --bus none --metrics-listen 127.0.0.1:19465 --log-level Warning)
    env "${envs[@]}" /usr/bin/python3 benchmarks/tools/daemon-probe.py --warmup "$WARMUP" --idle "$IDLE" \
      --in-flight "$inflight" --label "$v${envs:+ (${envs[*]})}" -- "$exe" "${a[@]}"
  done
done

# The floor of any .NET process here: an app that only sleeps (benchmarks/IdleFloor), run the same ways.
dotnet build benchmarks/IdleFloor -c Release -v q -o artifacts/footprint/floor-build >/dev/null
dotnet publish benchmarks/IdleFloor -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -p:PublishTrimmed=true -o artifacts/footprint/floor-r2r-trim -v q >/dev/null
for floor in floor-build floor-r2r-trim; do
  artifacts/footprint/$floor/IdleFloor & fp=$!; scratch_own $fp
  sleep 3
  echo "{\"label\": \"$floor: .NET app that only sleeps\", $(awk '/^(VmRSS|RssAnon|RssFile|RssShmem)/{gsub(":","");printf "\"%s_kb\": %s, ", tolower($1), $2}' /proc/$fp/status) \"threads\": $(ls /proc/$fp/task | wc -l)}"
  kill -TERM $fp; wait $fp 2>/dev/null || true
done

if command -v smartd >/dev/null; then
  # smartd in the foreground, checking nothing (no device answers SMART in a VM): the category's floor.
  smartd -n -q never -i 1800 -s /dev/null -A "$SCRATCH/smartd-" 2>/dev/null & sp=$!; scratch_own $sp
  sleep 2
  if kill -0 $sp 2>/dev/null; then
    echo "{\"label\": \"smartd (reference)\", \"vmrss_kb\": $(awk '/VmRSS/{print $2}' /proc/$sp/status)}"
    kill -TERM $sp; wait $sp 2>/dev/null || true
  else
    echo '{"label": "smartd (reference)", "note": "exited (no SMART device here)"}'
  fi
fi
