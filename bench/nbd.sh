#!/usr/bin/env bash
# NBD servers compared with fio's nbd engine over a unix socket, all on the
# same backing file in the same run: blockd, nbdkit's file plugin, qemu-nbd
# (--aio=io_uring and its default; the better of the two is reported) and
# nbd-server.
#
#   bench/nbd.sh [BUILD_DIR]        (default: build)
#   env: RUNTIME=seconds per row (5), SIZE=backing file size (1G),
#        BENCH_DIR=where the file and sockets go (a temp dir),
#        ROWS=which rows (all: "rr1 rr32 rw32 sr sw"),
#        SERVERS=which peers besides blockd (all: "nbdkit qemu-nbd nbd-server"),
#        BLOCKD_ARGS=extra blockd options (e.g. --poll-us 0)
#
# Rows: 4k randread QD1 and QD32, 4k randwrite QD32, 1M sequential read
# and write QD8.  For each: IOPS, MiB/s, server CPU per I/O (the server
# process's user+sys time from /proc over the run, divided by the I/Os),
# the QD1 mean and p99 latency, and each peer's ratio to blockd.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$top/build}
blockd=$build/daemon/blockd
runtime=${RUNTIME:-5}
want_rows=" ${ROWS:-rr1 rr32 rw32 sr sw} "
want_servers=" blockd ${SERVERS:-nbdkit qemu-nbd nbd-server} "
size=${SIZE:-1G}
dir=${BENCH_DIR:-$(mktemp -d /tmp/blockd-bench.XXXXXX)}
img=$dir/nbd-bench.img
results=$dir/results.jsonl
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

for t in fio nbdkit qemu-nbd nbd-server; do
	command -v "$t" >/dev/null || { echo "bench/nbd.sh: $t is not installed" >&2; exit 1; }
done
[ -x "$blockd" ] || { echo "bench/nbd.sh: build blockd first ($blockd)" >&2; exit 1; }

if [ ! -s "$img" ]; then
	echo "# writing $size of random data to $img" >&2
	fio --name=fill --filename="$img" --rw=write --bs=1M --size="$size" \
		--refill_buffers --output=/dev/null
fi
: >"$results"

# wait_sock PATH PID: until the server listens.
wait_sock() {
	for _ in $(seq 200); do
		[ -S "$1" ] && nbdinfo --size "nbd+unix:///${ename:-}?socket=$1" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# cpu_ticks PID: user+sys of the process and of its children it has reaped
# (nbd-server forks one child per connection).
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }

# run_fio SOCK NAME FIO-ARGS...
run_fio() {
	local sock=$1 name=$2
	shift 2
	fio --name="$name" --ioengine=nbd --uri="nbd+unix:///${ename:-}?socket=$sock" \
		--size="$size" --runtime="$runtime" --time_based --ramp_time=1 \
		--output-format=json --output="$dir/fio.json" "$@" >/dev/null
}

# row SERVER PID SOCK NAME FIO-ARGS...: CPU from /proc of a long-lived server.
row() {
	local server=$1 pid=$2 sock=$3 name=$4 t0 t1
	shift 4
	t0=$(cpu_ticks "$pid")
	run_fio "$sock" "$name" "$@"
	# Let a per-connection child exit and be reaped before it is counted.
	sleep 0.3
	t1=$(cpu_ticks "$pid")
	record "$server" "$name" $((t1 - t0))
}

# record SERVER NAME CPU-TICKS: append fio's result and the server's CPU.
record() {
	python3 - "$dir/fio.json" "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY' >>"$results"
import json, sys
d = json.load(open(sys.argv[1]))
j = d["jobs"][0]
rw = j["read"] if j["read"]["io_bytes"] else j["write"]
ios = j["read"]["total_ios"] + j["write"]["total_ios"]
# /proc counts the ramp too: scale the CPU to the measured part.
secs = (j["job_runtime"] or 1) / 1000.0
ramp = 1.0
cpu = int(sys.argv[4]) / float(sys.argv[5]) * secs / (secs + ramp)
p99 = rw["clat_ns"].get("percentile", {}).get("99.000000", 0) / 1000.0
print(json.dumps({"server": sys.argv[2], "row": sys.argv[3], "iops": rw["iops"],
                  "mibs": rw["bw_bytes"] / 1048576.0, "lat_mean_us": rw["lat_ns"]["mean"] / 1000.0,
                  "lat_p99_us": p99, "cpu_us_per_io": cpu * 1e6 / max(ios, 1)}))
PY
}

# want KEY: the row is in ROWS.
want() { [[ $want_rows == *" $1 "* ]]; }

rows() {
	local server=$1 pid=$2 sock=$3
	! want rr1 || row "$server" "$pid" "$sock" "4k randread QD1" --rw=randread --bs=4k --iodepth=1
	! want rr32 || row "$server" "$pid" "$sock" "4k randread QD32" --rw=randread --bs=4k --iodepth=32
	! want rw32 || row "$server" "$pid" "$sock" "4k randwrite QD32" --rw=randwrite --bs=4k --iodepth=32
	! want sr || row "$server" "$pid" "$sock" "1M seq read QD8" --rw=read --bs=1M --iodepth=8
	! want sw || row "$server" "$pid" "$sock" "1M seq write QD8" --rw=write --bs=1M --iodepth=8
}

# serve NAME SOCK COMMAND...: start a server, run the rows, stop it.
# A peer that does not start is left out of the table, not fatal.
serve() {
	local name=$1 sock=$2 pid
	shift 2
	[[ $want_servers == *" ${name%-io_uring} "* ]] || return 0
	rm -f "$sock"
	"$@" >"$dir/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if ! wait_sock "$sock" "$pid"; then
		echo "bench/nbd.sh: $name did not start: $(tail -5 "$dir/$name.log")" >&2
		[ "$name" = blockd ] && exit 1
		return 0
	fi
	echo "# $name (pid $pid)" >&2
	rows "$name" "$pid" "$sock"
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
}

serve blockd "$dir/blockd.sock" "$blockd" -f --memory 256M --unix "$dir/blockd.sock" \
	--export "d=file:$img" ${BLOCKD_ARGS:-}
serve nbdkit "$dir/nbdkit.sock" nbdkit -f -U "$dir/nbdkit.sock" file "$img"
serve qemu-nbd-io_uring "$dir/qemu.sock" qemu-nbd -t -f raw -k "$dir/qemu.sock" -e 4 \
	--aio=io_uring --cache=writeback "$img"
serve qemu-nbd "$dir/qemu.sock" qemu-nbd -t -f raw -k "$dir/qemu.sock" -e 4 \
	--cache=writeback "$img"
cat >"$dir/nbd-server.conf" <<CONF
[generic]
unixsock = $dir/nbd-server.sock
[d]
exportname = $img
CONF
# nbd-server forks a daemon that forks a child per connection: its CPU is
# the daemon's own plus its reaped children's, so follow its pid file.
rm -f "$dir/nbd-server.sock" "$dir/nbd-server.pid"
if [[ $want_servers != *" nbd-server "* ]]; then
	:
elif nbd-server -C "$dir/nbd-server.conf" -p "$dir/nbd-server.pid" >"$dir/nbd-server.log" 2>&1; then
	for _ in $(seq 100); do [ -s "$dir/nbd-server.pid" ] && break; sleep 0.05; done
	pid=$(cat "$dir/nbd-server.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && ename=d wait_sock "$dir/nbd-server.sock" "$pid"; then
		pids+=("$pid")
		echo "# nbd-server (pid $pid)" >&2
		ename=d rows nbd-server "$pid" "$dir/nbd-server.sock"
		kill -TERM "$pid" 2>/dev/null || true
	else
		echo "bench/nbd.sh: nbd-server did not start: $(tail -5 "$dir/nbd-server.log")" >&2
	fi
else
	echo "bench/nbd.sh: nbd-server did not start: $(tail -5 "$dir/nbd-server.log")" >&2
fi

python3 - "$results" <<'PY'
import json, sys
rows, res = [], {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["row"] not in rows:
        rows.append(r["row"])
    res[(r["server"], r["row"])] = r
# qemu-nbd: the better of its two AIO modes, per row.
for row in rows:
    a, b = res.get(("qemu-nbd-io_uring", row)), res.get(("qemu-nbd", row))
    both = [x for x in (a, b) if x]
    if both:
        res[("qemu-nbd*", row)] = max(both, key=lambda x: x["iops"])
servers = ["blockd", "nbdkit", "qemu-nbd*", "nbd-server"]
print("%-18s %-11s %10s %9s %8s %9s %10s" % ("row", "server", "IOPS", "MiB/s",
      "x blockd", "CPU us/IO", "CPU x blkd"))
for row in rows:
    base = res[("blockd", row)]
    for s in servers:
        r = res.get((s, row))
        if not r:
            continue
        print("%-18s %-11s %10.0f %9.1f %8.2f %9.2f %10.2f" % (
            row, s, r["iops"], r["mibs"], r["iops"] / base["iops"],
            r["cpu_us_per_io"], r["cpu_us_per_io"] / max(base["cpu_us_per_io"], 1e-9)))
print()
row = rows[0]
if row != "4k randread QD1":
    sys.exit(0)
print("QD1 latency (%s): mean / p99 in us" % row)
for s in servers:
    r = res.get((s, row))
    if r:
        print("  %-11s %8.1f %8.1f" % (s, r["lat_mean_us"], r["lat_p99_us"]))
print("(qemu-nbd*: the better of --aio=io_uring and the default, per row)")
PY
