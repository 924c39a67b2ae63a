#!/usr/bin/env bash
# The config file against the real binary: each bad file stops start-up
# with FILE:LINE: message and exit status 2, before anything is opened;
# --check-config prints the effective configuration; the command line
# beats the file.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd

# bad LINE PATTERN: the file on stdin must fail at LINE with PATTERN.
bad() {
	local line=$1 pattern=$2 out status conf=$tmp/bad.conf
	cat >"$conf"
	out=$("$blockd" -f -c "$conf" --unix "$tmp/never.sock" 2>&1)
	status=$?
	if [ "$status" -ne 2 ]; then
		not_ok "$pattern: exit status $status, want 2: $out"
	elif ! grep -q -- "$conf:$line: .*$pattern" <<<"$out"; then
		not_ok "$pattern: want '$conf:$line: ...$pattern', got: $out"
	elif [ -e "$tmp/never.sock" ] || [ -e "$tmp/never.img" ]; then
		not_ok "$pattern: something was started"
	else
		ok "$conf:$line: $pattern"
	fi
}

bad 3 "unknown key 'colour'" <<END
[global]
memory = 16M
colour = red
END
bad 4 "unknown key 'colour' in \[export a\]" <<END
[global]
[export a]
backend = memory
colour = red
size = 1M
END
bad 2 "memory: bad size 'lots'" <<END
[global]
memory = lots
END
bad 2 "threads takes a number" <<END
[global]
threads = 0
END
bad 2 "poll-us takes a number from 0 to 10000, not 'soon'" <<END
[global]
poll-us = soon
END
bad 2 "log-level takes" <<END
[global]
log-level = chatty
END
bad 3 "bad size 'huge'" <<END
[export a]
backend = memory
size = huge
END
bad 3 "cache takes none or writeback" <<END
[export a]
backend = file
cache = maybe
path = $tmp/never.img
END
bad 2 "readonly takes true or false" <<END
[export a]
readonly = perhaps
backend = memory
END
bad 2 "unknown backend 'tape'" <<END
[export a]
backend = tape
END
bad 7 "duplicate export 'a'" <<END
[export a]
backend = memory
size = 1M
[export b]
backend = memory
size = 1M
[export a]
backend = memory
size = 2M
END
bad 1 "needs a backend" <<END
[export a]
size = 1M
END
bad 1 "this export section has no keys" <<END
[export empty]
[export b]
backend = memory
size = 1M
END
bad 3 "backend file takes a path" <<END
[global]
[export a]
backend = file
size = 1M
END
bad 2 "backend memory needs a size" <<END
[export a]
backend = memory
END
bad 3 "size is given twice" <<END
[export a]
size = 1M
size = 2M
backend = memory
END
bad 2 "unknown section \[exports a\]" <<END
[global]
[exports a]
backend = memory
END
bad 2 "syntax error" <<END
[global]
this line has no equals sign
END
bad 1 "before any section" <<END
memory = 16M
[export a]
backend = memory
size = 1M
END
bad 3 "memory is given twice in \[global\]" <<END
[global]
memory = 16M
memory = 32M
END
bad 2 "pool-size takes" <<END
[export a]
pool-size = -3
backend = memory
size = 1M
END
bad 3 "line too long" <<<"$(printf '[export a]\nbackend = file\npath = /%s\n' "$(printf 'x%.0s' $(seq 250))")"
bad 4 "key 'id' is for the rbd backend only" <<END
[export a]
backend = memory
size = 1M
id = admin
END
if "$blockd" --help | grep -q 'rbd: not built'; then
	bad 2 "backend rbd is not built into this blockd" <<END
[export a]
backend = rbd
image = rbd/img
END
else
	bad 2 "backend rbd takes an image" <<END
[export a]
backend = rbd
END
	printf '[export vm]\nbackend = rbd\nimage = rbd/vm1@base\nid = blockd\nconf = /etc/ceph/ceph.conf\n' >"$tmp/rbd.conf"
	out=$("$blockd" -c "$tmp/rbd.conf" --check-config 2>&1)
	grep -qx "image = rbd/vm1@base" <<<"$out" && grep -qx "id = blockd" <<<"$out" &&
		grep -qx "conf = /etc/ceph/ceph.conf" <<<"$out" && ok "an rbd export from the file" ||
		not_ok "rbd export: $out"
fi
out=$("$blockd" -f -c "$tmp/missing.conf" 2>&1); status=$?
[ "$status" -eq 2 ] && grep -q "$tmp/missing.conf:0: cannot read" <<<"$out" &&
	ok "missing config file: status 2" || not_ok "missing config: $status $out"

cat >"$tmp/good.conf" <<END
# a comment
[global]
unix = $tmp/from-file.sock
memory = 32M
log-level = notice
stats-socket = $tmp/stats.sock

[export disk]
backend = file
path = $tmp/disk.img
size = 16M
cache = writeback
description = the disk ; an inline comment
pool-size = 128

[export ram]
backend = memory
size = 1G
readonly = yes
END
# An export given on the command line and in the file is a duplicate too.
out=$("$blockd" -c "$tmp/good.conf" -e disk=memory:,size=1M --check-config 2>&1); status=$?
[ "$status" -eq 2 ] && grep -q "export 'disk' is also in $tmp/good.conf" <<<"$out" &&
	ok "command line export duplicates the file's: status 2" || not_ok "cli dup: $status $out"

# --check-config: the effective configuration, which reads back the same.
out=$("$blockd" -c "$tmp/good.conf" --memory 48M -e extra=memory:,size=2M --check-config 2>&1)
status=$?
if [ "$status" -eq 0 ] &&
   grep -qx "memory = 48M" <<<"$out" && grep -qx "log-level = notice" <<<"$out" &&
   grep -qx "unix = $tmp/from-file.sock" <<<"$out" &&
   grep -qx "path = $tmp/disk.img" <<<"$out" && grep -qx "size = 16777216" <<<"$out" &&
   grep -qx "description = the disk" <<<"$out" && grep -qx "pool-size = 128" <<<"$out" &&
   grep -qx "readonly = yes" <<<"$out" && grep -qx "\[export extra\]" <<<"$out" &&
   grep -qx "stats-socket = $tmp/stats.sock" <<<"$out"; then
	ok "--check-config prints the effective configuration"
else
	not_ok "--check-config ($status): $out"
fi
[ ! -e "$tmp/disk.img" ] && [ ! -e "$tmp/from-file.sock" ] &&
	ok "--check-config starts nothing" || not_ok "--check-config created files"
printf '%s\n' "$out" >"$tmp/effective.conf"
out2=$("$blockd" -c "$tmp/effective.conf" --check-config 2>&1)
[ "$(tail -n +2 <<<"$out2")" = "$(tail -n +2 <<<"$out")" ] &&
	ok "the printed configuration reads back the same" ||
	not_ok "round trip differs: $(diff <(echo "$out") <(echo "$out2"))"

# --unix on the command line replaces the file's listeners.
out=$("$blockd" -c "$tmp/good.conf" --unix "$tmp/cli.sock" --check-config 2>&1)
grep -qx "unix = $tmp/cli.sock" <<<"$out" && ! grep -q from-file <<<"$out" &&
	ok "--unix replaces the file's listeners" || not_ok "listener override: $out"
# --fuse-mount is a recognised option and key.
out=$("$blockd" -c "$tmp/good.conf" --fuse-mount /mnt/blockd --check-config 2>&1)
grep -qx "fuse-mount = /mnt/blockd" <<<"$out" && ok "--fuse-mount is stored" ||
	not_ok "--fuse-mount: $out"

# A good file serves.
"$blockd" -f -c "$tmp/good.conf" >"$tmp/log" 2>&1 &
pid=$!
track_pid "$pid"
for _ in $(seq 100); do [ -S "$tmp/from-file.sock" ] && break; sleep 0.05; done
if nbdinfo --list "nbd+unix:///?socket=$tmp/from-file.sock" >"$tmp/list" 2>&1 &&
   grep -q 'export="disk"' "$tmp/list" && grep -q 'export="ram"' "$tmp/list" &&
   grep -q "description: the disk" "$tmp/list"; then
	ok "exports from the file are served"
else
	not_ok "nbdinfo --list: $(cat "$tmp/list" "$tmp/log")"
fi
kill -TERM "$pid"
wait "$pid"
status=$?
[ "$status" -eq 0 ] && ok "SIGTERM: exit 0" || not_ok "exit $status: $(cat "$tmp/log")"
[ ! -e "$tmp/from-file.sock" ] && [ ! -e "$tmp/stats.sock" ] && ok "sockets removed on exit" ||
	not_ok "socket left behind"
finish
