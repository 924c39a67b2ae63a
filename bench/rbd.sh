#!/usr/bin/env bash
# blockd's rbd backend against librbd's own clients on the same image of a
# throw-away single-node cluster (tests/ceph-mini.sh: one mon, one memstore
# OSD, all on 127.0.0.1), in one run:
#   blockd   fio's nbd engine on blockd exporting rbd:rbd/bench
#   fio-rbd  fio's rbd engine (librbd in fio's own process)
#   rbd      rbd bench, as much I/O as fio-rbd did in the row
#
#   bench/rbd.sh [BUILD_DIR]       (default: build)
#   env: RUNTIME=seconds per row (5), SIZE=image size (512M),
#        ROUNDS=times each row is run per client, interleaved (3)
#        BLOCKD_ARGS=extra blockd options (e.g. --poll-us 0)
#
# Rows: 4k randread QD32, 4k randwrite QD32, 1M sequential read and write
# QD8 (rbd bench: as many threads).  librbd's cache is off for every
# client (rbd_cache = false, blockd's default), so all three wait for the
# OSD on every write.  The target: blockd within 15% of fio-rbd per row.
# One client at a time holds the image's exclusive lock: they run in turn,
# row by row and round by round, so a neighbour's load on a shared machine
# hits all three alike; the table shows each client's best round.
# Fairness: all three open the same image through the same ceph.conf as
# client.admin, with librbd's defaults except rbd_cache = false (in the
# conf, and set by blockd itself); blockd sets no other librbd option.
#
# On a small host the row is bound by CPU, so the table also shows CPU
# seconds per GiB moved, per process (OSD, the fio process, blockd),
# sampled over fio's steady state: blockd's rows pay for one more
# process and a copy each way through the NBD socket, which fio-rbd
# does not have.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$top/build}
blockd=$build/daemon/blockd
runtime=${RUNTIME:-5}
size=${SIZE:-512M}
rounds=${ROUNDS:-3}

for t in fio rbd ceph ceph-mon ceph-osd nbdinfo python3; do
	command -v "$t" >/dev/null || { echo "bench/rbd.sh: $t is not installed" >&2; exit 1; }
done
[ "$runtime" -ge 2 ] || { echo "bench/rbd.sh: RUNTIME must be 2 seconds or more" >&2; exit 1; }
[ -x "$blockd" ] || { echo "bench/rbd.sh: build blockd first ($blockd)" >&2; exit 1; }
fio --enghelp 2>/dev/null | grep -qw rbd || { echo "bench/rbd.sh: this fio has no rbd engine" >&2; exit 1; }

top_srcdir=$top
. "$top/tests/lib.sh"
set +u
. "$top/tests/ceph-mini.sh"
set -u
# set +e: under -e, _cleanup's kill of an already ended blockd would end
# the trap there, before the temp dir is removed, and fail the run.
trap 'st=$?; set +e; ceph_stop; _cleanup; exit $st' EXIT
results=$tmp/results.jsonl
: >"$results"

# memstore keeps about 2.4 times what is written.
export CEPH_MEMSTORE_BYTES=$((4 << 30)) CEPH_OSD_OP_TIMEOUT=60
ceph_start || { ceph_logs; exit 1; }
echo "[client]" >>"$CEPH_CONF"
echo "rbd_cache = false" >>"$CEPH_CONF"
rbd_cmd create --size "$size" rbd/bench
echo "# filling rbd/bench ($size)" >&2
fio --name=fill --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench \
	--rw=write --bs=4M --iodepth=8 --size="$size" --refill_buffers --output=/dev/null

# CPU time (clock ticks, user + system) of PIDs and all their descendants.
ticks() {
	local t=0 p kids
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		# The command name may hold spaces: count fields after its ")".
		t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
		kids=$(pgrep -P "$p" || true)
		# shellcheck disable=SC2086
		[ -z "$kids" ] || t=$((t + $(ticks $kids)))
	done
	echo "$t"
}

# record CLIENT ROW CPU: fio's result in $tmp/fio.json; CPU is "osd client
# blockd seconds" over the measured window.
record() {
	python3 - "$tmp/fio.json" "$1" "$2" "$3" <<'PY' >>"$results"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
rw = j["read"] if j["read"]["io_bytes"] else j["write"]
osd, client, blockd, wall = (float(x) for x in sys.argv[4].split())
gib = rw["bw_bytes"] * wall / (1 << 30)
cpu = {k: v / gib for k, v in (("osd", osd), ("client", client), ("blockd", blockd))} if gib else {}
print(json.dumps({"client": sys.argv[2], "row": sys.argv[3], "iops": rw["iops"],
                  "mibs": rw["bw_bytes"] / 1048576.0, "bytes": rw["io_bytes"], "cpu": cpu}))
PY
}

# fio_row CLIENT ROW BLOCKD-PID ENGINE-ARGS... -- FIO-ARGS...
# The CPU of the OSD, of fio (with librbd for fio-rbd) and of blockd is
# sampled once the ramp is over and again just before fio stops, so it
# covers the same steady state as fio's bandwidth.
fio_row() {
	local client=$1 row=$2 bpid=$3 engine=() fpid t0 t1 o0 o1 c0 c1 b0 b1 hz
	shift 3
	while [ "$1" != -- ]; do engine+=("$1"); shift; done
	shift
	timeout $((runtime + 60)) fio --name=bench "${engine[@]}" --size="$size" \
		--runtime="$runtime" --time_based --ramp_time=1 --norandommap \
		--output-format=json --output="$tmp/fio.json" "$@" >/dev/null &
	fpid=$!
	sleep 1.5
	t0=$(date +%s.%N) o0=$(ticks "$ceph_osd_pid") c0=$(ticks "$fpid") b0=$(ticks $bpid)
	sleep $((runtime - 1))
	t1=$(date +%s.%N) o1=$(ticks "$ceph_osd_pid") c1=$(ticks "$fpid") b1=$(ticks $bpid)
	wait "$fpid"
	hz=$(getconf CLK_TCK)
	record "$client" "$row" "$(python3 -c "import sys; a = [float(x) for x in sys.argv[1:]]
print(*[(a[i + 1] - a[i]) / a[8] for i in (0, 2, 4)], a[7] - a[6])" \
		"$o0" "$o1" "$c0" "$c1" "$b0" "$b1" "$t0" "$t1" "$hz")"
}

# The rows, as "name|fio args|rbd bench args".
rows=(
	"4k randread QD32|--rw=randread --bs=4k --iodepth=32|--io-type read --io-size 4K --io-threads 32 --io-pattern rand"
	"4k randwrite QD32|--rw=randwrite --bs=4k --iodepth=32|--io-type write --io-size 4K --io-threads 32 --io-pattern rand"
	"1M seq read QD8|--rw=read --bs=1M --iodepth=8|--io-type read --io-size 1M --io-threads 8 --io-pattern seq"
	"1M seq write QD8|--rw=write --bs=1M --iodepth=8|--io-type write --io-size 1M --io-threads 8 --io-pattern seq"
)

sock=$tmp/blockd.sock
for round in $(seq "$rounds"); do
for r in "${rows[@]}"; do
	IFS='|' read -r name fargs bargs <<<"$r"
	# shellcheck disable=SC2086
	{
		kill -0 "$ceph_osd_pid" 2>/dev/null || { echo "bench/rbd.sh: the OSD died" >&2; ceph_logs >&2; exit 1; }
		echo "# round $round, $name: blockd" >&2
		"$blockd" -f --memory 256M ${BLOCKD_ARGS:-} --unix "$sock" \
			--export "d=rbd:rbd/bench,conf=$CEPH_CONF" >"$tmp/blockd.log" 2>&1 &
		bpid=$!
		track_pid "$bpid"
		for _ in $(seq 200); do grep -q running "$tmp/blockd.log" && break; sleep 0.05; done
		grep -q running "$tmp/blockd.log" ||
			{ echo "bench/rbd.sh: blockd did not start: $(cat "$tmp/blockd.log")" >&2; exit 1; }
		fio_row blockd "$name" "$bpid" --ioengine=nbd --uri="nbd+unix:///d?socket=$sock" -- $fargs
		kill -TERM "$bpid"
		wait "$bpid" 2>/dev/null || true

		echo "# round $round, $name: fio rbd engine" >&2
		fio_row fio-rbd "$name" "" --ioengine=rbd --clientname=admin --pool=rbd \
			--rbdname=bench -- $fargs

		echo "# round $round, $name: rbd bench" >&2
		total=$(python3 -c "import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r['client'] == 'fio-rbd' and r['row'] == sys.argv[2]: last = r['bytes']
print(max(last, 1 << 20))" \
			"$results" "$name")
		out=$(rbd_cmd bench $bargs --io-total "$total" rbd/bench 2>&1 | tail -1)
		python3 - "$name" "$out" <<'PY' >>"$results"
import json, re, sys
m = re.search(r"ops/sec: ([0-9.]+)\s+bytes/sec: ([0-9.]+) (\w+)/s", sys.argv[2])
scale = {"B": 1, "KiB": 1024, "MiB": 1 << 20, "GiB": 1 << 30}
if m:
    print(json.dumps({"client": "rbd bench", "row": sys.argv[1], "iops": float(m.group(1)),
                      "mibs": float(m.group(2)) * scale.get(m.group(3), 1) / 1048576.0}))
PY
	}
done
done

python3 - "$results" "$rounds" <<'PY'
import json, sys
rows, res = [], {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["row"] not in rows:
        rows.append(r["row"])
    best = res.get((r["client"], r["row"]))
    if not best or r["iops"] > best["iops"]:
        res[(r["client"], r["row"])] = r
print("best of %s round(s) per client and row; CPU seconds per GiB moved, in the" % sys.argv[2])
print("OSD, in the fio process (librbd included for fio-rbd) and in blockd")
print("%-18s %-10s %10s %9s %9s %6s %6s %6s %6s" % ("row", "client", "IOPS", "MiB/s", "blockd/x",
      "osd", "fio", "blockd", "total"))
worst = None
for row in rows:
    base = res[("blockd", row)]
    for c in ("blockd", "fio-rbd", "rbd bench"):
        r = res.get((c, row))
        if not r:
            continue
        ratio = base["iops"] / r["iops"] if r["iops"] else float("nan")
        cpu = r.get("cpu")
        cols = ("%6.2f %6.2f %6s %6.2f" % (cpu["osd"], cpu["client"],
                                           "%.2f" % cpu["blockd"] if c == "blockd" else "-",
                                           sum(cpu.values()))) if cpu else ""
        print("%-18s %-10s %10.0f %9.1f %9.2f %s" % (row, c, r["iops"], r["mibs"], ratio, cols))
        if c == "fio-rbd":
            worst = ratio if worst is None else min(worst, ratio)
print()
print("blockd / fio-rbd, worst row: %.2f (target >= 0.85)" % worst)
PY
