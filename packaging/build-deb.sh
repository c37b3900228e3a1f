#!/usr/bin/env bash
# Builds the Debian package artifacts/errorwatch_<version>_amd64.deb with dpkg-deb (no debhelper,
# no network beyond NuGet for the publish):
#
#   packaging/build-deb.sh [--from PUBLISH_DIR]
#
# The version is <Version> in Directory.Build.props (override: ERRORWATCH_VERSION). The file layout
# is packaging/install.sh --prefix /usr; this script adds what makes it a Debian package: control
# (Depends from dpkg-shlibdeps, plus libsystemd0, which the daemon loads at run time), conffiles,
# md5sums, the maintainer scripts in packaging/debian/, copyright and changelog.
# Needs: the .NET 10 SDK (unless --from), dpkg-deb and dpkg-shlibdeps (dpkg-dev), python3, gzip.
# Prints the path of the package.
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
for tool in dpkg-deb dpkg-shlibdeps python3 gzip md5sum; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is required (Debian: apt-get install dpkg-dev python3)" >&2; exit 1; }
done

version=${ERRORWATCH_VERSION:-$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' Directory.Build.props | head -n 1)}
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "build-deb.sh: bad version '$version'" >&2; exit 1; }
arch=amd64
work=artifacts/deb
stage=$work/errorwatch_${version}_$arch
deb=artifacts/errorwatch_${version}_$arch.deb
# Reproducible timestamps: the last commit's time, as for the man page.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

if [ -z "$from" ]; then
  from=artifacts/publish/linux-x64
  packaging/publish.sh "$from" >/dev/null
fi
rm -rf "$work"
mkdir -p "$stage/DEBIAN"
packaging/install.sh --prefix /usr --destdir "$stage" --from "$from" --no-reload >/dev/null

doc=$stage/usr/share/doc/errorwatch
install -m 644 packaging/debian/copyright "$doc/copyright"
install -d -m 755 "$stage/usr/share/lintian/overrides"
install -m 644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/errorwatch"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "errorwatch ($version) unstable; urgency=medium"
  echo
  echo "  * Package built by packaging/build-deb.sh from commit $commit."
  echo
  echo " -- ErrorWatch maintainers <maintainers@errorwatch.invalid>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.gz"
chmod 644 "$doc/changelog.gz"

# Shared-library dependencies of the runtime's native parts, found the Debian way. The runtime
# loads libsystemd.so.0 (journal, sd_notify, sd-bus) with dlopen, which dpkg-shlibdeps cannot see.
shlibs=$work/shlibs
mkdir -p "$shlibs/debian"
printf 'Source: errorwatch\n\nPackage: errorwatch\nArchitecture: %s\n' "$arch" > "$shlibs/debian/control"
lib=$repo/$stage/usr/lib/errorwatch
mapfile -t elves < <(cd "$lib" && for f in errorwatch createdump *.so; do echo "-e$lib/$f"; done)
if ! depends=$(cd "$shlibs" && dpkg-shlibdeps -O -l"$lib" "${elves[@]}" 2>"$repo/$work/shlibdeps.log"); then
  cat "$work/shlibdeps.log" >&2
  exit 1
fi
depends=${depends#shlibs:Depends=}
depends="$depends, libsystemd0 (>= 252)"

installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: errorwatch
Version: $version
Architecture: $arch
Maintainer: ErrorWatch maintainers <maintainers@errorwatch.invalid>
Installed-Size: $installed_size
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
 The program is a self-contained .NET build; no .NET runtime is needed. libssl3
 is loaded only for OTLP export over https; polkitd only lets non-root users
 acknowledge reports or read file paths.
EOF
echo /etc/errorwatch/errorwatch.conf > "$stage/DEBIAN/conffiles"
install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
# Checksums of everything but the conffiles (dpkg keeps those in its status database).
(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

# Every file dated from the commit, so two builds of one tree give the same package.
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
