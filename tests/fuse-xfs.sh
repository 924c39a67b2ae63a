#!/usr/bin/env bash
# xfs on a loop device on the FUSE file: see tests/fuse-mkfs.sh.
fs=xfs
. "${top_srcdir:-.}/tests/fuse-mkfs.sh"
