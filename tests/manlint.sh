#!/usr/bin/env bash
# The man pages are part of the interface: they must lint clean, be
# installed, and point only at blockd pages that exist.
set -euo pipefail
: "${top_srcdir:=.}"
mandoc=${MANDOC:-$(command -v mandoc || true)}
if [ -z "$mandoc" ]; then
	echo "SKIP: mandoc not installed (apt-get install mandoc)"
	exit 77
fi
# dist_man_MANS in Makefile.am, its continuation lines joined.
installed=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba}' "$top_srcdir/Makefile.am" |
	sed -n 's/^dist_man_MANS[[:space:]]*=//p')
status=0
for page in "$top_srcdir"/man/*.[0-9]; do
	out=$("$mandoc" -Tlint -Wwarning "$page" 2>&1) || true
	if [ -n "$out" ]; then
		echo "$out"
		status=1
	else
		echo "ok: $page"
	fi
	# Every page is installed.
	name=man/${page##*/}
	if [[ " $(echo $installed) " != *" $name "* ]]; then
		echo "not ok: $name is not in dist_man_MANS"
		status=1
	fi
	# Every .Xr to a blockd page names one that exists, in its section.
	while read -r _ xname xsec _; do
		if [ ! -f "$top_srcdir/man/$xname.$xsec" ]; then
			echo "not ok: $page refers to $xname($xsec), which is not in man/"
			status=1
		fi
	done < <(grep -E '^\.Xr blockd' "$page" || true)
done
# The backends' page is reached from the pages that used to hold its text.
for page in blockd.8 blockd.conf.5; do
	if ! sed -n '/^\.Sh SEE ALSO/,$p' "$top_srcdir/man/$page" |
		grep -q '^\.Xr blockd-backends 5'; then
		echo "not ok: man/$page has no blockd-backends(5) in SEE ALSO"
		status=1
	fi
done
exit $status
