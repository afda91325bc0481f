#!/bin/sh
# Where kheap's time goes on the benchmark loops: callgrind instructions
# (Ir) per operation for kheap and for mimalloc (LD_PRELOAD), and kheap's
# per-function self cost per operation. Each figure is a difference of two
# run lengths, (Ir(2N) - Ir(N)) / N ops, so start-up cancels out.
#   tools/bench-profile.sh [WORKLOAD...]     default: W1 W2 W3 W8
set -eu
BIN=build/bench/bench
OUT=build/bench/profile
mkdir -p "$OUT"
mimalloc=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/libmimalloc.so.2

ops() { # workload, divisor -> operations the run does (bench.c's lengths)
	case $1 in
	W1) echo $((10000000 / $2)) ;;
	W2) echo $((10000 / $2 * 2000)) ;;
	W3) echo $((20000000 / $2)) ;;
	W4) echo $((5000000 / $2)) ;;
	W7) echo $((2000000 / $2)) ;;
	W8) echo $((20000000 / $2 * 2)) ;;
	*) echo "bench-profile: no op count for $1" >&2; exit 2 ;;
	esac
}

cg() { # name, preload, mode, workload, divisor -> total Ir; keeps the profile
	f=$OUT/cg.$1.$4.$5
	LD_PRELOAD=$2 valgrind --tool=callgrind --callgrind-out-file="$f" "$BIN" "$3" "$4" -s "$5" \
		>/dev/null 2>"$f.log"
	sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$f.log"
}

selfs() { # callgrind file -> "function self-Ir" lines; a function's
	# inlined header code is listed under the header's name: add it up.
	callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null |
		awk '/^ *[0-9][0-9,]* .*:/ { n = $1; gsub(",", "", n); f = $0
			sub(/ \[.*$/, "", f); sub(/^.*:/, "", f); s[f] += n }
			END { for (f in s) print f, s[f] }'
}

for w in ${*:-W1 W2 W3 W8}; do
	a=$(ops "$w" 400) z=$(ops "$w" 200)
	d=$((z - a))
	k1=$(cg kheap "" kheap "$w" 400) k2=$(cg kheap "" kheap "$w" 200)
	m1=$(cg mimalloc "$mimalloc" system "$w" 400) m2=$(cg mimalloc "$mimalloc" system "$w" 200)
	printf '%s: Ir per op (whole loop iteration): kheap %s, mimalloc %s\n' "$w" \
		"$(echo "scale=1; ($k2 - $k1) / $d" | bc)" "$(echo "scale=1; ($m2 - $m1) / $d" | bc)"
	selfs "$OUT/cg.kheap.$w.400" >"$OUT/self.$w.a"
	selfs "$OUT/cg.kheap.$w.200" >"$OUT/self.$w.z"
	awk -v d="$d" 'NR == FNR { a[$1] = $2; next }
		{ x = ($2 - a[$1]) / d; if (x >= 0.5) printf "    %-22s %7.1f\n", $1, x }' \
		"$OUT/self.$w.a" "$OUT/self.$w.z" | sort -k2 -rn | head -n 14
done
