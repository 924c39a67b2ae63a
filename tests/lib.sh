#!/usr/bin/env bash
# Shared by the shell tests: a temp dir and cleanup of every process,
# mount and loop device a test starts, by trap, even when it fails.
#   . "$top_srcdir/tests/lib.sh"
#   track_pid $!; track_mount DIR; track_loop /dev/loopN
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/blockd-test.XXXXXX")
_pids=() _mounts=() _loops=()
track_pid() { _pids+=("$1"); }
track_mount() { _mounts+=("$1"); }
track_loop() { _loops+=("$1"); }
_cleanup() {
	local i
	for ((i = ${#_loops[@]} - 1; i >= 0; i--)); do losetup -d "${_loops[i]}" 2>/dev/null; done
	for ((i = ${#_mounts[@]} - 1; i >= 0; i--)); do umount -l "${_mounts[i]}" 2>/dev/null; done
	for pid in "${_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${_pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap _cleanup EXIT
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
not_ok() { echo "FAIL: $*"; fail=$((fail + 1)); }
# fio_passed FILE: fio's JSON output in FILE shows I/O done and no job
# error; prints one summary line.
fio_passed() {
	python3 - "$1" <<'PY'
import json, sys
# fio may put a warning before the JSON (jobs share one file, in slices).
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])
errs = sum(j["error"] for j in d["jobs"])
io = sum(j["read"]["io_bytes"] + j["write"]["io_bytes"] for j in d["jobs"])
print("# %s: %d MiB moved, %d errors" % (d["jobs"][0]["jobname"], io >> 20, errs))
sys.exit(1 if errs or not io else 0)
PY
}
# The JSON document served on the stats socket $1.
read_stats() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
while True:
    c = s.recv(65536)
    if not c:
        break
    sys.stdout.buffer.write(c)' "$1"
}
# finish: print the plain summary line and exit with the verdict.
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
