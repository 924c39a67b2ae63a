#!/usr/bin/env bash
# The rbd backend against a real single-node Ceph cluster started here
# (tests/ceph-mini.sh), all on 127.0.0.1:
#   1. memstore OSD, auth none: the backend conformance suite on an image;
#      blockd exporting rbd:rbd/img over NBD (nbdcopy round trip, qemu-img
#      compare, fio verify); a snapshot export is read-only and holds the
#      old data; over FUSE, loop + mkfs.ext4 + mount + fsck; opens that
#      must fail say why.
#   2. bluestore OSD (it keeps its objects across a kill), cephx with a
#      generated keyring: I/O as client.admin; the OSD killed under fio ->
#      its bios fail with EIO, logged once, while the daemon keeps serving
#      its other export; the OSD restarted -> new I/O succeeds.
# Skips (77) only when Ceph is not installed, blockd was built without
# librbd, or the cluster cannot start here.
set -uo pipefail
: "${top_srcdir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd
conf=$top_builddir/tests/backend-conformance

for tool in ceph-mon ceph-osd ceph rbd monmaptool ceph-authtool uuidgen \
	nbdinfo nbdcopy qemu-img qemu-io fio; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
if "$blockd" --help | grep -q 'rbd: not built'; then
	echo "SKIP: blockd was built without librbd (install librbd-dev, configure --with-rbd)"
	exit 77
fi
. "$top_srcdir/tests/ceph-mini.sh"
trap 'ceph_stop; _cleanup' EXIT

daemon_pid=
# start_daemon LOG ARGS...: run blockd in the background until it listens.
start_daemon() {
	local log=$1
	shift
	"$blockd" -f --memory 64M "$@" >"$log" 2>&1 &
	daemon_pid=$!
	track_pid "$daemon_pid"
	for _ in $(seq 300); do
		grep -q 'running' "$log" && return 0
		kill -0 "$daemon_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

stop_daemon() {
	kill -TERM "$daemon_pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
}

# check NAME COMMAND...: one ok/FAIL line for a command that must succeed.
check() {
	local name=$1 out
	shift
	if out=$(timeout 60 "$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name: $(tail -5 <<<"$out")"
	fi
}

# fails_with NAME PATTERN COMMAND...: the command fails, saying PATTERN.
fails_with() {
	local name=$1 pattern=$2 out
	shift 2
	if out=$(timeout 60 "$@" 2>&1); then
		not_ok "$name: succeeded: $out"
	elif grep -q -- "$pattern" <<<"$out"; then
		ok "$name"
	else
		not_ok "$name: output lacks '$pattern': $out"
	fi
}

# fio_run NAME URI ARGS...: a bounded fio nbd job; its result in
# $tmp/NAME.json, read by fio_result.
fio_run() {
	local name=$1 uri=$2
	shift 2
	timeout 120 fio --name="$name" --ioengine=nbd --uri="$uri" --direct=1 \
		--verify_state_save=0 --output-format=json --output="$tmp/$name.json" \
		"$@" >"$tmp/$name.out" 2>&1
}

# fio_result NAME: "ERRNO MIB" of a finished fio_run (the first job error).
fio_result() {
	python3 - "$tmp/$1.json" <<'PY' 2>/dev/null || echo unparsable
import json, sys
d = json.load(open(sys.argv[1]))
errs = [j["error"] for j in d["jobs"] if j["error"]]
io = sum(j["read"]["io_bytes"] + j["write"]["io_bytes"] for j in d["jobs"])
print("%d %d" % (errs[0] if errs else 0, io >> 20))
PY
}

# fio_job NAME URI ARGS...: fio_run, then fio_err=$(fio_result NAME).
fio_job() {
	fio_run "$@"
	fio_err=$(fio_result "$1")
}

cluster_failed() {
	echo "SKIP: the Ceph test cluster did not start here:"
	ceph_logs
	exit 77
}

t0=$SECONDS
# ---- 1. memstore, auth none --------------------------------------------
ceph_start || cluster_failed
echo "# cluster up in $((SECONDS - t0)) s (memstore, auth none, mon port $ceph_port)"

# RBD reports holes per object; the suite wants a 64 KiB trim to be one.
rbd_cmd create --size 80M --object-size 64K rbd/conformance
if timeout -k 5 180 "$conf" "rbd:rbd/conformance,conf=$CEPH_CONF" >"$tmp/conf.out" 2>&1; then
	ok "conformance suite on rbd:rbd/conformance (64 KiB objects)"
else
	not_ok "conformance suite on rbd:rbd/conformance"
	sed -e 's/^/    | /' "$tmp/conf.out" | head -40
fi
rbd_cmd rm rbd/conformance >/dev/null 2>&1

rbd_cmd create --size 64M rbd/img
sock=$tmp/blockd.sock
img="nbd+unix:///img?socket=$sock"
scratch="nbd+unix:///scratch?socket=$sock"
if start_daemon "$tmp/log1" --unix "$sock" --export "img=rbd:rbd/img,conf=$CEPH_CONF" \
	--export scratch=memory:,size=16M; then
	grep -q "export 'img' (default): rbd:rbd/img, 67108864 bytes, engine librbd" "$tmp/log1" &&
		ok "export described" || not_ok "export line: $(cat "$tmp/log1")"
	[ "$(timeout 20 nbdinfo --size "$img" 2>&1)" = 67108864 ] && ok "nbdinfo --size" ||
		not_ok "nbdinfo --size: $(timeout 20 nbdinfo --size "$img" 2>&1)"

	head -c 48M /dev/urandom >"$tmp/src"
	truncate -s 64M "$tmp/src"
	check "nbdcopy file -> rbd" nbdcopy "$tmp/src" "$img"
	check "nbdcopy rbd -> file" nbdcopy "$img" "$tmp/back"
	check "round trip is identical" cmp "$tmp/src" "$tmp/back"
	check "qemu-img compare" qemu-img compare -f raw -F raw "$tmp/src" "$img"
	# nbdcopy wrote zeros as zeros (or holes); the map must agree with the data.
	map=$(timeout 20 nbdinfo --map "$img" 2>&1)
	grep -q 'data' <<<"$map" && ok "nbdinfo --map answers" || not_ok "nbdinfo --map: $map"

	fio_job verify "$img" --numjobs=4 --offset_increment=16M --size=16M \
		--iodepth=32 --rw=randwrite --bsrange=4k-256k --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --io_size=12M --group_reporting
	[ "${fio_err%% *}" = 0 ] && ok "fio randwrite verify over rbd (${fio_err#* } MiB)" ||
		not_ok "fio verify: error ${fio_err}: $(tail -5 "$tmp/verify.out")"
	fio_job mixed "$img" --numjobs=2 --offset_increment=32M --size=32M \
		--iodepth=32 --rw=randrw --bssplit=4k/50:64k/30:1m/20 --verify=crc32c \
		--verify_fatal=1 --verify_backlog=128 --io_size=16M --group_reporting
	[ "${fio_err%% *}" = 0 ] && ok "fio randrw verify over rbd (${fio_err#* } MiB)" ||
		not_ok "fio randrw: error ${fio_err}: $(tail -5 "$tmp/mixed.out")"
	check "qemu-io write+read on rbd" qemu-io -f raw \
		-c 'write -P 0x5c 1M 64k' -c 'read -P 0x5c 1M 64k' "$img"
	stop_daemon
else
	not_ok "daemon did not start: $(cat "$tmp/log1")"
fi

# A snapshot: read-only, and its data stays while the image changes.
check "rbd import" rbd import --export-format 1 "$tmp/src" rbd/snapimg
rbd_cmd snap create rbd/snapimg@s1 >/dev/null 2>&1
if start_daemon "$tmp/log2" --unix "$sock" --export "snap=rbd:rbd/snapimg@s1,conf=$CEPH_CONF" \
	--export "live=rbd:rbd/snapimg,conf=$CEPH_CONF"; then
	grep -q "export 'snap' (default): rbd:rbd/snapimg@s1, .*read-only" "$tmp/log2" &&
		ok "snapshot export is read-only" || not_ok "snapshot export line: $(cat "$tmp/log2")"
	check "write the live image" qemu-io -f raw -c 'write -P 0xee 0 1M' \
		"nbd+unix:///live?socket=$sock"
	check "snapshot still holds the old data" qemu-img compare -f raw -F raw "$tmp/src" \
		"nbd+unix:///snap?socket=$sock"
	timeout 20 nbdinfo --json "nbd+unix:///snap?socket=$sock" 2>&1 |
		grep -q '"is_read_only": true' && ok "nbdinfo: the snapshot is read-only" ||
		not_ok "nbdinfo does not see a read-only snapshot"
	fails_with "a write to the snapshot fails" 'read-only\|not permitted\|Permission denied' \
		qemu-io -f raw -c 'write 0 4k' "nbd+unix:///snap?socket=$sock"
	stop_daemon
else
	not_ok "snapshot daemon did not start: $(cat "$tmp/log2")"
fi

# Over FUSE: a loop device on the export's file, ext4 on it, fsck clean.
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && command -v losetup >/dev/null &&
   command -v mkfs.ext4 >/dev/null && losetup -f >/dev/null 2>&1; then
	rbd_cmd create --size 64M rbd/fsimg
	mnt=$tmp/fuse fsdir=$tmp/fs
	mkdir -p "$mnt" "$fsdir"
	track_mount "$mnt"
	if start_daemon "$tmp/log4" --fuse-mount "$mnt" \
		--export "fsimg=rbd:rbd/fsimg,conf=$CEPH_CONF"; then
		if loop=$(losetup -f --show --direct-io=on "$mnt/fsimg"); then
			track_loop "$loop"
			track_mount "$fsdir"
			check "mkfs.ext4 on a loop device over FUSE over rbd" mkfs.ext4 -q -F "$loop"
			check "mount it" mount "$loop" "$fsdir"
			for i in 1 2 3; do head -c 3M /dev/urandom >"$fsdir/f$i"; done
			(cd "$fsdir" && sha256sum f1 f2 f3) >"$tmp/sums"
			check "umount" umount "$fsdir"
			check "fsck.ext4 -fn is clean" fsck.ext4 -fn "$loop"
			check "remount" mount "$loop" "$fsdir"
			check "checksums match after remount" sh -c "cd '$fsdir' && sha256sum -c --quiet '$tmp/sums'"
			umount "$fsdir" 2>/dev/null
			losetup -d "$loop" 2>/dev/null
		else
			not_ok "losetup on $mnt/fsimg failed"
		fi
		stop_daemon
	else
		not_ok "FUSE daemon did not start: $(cat "$tmp/log4")"
	fi
	rbd_cmd rm rbd/fsimg >/dev/null 2>&1
else
	echo "# FUSE case skipped: needs root, /dev/fuse, losetup and mkfs.ext4"
fi

# Opens that fail, each saying why.
fails_with "no such image" "no such image" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:rbd/nonesuch,conf=$CEPH_CONF"
fails_with "no such snapshot" "no such image or snapshot" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:rbd/img@nonesuch,conf=$CEPH_CONF"
fails_with "no such pool" "no pool 'nopool'" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:nopool/img,conf=$CEPH_CONF"
fails_with "target without a pool" "POOL/IMAGE" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:img,conf=$CEPH_CONF"
fails_with "missing conf" "cannot read $tmp/none.conf" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:rbd/img,conf=$tmp/none.conf"
fails_with "size mismatch" "leave size= out" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:rbd/img,conf=$CEPH_CONF,size=1M"
fails_with "rbd keys on another backend" "for the rbd backend only" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=memory:,size=1M,conf=/x"
ceph_stop
echo "# part 1 done at $((SECONDS - t0)) s"

# ---- 2. bluestore, cephx: the OSD dies and comes back ------------------
CEPH_STORE=bluestore ceph_start cephx || cluster_failed
echo "# cluster up at $((SECONDS - t0)) s (bluestore, cephx, mon port $ceph_port)"
fails_with "cephx: an unknown client is refused" "cannot connect" \
	"$blockd" -f --unix "$tmp/x.sock" --export "a=rbd:rbd/img,conf=$CEPH_CONF,id=nobody"
rbd_cmd create --size 64M rbd/img
if start_daemon "$tmp/log3" --unix "$sock" \
	--export "img=rbd:rbd/img,conf=$CEPH_CONF,id=admin" --export scratch=memory:,size=16M; then
	check "cephx: write+read as client.admin" qemu-io -f raw \
		-c 'write -P 0x11 0 1M' -c 'read -P 0x11 0 1M' "$img"

	# fio runs against the image; the OSD dies under it.
	fio_run killed "$img" --rw=randwrite --bs=4k --iodepth=16 --size=32M --offset=8M \
		--time_based --runtime=40 &
	fio_pid=$!
	track_pid "$fio_pid"
	sleep 1.5
	ceph_osd_kill
	t_kill=$SECONDS
	wait "$fio_pid"
	fio_err=$(fio_result killed)
	echo "# fio ended $((SECONDS - t_kill)) s after the kill"
	[ "${fio_err%% *}" = 5 ] && ok "I/O in flight at the kill fails with EIO" ||
		not_ok "fio after the kill: error '${fio_err}', want 5 (EIO): $(tail -5 "$tmp/killed.out")"
	check "the other export still serves" qemu-io -f raw \
		-c 'write -P 0x33 0 1M' -c 'read -P 0x33 0 1M' "$scratch"
	fails_with "new I/O while the OSD is down fails with EIO" 'Input/output error' \
		qemu-io -f raw -c 'read 0 4k' "$img"
	kill -0 "$daemon_pid" 2>/dev/null && ok "daemon alive with the OSD down" ||
		not_ok "daemon died: $(tail "$tmp/log3")"
	n=$(grep -c 'rbd: rbd/img: I/O failed' "$tmp/log3")
	[ "$n" = 1 ] && ok "the failure is logged once" ||
		not_ok "the failure is logged $n times: $(grep rbd "$tmp/log3" | head)"

	t_up=$SECONDS
	if ceph_osd_start; then
		echo "# OSD back in $((SECONDS - t_up)) s"
		check "after the restart, old data reads back" qemu-io -f raw \
			-c 'read -P 0x11 0 1M' "$img"
		check "after the restart, new I/O succeeds" qemu-io -f raw \
			-c 'write -P 0x22 1M 1M' -c 'read -P 0x22 1M 1M' "$img"
		grep -q 'rbd: rbd/img: I/O works again' "$tmp/log3" && ok "recovery logged" ||
			not_ok "no recovery line: $(grep rbd "$tmp/log3" | head)"
	else
		not_ok "the OSD did not come back"
		ceph_logs
	fi
	stop_daemon
else
	not_ok "daemon (cephx) did not start: $(cat "$tmp/log3")"
fi
ceph_stop
echo "# done in $((SECONDS - t0)) s"
finish
