#!/usr/bin/env bash
# Every option and command, and each error case, through libnbd
# (tests/nbd-libnbd.c) against a real daemon on a unix socket.
set -uo pipefail
: "${top_srcdir:=.}"
. "$top_srcdir/tests/lib.sh"
"$top_builddir/daemon/blockd" -f --unix "$tmp/s.sock" \
	--export scratch=memory:,size=64M --export ro=memory:,size=8M,readonly \
	>"$tmp/log" 2>&1 &
pid=$!
track_pid "$pid"
for _ in $(seq 100); do grep -q running "$tmp/log" && break; sleep 0.05; done
grep -q running "$tmp/log" || { not_ok "daemon did not start: $(cat "$tmp/log")"; finish; exit; }
timeout 120 "$top_builddir/tests/nbd-libnbd" "$tmp/s.sock"
status=$?
kill -0 "$pid" 2>/dev/null || { echo "FAIL: the daemon died: $(tail -5 "$tmp/log")"; exit 1; }
exit $status
