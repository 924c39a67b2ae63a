#!/usr/bin/env bash
# ext4 on a loop device on the FUSE file: see tests/fuse-mkfs.sh.
fs=ext4
. "${top_srcdir:-.}/tests/fuse-mkfs.sh"
