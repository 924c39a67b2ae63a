#!/usr/bin/env bash
# Two builds of blockd, before and after a change, through the same
# benchmark in one sitting: the rounds alternate which build goes first,
# and each row prints the median of each build and their ratio (after /
# before), with every round's ratio beside it.  For a change that must
# not make any row slower.
#
#   bench/ab.sh BEFORE_BUILD AFTER_BUILD [nbd] [fuse]   (default: both)
#   env: ROUNDS=rounds (3), RUNTIME, SIZE, ROWS, BLOCKD_ARGS as the
#        scripts take them; the peers are left out (SERVERS=none for
#        nbd.sh, PEERS=none for fuse.sh), as only blockd is compared.
#        fuse needs root.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
before=$(cd "$1" && pwd)
after=$(cd "$2" && pwd)
shift 2
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(nbd fuse)
rounds=${ROUNDS:-3}
dir=$(mktemp -d /tmp/blockd-ab.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# run BENCH LABEL BUILD ROUND: one run, its blockd rows kept as
# "label round row value" lines (IOPS for 4k rows, MiB/s for 1M rows).
run() {
	local bench=$1 label=$2 build=$3 r=$4 out=$dir/$1
	mkdir -p "$out"
	echo "# $bench round $r: $label" >&2
	if [ "$bench" = nbd ]; then
		BENCH_DIR=$out SERVERS=none "$top/bench/nbd.sh" "$build" >/dev/null
		python3 - "$out/results.jsonl" "$label" "$r" <<'PY' >>"$dir/ab.txt"
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j["server"] == "blockd":
        v = j["mibs"] if j["row"].startswith("1M") else j["iops"]
        print("nbd", sys.argv[2], sys.argv[3], j["row"].replace(" ", "_"), v)
PY
	else
		BENCH_DIR=$out PEERS=none "$top/bench/fuse.sh" "$build" >/dev/null
		awk -v l="$label" -v r="$r" '$1 ~ /:blockd$/ {
			v = ($2 ~ /^seq/) ? $4 : $3
			sub(/:blockd$/, "", $1)
			print "fuse", l, r, $1 "/" $2, v
		}' "$out/results.txt" >>"$dir/ab.txt"
	fi
}

: >"$dir/ab.txt"
for bench in "${benches[@]}"; do
	for r in $(seq "$rounds"); do
		if [ $((r % 2)) -eq 1 ]; then
			run "$bench" before "$before" "$r"
			run "$bench" after "$after" "$r"
		else
			run "$bench" after "$after" "$r"
			run "$bench" before "$before" "$r"
		fi
	done
done

python3 - "$dir/ab.txt" <<'PY'
import statistics, sys
from collections import defaultdict
v = defaultdict(dict)
order = []
for line in open(sys.argv[1]):
    bench, label, r, row, val = line.split()
    key = (bench, row)
    if key not in order:
        order.append(key)
    v[key].setdefault(label, {})[int(r)] = float(val)
print("%-5s %-26s %11s %11s %7s  %s" % ("bench", "row", "before", "after", "ratio",
      "per round"))
worst = None
for key in order:
    b, a = v[key].get("before", {}), v[key].get("after", {})
    if not b or not a:
        continue
    mb, ma = statistics.median(b.values()), statistics.median(a.values())
    ratio = ma / mb if mb else 0
    rounds = " ".join("%.2f" % (a[r] / b[r]) for r in sorted(b) if r in a and b[r])
    print("%-5s %-26s %11.0f %11.0f %6.2fx  %s" % (key[0], key[1], mb, ma, ratio, rounds))
    worst = ratio if worst is None else min(worst, ratio)
if worst is not None:
    print("\nworst row: %.2fx (after / before, medians; 4k rows IOPS, 1M rows MiB/s)" % worst)
PY
