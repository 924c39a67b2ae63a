#!/usr/bin/env bash
# blockd's NBD server against the real clients: nbdinfo, nbdcopy, qemu-img
# and qemu-io attach to a daemon started here, over a unix socket in a
# temp dir, and see what they would see from nbdkit or qemu-nbd.
set -uo pipefail
: "${top_srcdir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd

for tool in nbdinfo nbdcopy qemu-img qemu-io; do
	command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done

# start_daemon LOG ARGS...: run blockd in the background until it listens.
start_daemon() {
	local log=$1
	shift
	"$blockd" -f "$@" >"$log" 2>&1 &
	daemon_pid=$!
	track_pid "$daemon_pid"
	for _ in $(seq 100); do
		grep -q 'running' "$log" && return 0
		kill -0 "$daemon_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# check NAME COMMAND...: one ok/FAIL line for a command that must succeed.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name: $out"
	fi
}

sock=$tmp/blockd.sock
if ! start_daemon "$tmp/log" --memory 64M --unix "$sock" \
	--export scratch=memory:,size=64M --export ro=memory:,size=8M,readonly; then
	not_ok "daemon did not start: $(cat "$tmp/log")"
	finish
	exit
fi
uri="nbd+unix:///scratch?socket=$sock"
ro="nbd+unix:///ro?socket=$sock"
def="nbd+unix:///?socket=$sock"

[ "$(stat -c %a "$sock")" = 660 ] && ok "unix socket mode 0660" ||
	not_ok "socket mode $(stat -c %a "$sock")"

# nbdinfo
out=$(timeout 20 nbdinfo --list "$def" 2>&1)
grep -q 'export="scratch"' <<<"$out" && grep -q 'export="ro"' <<<"$out" &&
	ok "nbdinfo --list names both exports" || not_ok "nbdinfo --list: $out"
[ "$(timeout 20 nbdinfo --size "$uri" 2>&1)" = 67108864 ] &&
	ok "nbdinfo --size" || not_ok "nbdinfo --size: $(nbdinfo --size "$uri" 2>&1)"
[ "$(timeout 20 nbdinfo --size "$def" 2>&1)" = 67108864 ] &&
	ok "the first export is the default" || not_ok "default export size"
json=$(timeout 20 nbdinfo --json "$uri" 2>&1)
grep -q '"description": "memory:"' <<<"$json" &&
	ok "nbdinfo description" || not_ok "description: $json"
grep -q '"block_size_minimum": 512' <<<"$json" &&
	grep -q '"block_size_preferred": 4096' <<<"$json" &&
	grep -q '"block_size_maximum": 33554432' <<<"$json" &&
	ok "nbdinfo block sizes 512/4096/32M" || not_ok "block sizes: $json"
grep -q '"can_multi_conn": true' <<<"$json" && grep -q '"is_read_only": false' <<<"$json" &&
	ok "multi-conn advertised for memory:" || not_ok "flags: $json"
timeout 20 nbdinfo --json "$ro" 2>&1 | grep -q '"is_read_only": true' &&
	ok "read-only flag advertised" || not_ok "ro flags: $(nbdinfo --json "$ro" 2>&1)"
map=$(timeout 20 nbdinfo --map "$uri" 2>&1)
grep -Eq '^ *0 +67108864 +3 +hole,zero' <<<"$map" &&
	ok "nbdinfo --map: empty export is one hole" || not_ok "map: $map"

# nbdcopy in and out, checksums compared.
head -c 24M /dev/urandom >"$tmp/in.img"
truncate -s 64M "$tmp/in.img"
check "nbdcopy file -> export" timeout 60 nbdcopy "$tmp/in.img" "$uri"
check "nbdcopy export -> file" timeout 60 nbdcopy "$uri" "$tmp/out.img"
[ "$(sha256sum <"$tmp/in.img")" = "$(sha256sum <"$tmp/out.img")" ] &&
	ok "nbdcopy round trip checksums match" || not_ok "nbdcopy checksums differ"
check "nbdcopy with 4 connections, 64 requests" \
	timeout 60 nbdcopy --connections=4 --requests=64 "$uri" "$tmp/out4.img"
cmp -s "$tmp/in.img" "$tmp/out4.img" && ok "multi-connection copy matches" ||
	not_ok "multi-connection copy differs"

# qemu-img
out=$(timeout 20 qemu-img info "$uri" 2>&1)
grep -q 'virtual size: 64 MiB' <<<"$out" && ok "qemu-img info" || not_ok "qemu-img info: $out"
head -c 8M /dev/urandom >"$tmp/q.img"
truncate -s 64M "$tmp/q.img"
check "qemu-img convert -n file -> export" \
	timeout 60 qemu-img convert -n -f raw -O raw "$tmp/q.img" "$uri"
check "qemu-img compare file export" timeout 60 qemu-img compare -f raw -F raw "$tmp/q.img" "$uri"
check "qemu-img convert export -> file" \
	timeout 60 qemu-img convert -f raw -O raw "$uri" "$tmp/q2.img"
cmp -s "$tmp/q.img" "$tmp/q2.img" && ok "qemu-img convert round trip matches" ||
	not_ok "qemu-img convert output differs"

# qemu-io patterns; qemu-io exits 0 even on I/O errors, so check its output.
qio() {
	local name=$1 out
	shift
	out=$(timeout 20 qemu-io -f raw "$@" 2>&1)
	if [ $? -eq 0 ] && ! grep -Eqi 'fail|error|mismatch' <<<"$out"; then
		ok "$name"
	else
		not_ok "$name: $out"
	fi
}
qio "qemu-io write -P / read -P" -c 'write -P 0xab 8M 1M' -c 'read -P 0xab 8M 1M' "$uri"
qio "qemu-io unaligned-length write (client RMW)" -c 'write -P 0x11 12M 4097' \
	-c 'read -P 0x11 12M 4097' "$uri"
qio "qemu-io write -z reads zeros" -c 'write -P 0xcd 16M 256k' -c 'write -z 16M 128k' \
	-c 'read -P 0 16M 128k' -c 'read -P 0xcd 16512k 128k' "$uri"
qio "qemu-io discard then read zeros" -c 'write -P 0x5a 20M 1M' -c 'discard 20M 1M' \
	-c 'read -P 0 20M 1M' "$uri"
qio "qemu-io FUA write" -c 'write -f -P 0x77 24M 64k' -c 'read -P 0x77 24M 64k' "$uri"
map=$(timeout 20 nbdinfo --map "$uri" 2>&1)
# The extent holding [20M, 21M) must be a hole that covers all of it.
awk '$1 <= 20971520 && $1 + $2 >= 22020096 && $3 == 3 { found = 1 } END { exit !found }' \
	<<<"$map" &&
	ok "nbdinfo --map shows the trimmed range as a hole" || not_ok "map after trim: $map"
out=$(timeout 20 qemu-io -f raw -c 'write -P 1 0 4k' "$ro" 2>&1)
grep -Eqi 'read-only|permission|not permitted' <<<"$out" &&
	ok "write to a read-only export is refused" || not_ok "ro write: $out"

# Several listeners at once: TCP on an ephemeral-ish port next to the socket.
port=$((20000 + RANDOM % 20000))
# Debug: each connection's open and close lines are checked below.
if start_daemon "$tmp/log2" --log-level debug --unix "$tmp/b.sock" --tcp "127.0.0.1:$port" \
	--tcp "[::1]:$port" --export d=memory:,size=4M; then
	check "TCP IPv4 listener" timeout 20 nbdinfo --size "nbd://127.0.0.1:$port"
	if [ -e /proc/net/if_inet6 ]; then
		check "TCP IPv6 listener" timeout 20 nbdinfo --size "nbd://[::1]:$port"
	fi
	check "unix listener beside TCP" timeout 20 nbdinfo --size "nbd+unix:///?socket=$tmp/b.sock"
	kill -TERM "$daemon_pid"
	for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.05; done
	wait "$daemon_pid"
	st=$?
	[ "$st" -eq 0 ] && [ ! -e "$tmp/b.sock" ] &&
		ok "SIGTERM: exit 0, socket removed" || not_ok "SIGTERM: status $st, $(ls "$tmp")"
	grep -q 'connection .* closed' "$tmp/log2" && ok "connections are logged" ||
		not_ok "no connect/disconnect lines: $(cat "$tmp/log2")"
else
	not_ok "second daemon (tcp) did not start: $(cat "$tmp/log2")"
fi

# file: exports, once a file engine can open them.
truncate -s 32M "$tmp/disk.img"
if start_daemon "$tmp/log3" --unix "$tmp/f.sock" --export "disk=file:$tmp/disk.img"; then
	furi="nbd+unix:///disk?socket=$tmp/f.sock"
	head -c 32M /dev/urandom >"$tmp/f.in"
	check "file: nbdcopy in" timeout 60 nbdcopy "$tmp/f.in" "$furi"
	check "file: qemu-img compare" timeout 60 qemu-img compare -f raw -F raw "$tmp/f.in" "$furi"
	qio "file: qemu-io patterns" -c 'write -P 0x42 1M 64k' -c 'read -P 0x42 1M 64k' \
		-c 'write -z 2M 64k' -c 'read -P 0 2M 64k' "$furi"
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" 2>/dev/null
	cmp -s <(head -c 1M "$tmp/f.in") <(head -c 1M "$tmp/disk.img") &&
		ok "file: data reached the file" || not_ok "file: disk.img differs"
elif grep -q 'not built yet' "$tmp/log3"; then
	echo "skip: file: exports ($(grep -o 'the .* engine is not built yet' "$tmp/log3"))"
else
	not_ok "file: daemon did not start: $(cat "$tmp/log3")"
fi

finish
