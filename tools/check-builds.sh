#!/bin/sh
# Build the freestanding libkheap.a for every arch with gcc and clang
# (-Wall -Wextra -Werror), then check that, once the archive's members are
# linked together, nothing is left undefined: the library needs no libc and
# no symbol from the kernel beyond the weak hooks it already defaults; and
# that the archive exports only kheap_* names (the API and the documented
# hooks): every internal kh_* symbol is local to it.
set -u
pass=0
fail=0
# TAGS=1 too: the tag code is compiled out of the default build, so only a
# tags build shows its warnings.
for arch in x86_64 arm64; do
	for llvm in 0 1; do
		for generic in 0 1; do
			for tags in 0 1; do
				name="lib $arch $( [ $llvm = 1 ] && echo clang || echo gcc )$( [ $generic = 1 ] && echo ' generic')$( [ $tags = 1 ] && echo ' tags')"
				dir=build/$arch$( [ $generic = 1 ] && echo -generic)$( [ $llvm = 1 ] && echo -clang)$( [ $tags = 1 ] && echo -t)
				cross=$( [ $arch = arm64 ] && echo aarch64-linux-gnu- )
				if ! make --no-print-directory -s lib ARCH=$arch LLVM=$llvm GENERIC=$generic TAGS=$tags >"$dir.build.log" 2>&1; then
					echo "FAIL $name: build failed"; cat "$dir.build.log"; fail=$((fail + 1)); continue
				fi
				${cross}ld -r -o "$dir/whole.o" --whole-archive "$dir/libkheap.a"
				undef=$(${cross}nm -u "$dir/whole.o")
				if [ -n "$undef" ]; then
					echo "FAIL $name: undefined symbols:"; echo "$undef"; fail=$((fail + 1)); continue
				fi
				leaked=$(${cross}nm -g --defined-only "$dir/libkheap.a" | awk 'NF == 3 && $3 !~ /^kheap_/ { print $3 }')
				if [ -n "$leaked" ]; then
					echo "FAIL $name: global symbols besides kheap_*:"; echo "$leaked"; fail=$((fail + 1)); continue
				fi
				weak=$(${cross}nm "$dir/whole.o" | awk '$2 == "W" { print $3 }' | tr '\n' ' ')
				echo "ok   $name: no undefined symbols, only kheap_* global; weak hooks: $weak"
				pass=$((pass + 1))
			done
		done
	done
done
# Knobs at the ends of their documented ranges (kheap_config.h) compile
# other code out and in, or trip the layout's asserts: KHEAP_MAX_CPUS=0 (no
# per-CPU caches); the smallest block bound, the most CPUs and per-CPU
# lists bounded to the shared lists' classes. Each source once per compiler
# and configuration, with the library's warning flags.
for cfg in "-DKHEAP_MAX_CPUS=0" "-DKHEAP_MAX_BLOCK_LOG2=17 -DKHEAP_MAX_CPUS=4095 -DKHEAP_CPU_MAX_BLOCK=1040u"; do
	for cc in gcc clang; do
		log=build/knobs-$cc.log
		mkdir -p build
		: >"$log"
		for f in src/heap/*.c; do
			# shellcheck disable=SC2086 # $cfg is a list of flags
			$cc -std=c11 -ffreestanding -nostdlib -fno-builtin -O2 -Wall -Wextra -Werror -Wshadow \
				-Wstrict-prototypes -Wmissing-prototypes $cfg \
				-DKH_ARCH_HEADER='"x86_64/kh_arch.h"' -Isrc/heap -c "$f" -o /dev/null >>"$log" 2>&1
		done
		if [ -s "$log" ]; then
			echo "FAIL lib x86_64 $cc $cfg:"; cat "$log"; fail=$((fail + 1))
		else
			echo "ok   lib x86_64 $cc $cfg: compiles warning-free"
			pass=$((pass + 1))
		fi
	done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
