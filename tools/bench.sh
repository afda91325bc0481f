#!/bin/sh
# Run build/bench/bench for every workload x allocator RUNS times, take the
# medians, and write a Markdown table (absolute figures and the ratio to
# mimalloc from the same run) plus gnuplot plots under build/bench/. A full
# run (every workload, not -q) also publishes results.md and the plots to
# bench/results/, the one place the documentation links to; partial and
# quick runs leave it alone, so a smoke pass never replaces real figures.
#
#   tools/bench.sh [-q] [-r RUNS] [-w "W1 W3 ..."]
#     -q   quick smoke pass: every workload 1/50 as long, one run
#     -r   runs per workload x allocator (default 3)
#     -w   only these workloads (W9a/W9b run at 1, 2 and 4 threads)
#
# Allocators: kheap (its own entry points, each thread a CPU with a per-CPU
# cache; the port hooks are the library's weak functions, the default),
# kheap-inline (the same with the hooks inline, build/bench/bench-inline, as
# a kernel with a port header builds it: kheap_port.h), kheap-locked (the
# default build without CPU numbers: every call takes the lock, as in a
# kernel without kheap_cpu_id), and malloc/free/aligned_alloc
# from glibc, jemalloc, mimalloc and tcmalloc (LD_PRELOAD). Within a run the
# allocators take turns on each workload, so drift in the machine's load
# spreads over all of them. Exits 1 if any run failed (a bad tag, a failed
# allocation, a kheap_check problem, or a preload that did not take).
set -eu

BIN=build/bench/bench
OUT=build/bench
runs=3
quick=""
all_works="W1 W2 W3 W4 W5 W6 W7 W8 W9a W9b W10 W10c"
works=$all_works
PUBLISH=bench/results
while getopts qr:w: o; do
	case $o in
	q) quick=-q; runs=1 ;;
	r) runs=$OPTARG ;;
	w) works=$OPTARG ;;
	*) exit 2 ;;
	esac
done

libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
ALLOCS="kheap kheap-inline kheap-locked glibc jemalloc mimalloc tcmalloc"
preload() { # allocator -> LD_PRELOAD value ("" for none)
	case $1 in
	jemalloc) echo "$libdir/libjemalloc.so.2" ;;
	mimalloc) echo "$libdir/libmimalloc.so.2" ;;
	tcmalloc) echo "$libdir/libtcmalloc_minimal.so.4" ;;
	*) echo "" ;;
	esac
}
origin() { # allocator -> what "malloc-from" must contain
	case $1 in
	kheap* | glibc) echo libc.so ;;
	tcmalloc) echo libtcmalloc ;;
	*) echo "lib$1" ;;
	esac
}

mkdir -p "$OUT"
raw=$OUT/raw.txt
: >"$raw"
failed=0

one() { # run allocator workload [extra args...]: append "run alloc key value" rows
	r=$1 a=$2 w=$3
	shift 3
	mode=system bin=$BIN
	case $a in kheap-inline) mode=kheap bin=$BIN-inline ;; kheap*) mode=$a ;; esac
	pre=$(preload "$a")
	if ! res=$(LD_PRELOAD=$pre "$bin" "$mode" "$w" $quick "$@" 2>"$OUT/err.txt"); then
		echo "FAIL run $r $a $w $*: $(cat "$OUT/err.txt")" >&2
		failed=1
		return
	fi
	if ! echo "$res" | grep -q "^malloc-from .*$(origin "$a")"; then
		echo "FAIL run $r $a $w: malloc is not $a's: $(echo "$res" | grep malloc-from)" >&2
		failed=1
		return
	fi
	echo "$res" | awk -v r="$r" -v a="$a" '$1 != "malloc-from" { print r, a, $1, $2 }' >>"$raw"
}

start=$(date +%s)
for r in $(seq 1 "$runs"); do
	for w in $works; do
		printf 'run %s/%s %s:' "$r" "$runs" "$w" >&2
		for a in $ALLOCS; do
			printf ' %s' "$a" >&2
			case $w in
			W9?) for t in 1 2 4; do one "$r" "$a" "$w" -t "$t"; done ;;
			W6) one "$r" "$a" W6 -o "$OUT/w6-$a.txt" ;;
			W10c) case $a in kheap*) one "$r" "$a" W10c ;; esac ;;
			*) one "$r" "$a" "$w" ;;
			esac
		done
		echo >&2
	done
done
elapsed=$(($(date +%s) - start))

# ---- medians, ratios, table ------------------------------------------------
# Scaling rows (2 threads / 1 thread) are derived per run before the median.
awk '$3 ~ /^W9.\.t1$/ { one[$1 " " $2 " " substr($3, 1, 3)] = $4 }
     { print }
     $3 ~ /^W9.\.t2$/ { k = $1 " " $2 " " substr($3, 1, 3); if (k in one) print $1, $2, substr($3, 1, 3) ".scale2", $4 / one[k] }' \
	"$raw" >"$OUT/raw-derived.txt"

cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)
ncpu=$(getconf _NPROCESSORS_ONLN)
md=$OUT/results.md
{
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $cpu ($ncpu CPUs), $(uname -sr),"
	echo "$(gcc --version | head -n 1), \`-O2\`; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Command: \`tools/bench.sh${quick:+ $quick} -r $runs\` ($elapsed s). Medians of $runs run(s); in brackets the"
	echo "median over runs of the ratio to mimalloc in the same run."
	echo
} >"$md"
awk -v allocs="$ALLOCS" -f tools/bench-table.awk "$OUT/raw-derived.txt" >>"$md"
cat "$md"

# ---- plots ----------------------------------------------------------------------
plotted=0
if command -v gnuplot >/dev/null 2>&1; then
	awk -v allocs="$ALLOCS" -v mode=plot -f tools/bench-table.awk "$OUT/raw-derived.txt" >"$OUT/ratios.dat"
	gnuplot -e "dir='$OUT'" tools/bench-plot.gp && plotted=1 &&
		echo "plots: $OUT/ratios.png $OUT/w6-latency.png"
fi

if [ "$failed" -eq 0 ] && [ -z "$quick" ] && [ "$works" = "$all_works" ]; then
	mkdir -p "$PUBLISH"
	cp "$md" "$PUBLISH/results.md"
	# Plots from an earlier run would not match this table: without new
	# ones, the old published plots go too.
	for f in ratios.png w6-latency.png; do
		if [ "$plotted" -eq 1 ]; then cp "$OUT/$f" "$PUBLISH/$f"; else rm -f "$PUBLISH/$f"; fi
	done
	echo "published: $PUBLISH/results.md and its plots"
else
	echo "not published to $PUBLISH/ (quick, partial or failed run): see $OUT/"
fi
exit $failed
