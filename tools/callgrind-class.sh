#!/bin/sh
# Instructions (callgrind Ir) per small alloc+free pair on x86_64, for the
# assembly, the C twins compiled -O2 with the arch header (BSR, PAUSE), and
# the GENERIC=1 C. Each figure is (Ir(2N) - Ir(N)) / N, so start-up and the
# warm-up cancel out: whole loop iterations, and each routine's self cost
# within them. Usage: tools/callgrind-class.sh [N]   (default 100000)
set -eu
n=${1:-100000}
out=build/callgrind
mkdir -p "$out"
make --no-print-directory -s lib ARCH=x86_64
make --no-print-directory -s lib ARCH=x86_64 GENERIC=1
# The C twins built as libkheap.a builds them, minus the .S replacement.
cflags="-std=c11 -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector -O2
  -mno-red-zone -mno-sse -mno-mmx -mno-80387 -DKH_ARCH_HEADER=\"x86_64/kh_arch.h\" -Isrc/heap"
gcc $cflags -c src/heap/kh_class.c -o "$out/c-kh_class.o"
gcc $cflags -c src/heap/kh_lock.c -o "$out/c-kh_lock.o"

build() { # name, extra objects and archive
	name=$1; shift
	gcc -std=gnu11 -O2 -g -no-pie -Isrc/heap bench/callgrind-class.c "$@" -o "$out/bench-$name"
}
# The bench calls kh_* routines, which libkheap.a keeps local: link the
# library's objects (for c-arch, the asm build's with the two C twins in
# place of their .S).
build asm build/x86_64/lib/*.o
build c-arch "$out/c-kh_class.o" "$out/c-kh_lock.o" \
	$(ls build/x86_64/lib/*.o | grep -v -e '/kh_class\.o$' -e '/kh_lock\.o$')
build c-generic build/x86_64-generic/lib/*.o

ir() { # bench, mode, count -> total Ir
	valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2.$3" "$out/bench-$1" "$2" "$3" \
		2>"$out/cg.$1.$2.$3.log" >/dev/null
	sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$out/cg.$1.$2.$3.log"
}

self_ir() { # callgrind file, function -> self Ir of that function (0 if absent)
	callgrind_annotate --threshold=100 "$1" 2>/dev/null |
		awk -v f="$2" '$0 ~ (":" f " ") { gsub(",", "", $1); print $1; found = 1; exit }
			END { if (!found) print 0 }'
}

fns="kh_size_class kh_cpu_pop kh_cpu_push kh_lock_acquire kh_lock_release"
printf '%-10s %-6s %8s' build loop all
for f in $fns; do printf ' %15s' "$f"; done
echo
for b in asm c-arch c-generic; do
	for mode in class heap; do
		a=$(ir $b $mode "$n")
		z=$(ir $b $mode $((2 * n)))
		printf '%-10s %-6s %8s' "$b" "$mode" "$(echo "scale=1; ($z - $a) / $n" | bc)"
		for f in $fns; do
			fa=$(self_ir "$out/cg.$b.$mode.$n" "$f")
			fz=$(self_ir "$out/cg.$b.$mode.$((2 * n))" "$f")
			printf ' %15s' "$(echo "scale=1; ($fz - $fa) / $n" | bc)"
		done
		echo
	done
done
echo "(Ir per alloc+free pair: 'all' is the whole loop iteration, the rest the"
echo " self cost of each routine within it; N=$n)"
