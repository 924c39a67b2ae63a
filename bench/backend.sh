#!/usr/bin/env bash
# bench/backend.sh: blockd's io_uring engine (core + backend, no front end)
# against fio's io_uring engine on the same file, in the same run, with the
# sync engine beside it.  Prints a table of ratios to fio.  Not a test.
#
#   bench/backend.sh [-s SIZE] [-t SECONDS] [-r ROUNDS] [-d DIR]   (from a build tree)
#
# The file lives on DIR (default: a directory on the root filesystem, not
# tmpfs, so cache=none means O_DIRECT to a real disk).
#
# Method: a virtual disk's rate drifts by +-25% from one run to the next,
# so one fio run against one blockd run compares the disk with itself.
# Each row is measured in ROUNDS rounds; a round runs fio, the io_uring
# engine and the sync engine back to back on the same file (the order
# rotates from round to round, so no engine always goes first), and
# yields one ratio per engine against that round's fio.  The table shows
# the median over the rounds of each engine's IOPS and of its per-round
# ratios, and every round's io_uring ratio, so a spread stays visible.
# Every row is measured the same way, and fio runs with its defaults.
set -euo pipefail

size=1G seconds=3 rounds=3 dir=
while getopts "s:t:r:d:" o; do
	case $o in
	s) size=$OPTARG ;;
	t) seconds=$OPTARG ;;
	r) rounds=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE] [-t SECONDS] [-r ROUNDS] [-d DIR]" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")" && pwd)
drv=${BENCH_BACKEND:-$here/backend}
[ -x "$drv" ] || drv=./bench/backend
[ -x "$drv" ] || { echo "run from a build tree (make first)" >&2; exit 2; }
command -v fio >/dev/null || { echo "fio is not installed (apt-get install fio)" >&2; exit 2; }

work=$(mktemp -d "${dir:-/var/tmp}/blockd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
file=$work/disk.img
# Real data everywhere, so reads are not served from holes.
fio --name=fill --filename="$file" --size="$size" --rw=write --bs=1M \
	--ioengine=psync --direct=1 --end_fsync=1 >/dev/null

# fio_run RW BS DEPTH DIRECT -> "iops mibps lat_mean_us lat_p99_us"
fio_run() {
	fio --name=b --filename="$file" --size="$size" --rw="$1" --bs="$2" \
		--iodepth="$3" --direct="$4" --ioengine=io_uring --invalidate=0 \
		--time_based --runtime="$seconds" --randrepeat=0 \
		--output-format=json 2>/dev/null |
	python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
k = "read" if j["read"]["io_bytes"] else "write"
d = j[k]
p99 = d["clat_ns"].get("percentile", {}).get("99.000000", 0)
print("%.0f %.1f %.1f %.1f" % (d["iops"], d["bw_bytes"] / 2**20, d["lat_ns"]["mean"] / 1e3, p99 / 1e3))'
}

# blockd_run MODE BS DEPTH CACHE ENGINE -> same fields
blockd_run() {
	"$drv" -m "$1" -b "$2" -d "$3" -t "$seconds" \
		"file:$file,cache=$4,engine=$5" |
	sed -E 's/.*iops=([0-9.]+) mibps=([0-9.]+) lat_mean_us=([0-9.]+) lat_p99_us=([0-9.]+).*/\1 \2 \3 \4/'
}

# median N1 N2 ... -> the middle value (the mean of the two middle ones)
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# one ENGINE RW BS DEPTH CACHE DIRECT -> "iops mibps"
one() {
	local f_out
	case $1 in
	fio) f_out=$(fio_run "$2" "$3" "$4" "$6") ;;
	*) f_out=$(blockd_run "$2" "$3" "$4" "$5" "$1") ;;
	esac
	echo "${f_out% * *}"
}

printf '| %-22s | %-9s | %10s | %10s | %11s | %9s | %-14s | %10s | %8s |\n' \
	row cache "fio IOPS" "uring IOPS" "uring MiB/s" "uring/fio" "uring/fio each" \
	"sync IOPS" "sync/fio"
printf '|%s|\n' "------------------------|-----------|------------|------------|-------------|-----------|----------------|------------|----------"
engines=(fio uring sync)
for cache in none writeback; do
	direct=$([ $cache = none ] && echo 1 || echo 0)
	for row in "randread 4096 1" "randread 4096 32" "randwrite 4096 32" "read 1048576 8" "write 1048576 8"; do
		set -- $row
		f_all=() u_all=() s_all=() ur=() sr=() u_mibs=()
		for ((r = 0; r < rounds; r++)); do
			declare -A iops=() mib=()
			for ((k = 0; k < 3; k++)); do
				e=${engines[(k + r) % 3]}
				read -r iops[$e] mib[$e] < <(one "$e" "$1" "$2" "$3" "$cache" "$direct")
			done
			f_all+=("${iops[fio]}") u_all+=("${iops[uring]}") s_all+=("${iops[sync]}")
			u_mibs+=("${mib[uring]}")
			ur+=("$(echo "100 * ${iops[uring]} / ${iops[fio]}" | bc -l)")
			sr+=("$(echo "100 * ${iops[sync]} / ${iops[fio]}" | bc -l)")
		done
		each=$(printf '%.0f ' "${ur[@]}")
		label="$1 $(( $2 / 1024 ))k QD$3"
		printf '| %-22s | %-9s | %10.0f | %10.0f | %11.1f | %8.0f%% | %-14s | %10.0f | %7.0f%% |\n' \
			"$label" "$cache" "$(median "${f_all[@]}")" "$(median "${u_all[@]}")" \
			"$(median "${u_mibs[@]}")" "$(median "${ur[@]}")" "${each% }" \
			"$(median "${s_all[@]}")" "$(median "${sr[@]}")"
	done
done
echo "(fio: ioengine=io_uring, direct=1 for cache=none; same file, same run; ${seconds}s per cell;"
echo " medians of $rounds rounds, each round fio, io_uring and sync back to back in rotating order)"
