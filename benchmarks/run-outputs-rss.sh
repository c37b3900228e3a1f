#!/usr/bin/env bash
# Resident memory of an idle `errorwatch run` (watching /) with each output on or off, and after
# 200 scrapes of the metrics endpoint. Run as root; needs curl. Usage: benchmarks/run-outputs-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/ErrorWatch.Cli -c Release -v q >/dev/null
exe=src/ErrorWatch.Cli/bin/Release/net10.0/linux-x64/errorwatch
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
port=19464
measure() { # label, args...
  local label=$1; shift
  "$exe" run -f / --state-dir "$state" --journal no --output none --log-level Warning "$@" 2>/dev/null &
  local pid=$!
  sleep 4
  local rss; rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  local scraped=""
  if [[ " $* " == *" --metrics-listen 127.0.0.1:$port "* ]]; then
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/metrics"; done
    scraped=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  fi
  kill -TERM $pid; wait $pid || true
  printf '%-44s %6d KiB%s\n' "$label" "$rss" "${scraped:+, after 200 scrapes $scraped KiB}"
}
measure "no D-Bus, no metrics endpoint" --bus none --metrics-listen none
measure "metrics endpoint on 127.0.0.1" --bus none --metrics-listen 127.0.0.1:$port
if [ -S /run/dbus/system_bus_socket ] || [ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ]; then
  measure "D-Bus service and metrics endpoint" --metrics-listen 127.0.0.1:$port
fi
