#!/usr/bin/env bash
# The nbd backend against nbdkit, through tests/nbd-remote: data round trip
# against a model with extents, flush and FUA; several submitting threads;
# what open() learns from the server; the server killed with I/O in flight
# or idle, or frozen at close; and opens that must fail with a clear message.
# Each case gets its own nbdkit on its own Unix socket, tracked by PID.
. "$top_srcdir/tests/lib.sh"

if ! command -v nbdkit >/dev/null; then
	echo "SKIP: nbdkit is not installed"
	exit 77
fi
prog="$top_builddir/tests/nbd-remote"
if [ ! -x "$prog" ]; then
	echo "FAIL: $prog is not built (it belongs in check_PROGRAMS)"
	exit 1
fi

nr=0
# start ARGS...: a fresh nbdkit; sets sock, uri, pid, srvlog.
start() {
	nr=$((nr + 1))
	sock="$tmp/nbd$nr.sock"
	srvlog="$tmp/nbdkit$nr.err"
	uri="nbd+unix:///?socket=$sock"
	nbdkit -f -U "$sock" -P "$tmp/nbd$nr.pid" "$@" 2>"$srvlog" &
	pid=$!
	track_pid "$pid"
	# The pid file appears once nbdkit accepts connections.
	for _ in $(seq 100); do
		[ -s "$tmp/nbd$nr.pid" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "nbdkit $* did not start:"
	cat "$srvlog"
	return 1
}

stop() {
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# run NAME ARGS...: nbd-remote ARGS, bounded; output kept in $out.
run() {
	local name=$1
	shift
	out="$tmp/$name.out"
	if timeout -k 5 60 "$prog" "$@" >"$out" 2>&1; then
		cat "$out"
		ok "$name"
	else
		cat "$out"
		not_ok "$name"
	fi
}

# (a) data, extents, flush, FUA, on a fresh export each time (the model
# starts empty); completions must reach io_uring and epoll loops alike.
for loopkind in uring epoll; do
	if [ $loopkind = epoll ]; then export BLOCKD_NO_IO_URING=1; fi
	if start memory 64M; then
		run "roundtrip-$loopkind" roundtrip "$uri"
		run "threads-$loopkind" threads "$uri"
		stop
	else
		not_ok "nbdkit memory"
	fi
done
unset BLOCKD_NO_IO_URING
if start memory 64M; then
	run caps-default caps "$uri" size=67108864 flush=1 fua=1 trim=1 zero=1 \
		fast_zero=1 extents=1 multi_conn=1 readonly=0
	stop
else
	not_ok "nbdkit memory"
fi

# The order on the wire: PREFLUSH is a flush before the write; FUA is the
# flag, or, from a server without it (the fua filter's default), a flush after.
order_of() {
	awk '/connection=/ && ($4 == "Write" || $4 == "Flush" || $4 == "Read") {
		line = $4
		for (i = 5; i <= NF; i++)
			if ($i ~ /^(offset|fua)=/)
				line = line " " $i
		print line
	}' "$1" | paste -sd, -
}
for mode in native emulated; do
	if [ $mode = native ]; then
		filters=(--filter=log)
		want="Write offset=0x0 fua=0,Flush,Write offset=0x1000 fua=0,Write offset=0x2000 fua=1,Read offset=0x2000"
	else
		filters=(--filter=log --filter=fua)
		want="Write offset=0x0 fua=0,Flush,Write offset=0x1000 fua=0,Write offset=0x2000 fua=0,Flush,Read offset=0x2000"
	fi
	if start "${filters[@]}" memory 64M logfile="$tmp/order-$mode.log"; then
		run "order-$mode" order "$uri"
		stop
		got=$(order_of "$tmp/order-$mode.log")
		if [ "$got" = "$want" ]; then
			ok "wire order, FUA $mode"
		else
			not_ok "wire order, FUA $mode: got '$got', want '$want'"
		fi
	else
		not_ok "nbdkit with ${filters[*]}"
	fi
done

# What open() learns: no structured replies means no extents; block size
# constraints become queue limits (and a server enforcing them still takes
# large trims; libnbd refuses unaligned I/O before sending, which must still
# end the request); missing zero and FUA are not faked.
if start --no-sr memory 64M; then
	run caps-no-sr caps "$uri" extents=0 flush=1
	stop
fi
if start --filter=blocksize-policy memory 64M blocksize-minimum=4096 \
	blocksize-preferred=65536 blocksize-maximum=1M blocksize-error-policy=error; then
	run caps-blocksize caps "$uri" lbs=4096 pbs=65536 max_bytes=1048576
	stop
fi
if start --filter=nozero --filter=fua memory 64M; then
	run caps-nozero-nofua caps "$uri" zero=0 fua=0 flush=1 trim=1
	stop
fi
# Errors the server returns reach the bios; the connection lives on.
if start --filter=error memory 64M error-pread=EIO error-pread-rate=100% \
	error-pwrite=ENOSPC error-pwrite-rate=100%; then
	run server-errors servererr "$uri"
	stop
fi
if start -r memory 64M; then
	run readonly-server readonly "nbd:$uri"
	stop
fi
if start memory 64M; then
	run readonly-spec readonly "nbd:$uri,readonly"
	run size-mismatch badopen "nbd:$uri,size=1M" "leave size= out"
	stop
fi

# (b) A dead remote: I/O in flight and later ends with EIO, close returns,
# and the loss is logged exactly once.  noparallel queues everything behind
# the first delayed request, so flush too is surely in flight at the kill.
if start --filter=noparallel --filter=delay memory 64M delay-read=5 \
	delay-write=5 delay-zero=5 delay-trim=5 delay-extents=5; then
	run kill-in-flight kill "$uri" "$pid"
	wait "$pid" 2>/dev/null
	n=$(grep -c "lost the connection" "$out")
	if [ "$n" = 1 ]; then ok "loss logged once"; else not_ok "loss logged $n times"; fi
fi
if start memory 64M; then
	run kill-idle killidle "$uri" "$pid"
	wait "$pid" 2>/dev/null
	n=$(grep -c "lost the connection" "$out")
	if [ "$n" = 1 ]; then ok "idle loss logged once"; else not_ok "idle loss logged $n times"; fi
fi
if start memory 64M; then
	run close-frozen-server stopped "$uri" "$pid"
	stop
fi

# (c) Opens that fail, each saying why.
run open-no-socket badopen "nbd:nbd+unix:///?socket=$tmp/nobody.sock" "No such file or directory"
run open-refused badopen "nbd:nbd://127.0.0.1:1/" "Connection refused"
run open-bad-scheme badopen "nbd:http://127.0.0.1/" "unknown NBD URI scheme"
run open-not-a-uri badopen "nbd:not-a-uri" "cannot connect to NBD server not-a-uri"
if start --filter=exportname memory 64M exportname-strict=true exportname=disk; then
	run open-no-export badopen "nbd:nbd+unix:///nonesuch?socket=$sock" "no export named 'nonesuch'"
	stop
fi
# A server that accepts but never speaks: open gives up after 10 s.
run open-no-handshake hang "$tmp/silent.sock"

finish
