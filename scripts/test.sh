#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need when missing, then runs every test.
# Run as root: the end-to-end tests loop-mount scratch filesystems of their own (never yours).
set -euo pipefail
cd "$(dirname "$0")/.."

# program -> Debian package. The install test (tests/ErrorWatch.Tests/Install/) builds the .deb
# and its -dbgsym (dpkg-dev, binutils, lintian, man-db), boots a Debian root made once by debootstrap
# with systemd-nspawn (systemd-container; the first debootstrap downloads about 100 MB from the Debian
# mirror) and reads the installed daemon's stack with gdb.
declare -A packages=(
  [mkfs.ext4]=e2fsprogs [debugfs]=e2fsprogs [mkfs.xfs]=xfsprogs
  [losetup]=mount [mount]=mount [blkid]=util-linux [tee]=coreutils [stat]=coreutils
  [xfs_io]=xfsprogs [xfs_db]=xfsprogs [unshare]=util-linux
  [journalctl]=systemd [systemd-analyze]=systemd [/usr/lib/systemd/systemd-journald]=systemd
  [dbus-daemon]=dbus-daemon [busctl]=systemd [gdbus]=libglib2.0-bin [setpriv]=util-linux
  [/usr/lib/polkit-1/polkitd]=polkitd [pkaction]=polkitd [/usr/bin/python3]=python3
  [/usr/bin/prometheus]=prometheus [promtool]=prometheus [curl]=curl
  [dpkg-deb]=dpkg [dpkg-shlibdeps]=dpkg-dev [lintian]=lintian [man]=man-db [gzip]=gzip
  [debootstrap]=debootstrap [systemd-nspawn]=systemd-container [nsenter]=util-linux [flock]=util-linux [strace]=strace
  [gdb]=gdb [readelf]=binutils [objcopy]=binutils
  [mkfs.btrfs]=btrfs-progs [btrfs]=btrfs-progs [fuse2fs]=fuse2fs [truncate]=coreutils
)
missing=()
for program in "${!packages[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$program" >/dev/null 2>&1 || missing+=("${packages[$program]}")
done
# NativeAOT (packaging/publish.sh) links with the C toolchain it finds, clang or else gcc, against
# libc's development files, and splits the symbols off with objcopy (above). .NET 10's runtime pack
# brings its own static zlib, so zlib1g-dev is not needed.
command -v clang >/dev/null || command -v gcc >/dev/null || missing+=(gcc)
dpkg-query -W -f '${Status}' libc6-dev 2>/dev/null | grep -q ' installed$' || missing+=(libc6-dev)
# The D-Bus tests run their clients, stand-in service and notification server with Debian's python3
# and its dbus and gi modules (a python3 earlier on PATH, such as a pyenv shim, usually lacks them).
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import dbus, dbus.mainloop.glib; from gi.repository import GLib' >/dev/null 2>&1 \
  || missing+=(python3-dbus python3-gi)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# libsystemd (sd_journal_sendv, sd_notify) comes with the systemd package; journald needs a machine id.
if [ "$(id -u)" -eq 0 ] && [ ! -s /etc/machine-id ] && command -v systemd-machine-id-setup >/dev/null; then
  systemd-machine-id-setup >/dev/null
fi
if [ "$(id -u)" -eq 0 ] && [ ! -e /dev/loop-control ]; then
  modprobe loop 2>/dev/null || echo "test.sh: no loop devices; the scratch-filesystem tests will be skipped" >&2
fi
command -v dotnet >/dev/null || { echo "test.sh: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }

# What ships is what is tested: the end-to-end tests run this NativeAOT executable
# (tests/ErrorWatch.Tests/ErrorWatchBinary.cs), never the JIT build `dotnet test` makes.
# About a minute and a half from scratch on two cores; seconds when nothing changed.
started=$SECONDS
packaging/publish.sh >/dev/null || { echo "test.sh: packaging/publish.sh failed; the end-to-end tests need its NativeAOT errorwatch" >&2; exit 1; }
echo "test.sh: published the NativeAOT errorwatch in $((SECONDS - started)) s"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# A test that stops finishing for HANG_TIMEOUT (default 15 min, past the install test's boot and
# package build) aborts the run, which names the test that was running, instead of hanging CI.
dotnet test ErrorWatch.sln -c Release --logger "console;verbosity=normal" \
  --blame-hang --blame-hang-timeout "${HANG_TIMEOUT:-15m}" --blame-hang-dump-type none 2>&1 | tee "$log" || status=$?

# One closing line over all test assemblies, in the plain "N passed, N failed, N skipped" form.
read -r passed failed skipped < <(awk '
  /Total tests:/ { block = 1; next }
  block && $1 == "Passed:"  { p += $2 }
  block && $1 == "Failed:"  { f += $2 }
  block && $1 == "Skipped:" { s += $2 }
  block && /Total time:/ { block = 0 }
  END { print p + 0, f + 0, s + 0 }' "$log")
if [ "$skipped" -gt 0 ]; then
  echo "Skipped tests (each says why):"
  grep -E '^\s+Skipped ' "$log" | sed 's/^ */  /' || true
fi
if [ "$failed" -gt 0 ]; then
  # Repeated last, so a CI log that keeps only its tail still names what failed and why.
  echo "Failed tests:"
  awk '/^[[:space:]]+Failed [A-Za-z]/ { show = 1; n = 0 }
       /^[[:space:]]+(Passed|Skipped) [A-Za-z]/ { show = 0 }
       show && n++ < 40 { print "  " $0 }' "$log"
fi
# Where everything can run (root and loop devices, as CI has), a skip is a missing setup step, never a
# pass: only a kernel feature this kernel lacks, named in tests/skip-allowlist.txt, may be skipped.
skips_ok=yes
if [ "$skipped" -gt 0 ] && [ "$(id -u)" -eq 0 ] && [ -e /dev/loop-control ]; then
  scripts/check-skips.sh "$log" tests/skip-allowlist.txt || skips_ok=no
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$skips_ok" = no ]; then
  exit 1
fi
