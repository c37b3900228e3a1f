# Scratch ext4 filesystems on loop devices for the benchmark scripts (source this file).
#   scratch_init                 temporary directory $SCRATCH, cleanup on EXIT/INT/TERM
#   scratch_ext4 NAME [MiB]      mkfs + losetup + mount -o errors=continue; sets FS_MNT, FS_LOOP, FS_TRIGGER, FS_COUNT
#   scratch_own PID              remember a process this script started (SIGTERM, then SIGKILL, by PID, at cleanup)
# Only what these functions created is unmounted, detached and removed, in reverse order, even on failure.
SCRATCH=""
SCRATCH_MOUNTS=()
SCRATCH_LOOPS=()
SCRATCH_PIDS=()

scratch_cleanup() {
  local rc=$?
  set +e
  for pid in "${SCRATCH_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  for ((i=${#SCRATCH_MOUNTS[@]}-1; i>=0; i--)); do
    umount "${SCRATCH_MOUNTS[i]}" 2>/dev/null || umount -l "${SCRATCH_MOUNTS[i]}" 2>/dev/null
  done
  for ((i=${#SCRATCH_LOOPS[@]}-1; i>=0; i--)); do
    losetup -d "${SCRATCH_LOOPS[i]}" 2>/dev/null
  done
  [ -n "$SCRATCH" ] && rm -rf "$SCRATCH"
  exit $rc
}

scratch_init() {
  [ "$(id -u)" = 0 ] || { echo "needs root (loop devices, mounts, trigger_fs_error)" >&2; exit 1; }
  SCRATCH=$(mktemp -d /tmp/errorwatch-bench-XXXXXX)
  trap scratch_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

scratch_own() { SCRATCH_PIDS+=("$1"); }

scratch_ext4() {
  local name=$1 size=${2:-32}
  truncate -s "${size}M" "$SCRATCH/$name.img"
  mkfs.ext4 -q -F -O ^has_journal "$SCRATCH/$name.img" >/dev/null 2>&1 || mkfs.ext4 -q -F "$SCRATCH/$name.img"
  FS_LOOP=$(losetup --find --show "$SCRATCH/$name.img")
  SCRATCH_LOOPS+=("$FS_LOOP")
  FS_MNT="$SCRATCH/$name"
  mkdir -p "$FS_MNT"
  mount -o errors=continue "$FS_LOOP" "$FS_MNT"
  SCRATCH_MOUNTS+=("$FS_MNT")
  FS_TRIGGER="/sys/fs/ext4/$(basename "$FS_LOOP")/trigger_fs_error"
  FS_COUNT="/sys/fs/ext4/$(basename "$FS_LOOP")/errors_count"
}
