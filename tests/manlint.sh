#!/usr/bin/env bash
# The man pages are part of the interface: they must lint clean.
set -euo pipefail
: "${top_srcdir:=.}"
mandoc=${MANDOC:-$(command -v mandoc || true)}
if [ -z "$mandoc" ]; then
	echo "SKIP: mandoc not installed (apt-get install mandoc)"
	exit 77
fi
status=0
for page in "$top_srcdir"/man/*.[0-9]; do
	out=$("$mandoc" -Tlint -Wwarning "$page" 2>&1) || true
	if [ -n "$out" ]; then
		echo "$out"
		status=1
	else
		echo "ok: $page"
	fi
done
exit $status
