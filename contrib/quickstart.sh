#!/usr/bin/env bash
# blockd quick start: the README's two commands.
#
#   contrib/quickstart.sh run     build, then serve a 1 GiB sparse disk in var/
#   contrib/quickstart.sh check   build twice (normal, ASan+UBSan) and run the suite
#
# Each verb does all set-up on a fresh Debian 12 machine: as root it installs
# the Debian packages that are missing, then runs autoreconf, configure, make.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

# Everything the build and the whole test suite need, by Debian package name.
packages=(
	build-essential autoconf automake pkg-config
	libfuse3-dev fuse3 liburing-dev libnbd-dev check
	mandoc nbdkit fio
	libnbd-bin qemu-utils python3
	nbd-server time bc
	libinih-dev libsystemd-dev systemd
	e2fsprogs xfsprogs util-linux
	ceph-mon ceph-osd ceph-common librbd-dev uuid-runtime
	qemu-system-x86 busybox-static nbd-client xz-utils
)

say() { printf 'quickstart: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

install_packages() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] ||
		die "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Two checks started at once (or apt run by hand) must wait, not fail.
	exec 9>/var/lock/blockd-quickstart.lock
	flock 9
	apt-get -o DPkg::Lock::Timeout=600 update -q
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
	exec 9>&-
}

# build DIR [configure options...]: an out-of-tree build, so the normal and
# sanitizer builds live side by side.
build() {
	local dir=$1
	shift
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		say "autoreconf"
		autoreconf -fi
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ] ||
	   [ "$(cat "$dir/.configure-args" 2>/dev/null)" != "$*" ]; then
		say "configure $* (in $dir)"
		(cd "$dir" && "$top/configure" -q "$@")
		printf '%s' "$*" >"$dir/.configure-args"
	fi
	say "make (in $dir)"
	make -C "$dir" -s -j"$(nproc)"
}

cmd_run() {
	local disk=var/disk.img
	install_packages
	build build
	mkdir -p var
	if [ ! -e "$disk" ]; then
		truncate -s 1G "$disk"
		say "created $top/$disk (1 GiB, sparse)"
	fi
	local sock=$top/var/blockd.sock
	say "serving $top/$disk as the default export; attach with:"
	say "  nbdinfo 'nbd+unix:///?socket=$sock'"
	say "  qemu-img info 'nbd+unix:///?socket=$sock'"
	say "  nbd-client 127.0.0.1 10809 /dev/nbd0 -N disk -b 4096   (after: modprobe nbd)"
	exec build/daemon/blockd --foreground --unix "$sock" --tcp 127.0.0.1:10809 \
		--export "disk=file:$top/$disk,size=1G"
}

cmd_check() {
	local failed=0
	install_packages

	build build
	say "make check (normal build)"
	make -C build -s check || failed=1

	build build-asan --enable-sanitizers
	say "make check (ASan+UBSan build)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		make -C build-asan -s check || failed=1

	say "make distcheck"
	make -C build -s distcheck >build/distcheck.log 2>&1 || {
		tail -n 60 build/distcheck.log >&2
		failed=1
	}

	summarize build build-asan
	if [ $failed -ne 0 ]; then
		say "FAILED"
		exit 1
	fi
	say "all checks passed"
}

# Print each build's Check summary and failing logs, then one closing line
# counting every test program run in both builds.
summarize() {
	local dir log pass=0 fail=0 skip=0 n
	for dir in "$@"; do
		for log in "$dir"/tests/unit/check_*.log; do
			[ -f "$log" ] || continue
			n=${log##*/}
			say "$dir ${n%.log}: $(grep -h 'Checks:' "$log")"
		done
		for log in "$dir"/tests/*.trs "$dir"/tests/*/*.trs; do
			[ -f "$log" ] || continue
			case $(sed -n 's/^:test-result: //p' "$log") in
			PASS) pass=$((pass + 1)) ;;
			SKIP) skip=$((skip + 1)) ;;
			*)
				fail=$((fail + 1))
				say "---- ${log%.trs}.log"
				cat "${log%.trs}.log" >&2
				;;
			esac
		done
	done
	n=$((pass + fail + skip))
	[ $n -gt 0 ] || { say "no test ran"; failed=1; }
	echo "quickstart: $pass passed, $fail failed, $skip skipped"
}

case ${1:-} in
run) cmd_run ;;
check) cmd_check ;;
*)
	echo "usage: $0 run|check" >&2
	exit 2
	;;
esac
