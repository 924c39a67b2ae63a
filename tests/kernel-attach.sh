#!/usr/bin/env bash
# The kernel's own NBD client (nbd.ko driven by nbd-client) attached to
# blockd.  This host's kernel has no nbd module, so a Debian kernel boots in
# QEMU and attaches from inside to a blockd running here:
#
#   nbd-client -> unix socket (guest) -> vserial-relay -> virtio-serial port
#     -> QEMU -chardev socket -> blockd's unix socket or 127.0.0.1:PORT
#
# The guest has no network card.  Its /init (tests/kernel-attach.init)
# makes ext4 on /dev/nbdN, writes, remounts, verifies, detaches, attaches on
# a new connection (with the line of contrib/nbdtab.example that /etc/nbdtab
# holds), verifies again and prints one RESULT line per case.  Two boots:
#   unix: QEMU reaches blockd's unix socket; cases nbd-client -u (netlink),
#         -C 2 (two connections each time, two vCPUs so both carry I/O),
#         -L (ioctl instead of netlink), -b 512, and an export whose every
#         write fails (fail-writes=1), which must end in FAIL;
#   tcp:  QEMU reaches blockd on 127.0.0.1:PORT; nbd-client uses TCP to the
#         guest's own loopback.
# Every attach names the export ("disk"), which is not blockd's default.
# Afterwards e2fsck and debugfs read blockd's backing file here: the guest's
# file system and data are really in it.
#
# The kernel is Debian's current linux-image-*-amd64, fetched with
# apt-get download and unpacked with dpkg-deb -x into a cache that outlives
# the test ($BLOCKD_TEST_CACHE, default /var/cache/blockd-tests); only the
# decompressed vmlinux (booted by its PVH entry, faster than the bzImage
# under TCG) and the few modules the guest loads are kept.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
# shellcheck source=tests/lib.sh
. "$top_srcdir/tests/lib.sh"
blockd=$top_builddir/daemon/blockd
relay=$top_builddir/tests/vserial-relay
qemu="qemu-system-x86_64"
limit=${KERNEL_ATTACH_TIMEOUT:-110}
# The guest loads these, in this order; crc32c-intel is optional.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_console nbd crc32c_generic crc32c-intel crc16 mbcache jbd2 ext4"

skip() { echo "SKIP: $*"; exit 77; }
for tool in "$qemu" busybox nbd-client mke2fs debugfs e2fsck xz dpkg-deb apt-get apt-cache ldd; do
	command -v "$tool" >/dev/null || skip "$tool is not installed (contrib/quickstart.sh installs it)"
done
[ -x "$relay" ] || skip "$relay is not built"
# A here-string: through a pipe, grep -q can stop busybox by SIGPIPE, and
# pipefail would make that "no cpio".
grep -qx cpio <<<"$(busybox --list)" || skip "this busybox has no cpio applet"

# ---- the guest kernel, cached between runs ----

cache=${BLOCKD_TEST_CACHE:-/var/cache/blockd-tests}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	cache=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/blockd-tests
	# Nowhere to keep it: fetch it for this run only.
	mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$tmp/cache
	mkdir -p "$cache"
fi

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
	# Without package lists, an earlier download still does.
	for d in "$cache"/linux-image-*-amd64; do
		[ -f "$d/ok" ] && pkg=${d##*/}
	done
	[ -n "$pkg" ] || {
		not_ok "cannot resolve linux-image-amd64 (apt-get update?)"
		finish
		exit
	}
fi
kdir=$cache/$pkg

# fetch_kernel: apt-get download, dpkg-deb -x, keep vmlinux and modules.
fetch_kernel() {
	local work deb vmlinuz off m f old
	work=$(mktemp -d "$cache/fetch.XXXXXX") || return 1
	(cd "$work" && apt-get download -q "$pkg" >download.log 2>&1) || {
		# Package lists older than the archive: refresh them once.
		[ "$(id -u)" -eq 0 ] && apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 &&
			(cd "$work" && apt-get download -q "$pkg" >download.log 2>&1)
	} || { cat "$work/download.log"; rm -rf "$work"; return 1; }
	deb=$(ls "$work"/*.deb)
	dpkg-deb -x "$deb" "$work/x" || { rm -rf "$work"; return 1; }
	mkdir -p "$work/k/modules"
	vmlinuz=$(ls "$work"/x/boot/vmlinuz-*)
	# The bzImage's payload is xz; its ELF vmlinux has a PVH entry note.
	off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "$vmlinuz" | head -n 1 | cut -d: -f1)
	# xz stops after its stream and tail may die of SIGPIPE: judge the output.
	[ -n "$off" ] && tail -c +$((off + 1)) "$vmlinuz" |
		xz -dc --single-stream >"$work/k/vmlinux" 2>/dev/null
	if [ "$(head -c 4 "$work/k/vmlinux" | od -An -c | tr -d ' ')" != 177ELF ]; then
		echo "note: no xz vmlinux in $vmlinuz; booting the bzImage"
		cp "$vmlinuz" "$work/k/vmlinux"
	fi
	for m in $modules; do
		f=$(find "$work/x/lib/modules" -name "$m.ko*" -o -name "${m//_/-}.ko*" | head -n 1)
		[ -n "$f" ] || continue
		case $f in
		*.ko) cp "$f" "$work/k/modules/$m.ko" ;;
		*.ko.xz) xz -dc "$f" >"$work/k/modules/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$work/k/modules/$m.ko" ;;
		*) echo "note: cannot unpack $f" ;;
		esac
	done
	echo "$modules" >"$work/k/modules/order"
	basename "$deb" >"$work/k/ok"
	rm -rf "$kdir"
	mv "$work/k" "$kdir" && rm -rf "$work" || return 1
	# Debian moved on to a new kernel: the old one is not needed again.
	for old in "$cache"/linux-image-*-amd64; do
		[ "$old" = "$kdir" ] || rm -rf "$old"
	done
}

(
	flock 9
	if [ ! -f "$kdir/ok" ]; then
		echo "fetching $pkg into $cache"
		fetch_kernel
	fi
) 9>"$cache/lock"
if [ ! -f "$kdir/ok" ]; then
	not_ok "could not fetch the guest kernel $pkg"
	finish
	exit
fi
echo "guest kernel: $pkg (cached in $kdir)"

# ---- the initramfs: busybox, nbd-client, mke2fs, the relay, modules ----

root=$tmp/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,mnt,run,tmp,etc,modules}

# copy_bin BIN DEST: a program and every shared library ldd names for it.
copy_bin() {
	local lib
	cp -L "$1" "$root/$2"
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
copy_bin "$(command -v busybox)" bin/busybox
for a in $(busybox --list); do
	case $a in busybox | nbd-client | mke2fs | mkfs.*) continue ;; esac
	ln -s busybox "$root/bin/$a"
done
copy_bin "$(command -v nbd-client)" sbin/nbd-client
copy_bin "$(command -v mke2fs)" sbin/mke2fs
copy_bin "$relay" bin/vserial-relay
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
cp "$top_srcdir/contrib/nbdtab.example" "$root/etc/nbdtab"
cp "$kdir"/modules/* "$root/modules/"
cp "$top_srcdir/tests/kernel-attach.init" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc >"$tmp/base.cpio" 2>/dev/null) ||
	{ not_ok "busybox cpio failed"; finish; exit; }

# ---- blockd ----

sock=$tmp/blockd.sock
img=$tmp/disk.img
disk_size=$((64 << 20))
start_blockd() {
	# --log-level debug: each connection's export and close lines are read below.
	"$blockd" -f --log-level debug --unix "$sock" --tcp "127.0.0.1:$port" \
		--export first=memory:,size=16M \
		--export "disk=file:$img,size=$disk_size" \
		--export bad=memory:,size=64M,fail-writes=1 >"$tmp/blockd.log" 2>&1 &
	blockd_pid=$!
	track_pid "$blockd_pid"
	for _ in $(seq 100); do
		grep -q running "$tmp/blockd.log" && return 0
		kill -0 "$blockd_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
started=
for _ in 1 2 3; do
	port=$((20000 + RANDOM % 20000))
	start_blockd && { started=1; break; }
	rm -f "$sock"
done
if [ -z "$started" ]; then
	not_ok "blockd did not start: $(cat "$tmp/blockd.log")"
	finish
	exit
fi

# ---- the boots ----

accel=(-accel tcg -cpu max)
# A stock kernel needs real vmx/svm under KVM, not just a /dev/kvm.
if grep -qw -e vmx -e svm /proc/cpuinfo && [ -w /dev/kvm ]; then
	accel=(-accel kvm -cpu host)
fi

# boot NAME CHARDEV NPORTS [CPUS]: boot with NPORTS virtio-serial ports
# named NAME0.. whose chardevs are "socket,CHARDEV"; /cases is
# $tmp/NAME.cases.  QEMU connects every port at start-up; a port used late
# idles meanwhile in blockd's handshake, which times out after 60 s.  Should
# a slow machine get there, QEMU connects a unix chardev again (reconnect=1:
# blockd's close is a POLLHUP on it) and vserial-relay waits for that.  A TCP
# chardev sees no POLLHUP, notices the close only when the guest reads, and
# hands the guest the stale greeting before the new one: keep TCP boots short.
boot() {
	local name=$1 chardev=$2 n=$3 smp=${4:-1} i args=() st
	for ((i = 0; i < n; i++)); do
		args+=(-chardev "socket,id=c$i,$chardev,reconnect=1"
			-device "virtserialport,bus=vser.0,chardev=c$i,name=$name$i")
	done
	mkdir -p "$tmp/$name.d"
	cp "$tmp/$name.cases" "$tmp/$name.d/cases"
	(cd "$tmp/$name.d" && echo cases | busybox cpio -o -H newc 2>/dev/null) |
		cat "$tmp/base.cpio" - >"$tmp/$name.cpio"
	SECONDS=0
	timeout -k 5 "$limit" "$qemu" -nodefaults -no-user-config -display none \
		-M pc "${accel[@]}" -smp "$smp" -m 512 -no-reboot \
		-kernel "$kdir/vmlinux" -initrd "$tmp/$name.cpio" \
		-append "console=ttyS0 quiet panic=-1 mitigations=off" \
		-serial "file:$tmp/$name.console" \
		-device virtio-serial-pci,id=vser \
		"${args[@]}" >"$tmp/$name.qemu" 2>&1
	st=$?
	echo "boot $name: $SECONDS s, qemu exit $st"
	if [ $st -ne 0 ] || ! grep -q 'kernel-attach: done' "$tmp/$name.console"; then
		not_ok "boot $name did not finish (status $st): $(cat "$tmp/$name.qemu")"
		sed 's/^/    | /' "$tmp/$name.console" | tail -n 40
	fi
}

# result NAME: the guest's RESULT line for case NAME.
result() { grep -ah "^RESULT $1 " "$tmp"/*.console | tr -d '\r' | head -n 1; }
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# expect_pass NAME BS CONNS MODE: the case passed with this block size,
# number of connections and netlink or ioctl set-up.
expect_pass() {
	local r
	r=$(result "$1")
	if [[ $r != "RESULT $1 PASS "* ]]; then
		not_ok "case $1: ${r:-no RESULT line}"
		return
	fi
	ok "case $1: ext4 made, written, verified across two attaches"
	[ "$(field "$r" bs)" = "$2" ] && ok "case $1: block size $2" ||
		not_ok "case $1: block size $(field "$r" bs), wanted $2"
	[ "$(field "$r" size)" = "$disk_size" ] && ok "case $1: the named export (-N disk)" ||
		not_ok "case $1: size $(field "$r" size), wanted disk's $disk_size"
	[ "$(field "$r" conns)" = "$3" ] && ok "case $1: $3 connection(s)" ||
		not_ok "case $1: $(field "$r" conns) connections, wanted $3"
	[ "$(field "$r" mode)" = "$4" ] && ok "case $1: configured by $4" ||
		not_ok "case $1: configured by $(field "$r" mode), wanted $4"
}

# The image must hold a clean ext4 with the last case's data.
check_image() {
	local sum=$1 out
	if out=$(e2fsck -fn "$img" 2>&1); then
		ok "$2: e2fsck on blockd's backing file is clean"
	else
		not_ok "$2: e2fsck: $out"
	fi
	[ "$(debugfs -R 'cat /data' "$img" 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$sum" ] &&
		ok "$2: the file the guest wrote is in blockd's backing file" ||
		not_ok "$2: /data in $img does not match the guest's checksum"
}

# add_case BOOT NAME DEV LISTEN PORTS ARGS PORTS2 ARGS2: a run_case line for
# BOOT's /cases (see tests/kernel-attach.init).  ARGS attach with the
# command line, ARGS2 attach again; a bare "nbdN" is a line of nbdtab.
cmds=()
add_case() {
	local b=$1
	shift
	printf 'run_case %s %s %s "%s" "%s" "%s" "%s"\n' "$@" >>"$tmp/$b.cases"
	[ "$1" = fail ] || cmds+=("$5" "$7")
}
u=/run/blockd.sock
# Unix boot: blockd's unix socket behind every port.  Two vCPUs: blk-mq
# maps a connection to each, or -C 2 would send everything down one.
add_case u unix nbd0 $u u0 "-b 4096 -N disk -u $u /dev/nbd0" u1 nbd0
add_case u conns2 nbd2 $u "u2 u3" "-C 2 -b 4096 -N disk -u $u /dev/nbd2" "u4 u5" nbd2
add_case u ioctl nbd3 $u u6 "-L -b 4096 -N disk -u $u /dev/nbd3" u7 "-L -b 4096 -N disk -u $u /dev/nbd3"
add_case u bs512 nbd4 $u u8 "-b 512 -N disk -u $u /dev/nbd4" u9 "-b 512 -N disk -u $u /dev/nbd4"
add_case u fail nbd5 $u u10 "-b 4096 -N bad -u $u /dev/nbd5" u11 "-b 4096 -N bad -u $u /dev/nbd5"
# TCP boot: blockd on 127.0.0.1:PORT; the guest's nbd-client uses TCP too,
# on its own loopback.  One case only: a TCP chardev cannot recover from
# blockd dropping a connection that idled too long (see boot()).
add_case t tcp nbd1 127.0.0.1:10809 t0 "127.0.0.1 10809 /dev/nbd1 -N disk -b 4096" t1 nbd1

# The README shows these commands (on /dev/nbd0), and every line of
# contrib/nbdtab.example is one of them.
tab=$(grep -Eo '^nbd[0-9]+' "$top_srcdir/contrib/nbdtab.example")
docs=0
for c in "${cmds[@]}"; do
	if [[ $c =~ ^nbd[0-9]+$ ]]; then
		grep -qx "$c" <<<"$tab" && continue
		not_ok "$c is not a line of contrib/nbdtab.example"
	else
		c="nbd-client ${c//\/dev\/nbd[0-9]//dev/nbd0}"
		grep -qF -- "$c" "$top_srcdir/README.md" && continue
		not_ok "README.md does not show: $c"
	fi
	docs=1
done
for c in $tab; do
	grep -qx -- "$c" <<<"$(printf '%s\n' "${cmds[@]}")" && continue
	not_ok "contrib/nbdtab.example's $c line is not tested"
	docs=1
done
for c in "nbd-client -d /dev/nbd0" "nbd-client nbd0"; do
	grep -qF -- "$c" "$top_srcdir/README.md" && continue
	not_ok "README.md does not show: $c"
	docs=1
done
[ $docs -eq 0 ] && ok "README and contrib/nbdtab.example show the commands tested here"

boot u "path=$sock" 12 2
expect_pass unix 4096 1 netlink
expect_pass conns2 4096 2 netlink
expect_pass ioctl 4096 1 ioctl
expect_pass bs512 512 1 netlink
r=$(result fail)
if [[ $r == "RESULT fail FAIL "* ]] && [[ $r == *"why=mkfs"* || $r == *"why=write"* ]]; then
	ok "case fail: writes failing in blockd make the guest fail ($(sed 's/.*why=//' <<<"$r" | cut -c1-60))"
else
	not_ok "case fail: wanted a mkfs or write failure, got: ${r:-no RESULT line}"
fi
check_image "$(field "$(result bs512)" sum)" "unix boot"
# Each attach of 'disk' carried requests, -C 2's second connections too.
read -r n idle < <(awk '
	/: export .disk.$/ { disk[$3 + 0] = 1 }
	/ closed: / && disk[$3 + 0] { n++; if ($(NF - 1) == 0) idle++ }
	END { print n + 0, idle + 0 }' "$tmp/blockd.log")
[ "$n" -eq 10 ] && [ "$idle" -eq 0 ] &&
	ok "blockd served 10 connections to 'disk', each with requests" ||
	not_ok "blockd: $n connections to 'disk' closed, $idle without requests, wanted 10 and 0"

boot t "host=127.0.0.1,port=$port" 2
expect_pass tcp 4096 1 netlink
check_image "$(field "$(result tcp)" sum)" "tcp boot"

kill -0 "$blockd_pid" 2>/dev/null && ok "blockd is still running" ||
	not_ok "blockd died: $(tail -n 20 "$tmp/blockd.log")"
if [ "$fail" -ne 0 ]; then
	for f in "$tmp"/*.console; do
		echo "---- guest console ($(basename "$f"))"
		tr -d '\r' <"$f" | tail -n 60
	done
	echo "---- blockd log"
	tail -n 60 "$tmp/blockd.log"
fi
# KERNEL_ATTACH_KEEP=DIR keeps the consoles, logs and initramfs for a look.
[ -n "${KERNEL_ATTACH_KEEP:-}" ] && mkdir -p "$KERNEL_ATTACH_KEEP" &&
	cp "$tmp"/*.console "$tmp"/*.log "$tmp"/*.cases "$tmp"/*.cpio "$KERNEL_ATTACH_KEEP/"
finish
