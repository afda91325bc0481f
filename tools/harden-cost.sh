#!/bin/sh
# Cost of each hardening level: callgrind instructions (Ir) per
# kheap_alloc + kheap_free pair on x86_64 (assembly build), for small blocks
# served by the size-class caches and for 2-8 KiB blocks served by the bins,
# and the bytes each level adds to a block. Each figure is
# (Ir(2N) - Ir(N)) / N, so start-up cancels out.
# Usage: tools/harden-cost.sh [N]   (default 100000)
set -eu
n=${1:-100000}
out=build/callgrind
mkdir -p "$out"
ir() { # binary, mode, count -> total Ir
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 >/dev/null |
		sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
echo "| level | small alloc+free (Ir) | 2-8 KiB alloc+free (Ir) | bytes per block |"
echo "|---|--:|--:|--:|"
for h in 0 1 2 3; do
	make --no-print-directory -s lib ARCH=x86_64 HARDEN=$h
	lib=build/x86_64$( [ $h = 0 ] || echo -h$h )/libkheap.a
	gcc -std=gnu11 -O2 -no-pie -DKHEAP_HARDEN=$h -Isrc/heap bench/callgrind-class.c "$lib" -o "$out/harden-$h"
	row="| $h"
	for mode in heap big; do
		a=$(ir "$out/harden-$h" $mode "$n")
		z=$(ir "$out/harden-$h" $mode $((2 * n)))
		row="$row | $(echo "scale=1; ($z - $a) / $n" | bc)"
	done
	echo "$row | $( [ $h = 0 ] && echo 8 || echo 16 ) |"
done
