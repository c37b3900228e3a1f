#!/usr/bin/env bash
# Event parser vs the plain-C reference loop, same machine, same run.
#   benchmarks/run-parser-bench.sh [extra BenchmarkDotNet args]
# Builds shared/anchors/fanotify-walk.c, runs it on every fixture, then runs the BenchmarkDotNet
# parser benchmarks in Release (which first check that the C# walk yields the same events,
# error_count sum and checksum as the C program, and hard-fail if not), and prints both side by side.
# Environment: ERRORWATCH_FIXTURES (default <repo>/../shared/fixtures/fanotify),
#              ERRORWATCH_SHARED (default <repo>/../shared), FANOTIFY_WALK (default /tmp/fanotify-walk),
#              WALK_EVENTS (events the C loop walks per trial, default 12000000).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
shared="${ERRORWATCH_SHARED:-$repo/../shared}"
fixtures="${ERRORWATCH_FIXTURES:-$shared/fixtures/fanotify}"
anchor="$shared/anchors/fanotify-walk.c"
walk="${FANOTIFY_WALK:-/tmp/fanotify-walk}"
walk_events="${WALK_EVENTS:-12000000}"

[ -d "$fixtures" ] || { echo "fixtures not found: $fixtures (set ERRORWATCH_FIXTURES)" >&2; exit 1; }
[ -f "$anchor" ] || { echo "C anchor not found: $anchor (set ERRORWATCH_SHARED)" >&2; exit 1; }
fixtures="$(cd "$fixtures" && pwd)"
shopt -s nullglob
bins=("$fixtures"/*.bin)
[ ${#bins[@]} -gt 0 ] || { echo "no .bin fixtures in $fixtures" >&2; exit 1; }

echo "== machine"
echo "nproc: $(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel: $(uname -r)"
echo "dotnet: $(dotnet --version)"
echo "cc: $(cc --version | head -1)"

echo "== C reference: cc -O2 -o $walk $anchor"
cc -O2 -o "$walk" "$anchor"

mkdir -p BenchmarkDotNet.Artifacts
c_results="$repo/BenchmarkDotNet.Artifacts/fanotify-walk-results.txt"
: > "$c_results"
for f in "${bins[@]}"; do
	name="$(basename "$f")"
	# Same number of events per trial for every fixture (the C default of 20000 rounds makes a
	# one-event buffer a ~0.1 ms trial, too short to time well).
	events="$("$walk" "$f" 1 | sed -n 's/.*events=\([0-9]*\).*/\1/p')"
	rounds=$(( walk_events / (events > 0 ? events : 1) ))
	[ "$rounds" -ge 20000 ] || rounds=20000
	line="$("$walk" "$f" "$rounds")"
	printf '%s %s rounds=%s\n' "$name" "$line" "$rounds" | tee -a "$c_results"
done

echo "== C# (BenchmarkDotNet, Release)"
export ERRORWATCH_FIXTURES="$fixtures" FANOTIFY_WALK="$walk" ERRORWATCH_C_RESULTS="$c_results"
if [ $# -eq 0 ]; then set -- --filter '*'; fi
dotnet run -c Release --project benchmarks/ErrorWatch.Benchmarks -- "$@"
