#!/usr/bin/env bash
# Parser fuzzing at benchmark scale: the CI test ParserFuzzTests (20,000 seeded inputs) run with
# INPUTS inputs (default 1,000,000). Each input is parsed twice from guarded memory (flush against
# a PROT_NONE page after it and before it: any overread faults and kills the run), checked field
# by field against the reference parser, for zero allocation, and for termination (a watchdog
# fails fast on an input running > 20 s).
#   benchmarks/run-parser-fuzz.sh            # INPUTS=1000000 SEED=20261121
#   INPUTS=5000000 SEED=7 benchmarks/run-parser-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
report=$(mktemp /tmp/errorwatch-fuzz-XXXXXX.txt)
trap 'rm -f "$report"' EXIT
dotnet build tests/ErrorWatch.Tests -c Release -v q >/dev/null
start=$(date +%s)
ERRORWATCH_FUZZ_INPUTS="${INPUTS:-1000000}" ERRORWATCH_FUZZ_SEED="${SEED:-20261121}" ERRORWATCH_FUZZ_REPORT="$report" \
  dotnet test tests/ErrorWatch.Tests -c Release --no-build \
  --filter "FullyQualifiedName~ParserFuzzTests.MutatedAndGeneratedBuffers_HoldEveryPropertyFromGuardedMemory" \
  --logger "console;verbosity=minimal"
echo "== parser fuzz ($(( $(date +%s) - start )) s wall, including test host start)"
cat "$report"
