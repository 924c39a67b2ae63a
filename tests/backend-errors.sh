#!/usr/bin/env bash
# Errors reach the bio, and the backend survives them, on both file engines:
#  - ENOSPC: a 16 MiB sparse file on a 2 MiB tmpfs.  Writes that fill it
#    end with -ENOSPC; afterwards what was written reads back, a trim frees
#    space and a later write succeeds (backend-conformance --enospc).
#  - EIO: injected with fail-writes=1 / fail-reads=0.5; the failed I/O ends
#    with -EIO, reads see the data as it was, the rest keeps working
#    (backend-conformance's error-injection case).
# The tmpfs is unmounted by lib.sh's trap, even on failure.
set -uo pipefail
: "${top_srcdir:=.}"
# shellcheck source=tests/lib.sh
. "$top_srcdir/tests/lib.sh"

conf=$top_builddir/tests/backend-conformance
limit=${BACKENDS_TIMEOUT:-120}

if [ ! -x "$conf" ]; then
	echo "SKIP: $conf is not built"
	exit 77
fi

# run NAME SPEC [ARGS...]: the suite (or one case of it), one ok/FAIL line.
run() {
	local name=$1 spec=$2 log=$tmp/run.log status
	shift 2
	timeout -k 5 "$limit" "$conf" "$@" "$spec" >"$log" 2>&1
	status=$?
	if [ "$status" -eq 0 ]; then
		ok "$name: $spec"
		return
	fi
	[ "$status" -eq 124 ] && status="timeout after $limit s"
	not_ok "$name: $spec ($status)"
	sed -E -e 's/^[^ ]*:[0-9]+:[SFE]:([^:]*):[^:]*:[0-9]+: /\1: /' -e 's/^/    | /' "$log" |
		head -40
}

engines="uring sync"
if [ -n "${BLOCKD_NO_IO_URING:-}" ] && [ "$BLOCKD_NO_IO_URING" != 0 ]; then
	echo "SKIP: engine=uring (BLOCKD_NO_IO_URING is set)"
	engines=sync
fi

small=$tmp/small
mkdir -p "$small"
if mount -t tmpfs -o size=2M,mode=0700 blockd-small "$small" 2>"$tmp/mount.err"; then
	track_mount "$small"
	# O_DIRECT on tmpfs needs Linux 6.6.
	caches=writeback
	if dd if=/dev/zero of="$small/probe" bs=4096 count=1 oflag=direct 2>/dev/null; then
		caches="writeback none"
	else
		echo "SKIP: ENOSPC with cache=none (this kernel's tmpfs has no O_DIRECT)"
	fi
	rm -f "$small/probe"
	for engine in $engines; do
		for cache in $caches; do
			img=$small/disk.img
			rm -f "$img"
			run "ENOSPC, engine=$engine, cache=$cache" \
				"file:$img,size=16M,engine=$engine,cache=$cache" --enospc
			rm -f "$img"
		done
	done
else
	echo "SKIP: ENOSPC (cannot mount a tmpfs: $(cat "$tmp/mount.err"))"
fi

for engine in $engines; do
	for cache in writeback none; do
		CK_RUN_CASE=error-injection run "EIO injected, engine=$engine, cache=$cache" \
			"file:$tmp/eio-$engine-$cache.img,size=64M,engine=$engine,cache=$cache"
	done
done
CK_RUN_CASE=error-injection run "EIO injected, memory" "memory:,size=64M"

finish
