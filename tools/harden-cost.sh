#!/bin/sh
# Cost of each hardening level, and of caller tags (TAGS=1) at levels 0 and
# 1: callgrind instructions (Ir) per kheap_alloc + kheap_free pair on x86_64
# (assembly build), for small blocks served by the size-class caches and for
# 2-8 KiB blocks served by the bins, and the bytes each adds to a block. Each
# figure is (Ir(2N) - Ir(N)) / N, so start-up cancels out.
# Usage: tools/harden-cost.sh [N]   (default 100000)
set -eu
n=${1:-100000}
out=build/callgrind
mkdir -p "$out"
ir() { # binary, mode, count -> total Ir
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 >/dev/null |
		sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
echo "| level | tags | small alloc+free (Ir) | 2-8 KiB alloc+free (Ir) | bytes per block |"
echo "|---|---|--:|--:|--:|"
for cfg in 0:0 1:0 2:0 3:0 0:1 1:1; do
	h=${cfg%:*} t=${cfg#*:}
	make --no-print-directory -s lib ARCH=x86_64 HARDEN=$h TAGS=$t
	lib=build/x86_64$( [ $h = 0 ] || echo -h$h )$( [ $t = 0 ] || echo -t )/libkheap.a
	# The bench calls kh_* routines, which libkheap.a keeps local: the objects.
	gcc -std=gnu11 -O2 -no-pie -DKHEAP_HARDEN=$h -DKHEAP_TAGS=$t -Isrc/heap bench/callgrind-class.c "${lib%/libkheap.a}"/lib/*.o \
		-o "$out/harden-$h-$t"
	row="| $h | $( [ $t = 1 ] && echo on || echo off )"
	for mode in heap big; do
		a=$(ir "$out/harden-$h-$t" $mode "$n")
		z=$(ir "$out/harden-$h-$t" $mode $((2 * n)))
		row="$row | $(echo "scale=1; ($z - $a) / $n" | bc)"
	done
	echo "$row | $((8 + (h >= 1 ? 8 : 0) + (t == 1 ? 16 : 0))) |"
done
