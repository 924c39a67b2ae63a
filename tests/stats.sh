#!/usr/bin/env bash
# The stats socket: after real I/O (nbdcopy in and out) a read returns
# JSON whose counters match what was done, with the page pool's state;
# contrib/blockd-stat prints it as a table.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd
command -v nbdcopy >/dev/null || { echo "skip: nbdcopy is not installed"; exit 77; }

"$blockd" -f --memory 16M --unix "$tmp/s.sock" --stats-socket "$tmp/stats.sock" \
	--export disk=memory:,size=64M --export idle=memory:,size=1M >"$tmp/log" 2>&1 &
pid=$!
track_pid "$pid"
for _ in $(seq 100); do grep -q running "$tmp/log" && break; sleep 0.05; done

head -c $((8 << 20)) /dev/urandom >"$tmp/in"
nbdcopy "$tmp/in" "nbd+unix:///disk?socket=$tmp/s.sock" &&
	nbdcopy "nbd+unix:///disk?socket=$tmp/s.sock" "$tmp/out" &&
	cmp -n $((8 << 20)) "$tmp/in" "$tmp/out" && ok "nbdcopy in and out" ||
	not_ok "nbdcopy failed"

if read_stats "$tmp/stats.sock" >"$tmp/stats.json" && python3 - "$tmp/stats.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = {x["name"]: x for x in d["exports"]}
disk, idle = e["disk"], e["idle"]
w, r = disk["ops"]["write"], disk["ops"]["read"]
print("# disk: %d writes, %d bytes; %d reads, %d bytes; p50 %d us, p99 %d us; pool %d/%d pages free"
      % (w["ops"], w["bytes"], r["ops"], r["bytes"], disk["latency_us"]["p50"],
         disk["latency_us"]["p99"], d["pool"]["pages_free"], d["pool"]["pages_total"]))
assert w["bytes"] >= 8 << 20 and w["ops"] > 0, w
assert r["bytes"] >= 8 << 20 and r["ops"] > 0, r
assert disk["errors"] == 0 and disk["in_flight"] == 0 and disk["connections"] == 0, disk
assert disk["latency_us"]["p50"] > 0 and disk["latency_us"]["p99"] >= disk["latency_us"]["p50"]
assert disk["size"] == 64 << 20 and disk["bio_reserve"]["size"] > 0
assert idle["ops"]["read"]["ops"] == 0 and idle["ops"]["write"]["ops"] == 0
assert d["pool"]["pages_total"] == (16 << 20) // 4096
assert d["pool"]["pages_free"] <= d["pool"]["pages_total"]
for k in ("waits", "failures", "allocs", "frees"):
    assert k in d["pool"], k
PY
then
	ok "stats JSON counts the I/O and shows the pool"
else
	not_ok "stats JSON"
fi

out=$(python3 "$top_srcdir/contrib/blockd-stat" --socket "$tmp/stats.sock" --count 1 2>&1)
if grep -q '^EXPORT  *CONN  *INFL  *READS' <<<"$out" && grep -q '^disk ' <<<"$out" &&
   grep -q '^idle ' <<<"$out" && grep -q 'pages free' <<<"$out"; then
	ok "blockd-stat prints the table"
	sed 's/^/# /' <<<"$out"
else
	not_ok "blockd-stat: $out"
fi
out=$(python3 "$top_srcdir/contrib/blockd-stat" --socket "$tmp/stats.sock" --count 2 \
	--interval 0.2 2>&1)
grep -q 'R/s' <<<"$out" && ok "blockd-stat refreshes with rates" || not_ok "refresh: $out"
out=$(python3 "$top_srcdir/contrib/blockd-stat" --socket "$tmp/nope.sock" --count 1 2>&1)
status=$?
[ "$status" -eq 1 ] && grep -q "nope.sock" <<<"$out" && ok "blockd-stat: no daemon, clear error" ||
	not_ok "blockd-stat without daemon: $status $out"

kill -TERM "$pid"
wait "$pid"
status=$?
[ "$status" -eq 0 ] && [ ! -e "$tmp/stats.sock" ] && ok "SIGTERM: exit 0, stats socket removed" ||
	not_ok "exit $status"
finish
