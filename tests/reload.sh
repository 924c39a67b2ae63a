#!/usr/bin/env bash
# SIGHUP: blockd reads its config file again; an added export appears in
# nbdinfo --list, a removed one disappears, and a client connected all
# along (to the export that is removed, even) keeps working.  A config
# file with errors changes nothing.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd
command -v nbdinfo >/dev/null || { echo "skip: nbdinfo is not installed"; exit 77; }

conf() {
	{
		echo "[global]"
		echo "unix = $tmp/s.sock"
		echo "memory = 16M"
		for e in "$@"; do
			printf '[export %s]\nbackend = memory\nsize = 8M\n' "$e"
		done
	} >"$tmp/blockd.conf"
}
exports() {
	nbdinfo --list "nbd+unix:///?socket=$tmp/s.sock" 2>&1 |
		sed -n 's/^export="\(.*\)":$/\1/p' | sort | tr '\n' ' '
}
hup() {
	local n
	n=$(grep -c 'reload:.*added\|reload: the configuration' "$tmp/log")
	kill -HUP "$pid"
	for _ in $(seq 100); do
		[ "$(grep -c 'reload:.*added\|reload: the configuration' "$tmp/log")" -gt "$n" ] && return
		sleep 0.05
	done
}

conf keep old
"$blockd" -f -c "$tmp/blockd.conf" >"$tmp/log" 2>&1 &
pid=$!
track_pid "$pid"
for _ in $(seq 100); do grep -q running "$tmp/log" && break; sleep 0.05; done
[ "$(exports)" = "keep old " ] && ok "started with keep, old" || not_ok "exports: $(exports)"

# A raw NBD client on export "old": writes and reads a block, waits for
# the go file, then writes and reads again on the same connection.
python3 - "$tmp/s.sock" "$tmp/go" >"$tmp/client.out" 2>&1 <<'PY' &
import os, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def recvn(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed")
        b += c
    return b
recvn(18)
s.sendall(struct.pack(">I", 1))
name = b"old"
s.sendall(struct.pack(">QII", 0x49484156454F5054, 1, len(name)) + name)
recvn(134)
def cmd(typ, off, data=b"", length=0):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, typ, 7, off, len(data) or length) + data)
    magic, err, cookie = struct.unpack(">IIQ", recvn(16))
    assert magic == 0x67446698 and err == 0, (magic, err)
    return recvn(length) if typ == 0 else b""
def io(tag):
    block = (tag * 4096)[:4096]
    cmd(1, 8192, block)
    assert cmd(0, 8192, length=4096) == block
    print("io ok", tag.decode(), flush=True)
io(b"before")
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
io(b"after")
s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 8, 0, 0))
PY
cpid=$!
track_pid "$cpid"
for _ in $(seq 100); do grep -q "io ok before" "$tmp/client.out" && break; sleep 0.05; done
grep -q "io ok before" "$tmp/client.out" && ok "client attached to 'old'" ||
	not_ok "client: $(cat "$tmp/client.out")"

conf keep new
hup
[ "$(exports)" = "keep new " ] && ok "after SIGHUP: 'new' added, 'old' removed" ||
	not_ok "exports after reload: $(exports): $(tail "$tmp/log")"
touch "$tmp/go"
wait "$cpid"
grep -q "io ok after" "$tmp/client.out" && ok "the connected client kept working across SIGHUP" ||
	not_ok "client after reload: $(cat "$tmp/client.out")"
for _ in $(seq 100); do grep -q "export 'old' closed" "$tmp/log" && break; sleep 0.05; done
grep -q "export 'old' closed" "$tmp/log" && ok "'old' closed once its last client left" ||
	not_ok "old not closed: $(tail "$tmp/log")"

# A broken file: an error in the log, the exports as they were.
printf '[global]\nbogus = 1\n' >"$tmp/blockd.conf"
hup
grep -q "blockd.conf:2: unknown key 'bogus'" "$tmp/log" &&
	grep -q "reload: the configuration has errors; nothing changed" "$tmp/log" &&
	ok "a bad file is reported with its line" || not_ok "bad reload: $(tail -3 "$tmp/log")"
[ "$(exports)" = "keep new " ] && kill -0 "$pid" && ok "a bad file changes nothing" ||
	not_ok "after bad reload: $(exports)"

kill -TERM "$pid"
wait "$pid"
status=$?
[ "$status" -eq 0 ] && ok "SIGTERM: exit 0" || not_ok "exit $status: $(tail "$tmp/log")"
finish
