#!/usr/bin/env bash
# The self-contained ReadyToRun errorwatch that every install path ships (the .deb, install.sh and
# the container image): `packaging/publish.sh [OUTPUT_DIR]`, default artifacts/publish/linux-x64/.
# Needs the .NET 10 SDK; the result runs without a .NET installation.
#
# Not trimmed: Serilog 3.1 reports trim warnings (IL2104) that the build treats as errors, and its
# reflection paths would go untested. Trimmed it would be 42 MB instead of 110 MB (docs/operations.md).
# The build happens under artifacts/build/ (--artifacts-path), apart from the bin/ and obj/ of
# `dotnet build` and `dotnet test`, so publishing never disturbs a test build and vice versa.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/publish/linux-x64}

command -v dotnet >/dev/null || { echo "publish.sh: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
rm -rf "$out"
dotnet publish src/ErrorWatch.Cli -c Release -r linux-x64 --self-contained \
  -p:PublishReadyToRun=true --artifacts-path artifacts/build -o "$out" --nologo -v quiet >&2
# The LTTng tracepoint provider links liblttng-ust, which nothing here depends on; without the file
# the runtime simply runs without LTTng tracing (EventPipe, dotnet-trace and dotnet-dump still work).
rm -f "$out/libcoreclrtraceptprovider.so"
[ -x "$out/errorwatch" ] || { echo "publish.sh: $out/errorwatch was not produced" >&2; exit 1; }
echo "$out"
