#!/bin/sh
# The performance goals, checked by instruction counts (callgrind is
# deterministic, so this is a real pass/fail, unlike timings). Prints one
# row per goal with the measured figure and ends "N passed, N failed";
# exits 1 when a figure is above its goal. Not part of `make test`.
#
# Instructions per call are inclusive (the function and everything it
# calls) on x86_64, gcc -O2, the assembly build, on bench/bench.c's loops:
# (Ir(2N run) - Ir(N run)) / (calls(2N) - calls(N)), so start-up cancels.
#   kheap-locked  no CPU numbers: every call takes the heap lock
#   kheap         each thread a CPU: small blocks through its per-CPU cache
# The hooks are the library's weak defaults (out-of-line calls).
set -eu
BIN=build/bench/bench
OUT=build/bench/check
mkdir -p "$OUT"
pass=0 fail=0

incl() { # callgrind file, function -> inclusive Ir. callgrind_annotate lists
	# a function once in all and again per source file its inlined code
	# came from: the largest line is the whole.
	callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null |
		awk -v f="$2" '{ n = $1; gsub(",", "", n) } ($0 ~ (":" f " ") || $0 ~ (":" f "$")) && n + 0 > m { m = n + 0 }
			END { print m + 0 }'
}

run() { # mode workload divisor -> leaves $OUT/cg.mode.w.div and .out
	f=$OUT/cg.$1.$2.$3
	valgrind --tool=callgrind --callgrind-out-file="$f" "$BIN" "$1" "$2" -s "$3" >"$f.out" 2>/dev/null
}

calls() { sed -n "s/^calls\.$2 //p" "$1.out"; }

# percall mode workload function kind -> Ir per call
percall() {
	a=$OUT/cg.$1.$2.400 z=$OUT/cg.$1.$2.200
	ia=$(incl "$a" "$3") iz=$(incl "$z" "$3")
	ca=$(calls "$a" "$4") cz=$(calls "$z" "$4")
	echo "scale=1; ($iz - $ia) / ($cz - $ca)" | bc
}

check() { # label figure goal
	if [ "$(echo "$2 <= $3" | bc)" = 1 ]; then r=ok pass=$((pass + 1)); else r=ABOVE fail=$((fail + 1)); fi
	printf '| %-40s | %8s | %6s | %s |\n' "$1" "$2" "$3" "$r"
}

echo "| goal | measured | at most | |"
echo "|---|--:|--:|---|"
for mode in kheap-locked kheap; do
	for w in W1 W4; do
		run "$mode" "$w" 400
		run "$mode" "$w" 200
	done
done
check "W1 locked: kheap_alloc (Ir/call)" "$(percall kheap-locked W1 kheap_alloc alloc)" 60
check "W1 locked: kheap_free (Ir/call)" "$(percall kheap-locked W1 kheap_free free)" 50
check "W4 locked: kheap_alloc (Ir/call)" "$(percall kheap-locked W4 kheap_alloc alloc)" 100
check "W4 locked: kheap_free (Ir/call)" "$(percall kheap-locked W4 kheap_free free)" 70
check "W1 per-CPU: kheap_alloc (Ir/call)" "$(percall kheap W1 kheap_alloc alloc)" 20
check "W1 per-CPU: kheap_free (Ir/call)" "$(percall kheap W1 kheap_free free)" 25
for mode in kheap kheap-locked; do
	w5=$("$BIN" "$mode" W5 -s 10 | sed -n 's/^W5 //p')
	check "W5 $mode: footprint / peak live bytes" "$w5" 1.10
done
# Hardening level 1 against level 0, per small alloc+free pair.
ratio=$(sh tools/harden-cost.sh 50000 | awk -F'|' '$3 ~ /off/ { gsub(/ /, "", $2); ir[$2] = $4 }
	END { printf "%.2f", ir[1] / ir[0] }')
check "HARDEN=1 / HARDEN=0 small pair (Ir)" "$ratio" 1.30
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
