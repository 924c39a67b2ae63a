#!/usr/bin/env bash
# FUSE front ends compared, on the same backing file in the same run:
# fio (io_uring, direct=1) on a loop device (losetup --direct-io=on) over
#   blockd     blockd's FUSE file (--fuse-mount, file: backend)
#   qsd        qemu-storage-daemon's FUSE export (--export type=fuse)
#   nbdfuse    nbdfuse over nbdkit's file plugin
#   direct     the backing file itself, the limit
# and fio straight on each FUSE file.  Every server reads and writes the
# backing file through the page cache (nbdkit's file plugin cannot do
# O_DIRECT, so nobody does), and the direct loop device does too
# (--direct-io=off), so what differs is the path, not the disk.
#
#   bench/fuse.sh [BUILD_DIR]        (default: build; needs root)
#   env: RUNTIME=seconds per row (3), SIZE=backing file size (1G),
#        BENCH_DIR=where the file and mounts go (a temp dir),
#        BLOCKD_ARGS=extra blockd options (e.g. --poll-us 0),
#        ROWS=which rows (all: "rr4k-qd1 rr4k-qd32 rw4k-qd32 seqr1m seqw1m"),
#        PEERS=which peers besides blockd (all: "qsd nbdfuse direct"; none: "none")
#
# Rows: 4k randread QD1 and QD32, 4k randwrite QD32, 1M sequential read
# and write QD8: IOPS for 4k rows, MiB/s for 1M rows, and blockd's ratio
# to each peer.  Absolute numbers on a shared machine are noise; the
# ratios within one run are the signal.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$top/build}
blockd=$build/daemon/blockd
runtime=${RUNTIME:-3}
size=${SIZE:-1G}
peers=" ${PEERS:-qsd nbdfuse direct} "
dir=${BENCH_DIR:-$(mktemp -d /tmp/blockd-fuse-bench.XXXXXX)}
img=$dir/fuse-bench.img
results=$dir/results.txt
pids=() loops=() mounts=()

cleanup() {
	local i
	for i in "${loops[@]}"; do losetup -d "$i" 2>/dev/null || true; done
	for i in "${mounts[@]}"; do umount -l "$i" 2>/dev/null || true; done
	for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null || true; done
	for i in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$i" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$i" 2>/dev/null || true
	done
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "bench/fuse.sh: needs root (FUSE mounts, loop devices)" >&2; exit 1; }
for t in fio losetup qemu-storage-daemon nbdfuse nbdkit fusermount3 python3; do
	command -v "$t" >/dev/null || { echo "bench/fuse.sh: $t is not installed" >&2; exit 1; }
done
[ -x "$blockd" ] || { echo "bench/fuse.sh: build blockd first ($blockd)" >&2; exit 1; }

if [ ! -s "$img" ]; then
	echo "# writing $size of random data to $img" >&2
	fio --name=fill --filename="$img" --rw=write --bs=1M --size="$size" \
		--refill_buffers --output=/dev/null
fi
: >"$results"

read -r -a rows <<<"${ROWS:-rr4k-qd1 rr4k-qd32 rw4k-qd32 seqr1m seqw1m}"
row_args() {
	case $1 in
	rr4k-qd1) echo --rw=randread --bs=4k --iodepth=1 ;;
	rr4k-qd32) echo --rw=randread --bs=4k --iodepth=32 ;;
	rw4k-qd32) echo --rw=randwrite --bs=4k --iodepth=32 ;;
	seqr1m) echo --rw=read --bs=1M --iodepth=8 ;;
	seqw1m) echo --rw=write --bs=1M --iodepth=8 ;;
	esac
}

# measure LABEL PATH: every row on PATH, one line per row in $results.
measure() {
	local label=$1 path=$2 row
	for row in "${rows[@]}"; do
		# shellcheck disable=SC2046
		fio --name="$row" --filename="$path" --ioengine=io_uring --direct=1 \
			--size="$size" --runtime="$runtime" --time_based --ramp_time=1 \
			--output-format=json --output="$dir/fio.json" $(row_args "$row") >/dev/null
		python3 - "$dir/fio.json" "$label" "$row" >>"$results" <<'PY'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.index("{"):])["jobs"][0]
io = j["read"] if j["read"]["io_bytes"] else j["write"]
print(sys.argv[2], sys.argv[3], io["iops"], io["bw_bytes"] / 1048576)
PY
	done
}

# loop_measure LABEL FILE DIO: the rows on a loop device over FILE.
loop_measure() {
	local dev
	dev=$(losetup -f --show --direct-io="$3" "$2")
	loops+=("$dev")
	measure "$1" "$dev"
	losetup -d "$dev"
}

# wait_file PATH PID: until PATH is a file on a FUSE mount.
wait_file() {
	for _ in $(seq 200); do
		case $(stat -f -c %T "$1" 2>/dev/null) in fuse*) [ -f "$1" ] && return 0 ;; esac
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

stop() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}

# fuse_target LABEL FILE PID: fio on FILE, then on a loop device over it.
fuse_target() {
	wait_file "$2" "$3" || { echo "bench/fuse.sh: $1 did not mount" >&2; exit 1; }
	echo "# $1" >&2
	measure "file:$1" "$2"
	loop_measure "loop:$1" "$2" on
}

mkdir -p "$dir/b" "$dir/n"
# shellcheck disable=SC2086
"$blockd" -f --memory 256M ${BLOCKD_ARGS:-} --fuse-mount "$dir/b" \
	--export "disk=file:$img,cache=writeback" >"$dir/blockd.log" 2>&1 &
pids+=($!)
mounts+=("$dir/b")
fuse_target blockd "$dir/b/disk" "${pids[-1]}"
stop "${pids[-1]}"

peer() { [[ $peers == *" $1 "* ]]; }

if peer qsd; then
touch "$dir/q.file"
qemu-storage-daemon \
	--blockdev "driver=file,node-name=f,filename=$img,cache.direct=off,aio=io_uring" \
	--blockdev driver=raw,node-name=r,file=f \
	--export "type=fuse,id=e,node-name=r,mountpoint=$dir/q.file,writable=on" \
	>"$dir/qsd.log" 2>&1 &
pids+=($!)
mounts+=("$dir/q.file")
fuse_target qsd "$dir/q.file" "${pids[-1]}"
stop "${pids[-1]}"
fi

if peer nbdfuse; then
rm -f "$dir/k.sock"	# a reused BENCH_DIR may hold the last run's
nbdkit -f -U "$dir/k.sock" file "$img" >"$dir/nbdkit.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/k.sock" ] && break; sleep 0.05; done
nbdfuse "$dir/n" "nbd+unix:///?socket=$dir/k.sock" >"$dir/nbdfuse.log" 2>&1 &
pids+=($!)
mounts+=("$dir/n")
fuse_target nbdfuse "$dir/n/nbd" "${pids[-1]}"
fusermount3 -u "$dir/n" || true
stop "${pids[-1]}"
stop "${pids[-2]}"
fi

if peer direct; then
echo "# direct" >&2
loop_measure loop:direct "$img" off
fi

python3 - "$results" "$runtime" <<'PY'
import sys
r = {}
for line in open(sys.argv[1]):
    label, row, iops, mib = line.split()
    r[(label, row)] = (float(iops), float(mib))
rows = ["rr4k-qd1", "rr4k-qd32", "rw4k-qd32", "seqr1m", "seqw1m"]
def val(label, row):
    v = r.get((label, row))
    if not v:
        return None
    return v[1] if row.startswith("seq") else v[0]
def fmt(v):
    return "%10.0f" % v if v is not None else "%10s" % "-"
def ratio(a, b):
    return "%7.2fx" % (a / b) if a and b else "%8s" % "-"
print("fio io_uring direct=1, %s s per row; 4k rows in IOPS, 1M rows in MiB/s" % sys.argv[2])
print("machine shared with other work: absolute numbers are noise, ratios in one run are signal")
for kind, title in (("loop", "on a loop device (--direct-io=on) over the FUSE file"),
                    ("file", "straight on the FUSE file")):
    print()
    print(title)
    cols = ["blockd", "qsd", "nbdfuse"] + (["direct"] if kind == "loop" else [])
    hdr = "%-10s" % "row" + "".join("%10s" % c for c in cols) + "  vs qsd  vs nbdfuse"
    if kind == "loop":
        hdr += "  vs direct"
    print(hdr)
    for row in rows:
        b = val(kind + ":blockd", row)
        line = "%-10s" % row + "".join(fmt(val(kind + ":" + c, row)) for c in cols)
        line += ratio(b, val(kind + ":qsd", row)) + "  " + ratio(b, val(kind + ":nbdfuse", row))
        if kind == "loop":
            line += "  " + ratio(b, val("loop:direct", row))
        print(line)
print()
print("targets: >= 1.20x qsd and >= 2.00x nbdfuse every row; >= 0.70x direct on seqr1m/seqw1m")
PY
