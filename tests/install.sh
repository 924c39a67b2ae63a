#!/usr/bin/env bash
# make install DESTDIR=...: the daemon, blockd-stat, the systemd units
# (with the installed paths filled in), the man pages and the examples
# land where they belong, and the installed daemon runs.
set -uo pipefail
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
. "$top_srcdir/tests/lib.sh"
make=${MAKE:-make}
root=$tmp/root

if ! "$make" -s -C "$top_builddir" install DESTDIR="$root" >"$tmp/install.log" 2>&1; then
	not_ok "make install: $(tail -20 "$tmp/install.log")"
	finish
	exit
fi
ok "make install DESTDIR=..."
# have WHAT GLOB: exactly one installed file matches.
have() {
	local found
	found=$(cd "$root" && find . -path "$2" -type f | head -2)
	if [ -n "$found" ] && [ "$(wc -l <<<"$found")" -eq 1 ]; then
		ok "$1: ${found#.}"
	else
		not_ok "$1: nothing like $2 under DESTDIR: $(cd "$root" && find . -type f)"
	fi
}
have "daemon" "*/sbin/blockd"
have "stats table" "*/sbin/blockd-stat"
have "service unit" "*/systemd/system/blockd.service"
have "socket unit" "*/systemd/system/blockd.socket"
have "blockd(8)" "*/man/man8/blockd.8"
have "blockd.conf(5)" "*/man/man5/blockd.conf.5"
have "blockd-backends(5)" "*/man/man5/blockd-backends.5"
have "blockd-stat(8)" "*/man/man8/blockd-stat.8"
have "example config" "*/etc/blockd/blockd.conf.example"
have "nbdtab example" "*/doc/blockd/nbdtab.example"

unit=$(cd "$root" && find . -name blockd.service -type f | head -1)
bin=$(cd "$root" && find . -path '*/sbin/blockd' -type f | head -1)
if [ -n "$unit" ] && grep -q "^ExecStart=${bin#.} --foreground --config " "$root/$unit" &&
   grep -q '^Type=notify$' "$root/$unit" && grep -q '^LimitMEMLOCK=' "$root/$unit" &&
   ! grep -q '@[a-z]*@' "$root/$unit"; then
	ok "the unit runs the installed binary, Type=notify"
else
	not_ok "unit: $(cat "$root/$unit" 2>/dev/null)"
fi
# systemd's own check of the units, pointed at the installed binary.
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$tmp/units"
	sed "s|^ExecStart=[^ ]*|ExecStart=$root/${bin#./}|" "$root/$unit" >"$tmp/units/blockd.service"
	cp "$root/${unit%.service}.socket" "$tmp/units/"
	if out=$(cd "$tmp/units" && systemd-analyze verify --man=no ./blockd.service ./blockd.socket 2>&1) &&
	   [ -z "$out" ]; then
		ok "systemd-analyze verify: the units are clean"
	else
		not_ok "systemd-analyze verify: $out"
	fi
fi
[ -x "$root/$bin" ] && "$root/$bin" --version | grep -q '^blockd ' &&
	ok "the installed daemon runs" || not_ok "installed daemon"
conf=$(cd "$root" && find . -path '*/etc/blockd/blockd.conf.example' | head -1)
out=$("$root/$bin" -c "$root/$conf" --check-config 2>&1) &&
	ok "the example config is valid" || not_ok "example config: $out"
finish
