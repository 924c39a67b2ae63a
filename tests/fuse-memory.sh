#!/usr/bin/env bash
# Forward progress under a small page budget: loop + ext4 on the FUSE
# file with --memory 2M (two 1 MiB requests' worth), and a write many
# times the budget that must finish, with fsync, within a time bound.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fuse-lib.sh"
need_fuse loop
for tool in mkfs.ext4 fsck.ext4; do
	command -v "$tool" >/dev/null || { echo "skip: $tool is not installed"; exit 77; }
done

truncate -s 256M "$tmp/disk.img"
if ! start_fuse "$tmp/log" "$tmp/mnt" --memory 2M --threads 2 --export "disk=file:$tmp/disk.img"; then
	not_ok "daemon did not start: $(cat "$tmp/log")"
	finish
	exit
fi
# Buffered loop I/O on purpose too: the page cache then writes back through FUSE.
for dio in on off; do
	attach_loop "$tmp/mnt/disk" --direct-io=$dio || { not_ok "losetup failed"; break; }
	dev=$loop_dev
	mkdir -p "$tmp/fs"
	track_mount "$tmp/fs"
	if ! timeout 60 mkfs.ext4 -q -F "$dev" || ! mount "$dev" "$tmp/fs"; then
		not_ok "mkfs/mount (direct-io=$dio)"
		break
	fi
	start=$(date +%s)
	if timeout 120 dd if=/dev/urandom of="$tmp/fs/big" bs=1M count=160 conv=fsync status=none &&
	   timeout 60 sync; then
		ok "160 MiB through a 2 MiB budget, direct-io=$dio, $(($(date +%s) - start)) s"
	else
		not_ok "large write did not finish in time (direct-io=$dio)"
	fi
	sum=$(sha256sum <"$tmp/fs/big")
	umount "$tmp/fs"
	timeout 60 fsck.ext4 -fn "$dev" >"$tmp/fsck.out" 2>&1 && ok "fsck clean (direct-io=$dio)" ||
		not_ok "fsck: $(cat "$tmp/fsck.out")"
	mount "$dev" "$tmp/fs" && [ "$(sha256sum <"$tmp/fs/big")" = "$sum" ] &&
		ok "data intact after remount (direct-io=$dio)" || not_ok "checksum differs (direct-io=$dio)"
	umount "$tmp/fs"
	losetup -d "$dev"
done
stop_daemon "$daemon_pid"
[ "$daemon_status" = 0 ] && ok "SIGTERM: exit 0" || not_ok "stop: $(tail -3 "$tmp/log")"
finish
