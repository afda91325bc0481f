#!/bin/sh
# bench-real.sh: real programs on glibc's malloc, jemalloc, mimalloc and
# kheap (the preload library), interleaved (each round runs every program
# once on every allocator, so a neighbour's burst on a shared machine hits
# all of them), and a table of each allocator's wall time and max RSS as a
# ratio to glibc's, the median of the rounds. An allocator whose library is
# missing (tools/setup-bench.sh installs them) is left out. Every run's
# stdout must equal glibc's, or the table says so.
# Usage: bench-real.sh build/host/libkheap-preload.so build/host/preload [rounds [names]]
# names: the programs to run, separated by spaces (default: all of them).
set -u

so=$(realpath "$1")
bin=$(realpath "$2")
rounds=${3:-3}
only=${4:-}
src=$(realpath tools/preload)
work=$bin/bench-real
rm -rf "$work"
mkdir -p "$work"
LC_ALL=C
export LC_ALL
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# name=library; glibc has none.
allocs="glibc="
for a in jemalloc=libjemalloc.so.2 mimalloc=libmimalloc.so.2; do
	f=/usr/lib/$multiarch/${a#*=}
	if [ -e "$f" ]; then allocs="$allocs ${a%%=*}=$f"; else echo "(${a%%=*} not installed: tools/setup-bench.sh)"; fi
done
allocs="$allocs kheap=$so"

awk 'BEGIN { srand(7); for (i = 0; i < 190000; i++)
	printf "%07d key%05d %s-%d\n", int(rand() * 9999999), i % 50000, (rand() < 0.5 ? "alpha" : "omega"), int(rand() * 1000) }' \
	> "$work/data.txt"
data=$work/data.txt

# name|command (run by sh in a scratch directory; stdout is compared). A
# run is made to last a few tenths of a second at least (sort runs 8
# times): the times are read to 10 ms.
progs="python3|PYTHONHASHSEED=0 PYTHONMALLOC=malloc python3 $src/workload.py
sqlite3|sqlite3 < $src/workload.sql
xz|xz -T1 -3 -c $data | xz -dc | md5sum
xz-T4|xz -T4 -3 --block-size=1MiB -c $data | xz -T4 -dc | md5sum
sort|for i in 1 2 3 4 5 6 7 8; do sort -S 16M -k2,2 -k1,1n $data; done | md5sum
sort-parallel|for i in 1 2 3 4 5 6 7 8; do sort --parallel=4 -S 16M -u $data; done | md5sum
churn-16t|$bin/churn 16 1000000
churn-100t|$bin/churn 100 50000 3
fork-stress|$bin/fork-stress
handoff-4p|$bin/handoff 4 20000
realloc-grow|$bin/rss realloc > /dev/null"
if [ -n "$only" ]; then
	progs=$(echo "$progs" | while IFS='|' read -r p cmd; do
		case " $only " in *" $p "*) echo "$p|$cmd" ;; esac
	done)
fi

# One run: wall seconds and max RSS (KiB) of the whole command, appended
# to $work/times as: prog alloc round seconds kib ok.
one() {
	p=$1 a=$2 lib=$3 cmd=$4 r=$5 d=$work/run
	rm -rf "$d"
	mkdir -p "$d"
	(cd "$d" && LD_PRELOAD=$lib /usr/bin/time -f '%e %M' -o "$work/t" timeout 120 sh -c "$cmd") > "$work/out.$a" 2> /dev/null
	rc=$?
	ok=1
	[ "$rc" -eq 0 ] || ok=0
	[ "$a" = glibc ] || cmp -s "$work/out.glibc.$p" "$work/out.$a" || ok=0
	[ "$a" = glibc ] && cp "$work/out.$a" "$work/out.glibc.$p"
	echo "$p $a $r $(tail -n 1 "$work/t") $ok" >> "$work/times"
}

for r in $(seq 1 "$rounds"); do
	echo "$progs" | while IFS='|' read -r p cmd; do
		for a in $allocs; do
			one "$p" "${a%%=*}" "${a#*=}" "$cmd" "$r"
		done
	done
	echo "round $r of $rounds done"
done

echo
echo "Median of $rounds rounds; time and max RSS as a ratio to glibc's (lower is better)."
awk -v names="$(for a in $allocs; do printf '%s ' "${a%%=*}"; done)" '
function median(s,   n, v, i, j, t) {
	n = split(s, v, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{
	if (!($1 in seen)) { seen[$1] = 1; order[++np] = $1 }
	t[$1, $2] = t[$1, $2] " " $4; m[$1, $2] = m[$1, $2] " " $5
	if ($6 != 1) bad[$1, $2] = 1
}
END {
	na = split(names, an, " ")
	printf "%-14s %14s", "program", "glibc s / MiB"
	for (i = 2; i <= na; i++) printf " %18s", an[i] " time/RSS"
	printf "\n"
	for (k = 1; k <= np; k++) {
		p = order[k]; gt = median(t[p, "glibc"]); gm = median(m[p, "glibc"])
		printf "%-14s %7.2f %6.1f", p, gt, gm / 1024
		for (i = 2; i <= na; i++) {
			a = an[i]
			if (bad[p, a]) { printf " %18s", "FAILED/differs"; continue }
			at = median(t[p, a]); am = median(m[p, a])
			printf " %9.2fx %6.2fx", (gt > 0 ? at / gt : 0), (gm > 0 ? am / gm : 0)
		}
		printf "\n"
	}
}' "$work/times"
