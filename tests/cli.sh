#!/usr/bin/env bash
# The daemon's command line, against the real binary: every bad input gets
# a clear message and exit status 2; a good one runs until SIGTERM/SIGINT
# and exits 0.
set -uo pipefail
: "${top_builddir:=.}"
blockd=$top_builddir/daemon/blockd
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
not_ok() { echo "FAIL: $*"; fail=$((fail + 1)); }

# expect STATUS PATTERN -- ARGS...: run blockd, check exit status and stderr/stdout.
expect() {
	local want=$1 pattern=$2 out status
	shift 3
	out=$("$blockd" "$@" 2>&1)
	status=$?
	if [ "$status" -ne "$want" ]; then
		not_ok "blockd $* exited $status, want $want: $out"
	elif ! grep -q -- "$pattern" <<<"$out"; then
		not_ok "blockd $*: output lacks '$pattern': $out"
	else
		ok "blockd $* -> $want"
	fi
}

expect 0 '--export SPEC' -- --help
expect 0 '^blockd [0-9]' -- --version
expect 2 'no export given' -- --foreground
expect 2 "Try 'blockd --help'" -- --no-such-option
expect 2 'not \[NAME=\]BACKEND:TARGET' -- -f --export disk
expect 0 '^\[export disk\]' -- --check-config --export memory:,size=8M
expect 0 '^\[export up\]' -- --check-config --export 'up=nbd:nbd+unix:///x?socket=/s'
expect 2 "export 'disk' is given twice" -- --check-config --export memory:,size=1M --export disk=memory:,size=1M
expect 2 'unknown backend' -- -f --export disk=tape:/dev/st0
expect 2 'export name is empty' -- -f --export =file:/x
expect 2 'needs a path' -- -f --export disk=file:
expect 2 'bad size' -- -f --export disk=file:/x,size=lots
expect 2 'unknown key' -- -f --export disk=file:/x,colour=red
expect 2 'cache takes none or writeback' -- -f --export disk=file:/x,cache=maybe
expect 2 'given twice' -- -f --export a=memory:,size=1M --export a=memory:,size=1M
expect 2 'bad size' -- -f --memory 12Q --export a=memory:,size=1M
expect 2 'not a number' -- -f --threads 0 --export a=memory:,size=1M
expect 2 'poll-us.*not a number from 0 to 10000' -- -f --poll-us 20000 --export a=memory:,size=1M
expect 2 'poll-us.*not a number' -- -f --poll-us -1 --export a=memory:,size=1M
expect 2 'unexpected argument' -- -f --export a=memory:,size=1M extra
expect 2 "is not error, warning" -- -f --log-level chatty --export a=memory:,size=1M
expect 2 '/nonexistent/blockd.conf:0: cannot read' -- -f -c /nonexistent/blockd.conf
expect 0 '^\[export a\]' -- --check-config --export a=memory:,size=1M
expect 0 '^log-level = debug' -- --check-config --log-level debug --export a=memory:,size=1M
# rbd: absent from a build without librbd, and --help says so.
if "$blockd" --help | grep -q 'rbd: not built'; then
	expect 2 'backend rbd is not built into this blockd' -- -f --export a=rbd:rbd/img
else
	expect 2 'needs a POOL/IMAGE' -- -f --export a=rbd:
	expect 2 'for the rbd backend only' -- -f --export a=file:/x,conf=/etc/ceph/ceph.conf
fi

# A good configuration runs until a signal, then exits 0.
truncate -s 16M "$tmp/disk.img"
for sig in TERM INT; do
	# A unix socket, not the default TCP port another run may hold; and
	# up to 20 s to start, for a loaded machine and the sanitizer build.
	"$blockd" -f --memory 8M --unix "$tmp/s.sock" --export "disk=file:$tmp/disk.img" \
		--export scratch=memory:,size=64M >"$tmp/log" 2>&1 &
	pid=$!
	for _ in $(seq 400); do
		grep -q 'running' "$tmp/log" && break
		sleep 0.05
	done
	if ! grep -q 'running' "$tmp/log"; then
		not_ok "daemon did not start: $(cat "$tmp/log")"
		continue
	fi
	grep -q "export 'disk' (default): file:$tmp/disk.img, 16777216 bytes" "$tmp/log" &&
		ok "default export described" || not_ok "export line: $(cat "$tmp/log")"
	kill -"$sig" "$pid"
	status=0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		not_ok "SIG$sig: daemon still running after 5 s"
		continue
	fi
	wait "$pid"
	status=$?
	pid=
	[ "$status" -eq 0 ] && ok "SIG$sig: clean exit" ||
		not_ok "SIG$sig: exit status $status: $(cat "$tmp/log")"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
