#!/usr/bin/env bash
# fio's nbd engine with verify=crc32c: several jobs at QD32 with mixed
# block sizes against one export, bounded to a few seconds.  0 errors.
set -uo pipefail
: "${top_srcdir:=.}"
. "$top_srcdir/tests/lib.sh"
command -v fio >/dev/null || { echo "skip: fio is not installed"; exit 77; }
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "skip: fio lacks the nbd engine"; exit 77; }
"$top_builddir/daemon/blockd" -f --memory 64M --unix "$tmp/s.sock" \
	--export scratch=memory:,size=256M >"$tmp/log" 2>&1 &
pid=$!
track_pid "$pid"
for _ in $(seq 100); do grep -q running "$tmp/log" && break; sleep 0.05; done
grep -q running "$tmp/log" || { not_ok "daemon did not start: $(cat "$tmp/log")"; finish; exit; }

# Each job verifies its own 64 MiB slice, so jobs never overwrite each
# other's blocks; within a job many requests are in flight at once.
run_fio() {
	local name=$1
	shift
	if timeout 120 fio --name="$name" --ioengine=nbd \
		--uri="nbd+unix:///?socket=$tmp/s.sock" --numjobs=4 --offset_increment=64M \
		--size=64M --iodepth=32 --direct=1 --group_reporting --verify_state_save=0 \
		--output-format=json --output="$tmp/$name.json" "$@" >"$tmp/$name.out" 2>&1 &&
	   fio_passed "$tmp/$name.json"
	then
		ok "fio $name"
	else
		not_ok "fio $name: $(tail -20 "$tmp/$name.out")"
	fi
}

run_fio randwrite-verify --rw=randwrite --bsrange=4k-256k --verify=crc32c \
	--verify_fatal=1 --do_verify=1 --runtime=4 --time_based=0 --io_size=48M
run_fio randrw-verify --rw=randrw --bssplit=4k/50:64k/30:1m/20 --verify=crc32c \
	--verify_fatal=1 --verify_backlog=256 --io_size=32M
kill -0 "$pid" 2>/dev/null && ok "daemon alive after fio" || not_ok "daemon died: $(tail "$tmp/log")"
finish
