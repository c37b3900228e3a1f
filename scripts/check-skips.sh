#!/usr/bin/env bash
# Fails when a test was skipped for a reason the allow-list does not name:
#   scripts/check-skips.sh TEST_LOG [ALLOW_LIST]     (default tests/skip-allowlist.txt)
# TEST_LOG is `dotnet test --logger "console;verbosity=normal"` output, where xUnit prints a skipped
# test as "<name> [SKIP]" and its reason on the next line. Prints every skip with its verdict; exit 0
# when each reason contains an allow-listed phrase (or nothing was skipped), 1 otherwise.
set -euo pipefail
log=$1
allow=${2:-"$(dirname "$0")/../tests/skip-allowlist.txt"}
[ -r "$log" ] || { echo "check-skips.sh: cannot read the test log $log" >&2; exit 2; }
[ -r "$allow" ] || { echo "check-skips.sh: cannot read the allow-list $allow" >&2; exit 2; }
awk -v allow="$allow" '
  BEGIN {
    while ((getline line < allow) > 0) {
      sub(/^[ \t]+/, "", line); sub(/[ \t\r]+$/, "", line)
      if (line != "" && line !~ /^#/) phrases[++n] = line
    }
  }
  # "[xUnit.net 00:00:00.58]     Name [SKIP]" then "[xUnit.net 00:00:00.58]       reason"
  pending != "" {
    reason = $0; sub(/^\[xUnit\.net [^]]*\][ \t]*/, "", reason)
    ok = 0
    for (i = 1; i <= n; i++) if (index(reason, phrases[i]) > 0) ok = 1
    printf "  %s %s: %s\n", ok ? "allowed:  " : "NOT ALLOWED:", pending, reason
    if (!ok) bad++
    skipped++
    pending = ""
    next
  }
  /\[SKIP\][ \t\r]*$/ {
    pending = $0; sub(/^\[xUnit\.net [^]]*\][ \t]*/, "", pending); sub(/[ \t]*\[SKIP\][ \t\r]*$/, "", pending)
  }
  END {
    if (skipped == 0) { print "check-skips.sh: nothing skipped"; exit 0 }
    if (bad > 0) { printf "check-skips.sh: %d of %d skipped test(s) skipped for a reason tests/skip-allowlist.txt does not name\n", bad, skipped; exit 1 }
    printf "check-skips.sh: %d skipped test(s), each for an allow-listed kernel feature\n", skipped
  }' "$log"
