#!/usr/bin/env bash
# Regenerates docs/reliability.md: runs the fault tests (tests/ErrorWatch.Tests/Faults: the real
# daemon, every output on, faults injected while errors flow), the hostile-input tests (parser
# fuzzing at benchmark scale, malformed buffers, bad configuration, hostile names, hostile D-Bus
# callers) and the privilege tests, then writes the summary table from what they recorded.
#   sudo tests/faults/run.sh                   # FUZZ_INPUTS=1000000
#   FUZZ_INPUTS=20000 sudo tests/faults/run.sh # quicker
# Needs what scripts/test.sh installs (root, loop devices, journald, dbus-daemon, strace).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/errorwatch-reliability-XXXXXX)
trap 'rm -rf "$work"' EXIT
export ERRORWATCH_RELIABILITY_RESULTS="$work/faults.jsonl"
export ERRORWATCH_FUZZ_INPUTS="${FUZZ_INPUTS:-1000000}" ERRORWATCH_FUZZ_SEED="${FUZZ_SEED:-20261121}" ERRORWATCH_FUZZ_REPORT="$work/fuzz.txt"
: > "$ERRORWATCH_RELIABILITY_RESULTS"
# The fault tests run the daemon that ships: the NativeAOT publish (tests/ErrorWatch.Tests/ErrorWatchBinary.cs).
packaging/publish.sh >/dev/null
dotnet build tests/ErrorWatch.Tests -c Release -v q >/dev/null
classes=(Faults.FaultTests Kernel.ParserFuzzTests Kernel.ParserPropertyTests Kernel.MalformedBufferTests Kernel.SyntheticBufferTests
  Watching.SpillGroupDispatchTests Watching.GroupLimitTests
  Service.ConfigurationLoaderTests Service.CheckConfigCommandTests EndToEnd.HostileNameTests
  DBus.BusLimitsTests DBus.ReportIdsTests DBus.BusStringTests DBus.BusPolicyTests
  Service.PrivilegeTests Recovery.HookSafetyTests Store.ReportStoreTests Store.DeliveryCursorTests Journal.JournalSinkTests)
filter=$(printf 'FullyQualifiedName~ErrorWatch.Tests.%s.|' "${classes[@]}")
status=0
dotnet test tests/ErrorWatch.Tests -c Release --no-build --filter "${filter%|}" \
  --logger "trx;LogFileName=$work/results.trx" --logger "console;verbosity=minimal" || status=$?
python3 tests/faults/reliability.py "$work/faults.jsonl" "$work/results.trx" "$work/fuzz.txt" > docs/reliability.md
echo "docs/reliability.md written (tests exit $status)"
exit $status
