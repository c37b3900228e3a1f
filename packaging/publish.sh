#!/usr/bin/env bash
# The NativeAOT errorwatch that every install path ships (the .deb, install.sh, the container image)
# and that the end-to-end tests run: `packaging/publish.sh [OUTPUT_DIR]`, default
# artifacts/publish/linux-x64/. One executable, no .NET runtime needed (it links libc and libm;
# libsystemd.so.0 is loaded when first used). Its DWARF debug symbols go beside the output
# directory, to OUTPUT_DIR.dbg/errorwatch.dbg (found by the executable's build id, or by the name in
# its .gnu_debuglink): the Debian package ships them as errorwatch-dbgsym (docs/operations.md, Crashes).
# Needs the .NET 10 SDK and a C toolchain (clang or gcc; NativeAOT links with it).
# The build happens under artifacts/build/ (--artifacts-path), apart from the bin/ and obj/ of
# `dotnet build` and `dotnet test`, so publishing never disturbs a test build and vice versa.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-artifacts/publish/linux-x64}
symbols=$out.dbg

command -v dotnet >/dev/null || { echo "publish.sh: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
rm -rf "$out" "$symbols"
dotnet publish src/ErrorWatch.Cli -c Release -r linux-x64 \
  --artifacts-path artifacts/build -o "$out" --nologo -v quiet >&2
[ -x "$out/errorwatch" ] || { echo "publish.sh: $out/errorwatch was not produced" >&2; exit 1; }
mkdir -p "$symbols"
# The symbols ILC split off (the executable is stripped and names them in .gnu_debuglink).
mv "$out/errorwatch.dbg" "$symbols/errorwatch.dbg"
# Project references' PDBs (managed symbols) mean nothing to a native executable.
rm -f "$out"/*.pdb
[ "$(ls -A "$out")" = errorwatch ] || { echo "publish.sh: $out holds more than errorwatch: $(ls "$out")" >&2; exit 1; }
echo "$out"
