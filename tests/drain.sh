#!/usr/bin/env bash
# SIGTERM while fio writes: blockd stops taking new requests (they get
# NBD's ESHUTDOWN, so fio stops with an error), answers every request in
# flight, flushes the export and exits 0.  After a restart, fio's verify
# run reads back every write fio saw acknowledged, intact.  Then: a
# second signal during the drain ends blockd at once.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd
command -v fio >/dev/null || { echo "skip: fio is not installed"; exit 77; }
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "skip: fio lacks the nbd engine"; exit 77; }

truncate -s 4G "$tmp/disk.img"
start() {
	"$blockd" -f --memory 32M --unix "$tmp/s.sock" --export "d=file:$tmp/disk.img" \
		--pidfile "$tmp/pid" >"$tmp/$1" 2>&1 &
	pid=$!
	track_pid "$pid"
	for _ in $(seq 100); do grep -q running "$tmp/$1" && return 0; sleep 0.05; done
	not_ok "daemon did not start: $(cat "$tmp/$1")"
	finish
	exit
}
# Random writes of mixed sizes, many in flight, each with a checksum header.
jobfio() {
	(cd "$tmp" && timeout -s KILL 60 fio --name=w --ioengine=nbd \
		--uri="nbd+unix:///?socket=$tmp/s.sock" --rw=randwrite --bsrange=4k-128k \
		--iodepth=32 --size=4G --verify=crc32c --aux-path="$tmp" \
		--output-format=json "$@")
}
# io_bytes DIR FILE: bytes fio moved that way.
io_bytes() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[2]))["jobs"][0][sys.argv[1]]["io_bytes"])' "$@"
}

start log1
jobfio --do_verify=0 --verify_state_save=1 --output="$tmp/fio1.json" \
	--write_iolog="$tmp/issued.log" --write_lat_log="$tmp/acked" --log_offset=1 \
	>"$tmp/fio1.out" 2>&1 &
fpid=$!
track_pid "$fpid"
sleep 1
kill -TERM "$pid"
wait "$pid"
status=$?
wait "$fpid"
[ "$status" -eq 0 ] && ok "SIGTERM during writes: exit 0" ||
	not_ok "exit status $status: $(cat "$tmp/log1")"
[ ! -e "$tmp/s.sock" ] && [ ! -e "$tmp/pid" ] && ok "socket and pidfile removed" ||
	not_ok "socket or pidfile left behind"
written=$(io_bytes write "$tmp/fio1.json" 2>/dev/null || echo 0)
if grep -q "Cannot send after transport endpoint shutdown" "$tmp/fio1.out" &&
   [ "$written" -gt 0 ] && [ "$written" -lt $((4 << 30)) ]; then
	ok "fio was stopped mid-run by ESHUTDOWN after $((written >> 20)) MiB"
else
	not_ok "fio was not cut short ($written bytes): $(head -20 "$tmp/fio1.out")"
fi

# fio replays the writes it issued and checks each block's header and
# checksum.  Writes refused with ESHUTDOWN were never acknowledged and
# read back as zeros; every acknowledged one (fio's completion latency
# log lists them with their offsets) must verify.
start log2
jobfio --verify_only --verify_state_load=1 --continue_on_error=verify \
	--output="$tmp/fio2.json" >"$tmp/fio2.out" 2>&1
if python3 - "$tmp" <<'PY'
import json, re, sys
t = sys.argv[1]
issued = set()
for line in open(t + "/issued.log"):
    f = line.split()		# [TIME] FILE write OFFSET LENGTH
    if "write" in f:
        issued.add(int(f[f.index("write") + 1]))
acked = set()
for line in open(t + "/acked_clat.1.log"):
    f = [x.strip() for x in line.split(",")]
    if f[2] == "1":
        acked.add(int(f[4]))
out = open(t + "/fio2.out").read()
bad = set(int(x) for x in re.findall(r"requested block: offset=(\d+)", out))
s = open(t + "/fio2.json").read()
# fio's messages come first when errors are continued past.
j = json.loads(s[s.index("{"):])["jobs"][0]
checked = j["read"]["total_ios"]
lost = bad & acked
print("# %d writes issued, %d acknowledged, %d verified, %d bad (%d of them acknowledged)"
      % (len(issued), len(acked), checked, len(bad), len(lost)))
ok = acked and acked <= issued and not lost and checked >= len(acked)
sys.exit(0 if ok else 1)
PY
then
	ok "after restart every acknowledged write reads back intact"
else
	not_ok "acknowledged writes lost: $(grep -m5 verify "$tmp/fio2.out")"
fi

# A second signal during the drain: out at once.  A client that keeps
# its connection open (and a request) holds the drain for seconds.
python3 - "$tmp/s.sock" >"$tmp/holder.out" 2>&1 <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.recv(18)
s.sendall(struct.pack(">I", 1))			# FIXED_NEWSTYLE
s.sendall(struct.pack(">QII", 0x49484156454F5054, 1, 0))	# EXPORT_NAME ""
s.recv(134)
time.sleep(30)
PY
hpid=$!
track_pid "$hpid"
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$pid"
sleep 0.2
kill -TERM "$pid"
wait "$pid"
status=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$status" -eq 1 ] && [ "$ms" -lt 1500 ] && grep -q "second signal" "$tmp/log2" &&
	ok "second signal during the drain: exit 1 after $ms ms" ||
	not_ok "second signal: status $status after $ms ms: $(tail -5 "$tmp/log2")"
[ ! -e "$tmp/pid" ] && ok "the forced exit still removes the pidfile" || not_ok "pidfile left"
kill "$hpid" 2>/dev/null
rm -f "$tmp"/*.state "$tmp"/*.log "$tmp/disk.img"
finish
