#!/bin/sh
# preload-test.sh: real programs from Debian packages on kheap. Each case
# runs twice, once on glibc's malloc and once with LD_PRELOAD=<lib> and
# KHEAP_STATS=1 (the lines into a file of their own), each in its own
# directory. A case passes when the two runs agree: exit status, stdout,
# stderr and every
# file the run left behind; and when every process of the kheap run wrote a
# kheap-stats line with check=0 and errors=0, among them each program the
# case names, with allocs > 0 (proof that the preload was really used, in
# child processes too). Then cases that only make sense on kheap: the
# contract checks, a double free, the export list.
# Usage: preload-test.sh build/host/libkheap-preload.so build/host/preload
set -u

so=$(realpath "$1")
bin=$(realpath "$2")
src=$(realpath tools/preload)
root=$(pwd)
work=$bin/work
rm -rf "$work"
mkdir -p "$work"
pass=0
fail=0
LC_ALL=C
export LC_ALL

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Input for the compressors and sort: 5 MB (5109059 bytes) of half-random text.
awk 'BEGIN { srand(7); for (i = 0; i < 190000; i++)
	printf "%07d key%05d %s-%d\n", int(rand() * 9999999), i % 50000, (rand() < 0.5 ? "alpha" : "omega"), int(rand() * 1000) }' \
	> "$work/data.txt"

# run VARIANT DIR CMD: CMD under sh in DIR; out, err, rc, ms beside DIR.
run() {
	v=$1 d=$2 cmd=$3
	mkdir -p "$d/$v"
	rm -f "$d/kheap.stats"
	t0=$(now_ms)
	if [ "$v" = kheap ]; then
		(cd "$d/$v" && LD_PRELOAD=$so KHEAP_STATS=1 KHEAP_STATS_FILE=$d/kheap.stats timeout 60 sh -c "$cmd") > "$d/$v.out" 2> "$d/$v.err"
	else
		(cd "$d/$v" && timeout 60 sh -c "$cmd") > "$d/$v.out" 2> "$d/$v.err"
	fi
	echo $? > "$d/$v.rc"
	echo $(($(now_ms) - t0)) > "$d/$v.ms"
}

# stats_ok DIR PROGS: every kheap-stats line is clean, and each of PROGS
# wrote one with allocs > 0. Prints what is wrong.
stats_ok() {
	d=$1 progs=$2 good=0
	grep '^kheap-stats:' "$d/kheap.stats" > "$d/stats" 2> /dev/null
	if [ ! -s "$d/stats" ]; then echo "  no kheap-stats line: was the preload used?"; return 1; fi
	if grep -v ' errors=0 check=0$' "$d/stats"; then echo "  ^ errors or kheap_check problems"; return 1; fi
	for p in $progs; do
		if ! grep -q "^kheap-stats: prog=$p .* allocs=[1-9]" "$d/stats"; then
			echo "  no kheap-stats line from $p with allocs > 0"
			good=1
		fi
	done
	return $good
}

# same DIR: the glibc and kheap runs agree (the stats lines go to their own
# file, so stderr must match as it is). Prints the differences.
same() {
	d=$1
	cmp -s "$d/glibc.rc" "$d/kheap.rc" || { echo "  exit status: glibc $(cat "$d/glibc.rc"), kheap $(cat "$d/kheap.rc")"; return 1; }
	cmp -s "$d/glibc.out" "$d/kheap.out" || { diff "$d/glibc.out" "$d/kheap.out" | head -5; return 1; }
	cmp -s "$d/glibc.err" "$d/kheap.err" || { diff "$d/glibc.err" "$d/kheap.err" | head -5; return 1; }
	diff -r "$d/glibc" "$d/kheap" > "$d/files.diff" || { head -5 "$d/files.diff"; return 1; }
}

# case NAME PROGS CMD: CMD on glibc and on kheap, compared.
case_cmp() {
	name=$1 progs=$2 cmd=$3 d=$work/$1
	mkdir -p "$d"
	run glibc "$d" "$cmd"
	run kheap "$d" "$cmd"
	times="glibc $(cat "$d/glibc.ms") ms, kheap $(cat "$d/kheap.ms") ms, exit $(cat "$d/kheap.rc")"
	if [ "$(cat "$d/glibc.rc")" != 0 ]; then
		cat "$d/glibc.err" | head -5
		bad "$name: fails on glibc too ($times)"
	elif same "$d" && stats_ok "$d" "$progs"; then
		ok "$name ($times; $(grep -c . "$d/stats") processes on kheap)"
	else
		bad "$name ($times)"
	fi
}

data=$work/data.txt
case_cmp python3 python3 \
	"PYTHONHASHSEED=0 PYTHONMALLOC=malloc /usr/bin/python3 $src/workload.py"
case_cmp sqlite3 sqlite3 \
	"sqlite3 < $src/workload.sql"
case_cmp gcc "gcc cc1 as" \
	"gcc -O2 -g -fdebug-prefix-map=\$PWD=. -I$root/src/heap -DKH_ARCH_HEADER='\"x86_64/kh_arch.h\"' -c $root/src/heap/kheap.c -o kheap.o &&
	 gcc -O2 -I$root/src/heap -S $root/src/heap/kh_tlsf.c -o kh_tlsf.s"
case_cmp xz xz \
	"xz -T1 -3 -c $data > data.xz && xz -dc data.xz | cmp - $data && xz -l data.xz"
case_cmp xz-T4 xz \
	"xz -T4 -3 --block-size=1MiB -vv -c $data 2> vv > data.xz && grep -o 'Using up to 4 threads' vv && rm vv &&
	 xz -T4 -dc data.xz | cmp - $data && xz -l data.xz | head -2"
case_cmp zstd-T4 zstd \
	"zstd -q -T4 -B1MiB -c $data > data.zst && zstd -q -dc data.zst | cmp - $data"
case_cmp sort-parallel sort \
	"sort --parallel=4 -S 16M -k2,2 -k1,1n $data > by-key && sort --parallel=4 -S 16M -c -k2,2 -k1,1n by-key &&
	 sort --parallel=4 -u $data | md5sum"
case_cmp fork-stress fork-stress "$bin/fork-stress"
# 80 threads (more than the preload's 48 home cache numbers) in 4 waves.
case_cmp churn-waves churn "$bin/churn 80 5000 4"

# Throughput floor: 16 threads churning on the cores there are, kheap within
# CHURN_MAX_RATIO times glibc's wall time; the best of 3 interleaved runs
# each, so that a neighbour's burst on a shared machine does not decide.
# Measured on a shared 2-core VM: 1.0x to 2.3x; a lock that collapses with
# more threads than cores (the ticket lock) gives over 200x.
CHURN_MAX_RATIO=4
d=$work/churn-ratio
best_g= best_k=
for i in 1 2 3; do
	run glibc "$d" "$bin/churn 16 400000"
	g=$(cat "$d/glibc.ms")
	run kheap "$d" "$bin/churn 16 400000"
	k=$(cat "$d/kheap.ms")
	[ -z "$best_g" ] || [ "$g" -lt "$best_g" ] && best_g=$g
	[ -z "$best_k" ] || [ "$k" -lt "$best_k" ] && best_k=$k
	same "$d" || break
done
# (+20 ms: timer and start-up noise on runs this short.)
if same "$d" && stats_ok "$d" churn && [ "$best_k" -le $((best_g * CHURN_MAX_RATIO + 20)) ]; then
	ok "churn-ratio: 16 threads x 400000 ops, best of 3: glibc $best_g ms, kheap $best_k ms (limit ${CHURN_MAX_RATIO}x)"
else
	bad "churn-ratio: glibc $best_g ms, kheap $best_k ms: over ${CHURN_MAX_RATIO}x glibc, or outputs differ"
fi

# Max RSS floor: python3's workload within RSS_MAX_PCT percent of glibc's
# max RSS, both measured here by /usr/bin/time (KiB). Pages are counted, not
# timed, so one run each decides. Measured: 0.93x; carving per-thread
# refills 32 blocks at a time from one free block gave 1.25x.
RSS_MAX_PCT=120
d=$work/python3-rss
mkdir -p "$d"
for v in glibc kheap; do
	lib=
	[ "$v" = kheap ] && lib=$so
	(cd "$d" && LD_PRELOAD=$lib PYTHONHASHSEED=0 PYTHONMALLOC=malloc /usr/bin/time -f %M -o "$d/$v.kib" \
		/usr/bin/python3 "$src/workload.py" > "$d/$v.out")
done
g=$(tail -n 1 "$d/glibc.kib") k=$(tail -n 1 "$d/kheap.kib")
if cmp -s "$d/glibc.out" "$d/kheap.out" && [ $((k * 100)) -le $((g * RSS_MAX_PCT)) ]; then
	ok "python3-rss: max RSS glibc $((g / 1024)) MiB, kheap $((k / 1024)) MiB (limit ${RSS_MAX_PCT}%)"
else
	bad "python3-rss: max RSS glibc $g KiB, kheap $k KiB: over ${RSS_MAX_PCT}% of glibc's, or outputs differ"
fi

# The wrapper: a bzip2 round trip through tools/kheap-run -s.
d=$work/kheap-run
mkdir -p "$d"
if tools/kheap-run -s bzip2 -1 -c "$data" 2> "$d/err" | bzip2 -dc | cmp -s - "$data" &&
	grep -q '^kheap-stats: prog=bzip2 .* allocs=[1-9].* errors=0 check=0$' "$d/err"; then
	ok "tools/kheap-run -s bzip2: round trip, $(grep -c '^kheap-stats' "$d/err") stats line"
else
	cat "$d/err"
	bad "tools/kheap-run -s bzip2"
fi

# The table of large blocks against a model (a small table: full runs,
# wrapped probes, the limit). Not under the preload: it is the table itself.
if out=$("$bin/direct-test" 20000); then ok "$out"; else bad "$out"; fi

# kheap only: the contract (glibc before 2.38 takes aligned_alloc(24, n)).
d=$work/contract
run kheap "$d" "$bin/contract"
if [ "$(cat "$d/kheap.rc")" = 0 ] && grep -q ' 0 failed$' "$d/kheap.out" && stats_ok "$d" contract; then
	ok "contract: $(tail -n 1 "$d/kheap.out")"
else
	cat "$d/kheap.out"
	bad "contract"
fi

# kheap only: memory goes back after a peak, and a large calloc is not
# touched (glibc keeps the small blocks' memory: no comparison).
d=$work/rss
run kheap "$d" "$bin/rss check"
if [ "$(cat "$d/kheap.rc")" = 0 ] && stats_ok "$d" rss; then
	ok "$(cat "$d/kheap.out")"
else
	cat "$d/kheap.out"
	bad "rss: memory not given back after the peak"
fi

# kheap only: a block grown by realloc does not hold two copies when it
# moves (mremap), under ulimit -v 2 GiB (first region 128 MiB).
d=$work/rss-realloc
run kheap "$d" "ulimit -v 2097152 && $bin/rss realloc check"
if [ "$(cat "$d/kheap.rc")" = 0 ] && stats_ok "$d" rss; then
	ok "rss $(cat "$d/kheap.out")"
else
	cat "$d/kheap.out"
	bad "rss realloc: peak RSS over a quarter above the blocks' size"
fi

# kheap only: under ulimit -v 976 MiB, python3 gets one 700 MiB block, then
# (with it freed) grows in 8 MiB steps to at least 800 MiB (glibc: about
# 960); with those freed, a 700 MiB mapping of its own (not malloc's)
# fits: the address space of freed large blocks went back to the kernel.
d=$work/ulimit
run kheap "$d" "ulimit -v 999424 && PYTHONMALLOC=malloc python3 -c '
x = bytearray(700 << 20)
del x
l = []
try:
    while True: l.append(bytearray(8 << 20))
except MemoryError: pass
print(len(l) * 8)
del l
import mmap
print(len(mmap.mmap(-1, 700 << 20)) >> 20)
'"
if [ "$(cat "$d/kheap.rc")" = 0 ] && [ "$(head -n 1 "$d/kheap.out")" -ge 800 ] &&
	[ "$(tail -n 1 "$d/kheap.out")" = 700 ] && stats_ok "$d" python3; then
	ok "ulimit -v 976 MiB: python3 got one 700 MiB block, then $(head -n 1 "$d/kheap.out") MiB in 8 MiB steps, then mapped 700 MiB itself"
else
	cat "$d/kheap.out" "$d/kheap.err" | tail -3
	bad "ulimit -v 976 MiB: python3 stopped early, or freed blocks kept their address space"
fi

# A double free aborts (SIGABRT, status 134 from sh) with a report line;
# of a large block (unmapped at the first free), as a foreign pointer.
for kind in double-free:1 double-free-large:2; do
	name=${kind%:*}
	d=$work/$name
	run kheap "$d" "$bin/contract $name"
	if [ "$(cat "$d/kheap.rc")" = 134 ] && grep -q "^kheap: contract: misuse (kind ${kind#*:}): " "$d/kheap.err"; then
		ok "$name: aborted with: $(grep '^kheap:' "$d/kheap.err" | cut -c1-60)..."
	else
		cat "$d/kheap.err"
		bad "$name: exit $(cat "$d/kheap.rc"), want 134 and a report line"
	fi
done

# The library exports the malloc family and nothing else.
want="aligned_alloc calloc free malloc malloc_trim malloc_usable_size memalign posix_memalign pvalloc realloc reallocarray valloc"
got=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$got" = "$want" ]; then ok "exports: $got"; else bad "exports: $got"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
