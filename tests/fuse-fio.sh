#!/usr/bin/env bash
# fio's io_uring engine with verify=crc32c, bounded in time, on the FUSE
# file itself and on a loop device (direct I/O) on top of it: 0 errors.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuse-lib.sh"
need_fuse loop
command -v fio >/dev/null || { echo "skip: fio is not installed"; exit 77; }
fio --enghelp 2>/dev/null | grep -qw io_uring || { echo "skip: fio lacks io_uring"; exit 77; }

truncate -s 192M "$tmp/disk.img"
if ! start_fuse "$tmp/log" "$tmp/mnt" --memory 32M --export "disk=file:$tmp/disk.img"; then
	not_ok "daemon did not start: $(cat "$tmp/log")"
	finish
	exit
fi

# run_fio NAME TARGET ARGS...: two jobs, each verifying its own 64 MiB slice.
run_fio() {
	local name=$1 target=$2
	shift 2
	if timeout 120 fio --name="$name" --filename="$target" --ioengine=io_uring \
		--direct=1 --numjobs=2 --offset_increment=64M --size=64M --iodepth=32 \
		--group_reporting --verify_state_save=0 --output-format=json \
		--output="$tmp/$name.json" "$@" >"$tmp/$name.out" 2>&1 &&
	   fio_passed "$tmp/$name.json"
	then
		ok "fio $name"
	else
		not_ok "fio $name: $(tail -20 "$tmp/$name.out")"
	fi
}

run_fio fuse-randwrite "$tmp/mnt/disk" --rw=randwrite --bsrange=4k-256k \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --io_size=32M
run_fio fuse-randrw "$tmp/mnt/disk" --rw=randrw --bssplit=4k/50:64k/30:1m/20 \
	--verify=crc32c --verify_fatal=1 --verify_backlog=256 --io_size=32M
attach_loop "$tmp/mnt/disk" --direct-io=on || { not_ok "losetup failed"; finish; exit; }
run_fio loop-randwrite "$loop_dev" --rw=randwrite --bsrange=4k-256k \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --io_size=32M
run_fio loop-randrw "$loop_dev" --rw=randrw --bssplit=4k/50:64k/30:1m/20 \
	--verify=crc32c --verify_fatal=1 --verify_backlog=256 --io_size=32M
losetup -d "$loop_dev"
kill -0 "$daemon_pid" 2>/dev/null && ok "daemon alive after fio" || not_ok "daemon died: $(tail "$tmp/log")"
finish
