#!/bin/sh
# Install what `make bench` needs beyond tools/setup.sh: the allocators it
# compares kheap with and gnuplot for the plots. Only missing packages are
# installed; safe to run again. Uses sudo when not root. `make test` never
# calls this.
set -eu

multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
need=""
lib() { # soname, package
	for d in /usr/lib/"$multiarch" /usr/lib /lib/"$multiarch"; do
		[ -e "$d/$1" ] && return 0
	done
	need="$need $2"
}
lib libjemalloc.so.2 libjemalloc2
lib libmimalloc.so.2 libmimalloc2.0
lib libtcmalloc_minimal.so.4 libtcmalloc-minimal4
command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
command -v bc >/dev/null 2>&1 || need="$need bc"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"

# shellcheck disable=SC2086
sh "$(dirname "$0")/apt-install.sh" tools/setup-bench.sh $need
