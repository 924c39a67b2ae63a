#!/usr/bin/env bash
# Sourced by tests/fuse-ext4.sh and tests/fuse-xfs.sh with $fs set: a
# file system on a loop device on blockd's FUSE file.  Files with known
# checksums survive umount, a read-only fsck and a remount; fstrim and
# blkdiscard turn into holes that nbdinfo --map shows.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuse-lib.sh"
need_fuse loop
case $fs in
ext4) mkfs=(mkfs.ext4 -q -F) fsck=(fsck.ext4 -fn) size=256M ;;
# mkfs.xfs refuses file systems below 300 MB.
xfs) mkfs=(mkfs.xfs -q -f) fsck=(xfs_repair -n) size=320M ;;
esac
for tool in "${mkfs[0]}" "${fsck[0]}" nbdinfo fstrim blkdiscard sha256sum; do
	command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done

sock=$tmp/s.sock
truncate -s "$size" "$tmp/disk.img"
if ! start_fuse "$tmp/log" "$tmp/mnt" --memory 32M --unix "$sock" \
	--export "disk=file:$tmp/disk.img"; then
	not_ok "daemon did not start: $(cat "$tmp/log")"
	finish
	exit
fi
uri="nbd+unix:///disk?socket=$sock"
# Bytes nbdinfo --map reports as holes.
holes() { timeout 30 nbdinfo --map "$uri" | awk '$3 % 2 == 1 { h += $2 } END { print h + 0 }'; }

attach_loop "$tmp/mnt/disk" --direct-io=on || { not_ok "losetup failed"; finish; exit; }
dev=$loop_dev
[ "$(cat "/sys/block/${dev#/dev/}/loop/dio")" = 1 ] && ok "losetup --direct-io=on works on the FUSE file" ||
	not_ok "loop device is not in direct I/O mode"
timeout 120 "${mkfs[@]}" "$dev" >"$tmp/mkfs.out" 2>&1 && ok "${mkfs[*]}" ||
	not_ok "mkfs: $(cat "$tmp/mkfs.out")"
mkdir "$tmp/fs"
track_mount "$tmp/fs"
mount "$dev" "$tmp/fs" && ok "mount $fs" || { not_ok "mount failed"; finish; exit; }

mkdir -p "$tmp/fs/d/e"
head -c 1M /dev/urandom >"$tmp/fs/small"
head -c $((7 * 1048576 + 123)) /dev/urandom >"$tmp/fs/d/odd"
head -c 24M /dev/urandom >"$tmp/fs/d/e/big"
head -c 40M /dev/urandom >"$tmp/fs/trimmed"
(cd "$tmp/fs" && sha256sum small d/odd d/e/big) >"$tmp/sums"
umount "$tmp/fs" && ok "umount" || not_ok "umount failed"
timeout 120 "${fsck[@]}" "$dev" >"$tmp/fsck.out" 2>&1 && ok "${fsck[*]}: clean" ||
	not_ok "fsck: $(cat "$tmp/fsck.out")"
mount "$dev" "$tmp/fs" && (cd "$tmp/fs" && sha256sum --quiet -c "$tmp/sums") &&
	ok "remounted: every checksum matches" || not_ok "checksums after remount differ"

# Discards from the file system and from the block device become holes.
before=$(holes) after=0
rm "$tmp/fs/trimmed"
# Freed blocks are trimmable once the journal has committed the delete,
# which XFS does in the background: try for a few seconds.
sync -f "$tmp/fs/small"
for _ in $(seq 20); do
	timeout 60 fstrim "$tmp/fs" || break
	after=$(holes)
	[ "$after" -ge $((before + 32 * 1048576)) ] && break
	sleep 0.5
done
[ "$after" -ge $((before + 32 * 1048576)) ] &&
	ok "fstrim: freed space became holes ($before -> $after bytes)" ||
	not_ok "fstrim: holes $before -> ${after:-?}"
(cd "$tmp/fs" && sha256sum --quiet -c "$tmp/sums") && ok "files intact after fstrim" ||
	not_ok "checksums after fstrim differ"
umount "$tmp/fs"
timeout 60 blkdiscard -f "$dev" && [ "$(holes)" = "$(stat -c %s "$tmp/disk.img")" ] &&
	ok "blkdiscard: the whole export is a hole" || not_ok "blkdiscard: holes $(holes)"
losetup -d "$dev"
stop_daemon "$daemon_pid"
[ "$daemon_status" = 0 ] && ! mountpoint -q "$tmp/mnt" && ok "SIGTERM: unmounted, exit 0" ||
	not_ok "stop: status $daemon_status, $(tail -3 "$tmp/log")"
finish
