#!/usr/bin/env bash
# The FUSE front end as a file system: names, sizes and modes, reads and
# writes checked byte for byte (also across NBD), the errors for what a
# fixed-size disk cannot do, SEEK_DATA/SEEK_HOLE, fallocate, writes of any
# size on blocks over 4 KiB and on a failing disk (nbdkit), and the
# mount's life: SIGTERM, unmount from outside, a stale mount left by a
# killed daemon, a mount point already in use.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuse-lib.sh"
need_fuse
for tool in nbdcopy nbdinfo python3 fallocate; do
	command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done

mnt=$tmp/mnt
sock=$tmp/s.sock
truncate -s 64M "$tmp/disk.img"
if ! start_fuse "$tmp/log" "$mnt" --memory 16M --unix "$sock" \
	--stats-socket "$tmp/stats.sock" --export "disk=file:$tmp/disk.img" --export ro=memory:,size=8M,readonly \
	--export mem=memory:,size=32M; then
	not_ok "daemon did not start: $(cat "$tmp/log")"
	finish
	exit
fi
pid=$daemon_pid

[ "$(ls "$mnt" | tr '\n' ' ')" = "disk mem ro " ] && ok "one file per export" ||
	not_ok "listing: $(ls -la "$mnt")"
[ "$(stat -c '%s %a %F' "$mnt/disk")" = "67108864 600 regular file" ] &&
	[ "$(stat -c '%s %a' "$mnt/ro")" = "8388608 400" ] &&
	ok "sizes and modes (0600, 0400 read-only)" ||
	not_ok "stat: $(stat -c '%n %s %a %F' "$mnt"/*)"
stat -f "$mnt" >/dev/null && ok "statfs" || not_ok "statfs failed"

# Writes and reads, compared byte for byte, through FUSE and NBD.
head -c 4M /dev/urandom >"$tmp/a"
dd if="$tmp/a" of="$mnt/disk" bs=1M seek=1 conv=notrunc,fsync status=none &&
	ok "dd write + fsync" || not_ok "dd write failed"
cmp -s "$tmp/a" <(dd if="$mnt/disk" bs=1M skip=1 count=4 status=none) &&
	ok "FUSE read returns what FUSE wrote" || not_ok "FUSE readback differs"
cmp -s "$tmp/a" <(dd if="$tmp/disk.img" bs=1M skip=1 count=4 status=none) &&
	ok "the data reached the backing file" || not_ok "backing file differs"
timeout 60 nbdcopy "nbd+unix:///disk?socket=$sock" "$tmp/viannbd" &&
	cmp -s "$tmp/a" <(dd if="$tmp/viannbd" bs=1M skip=1 count=4 status=none) &&
	ok "written via FUSE, read via NBD (nbdcopy)" || not_ok "NBD sees other data"
head -c 32M /dev/urandom >"$tmp/b"
timeout 60 nbdcopy "$tmp/b" "nbd+unix:///mem?socket=$sock" &&
	cmp -s "$tmp/b" "$mnt/mem" &&
	ok "written via NBD (nbdcopy), read via FUSE" || not_ok "FUSE sees other data than NBD wrote"

# Writes of any size at any offset, by read-modify-write: dd bs=100 into
# the file, the same dd into a copy, the same bytes after.
head -c 300000 /dev/urandom >"$tmp/u"
cp "$tmp/b" "$tmp/b2"
dd if="$tmp/u" of="$tmp/b2" bs=100 seek=12345 conv=notrunc status=none
dd if="$tmp/u" of="$mnt/mem" bs=100 seek=12345 conv=notrunc status=none &&
	[ "$(md5sum <"$mnt/mem")" = "$(md5sum <"$tmp/b2")" ] &&
	ok "dd bs=100 at an unaligned offset (read-modify-write)" ||
	not_ok "dd bs=100: the file differs from the copy"
# Eight threads writing interleaved 100-byte pieces: neighbours share
# blocks, and no RMW may undo another's bytes.
out=$(python3 - "$mnt/mem" "$tmp/b2" <<'PY' 2>&1
import os, sys, threading
fd = os.open(sys.argv[1], os.O_RDWR)
exp = bytearray(open(sys.argv[2], "rb").read())
base, n, piece = 3 * 1048576 + 7, 4000, 100
data = os.urandom(n * piece)
def run(k):
    for i in range(k, n, 8):
        off = base + i * piece
        assert os.pwrite(fd, data[i * piece:(i + 1) * piece], off) == piece
ts = [threading.Thread(target=run, args=(k,)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
exp[base:base + n * piece] = data
open(sys.argv[2], "wb").write(exp)
print("done")
PY
)
[ "$out" = done ] && [ "$(md5sum <"$mnt/mem")" = "$(md5sum <"$tmp/b2")" ] &&
	ok "concurrent unaligned writes sharing blocks" ||
	not_ok "concurrent unaligned writes: ${out:-the file differs}"

# Python for the calls the shell has no tool for.
# py CODE [ARGS...]: python3 with sys.argv[1] the mount point, then ARGS.
py() {
	local code=$1
	shift
	python3 -c "import os, errno, sys
$code" "$mnt" "$@" 2>&1
}
out=$(py '
fd = os.open(sys.argv[1] + "/disk", os.O_RDWR)
b = os.pread(fd, 100, 1048576 + 7)
assert b == open(sys.argv[1] + "/disk", "rb").read()[1048576 + 7:1048576 + 107], "unaligned read"
n = os.pwrite(fd, b"x" * 8192, 64 * 1048576 - 4096)
assert n == 4096, "short write across the end: %d" % n
for off, what in ((64 * 1048576, "at the end"), (65 * 1048576, "past the end")):
    try:
        os.pwrite(fd, b"x" * 4096, off)
        raise SystemExit("write " + what + " succeeded")
    except OSError as e:
        assert e.errno == errno.EFBIG, (what, e)
before = os.pread(fd, 2048, 2 * 1048576)
assert os.pwrite(fd, b"y" * 10, 2 * 1048576 + 3) == 10, "unaligned write"
assert os.pread(fd, 2048, 2 * 1048576) == before[:3] + b"y" * 10 + before[13:], \
    "unaligned write lost the bytes around it"
os.fsync(fd)
os.fdatasync(fd)
print("done")')
[ "$out" = done ] && ok "unaligned read and write, short write at the end, EFBIG past it, fsync" ||
	not_ok "file semantics: $out"
out=$(py '
try:
    os.open(sys.argv[1] + "/ro", os.O_WRONLY)
    raise SystemExit("opened read-only export for writing")
except OSError as e:
    assert e.errno == errno.EROFS, e
assert len(open(sys.argv[1] + "/ro", "rb").read()) == 8388608
print("done")')
[ "$out" = done ] && ok "read-only export: EROFS for writing, reads work" || not_ok "ro: $out"
truncate -s 1M "$mnt/disk" 2>/dev/null && not_ok "truncate changed the size" ||
	ok "truncate is refused"
[ "$(stat -c %s "$mnt/disk")" = 67108864 ] || not_ok "size changed"

# Holes: disk.img is sparse except [1M, 5M) and the last 4K.
out=$(py '
fd = os.open(sys.argv[1] + "/disk", os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 1048576, os.SEEK_HOLE),
      os.lseek(fd, 5 * 1048576, os.SEEK_DATA), os.lseek(fd, 64 * 1048576 - 4096, os.SEEK_HOLE))
try:
    os.lseek(fd, 64 * 1048576, os.SEEK_DATA)
    print("no ENXIO")
except OSError as e:
    print(errno.errorcode[e.errno])')
[ "$out" = "$(printf '1048576 5242880 67104768 67108864\nENXIO')" ] &&
	ok "SEEK_DATA / SEEK_HOLE follow the backend's extents" || not_ok "lseek: $out"

fallocate -p -o 2M -l 1M "$mnt/disk" && fallocate -z -o 3M -l 512K "$mnt/disk" &&
	cmp -s <(head -c 1536K /dev/zero) <(dd if="$mnt/disk" bs=512K skip=4 count=3 status=none) &&
	cmp -s <(dd if="$tmp/a" bs=512K skip=5 count=1 status=none) \
		<(dd if="$mnt/disk" bs=512K skip=7 count=1 status=none) &&
	ok "fallocate punch-hole and zero-range read back zeros, neighbours kept" ||
	not_ok "fallocate: $(fallocate -p -o 2M -l 1M "$mnt/disk" 2>&1)"
map=$(timeout 20 nbdinfo --map "nbd+unix:///disk?socket=$sock" 2>&1)
awk '$1 <= 2097152 && $1 + $2 >= 3145728 && $3 == 3 { f = 1 } END { exit !f }' <<<"$map" &&
	ok "the punched hole is a hole to nbdinfo --map" || not_ok "map: $map"
fallocate -p -o 1000 -l 1M "$mnt/disk" 2>/dev/null && not_ok "unaligned punch accepted" ||
	ok "unaligned fallocate refused"
fallocate -p -o 0 -l 1M "$mnt/ro" 2>/dev/null && not_ok "punch on read-only export" ||
	ok "fallocate on a read-only export refused"

# FUSE I/O is counted in the stats socket like NBD I/O.
disk_stats() {
	read_stats "$tmp/stats.sock" >"$tmp/stats.json" && python3 - "$tmp/stats.json" <<'PY'
import json, sys
d = {x["name"]: x for x in json.load(open(sys.argv[1]))["exports"]}["disk"]
o = d["ops"]
print(o["read"]["bytes"], o["write"]["bytes"], o["write"]["ops"], o["flush"]["ops"],
      o["write_zeroes"]["ops"], d["errors"], d["in_flight"])
PY
}
before=$(disk_stats)
dd if="$mnt/disk" of=/dev/null bs=1M count=2 status=none
dd if="$tmp/a" of="$mnt/disk" bs=1M count=1 seek=8 conv=notrunc,fsync status=none
dd if="$tmp/u" of="$mnt/disk" bs=100 count=1 seek=1 conv=notrunc status=none
fallocate -z -o 4M -l 1M "$mnt/disk"
after=$(disk_stats)
read -r r0 w0 wo0 f0 z0 e0 _ <<<"$before"
read -r r1 w1 wo1 f1 z1 e1 i1 <<<"$after"
[ $((r1 - r0)) -eq $((2 << 20)) ] && [ $((w1 - w0)) -eq $(((1 << 20) + 100)) ] &&
	[ $((wo1 - wo0)) -ge 2 ] && [ $((f1 - f0)) -ge 1 ] && [ $((z1 - z0)) -ge 1 ] &&
	[ "$e1" = "$e0" ] && [ "$i1" = 0 ] &&
	ok "FUSE reads, writes (also unaligned), fsync and zeroing are counted in the stats" ||
	not_ok "stats before '$before' after '$after'"

# Unmounted from outside: FUSE stops, NBD goes on.
fusermount3 -u "$mnt"
for _ in $(seq 100); do grep -q 'was unmounted' "$tmp/log" && break; sleep 0.05; done
grep -q 'was unmounted' "$tmp/log" && kill -0 "$pid" 2>/dev/null &&
	[ "$(timeout 20 nbdinfo --size "nbd+unix:///mem?socket=$sock")" = 33554432 ] &&
	ok "fusermount3 -u stops the FUSE front end; NBD keeps serving" ||
	not_ok "external unmount: $(tail -5 "$tmp/log")"
stop_daemon "$pid"
[ "$daemon_status" = 0 ] && ok "then SIGTERM: exit 0" || not_ok "exit: $(tail -5 "$tmp/log")"

# FUSE only: SIGTERM unmounts and exits 0; umount from outside ends the daemon.
for how in term umount; do
	if ! start_fuse "$tmp/log-$how" "$mnt" --memory 4M --export mem=memory:,size=8M; then
		not_ok "FUSE-only daemon did not start: $(cat "$tmp/log-$how")"
		continue
	fi
	dd if=/dev/urandom of="$mnt/mem" bs=64k count=4 conv=notrunc status=none
	if [ $how = term ]; then
		stop_daemon "$daemon_pid"
	else
		umount "$mnt"
		for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		stop_daemon "$daemon_pid"
	fi
	st=$daemon_status
	! mountpoint -q "$mnt" && [ "$st" = 0 ] &&
		ok "FUSE only, $how: unmounted, exit 0" ||
		not_ok "FUSE only, $how: status $st, $(tail -3 "$tmp/log-$how")"
done

# A daemon killed with SIGKILL leaves a dead mount; the next one recovers it.
start_fuse "$tmp/log-k" "$mnt" --memory 4M --export mem=memory:,size=8M
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
true
# The kernel aborts the connection once the ring holding /dev/fuse is torn
# down; statfs always asks the daemon (stat may answer from the cache).
for _ in $(seq 100); do
	out=$(stat -f "$mnt" 2>&1) || break
	sleep 0.1
done
grep -Eq 'not connected|connection abort' <<<"$out" && ok "SIGKILL leaves a dead mount (ENOTCONN)" ||
	not_ok "no stale mount after SIGKILL: $out"
if start_fuse "$tmp/log-r" "$mnt" --memory 4M --export mem=memory:,size=8M; then
	grep -q 'dead FUSE mount' "$tmp/log-r" && [ "$(stat -c %s "$mnt/mem")" = 8388608 ] &&
		ok "a stale mount is recovered at start" || not_ok "recovery: $(cat "$tmp/log-r")"
	# The mount point is now in use: a second daemon says so and exits.
	"$blockd" -f --fuse-mount "$mnt" --export a=memory:,size=1M >"$tmp/log-2" 2>&1 &
	p2=$!
	track_pid "$p2"
	wait "$p2"
	st=$?
	[ "$st" = 1 ] && grep -q "already a mount point.*umount $mnt" "$tmp/log-2" &&
		ok "a mount point in use is refused, with the fix" || not_ok "second daemon: $st $(cat "$tmp/log-2")"
	stop_daemon "$daemon_pid"
	[ "$daemon_status" = 0 ] || not_ok "recovered daemon exit"
else
	not_ok "daemon after SIGKILL did not start: $(cat "$tmp/log-r")"
fi

# Blocks over 4 KiB (a remote NBD disk with a 16 KiB minimum block size,
# which nbdkit enforces): writes that do not cover whole blocks are still
# read-modify-written, and every request that reaches the server is whole
# blocks.
if command -v nbdkit >/dev/null; then
	ksock=$tmp/k16.sock
	nbdkit -f -U "$ksock" --filter=blocksize-policy memory 16M \
		blocksize-minimum=16K blocksize-preferred=64K blocksize-maximum=32M \
		blocksize-error-policy=error 2>"$tmp/nbdkit16.err" &
	track_pid $!
	for _ in $(seq 100); do [ -S "$ksock" ] && break; sleep 0.05; done
	if start_fuse "$tmp/log-16k" "$mnt" --memory 16M \
		--export "big=nbd:nbd+unix:///?socket=$ksock"; then
		head -c 16M /dev/urandom >"$tmp/r16"
		dd if="$tmp/r16" of="$mnt/big" bs=1M conv=notrunc status=none
		cp "$tmp/r16" "$tmp/r16b"
		out=$(py '
fd = os.open(sys.argv[1] + "/big", os.O_RDWR)
ref = os.open(sys.argv[2], os.O_RDWR)
for off, n in ((3, 10), (16384 - 5, 10), (40000, 70000), (4096, 4096),
               (65536 * 3 + 1, 32768), (1048576 - 100, 200), (5 * 1048576 + 4096, 1048576)):
    d = os.urandom(n)
    assert os.pwrite(fd, d, off) == n, (off, n)
    os.pwrite(ref, d, off)
os.fsync(fd)
print("done")' "$tmp/r16b")
		[ "$out" = done ] && cmp -s "$mnt/big" "$tmp/r16b" &&
			ok "16 KiB blocks: writes of any size and offset (read-modify-write)" ||
			not_ok "16 KiB blocks: ${out:-the file differs}"
		stop_daemon "$daemon_pid"
		[ "$daemon_status" = 0 ] || not_ok "16 KiB blocks: exit $daemon_status"
	else
		not_ok "16 KiB blocks: daemon did not start: $(cat "$tmp/log-16k")"
	fi

	# A failing disk under a read-modify-write: the edge read fails, the
	# write fails with EIO, nothing stays counted in flight, and whole-block
	# writes still work.
	esock=$tmp/kerr.sock
	nbdkit -f -U "$esock" --filter=error memory 16M error-pread=EIO \
		error-pread-rate=100% 2>"$tmp/nbdkit-err.err" &
	track_pid $!
	for _ in $(seq 100); do [ -S "$esock" ] && break; sleep 0.05; done
	if start_fuse "$tmp/log-err" "$mnt" --memory 16M --stats-socket "$tmp/err-stats.sock" \
		--export "bad=nbd:nbd+unix:///?socket=$esock"; then
		out=$(py '
fd = os.open(sys.argv[1] + "/bad", os.O_RDWR)
try:
    os.pwrite(fd, b"z" * 10, 4096 + 3)
    raise SystemExit("an RMW over a failing read succeeded")
except OSError as e:
    assert e.errno == errno.EIO, e
assert os.pwrite(fd, b"w" * 4096, 8192) == 4096
print("done")')
		read_stats "$tmp/err-stats.sock" >"$tmp/err-stats.json"
		st=$(python3 -c 'import json, sys
d = {x["name"]: x for x in json.load(open(sys.argv[1]))["exports"]}["bad"]
print(d["in_flight"], d["errors"] >= 1)' "$tmp/err-stats.json")
		[ "$out" = done ] && [ "$st" = "0 True" ] &&
			ok "a failing edge read fails the write with EIO; the stats end it" ||
			not_ok "failing RMW read: ${out:-} stats ${st:-?}"
		stop_daemon "$daemon_pid"
		[ "$daemon_status" = 0 ] || not_ok "failing RMW read: exit $daemon_status"
	else
		not_ok "failing RMW read: daemon did not start: $(cat "$tmp/log-err")"
	fi
else
	echo "skip: 16 KiB blocks and a failing disk need nbdkit"
fi

# An export given without a name is named disk: DIR/disk over FUSE, and
# the default export over NBD.
if start_fuse "$tmp/log-un" "$mnt" --memory 8M --unix "$tmp/un.sock" --export memory:,size=8M; then
	head -c 1M /dev/urandom >"$tmp/un"
	dd if="$tmp/un" of="$mnt/disk" bs=1M conv=notrunc status=none
	[ "$(ls "$mnt")" = disk ] &&
		[ "$(timeout 20 nbdinfo --size "nbd+unix:///?socket=$tmp/un.sock")" = 8388608 ] &&
		cmp -s "$tmp/un" <(timeout 20 nbdcopy "nbd+unix:///?socket=$tmp/un.sock" - | head -c 1M) &&
		ok "an unnamed export is DIR/disk and the default NBD export" ||
		not_ok "unnamed export: $(ls "$mnt") $(tail -3 "$tmp/log-un")"
	stop_daemon "$daemon_pid"
	[ "$daemon_status" = 0 ] || not_ok "unnamed export: exit $daemon_status"
else
	not_ok "unnamed export: daemon did not start: $(cat "$tmp/log-un")"
fi

# Bad input: a clear message, nothing mounted.
expect_fail() {
	local want=$1 pattern=$2 out st
	shift 2
	out=$(timeout 20 "$blockd" -f "$@" 2>&1)
	st=$?
	[ "$st" = "$want" ] && grep -q -- "$pattern" <<<"$out" && ok "blockd $* -> $want" ||
		not_ok "blockd $*: status $st: $out"
}
expect_fail 1 'does not exist; create it with: mkdir -p' --fuse-mount "$tmp/nope" --export a=memory:,size=1M
expect_fail 1 'is not a directory' --fuse-mount "$tmp/disk.img" --export a=memory:,size=1M
expect_fail 1 'cannot be a file name' --fuse-mount "$mnt" --export ..=memory:,size=1M
expect_fail 2 'needs --memory of at least 2M' --fuse-mount "$mnt" --memory 1M --export a=memory:,size=1M
mountpoint -q "$mnt" && not_ok "something is still mounted on $mnt" || ok "nothing left mounted"
finish
