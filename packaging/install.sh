#!/usr/bin/env bash
# Installs ErrorWatch without a package manager, `make install` style, for non-Debian systems (the
# Debian package is built with packaging/build-deb.sh from exactly this layout, --prefix /usr).
#
#   packaging/install.sh [--prefix DIR] [--destdir DIR] [--from PUBLISH_DIR] [--debug-symbols] [--no-reload] [--uninstall]
#
#   --prefix DIR      where the program, its docs and man page go (default /usr/local)
#   --destdir DIR     stage everything under DIR instead of / (also: DESTDIR=DIR); nothing is reloaded
#   --from DIR        the output of packaging/publish.sh (default artifacts/publish/linux-x64, built
#                     with packaging/publish.sh when missing, which needs the .NET 10 SDK)
#   --debug-symbols   also install the DWARF symbols (PUBLISH_DIR.dbg/errorwatch.dbg) where gdb,
#                     coredumpctl and perf look for them: /usr/lib/debug/.build-id/<xx>/<rest>.debug
#                     (what the errorwatch-dbgsym package holds; docs/operations.md, Crashes)
#   --no-reload       do not run systemctl daemon-reload, journalctl --update-catalog, D-Bus ReloadConfig
#   --uninstall       remove what this layout installs; /etc/errorwatch and /var/lib/errorwatch stay
#
# Layout (P = prefix):
#   P/lib/errorwatch/errorwatch            the program, one NativeAOT executable (P/bin/errorwatch links to it)
#   P/share/man/man8/errorwatch.8.gz       errorwatch(8), generated from README.md and docs/
#   P/share/doc/errorwatch/                README.md, docs/*.md, examples/ (configuration, alert rules, hooks)
#   P/share/dbus-1/interfaces/             the introspection XML
# and where systemd, journald, D-Bus and polkit look (under P only when they read it there):
#   P/lib/systemd/system/errorwatch.service, P/lib/systemd/user/errorwatch-notify.service,
#   P/lib/systemd/catalog/errorwatch.catalog     (P = /usr or /usr/local; else /usr/local)
#   P/share/dbus-1/system-services/        bus activation (P = /usr or /usr/local; else /usr/local)
#   /usr/share/dbus-1/system.d/            bus policy for P = /usr; else /etc/dbus-1/system.d/
#   /usr/share/polkit-1/actions/           polkit reads actions from nowhere else
#   /etc/errorwatch/errorwatch.conf        every key commented out with its default; never overwritten
#   /etc/errorwatch/hooks.d/               recovery hooks
# The unit's ExecStart=, the user unit and the catalog's documentation links are rewritten to P.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

prefix=/usr/local
destdir=${DESTDIR:-}
from=
reload=yes
action=install
symbols=no
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    --from=*) from=${1#*=}; shift ;;
    --debug-symbols) symbols=yes; shift ;;
    --no-reload) reload=no; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/usr
[ -z "$destdir" ] || destdir=$(mkdir -p "$destdir" && cd "$destdir" && pwd)

case "$prefix" in
  /usr|/usr/local) sysprefix=$prefix ;;
  *) sysprefix=/usr/local ;;
esac
libdir=$prefix/lib/errorwatch
bindir=$prefix/bin
docdir=$prefix/share/doc/errorwatch
man8dir=$prefix/share/man/man8
interfacesdir=$prefix/share/dbus-1/interfaces
unitdir=$sysprefix/lib/systemd/system
userunitdir=$sysprefix/lib/systemd/user
catalogdir=$sysprefix/lib/systemd/catalog
activationdir=$sysprefix/share/dbus-1/system-services
if [ "$prefix" = /usr ]; then busconfdir=/usr/share/dbus-1/system.d; else busconfdir=/etc/dbus-1/system.d; fi
polkitdir=/usr/share/polkit-1/actions
confdir=/etc/errorwatch
# gdb, systemd-coredump, elfutils and perf look here whatever the prefix.
debugdir=/usr/lib/debug/.build-id

# The symbols' place for an executable: debugdir/<first 2 hex digits of its build id>/<the rest>.debug.
symbols_path() {
  local id
  id=$(readelf -n "$1" 2>/dev/null | sed -n 's/^ *Build ID: \([0-9a-f]*\)$/\1/p')
  [[ "$id" =~ ^[0-9a-f]{40}$ ]] && echo "$debugdir/${id:0:2}/${id:2}.debug"
}

# Every file but the program directory and the configuration: "mode source target", one a line.
# Sources under deploy/ are rewritten to the prefix on the way (rewrite below).
files() {
  echo "644 deploy/systemd/errorwatch.service $unitdir/errorwatch.service"
  echo "644 deploy/systemd/user/errorwatch-notify.service $userunitdir/errorwatch-notify.service"
  echo "644 deploy/catalog/errorwatch.catalog $catalogdir/errorwatch.catalog"
  echo "644 deploy/dbus/io.github.errorwatch.ErrorWatch1.conf $busconfdir/io.github.errorwatch.ErrorWatch1.conf"
  echo "644 deploy/dbus/io.github.errorwatch.ErrorWatch1.service $activationdir/io.github.errorwatch.ErrorWatch1.service"
  echo "644 deploy/dbus/io.github.errorwatch.ErrorWatch1.Manager.xml $interfacesdir/io.github.errorwatch.ErrorWatch1.Manager.xml"
  echo "644 deploy/dbus/io.github.errorwatch.ErrorWatch1.Filesystem.xml $interfacesdir/io.github.errorwatch.ErrorWatch1.Filesystem.xml"
  echo "644 deploy/polkit/io.github.errorwatch.ErrorWatch1.policy $polkitdir/io.github.errorwatch.ErrorWatch1.policy"
  echo "644 README.md $docdir/README.md"
  local doc
  for doc in "$repo"/docs/*.md; do echo "644 docs/${doc##*/} $docdir/${doc##*/}"; done
  echo "644 deploy/errorwatch.conf.example $docdir/examples/errorwatch.conf.example"
  echo "644 deploy/prometheus/errorwatch-rules.yml $docdir/examples/prometheus/errorwatch-rules.yml"
  # Example recovery hooks, when the tree has them (deploy/hooks/); they stay disabled until an
  # administrator copies or links one into /etc/errorwatch/hooks.d/.
  if [ -d "$repo/deploy/hooks" ]; then
    local hook
    while IFS= read -r hook; do
      if [ -x "$repo/$hook" ]; then echo "755 $hook $docdir/examples/${hook#deploy/}"; else echo "644 $hook $docdir/examples/${hook#deploy/}"; fi
    done < <(cd "$repo" && find deploy/hooks -type f | LC_ALL=C sort)
  fi
}

rewrite() {
  sed -e "s|/usr/lib/errorwatch/|$libdir/|g" \
      -e "s|/usr/bin/errorwatch|$bindir/errorwatch|g" \
      -e "s|file:///usr/share/doc/errorwatch/|file://$docdir/|g" \
      -e "s|](docs/\([a-z-]*\.md\))|](\1)|g" "$1"
}

reload_system() {
  [ -z "$destdir" ] && [ "$reload" = yes ] && [ "$(id -u)" -eq 0 ] || return 0
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
  if command -v journalctl >/dev/null; then journalctl --update-catalog || true; fi
  if command -v dbus-send >/dev/null && [ -S /run/dbus/system_bus_socket ]; then
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig || true
  fi
}

if [ "$action" = uninstall ]; then
  if [ -z "$destdir" ] && [ -d /run/systemd/system ] && [ "$(id -u)" -eq 0 ]; then
    systemctl disable --now errorwatch.service 2>/dev/null || true
  fi
  while read -r _ _ target; do rm -f "$destdir$target"; done < <(files)
  # The symbols of the installed executable, if --debug-symbols put them there.
  if [ -e "$destdir$libdir/errorwatch" ] && command -v readelf >/dev/null && debug=$(symbols_path "$destdir$libdir/errorwatch"); then
    rm -f "$destdir$debug"
    rmdir "$destdir$(dirname "$debug")" 2>/dev/null || true
  fi
  rm -f "$destdir$bindir/errorwatch" "$destdir$man8dir/errorwatch.8.gz"
  rm -rf "${destdir:?}$libdir" "$destdir$docdir"
  rmdir "$destdir$interfacesdir" 2>/dev/null || true
  reload_system
  echo "install.sh: removed ErrorWatch from $prefix; configuration ($confdir) and state (/var/lib/errorwatch) are kept"
  exit 0
fi

for tool in python3 gzip install; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is required" >&2; exit 1; }
done
if [ -z "$from" ]; then
  from=$repo/artifacts/publish/linux-x64
  [ -x "$from/errorwatch" ] || "$repo/packaging/publish.sh" "$from" >/dev/null
fi
[ -x "$from/errorwatch" ] || { echo "install.sh: no $from/errorwatch (run packaging/publish.sh)" >&2; exit 1; }
from=$(cd "$from" && pwd)
if [ "$symbols" = yes ]; then
  command -v readelf >/dev/null || { echo "install.sh: --debug-symbols needs readelf (binutils)" >&2; exit 1; }
  [ -f "$from.dbg/errorwatch.dbg" ] || { echo "install.sh: no $from.dbg/errorwatch.dbg (packaging/publish.sh puts the symbols there)" >&2; exit 1; }
  debug=$(symbols_path "$from/errorwatch") || { echo "install.sh: $from/errorwatch has no GNU build id" >&2; exit 1; }
  [ "$(symbols_path "$from.dbg/errorwatch.dbg")" = "$debug" ] || { echo "install.sh: $from.dbg/errorwatch.dbg is not the symbols of $from/errorwatch" >&2; exit 1; }
fi
version=$(sed -n 's|.*<Version>\(.*\)</Version>.*|\1|p' "$repo/Directory.Build.props" | head -n 1)

# The program: one executable. The directory is made afresh, so an older install's files (the
# ReadyToRun build's runtime next to it) do not stay behind.
rm -rf "${destdir:?}$libdir"
install -d -m 755 "$destdir$libdir" "$destdir$bindir"
install -m 755 "$from/errorwatch" "$destdir$libdir/errorwatch"
ln -sfn "$(realpath -m --relative-to="$bindir" "$libdir/errorwatch")" "$destdir$bindir/errorwatch"
if [ "$symbols" = yes ]; then
  install -d -m 755 "$destdir$(dirname "$debug")"
  install -m 644 "$from.dbg/errorwatch.dbg" "$destdir$debug"
fi

while read -r mode source target; do
  install -d -m 755 "$destdir$(dirname "$target")"
  rewrite "$repo/$source" > "$destdir$target.tmp"
  chmod "$mode" "$destdir$target.tmp"
  mv -f "$destdir$target.tmp" "$destdir$target"
done < <(files)

install -d -m 755 "$destdir$man8dir"
python3 "$repo/packaging/manpage.py" --version "$version" --repo "$repo" | gzip -9n > "$destdir$man8dir/errorwatch.8.gz"
chmod 644 "$destdir$man8dir/errorwatch.8.gz"

# Configuration: the default file (every key commented out), never over an administrator's own.
install -d -m 755 "$destdir$confdir" "$destdir$confdir/hooks.d"
if [ -e "$destdir$confdir/errorwatch.conf" ]; then
  echo "install.sh: keeping $confdir/errorwatch.conf; the current defaults are in $docdir/examples/errorwatch.conf.example" >&2
else
  install -m 644 "$repo/deploy/errorwatch.conf.example" "$destdir$confdir/errorwatch.conf"
fi

reload_system
if [ -n "$destdir" ]; then
  echo "install.sh: staged ErrorWatch $version in $destdir (prefix $prefix)"
else
  echo "install.sh: installed ErrorWatch $version (prefix $prefix); start it with: systemctl enable --now errorwatch.service"
fi
