#!/usr/bin/env bash
# A throw-away single-node Ceph cluster for the RBD tests and bench/rbd.sh:
# one mon and one memstore OSD (objects in RAM), no mgr, every address on
# 127.0.0.1, msgr2 only, pool size 1.  Source it after tests/lib.sh:
#
#   . "$top_srcdir/tests/ceph-mini.sh"
#   ceph_start [cephx] || exit 77      # sets CEPH_CONF, ceph_dir, ceph_id
#   ceph_cmd osd pool create rbd 8 ...
#   ceph_osd_kill; ceph_osd_start      # the OSD dies (SIGKILL), and returns
#   ceph_stop                           # also run by the EXIT trap
#
# The daemons run under setsid, so a harness that kills its process group
# does not take them down mid-test, and are stopped by PID.  The memstore
# OSD is stopped with SIGKILL: on SIGTERM it first writes every object to
# disk.  Commands that wait on a mgr (pg stat, pool stats) hang without
# one; ceph_cmd bounds every command with a timeout instead.
: "${tmp:?source tests/lib.sh first}"

ceph_dir=$tmp/ceph
ceph_mon_pid= ceph_osd_pid= ceph_id=admin
export CEPH_CONF=$ceph_dir/ceph.conf
# A command that should take a second; none may hang the test.
ceph_timeout=${CEPH_TIMEOUT:-30}

ceph_cmd() { timeout -k 2 "$ceph_timeout" ceph --connect-timeout 10 "$@"; }
rbd_cmd() { timeout -k 2 "$ceph_timeout" rbd "$@"; }

# The mon port: below the kernel's ephemeral range, where no client socket
# can hold it; a port someone else serves is found by the bind and retried.
_ceph_pick_port() {
	local lo
	lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$lo" ] && [ "$lo" -gt 12000 ] || lo=32768
	echo $((10000 + RANDOM % (lo - 11000)))
}

_ceph_conf() {
	local port=$1 auth=$2
	cat >"$CEPH_CONF" <<EOF
[global]
fsid = $ceph_fsid
mon_host = v2:127.0.0.1:$port
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = $auth
auth_service_required = $auth
auth_client_required = $auth
keyring = $ceph_dir/keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
osd_crush_chooseleaf_type = 0
osd_objectstore = $ceph_store
memstore_page_set = true
memstore_page_size = 4096
memstore_device_bytes = ${CEPH_MEMSTORE_BYTES:-1073741824}
paxos_propose_interval = 0.05
mon_warn_on_pool_no_redundancy = false
run_dir = $ceph_dir/run
crash_dir = $ceph_dir/crash
# A dead OSD fails a client's I/O after this long, not never.
rados_osd_op_timeout = ${CEPH_OSD_OP_TIMEOUT:-5}
rados_mon_op_timeout = 10
[mon]
mon_data = $ceph_dir/mon
log_file = $ceph_dir/log/mon.log
admin_socket = $ceph_dir/run/mon.asok
[osd]
osd_data = $ceph_dir/osd
log_file = $ceph_dir/log/osd.log
admin_socket = $ceph_dir/run/osd.asok
bluestore_block_path = $ceph_dir/osd-block
bluestore_block_size = 2147483648
bluestore_block_create = true
bluestore_fsck_on_mount = false
bluestore_cache_size = 134217728
osd_memory_target = 939524096
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
[client]
# Several librbd clients at once must not fight over one socket path.
admin_socket =
log_file =
EOF
}

# _ceph_wait CMD...: retry CMD for up to 20 s.
_ceph_wait() {
	local i
	for i in $(seq 200); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

_ceph_mon_start() {
	local try port
	for try in 1 2 3 4 5; do
		rm -rf "$ceph_dir/mon" "$ceph_dir/monmap"
		port=$(_ceph_pick_port)
		_ceph_conf "$port" "$ceph_auth"
		monmaptool --create --fsid "$ceph_fsid" --addv a "[v2:127.0.0.1:$port]" \
			"$ceph_dir/monmap" >/dev/null || return 1
		ceph-mon --mkfs -i a --monmap "$ceph_dir/monmap" \
			--keyring "$ceph_dir/keyring" >"$ceph_dir/log/mon-mkfs.log" 2>&1 || return 1
		setsid ceph-mon -f -i a >>"$ceph_dir/log/mon.out" 2>&1 </dev/null &
		ceph_mon_pid=$!
		# Up when it answers; gone when the port was taken.
		for _ in $(seq 100); do
			kill -0 "$ceph_mon_pid" 2>/dev/null || break
			if ceph_cmd mon stat >/dev/null 2>&1; then
				ceph_port=$port
				return 0
			fi
			sleep 0.1
		done
		kill -KILL "$ceph_mon_pid" 2>/dev/null || true
		wait "$ceph_mon_pid" 2>/dev/null || true
		ceph_mon_pid=
		echo "ceph-mini: the mon did not come up on port $port (try $try)" >&2
	done
	return 1
}

# ceph_osd_start: start OSD 0 on a fresh memstore, and wait until it is up.
# After ceph_osd_kill its objects are gone, so it is made again with the
# same id and uuid and the pool's PGs are recreated empty on it.
ceph_osd_start() {
	local key=()
	[ "$ceph_auth" = cephx ] && key=(--keyring "$ceph_dir/osd/keyring")
	# bluestore keeps its objects across a kill: just start it again.
	if [ "$ceph_store" = bluestore ] && [ -e "$ceph_dir/osd/whoami" ]; then
		_ceph_osd_run
		return
	fi
	rm -rf "$ceph_dir/osd" "$ceph_dir/osd-block"
	mkdir -p "$ceph_dir/osd"
	if [ "$ceph_auth" = cephx ]; then
		ceph-authtool --create-keyring "$ceph_dir/osd/keyring" --gen-key -n osd.0 >/dev/null
		ceph_cmd auth add osd.0 osd 'allow *' mon 'allow profile osd' \
			-i "$ceph_dir/osd/keyring" >/dev/null 2>&1
		ceph_cmd auth import -i "$ceph_dir/osd/keyring" >/dev/null 2>&1
	fi
	ceph-osd -i 0 --mkfs --osd-uuid "$ceph_osd_uuid" "${key[@]}" \
		>"$ceph_dir/log/osd-mkfs.log" 2>&1 || return 1
	_ceph_osd_run
}

_ceph_osd_run() {
	local key=()
	[ "$ceph_auth" = cephx ] && key=(--keyring "$ceph_dir/osd/keyring")
	setsid ceph-osd -f -i 0 "${key[@]}" \
		>>"$ceph_dir/log/osd.out" 2>&1 </dev/null &
	ceph_osd_pid=$!
	_ceph_wait _ceph_osd_up
}

# Up, and this process: the map names it by a nonce that is its PID.
_ceph_osd_up() {
	ceph_cmd osd dump 2>/dev/null | grep -q "^osd\.0 up .*/$ceph_osd_pid "
}

# Safe under set -e: a trap that stops at the first failure leaks daemons.
ceph_osd_kill() {
	[ -n "$ceph_osd_pid" ] || return 0
	kill -KILL "$ceph_osd_pid" 2>/dev/null || true
	wait "$ceph_osd_pid" 2>/dev/null || true
	ceph_osd_pid=
	return 0
}

# ceph_start [cephx]: the cluster, up and with an "rbd" pool.  With cephx,
# a generated admin keyring; ceph_id is the client name to connect as.
ceph_start() {
	ceph_auth=${1:-none}
	ceph_store=${CEPH_STORE:-memstore}
	rm -rf "$ceph_dir"
	mkdir -p "$ceph_dir/run" "$ceph_dir/log" "$ceph_dir/crash"
	ceph_fsid=$(uuidgen)
	ceph_osd_uuid=$(uuidgen)
	if [ "$ceph_auth" = cephx ]; then
		# No ceph.conf yet: keep ceph-authtool from looking for one.
		CEPH_CONF=/dev/null ceph-authtool --create-keyring "$ceph_dir/keyring" \
			--gen-key -n mon. --cap mon 'allow *' >/dev/null &&
		CEPH_CONF=/dev/null ceph-authtool "$ceph_dir/keyring" --gen-key -n client.admin \
			--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null ||
			return 1
	else
		: >"$ceph_dir/keyring"
	fi
	_ceph_mon_start || return 1
	ceph_cmd osd new "$ceph_osd_uuid" 0 >/dev/null 2>&1 || return 1
	ceph_osd_start || { echo "ceph-mini: the OSD did not come up" >&2; return 1; }
	ceph_cmd osd pool create rbd 8 8 >/dev/null 2>&1 &&
	ceph_cmd osd pool application enable rbd rbd >/dev/null 2>&1 || return 1
}

# The logs, for a failing test's report.
ceph_logs() {
	local f
	for f in "$ceph_dir"/log/*; do
		[ -s "$f" ] || continue
		echo "---- $f (last lines)"
		tail -n 20 "$f"
	done
}

ceph_stop() {
	ceph_osd_kill
	if [ -n "$ceph_mon_pid" ]; then
		kill -TERM "$ceph_mon_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$ceph_mon_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$ceph_mon_pid" 2>/dev/null || true
		wait "$ceph_mon_pid" 2>/dev/null || true
		ceph_mon_pid=
	fi
	rm -rf "$ceph_dir"
}
