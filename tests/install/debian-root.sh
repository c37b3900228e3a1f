#!/usr/bin/env bash
# The Debian root the install test boots with systemd-nspawn (tests/ErrorWatch.Tests/Install/):
# made once with debootstrap, kept in /var/cache/errorwatch-test/<suite>, and only ever used as the
# read-only lower layer of an overlay, so runs never change it. Prints its path.
#
#   tests/install/debian-root.sh            ERRORWATCH_TEST_CACHE=/var/cache/errorwatch-test
#                                           ERRORWATCH_TEST_SUITE=bookworm
#                                           ERRORWATCH_DEBIAN_MIRROR=<apt's mirror for the suite>
#
# The first run downloads about 100 MB from the mirror (one minute here); later runs only check
# the stamp. A changed package list (below) makes a new root; concurrent runs wait on a lock.
set -euo pipefail
suite=${ERRORWATCH_TEST_SUITE:-bookworm}
cache=${ERRORWATCH_TEST_CACHE:-/var/cache/errorwatch-test}
# What the test needs in the booted system: systemd as PID 1 with journald and its tools (busctl,
# systemd-analyze), the system bus, polkit (libpam-systemd provides the logind polkitd depends on;
# debootstrap does not resolve that alternative itself), curl for the metrics endpoint. Nothing
# of ErrorWatch's own dependencies beyond what a minimal Debian has: the package must bring them.
include=systemd,dbus,libpam-systemd,polkitd,curl,ca-certificates,procps
key="$suite minbase $include 1"

if [ -z "${ERRORWATCH_DEBIAN_MIRROR:-}" ]; then
  # The mirror apt already uses for this suite, else Debian's redirector.
  ERRORWATCH_DEBIAN_MIRROR=$(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' 2>/dev/null \
    | awk -v s="$suite" '$2 == s && $3 == "main" { print $1; exit }')
  ERRORWATCH_DEBIAN_MIRROR=${ERRORWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
fi
root=$cache/$suite
mkdir -p "$cache"
exec 9>"$cache/$suite.lock"
flock 9
if [ -f "$root/.errorwatch-root" ] && [ "$(cat "$root/.errorwatch-root")" = "$key" ]; then
  echo "$root"
  exit 0
fi

new=$cache/$suite.new
rm -rf "$new"
log=$cache/$suite.debootstrap.log
echo "debian-root.sh: debootstrap $suite from $ERRORWATCH_DEBIAN_MIRROR into $root (log: $log)" >&2
if ! debootstrap --variant=minbase --include="$include" "$suite" "$new" "$ERRORWATCH_DEBIAN_MIRROR" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  rm -rf "$new"
  echo "debian-root.sh: debootstrap failed (needs the mirror above; see $log)" >&2
  exit 1
fi
# The downloaded .debs are not needed again.
rm -f "$new"/var/cache/apt/archives/*.deb
echo "$key" > "$new/.errorwatch-root"
rm -rf "$root"
mv "$new" "$root"
echo "$root"
