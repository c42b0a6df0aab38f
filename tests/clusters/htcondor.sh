#!/usr/bin/env bash
# A personal HTCondor pool for the launcher tests. HTCondor is not packaged for Debian 12, so it
# runs from a Debian 13 tree (ROOTFS) with Debian's minicondor, as a cluster's execute nodes
# would: sharing the submitter's filesystem at the same paths (bind mounts).
#
#   htcondor.sh make ROOTFS              debootstrap trixie + apt-get install minicondor (~1 min)
#   htcondor.sh up ROOTFS BINDIR PATH..  bind /proc, /dev and each PATH into ROOTFS (and with
#                                        RUNLAB_CONDOR_PYTHON=/usr/bin/python3.X, make that the
#                                        tree's python3), start
#                                        condor_master, wait for a slot, and write wrappers of
#                                        condor_submit/q/rm/vacate_job into BINDIR that run the
#                                        tools in ROOTFS as the submitting user "runlab"
#   htcondor.sh down ROOTFS              stop the pool, undo the mounts
#
# Two knobs make it run without mount and pid namespaces (not available on this kind of
# machine): MOUNT_UNDER_SCRATCH empty and USE_PID_NAMESPACES false. Needs root.
set -euo pipefail
action=${1:?usage: htcondor.sh make|up|down ROOTFS ...}
rootfs=$(realpath -m "${2:?usage: htcondor.sh make|up|down ROOTFS ...}")
user_id=4242

case "$action" in
make)
  [ "$(id -u)" = 0 ] || { echo "building the HTCondor tree needs root"; exit 3; }
  command -v debootstrap >/dev/null || { echo "no debootstrap (apt-get install debootstrap)"; exit 3; }
  if [ ! -x "$rootfs/usr/sbin/condor_master" ]; then
    # the Debian mirror apt uses here (DEBIAN_MIRROR wins)
    mirror=${DEBIAN_MIRROR:-$( (grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true) \
      | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')}
    mirror=${mirror:-http://deb.debian.org/debian}
    debootstrap --variant=minbase trixie "$rootfs" "$mirror" >/dev/null
    mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
    chroot "$rootfs" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
      -y -qq minicondor procps libstdc++6 libgomp1 libsqlite3-0 libffi8 libbz2-1.0 liblzma5 \
      libssl3t64 zlib1g libexpat1 libncursesw6 libreadline8t64 libgdbm6t64 libuuid1 >/dev/null"
    umount "$rootfs/proc"
  fi
  echo "HTCondor tree ready: $rootfs"
  ;;
up)
  bindir=$(realpath -m "${3:?usage: htcondor.sh up ROOTFS BINDIR PATH...}")
  shift 3
  [ "$(id -u)" = 0 ] || { echo "starting HTCondor in its tree needs root"; exit 3; }
  [ -x "$rootfs/usr/sbin/condor_master" ] || { echo "no HTCondor tree at $rootfs (htcondor.sh make $rootfs)"; exit 3; }
  mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
  mountpoint -q "$rootfs/dev" || mount --bind /dev "$rootfs/dev"
  for path in "$@"; do
    path=$(realpath "$path")
    if [ -f "$path" ]; then mkdir -p "$(dirname "$rootfs$path")"; touch "$rootfs$path"
    else mkdir -p "$rootfs$path"; fi
    mountpoint -q "$rootfs$path" || mount --bind "$path" "$rootfs$path"
  done
  # A virtual environment of Debian's own Python links to /usr/bin/python3, which in the tree is
  # Debian 13's: make it the (bind-mounted) interpreter the environment was made with.
  case "${RUNLAB_CONDOR_PYTHON:-}" in
    /usr/bin/python3.*) ln -sfn "$(basename "$RUNLAB_CONDOR_PYTHON")" "$rootfs/usr/bin/python3" ;;
  esac
  chmod 755 "$rootfs/root"
  chroot "$rootfs" id runlab >/dev/null 2>&1 || chroot "$rootfs" useradd -m -u $user_id runlab
  cat > "$rootfs/etc/condor/config.d/99-runlab-tests" <<CONF
MOUNT_UNDER_SCRATCH =
USE_PID_NAMESPACES = false
SCHEDD_INTERVAL = 1
NEGOTIATOR_INTERVAL = 1
NEGOTIATOR_MIN_INTERVAL = 1
NEGOTIATOR_CYCLE_DELAY = 1
STARTER_UPDATE_INTERVAL = 2
SHADOW_QUEUE_UPDATE_INTERVAL = 2
UPDATE_INTERVAL = 2
JOB_START_DELAY = 0
SCHEDD_JOB_QUEUE_LOG_FLUSH_DELAY = 0
CONF
  chroot "$rootfs" pgrep -x condor_master >/dev/null || chroot "$rootfs" condor_master
  mkdir -p "$bindir"
  for tool in condor_submit condor_q condor_rm condor_vacate_job condor_status; do
    cat > "$bindir/$tool" <<WRAP
#!/bin/sh
# $tool of the HTCondor pool in $rootfs, as the submitting user runlab
exec chroot --userspec=runlab:runlab "$rootfs" env HOME=/home/runlab /usr/bin/$tool "\$@"
WRAP
    chmod +x "$bindir/$tool"
  done
  for _ in $(seq 1 120); do
    if "$bindir/condor_status" -af Name 2>/dev/null | grep -q . && "$bindir/condor_q" -totals >/dev/null 2>&1; then
      echo "htcondor up: tools in $bindir"; exit 0
    fi
    sleep 0.5
  done
  echo "HTCondor did not come up: see $rootfs/var/log/condor/"
  exit 1
  ;;
down)
  if [ -d "$rootfs/proc/1" ]; then chroot "$rootfs" condor_off -master -fast >/dev/null 2>&1 || true; fi
  for _ in $(seq 1 20); do pgrep -x condor_master >/dev/null || break; sleep 0.5; done
  pkill -9 -x condor_master 2>/dev/null || true
  for mount in $(awk -v r="$rootfs" '$2 ~ "^"r {print $2}' /proc/mounts | sort -r); do
    umount "$mount" 2>/dev/null || umount -l "$mount" || true
  done
  ;;
esac
