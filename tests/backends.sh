#!/usr/bin/env bash
# The backend conformance suite (tests/backend-conformance) on every
# backend and engine: memory; files through io_uring with and without the
# page cache, on a tmpfs and on the build directory's disk, and a block
# device of 4 KiB logical blocks; the sync engine; the fallback to it when
# io_uring is disabled (BLOCKD_NO_IO_URING) or forbidden (seccomp,
# tests/no-uring); and nbd against nbdkit's memory plugin on a unix
# socket.  One ok/FAIL line per backend; a failure is followed by the
# suite's own report.
set -uo pipefail
: "${top_srcdir:=.}"
# shellcheck source=tests/lib.sh
. "$top_srcdir/tests/lib.sh"

conf=$top_builddir/tests/backend-conformance
nouring=$top_builddir/tests/no-uring
# One spec's run takes seconds; this only bounds a hang.
limit=${BACKENDS_TIMEOUT:-240}

if [ ! -x "$conf" ]; then
	echo "SKIP: $conf is not built"
	exit 77
fi

# Files on the regular disk live under the build directory, not in $TMPDIR
# (which may be a tmpfs).
mkdir -p "$top_builddir/tmp"
disk=$(mktemp -d "$top_builddir/tmp/backends.XXXXXX") && disk=$(cd "$disk" && pwd) || exit 99
trap 'rm -rf "$disk"; _cleanup' EXIT

fstype() { stat -f -c %T "$1" 2>/dev/null || echo '?'; }

# And a tmpfs of our own, for page-cache files and SEEK_HOLE.
tmpfs=$tmp/tmpfs
mkdir -p "$tmpfs"
if mount -t tmpfs -o size=256M,mode=0700 blockd-test "$tmpfs" 2>"$tmp/mount.err"; then
	track_mount "$tmpfs"
else
	echo "note: cannot mount a tmpfs ($(cat "$tmp/mount.err")); using $disk for its cases"
	tmpfs=$disk
fi

# conformance NAME WANT_ENGINE WANT_LINE SPEC [PREFIX...]: run the suite on
# SPEC (under PREFIX, e.g. env or tests/no-uring), expecting the backend to
# report WANT_ENGINE ('' for any) and, if WANT_LINE is set, that line on
# stderr.
conformance() {
	local name=$1 want_engine=$2 want_line=$3 spec=$4 log out err status t0 engine why
	shift 4
	log=$tmp/$(tr -c 'a-zA-Z0-9_.-' _ <<<"$name").log
	out=$log.out err=$log.err
	t0=$(date +%s.%N)
	timeout -k 5 "$limit" "$@" "$conf" "$spec" >"$out" 2>"$err"
	status=$?
	t0=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	engine=$(sed -n 's/^backend-conformance: .* engine=\([^ ]*\) .*/\1/p' "$out" | head -1)
	why=
	if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
		why="timed out after $limit s"
	elif [ "$status" -ne 0 ]; then
		why="exit status $status: $(grep -E '^[0-9]+%: Checks' "$out" | head -1)"
	elif [ -n "$want_engine" ] && [ "$engine" != "$want_engine" ]; then
		why="engine is '$engine', want '$want_engine'"
	elif [ -n "$want_line" ] && ! grep -q -- "$want_line" "$err"; then
		why="stderr lacks '$want_line'"
	fi
	if [ -z "$why" ]; then
		ok "$name: $spec (engine=$engine, ${t0} s)"
		return
	fi
	not_ok "$name: $spec: $why"
	report "$out" | sed -e 's/^/    | /' | head -60
	# Each forked case logs the same "blockd: ..." lines: say them once.
	[ -s "$err" ] && awk '!/^blockd: / || !seen[$0]++' "$err" | sed -e 's/^/    ! /' | head -40
}

# The suite's output with Check's "file:line:X:case:test:0: " shortened to
# "case: ", and a message that repeats for every case (a backend that does
# not open) said once.
report() {
	sed -E 's/^[^ ]*:[0-9]+:[SFE]:([^:]*):[^:]*:[0-9]+: /\1: /' "$1" |
		awk '{ msg = $0; sub(/^[a-z-]+: /, "", msg) }
		     seen[msg]++ { dup++; next }
		     { print }
		     END { if (dup) print "(and the same for " dup " more case(s))" }'
}

# What "auto" picks here: io_uring unless the kernel or the environment says no.
auto=io_uring
if [ -n "${BLOCKD_NO_IO_URING:-}" ] && [ "$BLOCKD_NO_IO_URING" != 0 ]; then
	auto=sync
fi

echo "disk: $disk ($(fstype "$disk")); tmpfs: $tmpfs ($(fstype "$tmpfs"))"

conformance "memory" memory '' "memory:,size=64M"

conformance "file, page cache, tmpfs" "$auto" '' \
	"file:$tmpfs/writeback.img,size=64M,cache=writeback"
conformance "file, O_DIRECT, disk" "$auto" '' \
	"file:$disk/direct.img,size=64M,cache=none"
# O_DIRECT on tmpfs needs Linux 6.6.
if dd if=/dev/zero of="$tmpfs/probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
	conformance "file, O_DIRECT, tmpfs" "$auto" '' \
		"file:$tmpfs/direct.img,size=64M,cache=none"
else
	echo "SKIP: file, O_DIRECT, tmpfs (this kernel's tmpfs has no O_DIRECT)"
fi
rm -f "$tmpfs/probe"

conformance "file, engine=sync, O_DIRECT, disk" sync '' \
	"file:$disk/sync-direct.img,size=64M,engine=sync,cache=none"
conformance "file, engine=sync, page cache, tmpfs" sync '' \
	"file:$tmpfs/sync-writeback.img,size=64M,engine=sync"

# A block device of 4 KiB logical blocks: under O_DIRECT a request of
# 512-byte sectors is a read-modify-write, so each engine's block range
# lock and bounce buffers carry it (a loop device; root only).
img4k=$disk/lbs4k.img
if truncate -s 64M "$img4k" &&
	loop4k=$(losetup -f --show --sector-size 4096 "$img4k" 2>/dev/null); then
	track_loop "$loop4k"
	conformance "block device, 4 KiB blocks, O_DIRECT" "$auto" '' \
		"file:$loop4k,cache=none"
	conformance "block device, 4 KiB blocks, engine=sync, O_DIRECT" sync '' \
		"file:$loop4k,cache=none,engine=sync"
else
	echo "SKIP: block device with 4 KiB blocks (no loop device here)"
fi

# io_uring off by the environment: the sync engine takes over and says so.
conformance "file, BLOCKD_NO_IO_URING=1" sync 'io_uring is unavailable' \
	"file:$tmpfs/no-uring-env.img,size=64M" env BLOCKD_NO_IO_URING=1

# io_uring forbidden by seccomp: the loop runs on epoll, files on threads.
if [ -x "$nouring" ]; then
	conformance "file, io_uring blocked by seccomp" sync 'io_uring is unavailable' \
		"file:$disk/seccomp.img,size=64M,cache=none" "$nouring"
else
	not_ok "file, io_uring blocked by seccomp: $nouring is not built"
fi

# nbd, against nbdkit's memory plugin on a unix socket.
if command -v nbdkit >/dev/null 2>&1; then
	sock=$tmp/nbd.sock
	nbdkit --foreground --exit-with-parent --unix "$sock" memory 64M \
		>"$tmp/nbdkit.log" 2>&1 &
	track_pid $!
	for _ in $(seq 100); do
		[ -S "$sock" ] && break
		sleep 0.05
	done
	if [ -S "$sock" ]; then
		conformance "nbd, nbdkit memory" '' '' "nbd:nbd+unix:///?socket=$sock"
	else
		not_ok "nbd: nbdkit did not start: $(cat "$tmp/nbdkit.log")"
	fi
else
	echo "SKIP: nbd (nbdkit is not installed)"
fi

finish
