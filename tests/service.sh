#!/usr/bin/env bash
# blockd as a service: socket activation (systemd-socket-activate passes
# a unix and a TCP NBD socket and a stats socket, told apart by their
# FileDescriptorName), Type=notify readiness (a stand-in NOTIFY_SOCKET
# receives READY=1, then STOPPING=1; with FUSE, READY=1 only once the
# export files are there), and daemonizing (the pidfile
# appears only once the daemon serves; a failed start leaves none).
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$(cd "$top_builddir/daemon" && pwd)/blockd
command -v nbdinfo >/dev/null || { echo "skip: nbdinfo is not installed"; exit 77; }

wait_gone() {
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}

# Daemonizing: the starter returns once the daemon serves, pidfile
# written.  Paths given relative to where it started still work after it
# has moved to "/", and so does a reload of its config file.
printf '[export disk]\nbackend = memory\nsize = 8M\n' >"$tmp/d.conf"
if (cd "$tmp" && "$blockd" --pidfile blockd.pid --unix d.sock --memory 16M -c d.conf \
	>"$tmp/dlog" 2>&1); then
	ok "the starter exits 0 once the daemon is ready"
else
	not_ok "daemonize: $(cat "$tmp/dlog")"
fi
dpid=$(cat "$tmp/blockd.pid" 2>/dev/null)
[ -n "$dpid" ] && track_pid "$dpid"
if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null &&
   nbdinfo --size "nbd+unix:///?socket=$tmp/d.sock" >/dev/null 2>&1; then
	ok "pidfile names a daemon that serves at once"
else
	not_ok "pidfile '$dpid' or socket not ready: $(cat "$tmp/dlog")"
fi
[ -n "$dpid" ] && [ "$(ps -o sid= -p "$dpid" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ] &&
	[ "$(ps -o ppid= -p "$dpid" | tr -d ' ')" != $$ ] &&
	ok "the daemon has its own session and is not our child" || not_ok "not detached"
printf '[export two]\nbackend = memory\nsize = 4M\n' >>"$tmp/d.conf"
[ -n "$dpid" ] && kill -HUP "$dpid"
for _ in $(seq 50); do
	grep -q 'export="two"' <<<"$(nbdinfo --list "nbd+unix:///?socket=$tmp/d.sock" 2>/dev/null)" && break
	sleep 0.1
done
grep -q 'export="two"' <<<"$(nbdinfo --list "nbd+unix:///?socket=$tmp/d.sock" 2>/dev/null)" &&
	ok "the daemon reloads its config file on SIGHUP" || not_ok "reload in daemon mode"
[ -n "$dpid" ] && kill -TERM "$dpid"
if [ -n "$dpid" ] && wait_gone "$dpid" && [ ! -e "$tmp/blockd.pid" ] && [ ! -e "$tmp/d.sock" ]; then
	ok "SIGTERM: daemon gone, pidfile and socket removed"
else
	not_ok "daemon stop: pidfile or socket left"
fi

# A start that fails reports it through the starter, and leaves no pidfile.
"$blockd" --pidfile "$tmp/fail.pid" --unix "$tmp/f.sock" \
	--export "disk=file:$tmp/no/such/dir/disk.img" >"$tmp/flog" 2>&1
status=$?
[ "$status" -eq 1 ] && [ ! -e "$tmp/fail.pid" ] && grep -q "export 'disk'" "$tmp/flog" &&
	ok "failed start: status 1, message, no pidfile" ||
	not_ok "failed start: status $status, $(cat "$tmp/flog")"
# Socket activation and notification need libsystemd at build time.
socket_activation() {

	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	python3 "$top_srcdir/tests/notify-listen.py" "$tmp/notify" 60 >"$tmp/notes" 2>&1 &
	track_pid $!
	npid=$!
	for _ in $(seq 100); do [ -S "$tmp/notify" ] && break; sleep 0.05; done

	systemd-socket-activate -l "$tmp/nbd.sock" -l "127.0.0.1:$port" -l "$tmp/stats.sock" \
		--fdname=nbd:nbd-tcp:stats -E NOTIFY_SOCKET="$tmp/notify" \
		"$blockd" -f --memory 16M --unix "$tmp/ignored.sock" \
		--export disk=memory:,size=8M --export two=memory:,size=4M >"$tmp/log" 2>&1 &
	apid=$!
	track_pid "$apid"
	for _ in $(seq 100); do [ -S "$tmp/stats.sock" ] && break; sleep 0.05; done

	# The first connection makes systemd-socket-activate start blockd.
	if timeout 20 nbdinfo --size "nbd+unix:///disk?socket=$tmp/nbd.sock" >"$tmp/size" 2>&1 &&
	   [ "$(cat "$tmp/size")" = 8388608 ]; then
		ok "socket-activated unix socket serves"
	else
		not_ok "unix: $(cat "$tmp/size" "$tmp/log")"
	fi
	if timeout 20 nbdinfo --size "nbd://127.0.0.1:$port/two" >"$tmp/size" 2>&1 &&
	   [ "$(cat "$tmp/size")" = 4194304 ]; then
		ok "socket-activated TCP socket serves"
	else
		not_ok "tcp: $(cat "$tmp/size" "$tmp/log")"
	fi
	if python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); d = b""
while True:
    c = s.recv(65536)
    if not c: break
    d += c
j = json.loads(d)
assert [e["name"] for e in j["exports"]] == ["disk", "two"], j
	' "$tmp/stats.sock" 2>"$tmp/err"; then
		ok "the socket named stats serves JSON"
	else
		not_ok "stats socket: $(cat "$tmp/err")"
	fi
	grep -q "listening on $tmp/nbd.sock (nbd)" "$tmp/log" &&
		grep -q "listening on tcp 127.0.0.1:$port (nbd-tcp)" "$tmp/log" &&
		grep -q "stats on $tmp/stats.sock (stats)" "$tmp/log" &&
		ok "the passed sockets are told apart by name" || not_ok "names: $(cat "$tmp/log")"
	[ ! -e "$tmp/ignored.sock" ] && ok "configured sockets yield to passed ones" ||
		not_ok "--unix was opened beside the passed sockets"

	kill -TERM "$apid"
	wait "$apid"
	status=$?
	[ "$status" -eq 0 ] && ok "SIGTERM: exit 0" || not_ok "exit status $status: $(cat "$tmp/log")"
	wait "$npid" 2>/dev/null
	if grep -q '^READY=1$' "$tmp/notes" && grep -q '^STOPPING=1$' "$tmp/notes" &&
	   [ "$(grep -n '^READY=1$' "$tmp/notes" | head -1 | cut -d: -f1)" -lt \
	     "$(grep -n '^STOPPING=1$' "$tmp/notes" | cut -d: -f1)" ]; then
		ok "NOTIFY_SOCKET got READY=1, then STOPPING=1"
	else
		not_ok "notifications: $(cat "$tmp/notes")"
	fi
	grep -q '^STATUS=serving 2 exports' "$tmp/notes" && ok "STATUS= names exports and clients" ||
		not_ok "no STATUS: $(cat "$tmp/notes")"
}
# Type=notify with FUSE: by READY=1 the export's file is there to open.
# From the config file's fuse-mount key; SIGTERM flushes and unmounts.
fuse_ready() {
	mkdir -p "$tmp/mnt"
	printf '[global]\nfuse-mount = %s\nmemory = 16M\n[export disk]\nbackend = memory\nsize = 8M\n' \
		"$tmp/mnt" >"$tmp/fuse.conf"
	python3 "$top_srcdir/tests/notify-listen.py" "$tmp/fnotify" 60 >"$tmp/fnotes" 2>&1 &
	local lpid=$! fpid seen=
	track_pid "$lpid"
	for _ in $(seq 100); do [ -S "$tmp/fnotify" ] && break; sleep 0.05; done
	NOTIFY_SOCKET=$tmp/fnotify "$blockd" -f -c "$tmp/fuse.conf" >"$tmp/flog2" 2>&1 &
	fpid=$!
	track_pid "$fpid"
	track_mount "$tmp/mnt"
	for _ in $(seq 200); do
		if grep -q '^READY=1$' "$tmp/fnotes"; then
			[ -f "$tmp/mnt/disk" ] && [ "$(stat -c %s "$tmp/mnt/disk")" = 8388608 ] && seen=1
			break
		fi
		sleep 0.02
	done
	[ -n "$seen" ] && ok "READY=1 came with the FUSE file in place" ||
		not_ok "FUSE at READY=1: $(cat "$tmp/fnotes" "$tmp/flog2")"
	! grep -q "listening on tcp" "$tmp/flog2" &&
		ok "FUSE alone opens no default TCP listener" || not_ok "FUSE-only listeners: $(cat "$tmp/flog2")"
	kill -TERM "$fpid"
	wait "$fpid"
	local status=$?
	wait "$lpid"
	[ "$status" -eq 0 ] && ! mountpoint -q "$tmp/mnt" && grep -q '^STOPPING=1$' "$tmp/fnotes" &&
		ok "SIGTERM: FUSE unmounted, STOPPING=1, exit 0" ||
		not_ok "FUSE stop: status $status: $(tail -5 "$tmp/flog2")"
}

if ! grep -q libsystemd <<<"$(ldd "$blockd")"; then
	echo "# built without libsystemd: socket activation and sd_notify not tested"
elif ! command -v systemd-socket-activate >/dev/null; then
	echo "# systemd-socket-activate is not installed (package systemd): not tested"
else
	socket_activation
	if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
		fuse_ready
	else
		echo "# no /dev/fuse or fusermount3: FUSE readiness not tested"
	fi
fi
finish
