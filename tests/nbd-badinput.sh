#!/usr/bin/env bash
# Bad input from a raw socket (tests/nbd-badinput.c): every case is
# refused or disconnected, a second client keeps working, and the
# daemon's RSS stays within the page budget, the RAM disk and some slack.
set -uo pipefail
: "${top_srcdir:=.}"
. "$top_srcdir/tests/lib.sh"
budget=$((16 << 20)) disk=$((16 << 20))
"$top_builddir/daemon/blockd" -f --memory 16M --threads 2 --unix "$tmp/s.sock" \
	--export scratch=memory:,size=16M >"$tmp/log" 2>&1 &
pid=$!
track_pid "$pid"
for _ in $(seq 100); do grep -q running "$tmp/log" && break; sleep 0.05; done
grep -q running "$tmp/log" || { not_ok "daemon did not start: $(cat "$tmp/log")"; finish; exit; }
# Slack for code, heap and stacks; sanitizer builds need more.
slack=$((48 << 20))
grep -q -- '-fsanitize' "$top_builddir/Makefile" 2>/dev/null &&
	grep -q '^SAN_CFLAGS = -f' "$top_builddir/Makefile" && slack=$((400 << 20))
timeout 120 "$top_builddir/tests/nbd-badinput" "$tmp/s.sock" "$pid" \
	$((budget + disk + slack))
status=$?
kill -0 "$pid" 2>/dev/null || { echo "FAIL: the daemon died: $(tail -5 "$tmp/log")"; exit 1; }
exit $status
