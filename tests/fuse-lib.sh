#!/usr/bin/env bash
# Shared by tests/fuse-*.sh, after tests/lib.sh: skip where FUSE cannot
# run, and start a daemon with a FUSE mount whose cleanup is tracked.
blockd=$top_builddir/daemon/blockd

# need_fuse [loop]: skip (77) without root, /dev/fuse or, with "loop", loop devices.
need_fuse() {
	[ "$(id -u)" -eq 0 ] || { echo "skip: needs root for FUSE mounts"; exit 77; }
	[ -c /dev/fuse ] || { echo "skip: no /dev/fuse"; exit 77; }
	command -v fusermount3 >/dev/null || { echo "skip: fusermount3 is not installed (fuse3)"; exit 77; }
	if [ "${1:-}" = loop ]; then
		command -v losetup >/dev/null || { echo "skip: losetup is not installed"; exit 77; }
		losetup -f >/dev/null 2>&1 || { echo "skip: no free loop device"; exit 77; }
	fi
}

# start_fuse LOG MOUNTPOINT ARGS...: blockd with --fuse-mount MOUNTPOINT,
# in the background until it runs; sets daemon_pid.
start_fuse() {
	local log=$1 mnt=$2
	shift 2
	mkdir -p "$mnt" 2>/dev/null  # a stale mount is the daemon's to recover
	track_mount "$mnt"
	"$blockd" -f --fuse-mount "$mnt" "$@" >"$log" 2>&1 &
	daemon_pid=$!
	track_pid "$daemon_pid"
	for _ in $(seq 200); do
		grep -qs 'running' "$log" && return 0
		kill -0 "$daemon_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# stop_daemon PID: SIGTERM, wait up to 20 s; the exit status is in $daemon_status.
stop_daemon() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" 2>/dev/null
	daemon_status=$?
}

# attach_loop FILE [losetup options]: a loop device on FILE, tracked, in $loop_dev.
attach_loop() {
	local file=$1
	shift
	loop_dev=$(losetup -f --show "$@" "$file") || return 1
	track_loop "$loop_dev"
}
