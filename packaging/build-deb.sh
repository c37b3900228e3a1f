#!/usr/bin/env bash
# Builds the Debian packages with dpkg-deb (no debhelper, no network beyond NuGet for the publish):
#
#   packaging/build-deb.sh [--from PUBLISH_DIR]
#
#   artifacts/errorwatch_<version>_amd64.deb         the program (one NativeAOT executable), unit, bus,
#                                                     polkit and catalog files, docs, man page
#   artifacts/errorwatch-dbgsym_<version>_amd64.deb  its DWARF symbols, as dh_strip makes them: one file,
#                                                     /usr/lib/debug/.build-id/<xx>/<rest>.debug, found
#                                                     by the executable's build id (gdb, coredumpctl, perf)
#
# The version is <Version> in Directory.Build.props (override: ERRORWATCH_VERSION). The file layout
# is packaging/install.sh --prefix /usr; this script adds what makes it a Debian package: control
# (Depends from dpkg-shlibdeps, plus libsystemd0, which the daemon loads at run time), conffiles,
# md5sums, the maintainer scripts in packaging/debian/, copyright and changelog. --from takes
# packaging/publish.sh's output directory; the symbols are in PUBLISH_DIR.dbg/errorwatch.dbg beside it.
# Needs: the .NET 10 SDK and a C toolchain (unless --from), dpkg-deb and dpkg-shlibdeps (dpkg-dev),
# readelf (binutils), python3, gzip. Prints the path of each package, the program's last.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

from=
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    --from=*) from=${1#*=}; shift ;;
    *) echo "build-deb.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps readelf python3 gzip md5sum; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is required (Debian: apt-get install dpkg-dev binutils python3)" >&2; exit 1; }
done

version=${ERRORWATCH_VERSION:-$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -n 1)}
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "build-deb.sh: bad version '$version'" >&2; exit 1; }
arch=amd64
maintainer='ErrorWatch maintainers <maintainers@errorwatch.invalid>'
work=artifacts/deb
stage=$work/errorwatch_${version}_$arch
dbgstage=$work/errorwatch-dbgsym_${version}_$arch
deb=artifacts/errorwatch_${version}_$arch.deb
dbgdeb=artifacts/errorwatch-dbgsym_${version}_$arch.deb
# Reproducible timestamps: the last commit's time, as for the man page.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

if [ -z "$from" ]; then
  from=artifacts/publish/linux-x64
  packaging/publish.sh "$from" >/dev/null
fi
from=${from%/}
symbols=$from.dbg/errorwatch.dbg
[ -f "$symbols" ] || { echo "build-deb.sh: no $symbols beside $from (packaging/publish.sh puts the symbols there)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$stage/DEBIAN" "$dbgstage/DEBIAN"
packaging/install.sh --prefix /usr --destdir "$stage" --from "$from" --no-reload >/dev/null

doc=$stage/usr/share/doc/errorwatch
install -m 644 packaging/debian/copyright "$doc/copyright"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "errorwatch ($version) unstable; urgency=medium"
  echo
  echo "  * Package built by packaging/build-deb.sh from commit $commit."
  echo
  echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"

# The one ELF file's shared-library dependencies (libc6), found the Debian way. It loads
# libsystemd.so.0 (journal, sd-bus) with dlopen, which dpkg-shlibdeps cannot see; and
# libssl.so.3 the same way, only for OTLP over https, hence a Suggests.
exe=$repo/$stage/usr/lib/errorwatch/errorwatch
shlibs=$work/shlibs
mkdir -p "$shlibs/debian"
printf 'Source: errorwatch\n\nPackage: errorwatch\nArchitecture: %s\n' "$arch" > "$shlibs/debian/control"
if ! depends=$(cd "$shlibs" && dpkg-shlibdeps -O "-e$exe" 2>"$repo/$work/shlibdeps.log"); then
  cat "$work/shlibdeps.log" >&2
  exit 1
fi
depends=${depends#shlibs:Depends=}
depends="$depends, libsystemd0 (>= 252)"

# Debian's dbgsym layout (dh_strip): the symbols under the executable's GNU build id, where gdb,
# systemd-coredump, elfutils and perf look them up. ILC split them off already (only the debug
# sections, zlib-compressed); they must belong to exactly this executable.
build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/^ *Build ID: \([0-9a-f]*\)$/\1/p'; }
id=$(build_id "$exe")
[[ "$id" =~ ^[0-9a-f]{40}$ ]] || { echo "build-deb.sh: $exe has no GNU build id" >&2; exit 1; }
[ "$(build_id "$symbols")" = "$id" ] || { echo "build-deb.sh: $symbols is not the symbols of $exe (build id $id)" >&2; exit 1; }
install -d -m 755 "$dbgstage/usr/lib/debug/.build-id/${id:0:2}" "$dbgstage/usr/share/doc"
install -m 644 "$symbols" "$dbgstage/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
# As dh_installdocs makes it for -dbgsym packages: the program's copyright and changelog.
ln -s errorwatch "$dbgstage/usr/share/doc/errorwatch-dbgsym"

# Installed-Size: KiB of apparent size (dpkg-gencontrol counts about the same).
size() { du -sk --apparent-size --exclude=DEBIAN "$1" | cut -f1; }
cat > "$stage/DEBIAN/control" <<EOF
Package: errorwatch
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(size "$stage")
Depends: $depends
Recommends: dbus
Suggests: polkitd, libssl3
Section: admin
Priority: optional
Description: reports filesystem corruption as it happens
 ErrorWatch is a daemon that places a FAN_FS_ERROR fanotify mark on every ext4
 and XFS filesystem, reconciles what the kernel announces with each
 filesystem's own error record, and turns every error into one structured
 report: which filesystem, which file, which error, how many.
 .
 Reports are stored, logged to the journal (with a message catalog for
 journalctl -x), published on the D-Bus system bus and as Prometheus metrics.
 The package runs it as a hardened systemd service (errorwatch.service) and
 ships the D-Bus policy, polkit actions, a user unit for desktop notifications
 (errorwatch notify) and Prometheus alert rules.
 .
 The program is one NativeAOT executable; no .NET runtime is needed. libssl3
 is loaded only for OTLP export over https; polkitd only lets non-root users
 acknowledge reports or read file paths. Its debug symbols are in
 errorwatch-dbgsym.
EOF
# The fields dh_gencontrol writes for an automatic debug symbol package.
cat > "$dbgstage/DEBIAN/control" <<EOF
Package: errorwatch-dbgsym
Source: errorwatch
Version: $version
Auto-Built-Package: debug-symbols
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(size "$dbgstage")
Depends: errorwatch (= $version)
Section: debug
Priority: optional
Description: debug symbols for errorwatch
Build-Ids: $id
EOF
echo /etc/errorwatch/errorwatch.conf > "$stage/DEBIAN/conffiles"
chmod 644 "$stage/DEBIAN/conffiles"
install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
for root in "$stage" "$dbgstage"; do
  # Checksums of everything but the conffiles (dpkg keeps those in its status database).
  (cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
  chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  # Every file dated from the commit, so two builds of one tree give the same packages.
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
done
rm -f "$deb" "$dbgdeb"
dpkg-deb --root-owner-group -Zxz --build "$dbgstage" "$dbgdeb" >/dev/null
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$dbgdeb"
echo "$deb"
