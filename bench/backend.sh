#!/usr/bin/env bash
# bench/backend.sh: blockd's io_uring engine (core + backend, no front end)
# against fio's io_uring engine on the same file, in the same run, with the
# sync engine beside it.  Prints a table of ratios to fio.  Not a test.
#
#   bench/backend.sh [-s SIZE] [-t SECONDS] [-d DIR]   (from a build tree)
#
# The file lives on DIR (default: a directory on the root filesystem, not
# tmpfs, so cache=none means O_DIRECT to a real disk).
set -euo pipefail

size=1G seconds=5 dir=
while getopts "s:t:d:" o; do
	case $o in
	s) size=$OPTARG ;;
	t) seconds=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE] [-t SECONDS] [-d DIR]" >&2; exit 2 ;;
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

printf '| %-22s | %-9s | %10s | %10s | %10s | %7s | %10s | %7s |\n' \
	row cache "fio IOPS" "uring IOPS" "uring MiB/s" "uring/fio" "sync IOPS" "sync/fio"
printf '|%s|\n' "------------------------|-----------|------------|------------|-------------|-----------|------------|----------"
for cache in none writeback; do
	direct=$([ $cache = none ] && echo 1 || echo 0)
	for row in "randread 4096 1" "randread 4096 32" "randwrite 4096 32" "read 1048576 8" "write 1048576 8"; do
		set -- $row
		read -r f_iops f_mib _ _ < <(fio_run "$1" "$2" "$3" "$direct")
		read -r u_iops u_mib _ _ < <(blockd_run "$1" "$2" "$3" "$cache" uring)
		read -r s_iops s_mib _ _ < <(blockd_run "$1" "$2" "$3" "$cache" sync)
		label="$1 $(( $2 / 1024 ))k QD$3"
		printf '| %-22s | %-9s | %10.0f | %10.0f | %11.1f | %8.0f%% | %10.0f | %6.0f%% |\n' \
			"$label" "$cache" "$f_iops" "$u_iops" "$u_mib" \
			"$(echo "100 * $u_iops / $f_iops" | bc -l)" "$s_iops" \
			"$(echo "100 * $s_iops / $f_iops" | bc -l)"
	done
done
echo "(fio: ioengine=io_uring, direct=1 for cache=none; same file, same run; ${seconds}s per cell)"
