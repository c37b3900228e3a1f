# A private journald, D-Bus system bus and the daemon's outputs for the benchmark scripts (source
# after lib/scratch.sh, inside a private mount namespace: see bench_private_namespace).
#   bench_private_namespace "$0" "$@"   re-runs the script under unshare --mount (once); /run is then a
#                                       tmpfs of this run only, so its journald cannot meet the machine's
#                                       or another test run's (they would share /run/systemd/journal)
#   bench_journald                      starts systemd-journald on the private /run; waits for its socket
#   bench_bus                           starts a private dbus-daemon (system-bus policy + ErrorWatch's); BUS_ADDRESS
#   bench_build_native                  cc -O2 the anchors' fanotify-reader.c, tools/trigger.c, tools/boosted.c, tools/store-observer.c,
#                                       tools/dbus-observer.c and tools/dbus-floor.c into $SCRATCH/bin
bench_private_namespace() {
  if [ -z "${ERRORWATCH_BENCH_NS:-}" ]; then
    exec unshare --mount --propagation private env ERRORWATCH_BENCH_NS=1 bash "$@"
  fi
}

bench_journald() {
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/systemd/journal /run/log/journal
  SYSTEMD_LOG_TARGET=console /usr/lib/systemd/systemd-journald >"$SCRATCH/journald.log" 2>&1 &
  JOURNALD_PID=$!; scratch_own $JOURNALD_PID
  for _ in $(seq 150); do [ -S /run/systemd/journal/socket ] && return 0; sleep 0.1; done
  echo "journald did not start: $(cat "$SCRATCH/journald.log")" >&2; return 1
}

bench_bus() {
  mkdir -p "$SCRATCH/bus/system.d"
  cp deploy/dbus/io.github.errorwatch.ErrorWatch1.conf "$SCRATCH/bus/system.d/"
  cat >"$SCRATCH/bus/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$SCRATCH/bus/socket</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>$SCRATCH/bus/system.d</includedir>
</busconfig>
XML
  dbus-daemon --nofork --config-file="$SCRATCH/bus/bus.conf" >"$SCRATCH/bus/log" 2>&1 &
  BUS_PID=$!; scratch_own $BUS_PID
  BUS_ADDRESS="unix:path=$SCRATCH/bus/socket"
  for _ in $(seq 150); do [ -S "$SCRATCH/bus/socket" ] && return 0; sleep 0.1; done
  echo "dbus-daemon did not start: $(cat "$SCRATCH/bus/log")" >&2; return 1
}

bench_libsystemd() {
  local lib
  for lib in /usr/lib/x86_64-linux-gnu/libsystemd.so.0 /usr/lib/aarch64-linux-gnu/libsystemd.so.0 /usr/lib64/libsystemd.so.0 /usr/lib/libsystemd.so.0; do
    [ -e "$lib" ] && { echo "$lib"; return 0; }
  done
  ldconfig -p | awk '/libsystemd\.so\.0 / {print $NF; exit}'
}

bench_build_native() {
  mkdir -p "$SCRATCH/bin"
  local shared=${ERRORWATCH_SHARED:-$PWD/../shared}
  cc -O2 -o "$SCRATCH/bin/fanotify-reader" "$shared/anchors/fanotify-reader.c"
  cc -O2 -o "$SCRATCH/bin/trigger" benchmarks/tools/trigger.c
  cc -O2 -o "$SCRATCH/bin/boosted" benchmarks/tools/boosted.c
  cc -O2 -o "$SCRATCH/bin/store-observer" benchmarks/tools/store-observer.c
  # libsystemd.so.0 by path: the observer declares the sd-bus calls it uses (no libsystemd-dev needed).
  cc -O2 -o "$SCRATCH/bin/dbus-observer" benchmarks/tools/dbus-observer.c "$(bench_libsystemd)"
  cc -O2 -o "$SCRATCH/bin/dbus-floor" benchmarks/tools/dbus-floor.c "$(bench_libsystemd)"
}

# Waits until FILE has a line "ready" (observers print it once set up).
bench_wait_ready() {
  for _ in $(seq 300); do grep -qx ready "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "not ready: $1" >&2; return 1
}
