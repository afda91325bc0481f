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
# build/bench/bench calls the hooks as the library's weak functions;
# build/bench/bench-inline has them inline (bench/port_host.h), as a kernel
# with a port header builds it (kheap_port.h): the goals are for that build,
# and the figures of the other are printed beside them.
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

run() { # binary mode workload divisor -> leaves $OUT/cg.bin.mode.w.div and .out
	f=$OUT/cg.$(basename "$1").$2.$3.$4
	valgrind --tool=callgrind --callgrind-out-file="$f" "$1" "$2" "$3" -s "$4" >"$f.out" 2>/dev/null
}

calls() { sed -n "s/^calls\.$2 //p" "$1.out"; }

# percall binary mode workload function kind -> Ir per call
percall() {
	a=$OUT/cg.$1.$2.$3.400 z=$OUT/cg.$1.$2.$3.200
	shift
	ia=$(incl "$a" "$3") iz=$(incl "$z" "$3")
	ca=$(calls "$a" "$4") cz=$(calls "$z" "$4")
	echo "scale=1; ($iz - $ia) / ($cz - $ca)" | bc
}

check() { # label figure goal [weak-hooks figure]
	if [ "$(echo "$2 <= $3" | bc)" = 1 ]; then r=ok pass=$((pass + 1)); else r=ABOVE fail=$((fail + 1)); fi
	printf '| %-44s | %8s | %8s | %6s | %s |\n' "$1" "$2" "${4:-}" "$3" "$r"
}

echo "| goal | inline hooks | weak hooks | at most | |"
echo "|---|--:|--:|--:|---|"
for bin in $BIN $BIN-inline; do
	for mode in kheap-locked kheap; do
		for w in W1 W4; do
			run "$bin" "$mode" "$w" 400
			run "$bin" "$mode" "$w" 200
		done
	done
done
goal() { # label mode workload function kind goal
	check "$1" "$(percall bench-inline "$2" "$3" "$4" "$5")" "$6" "$(percall bench "$2" "$3" "$4" "$5")"
}
goal "W1 locked: kheap_alloc (Ir/call)" kheap-locked W1 kheap_alloc alloc 60
goal "W1 locked: kheap_free (Ir/call)" kheap-locked W1 kheap_free free 50
goal "W4 locked: kheap_alloc (Ir/call)" kheap-locked W4 kheap_alloc alloc 100
goal "W4 locked: kheap_free (Ir/call)" kheap-locked W4 kheap_free free 70
goal "W1 per-CPU: kheap_alloc (Ir/call)" kheap W1 kheap_alloc alloc 20
goal "W1 per-CPU: kheap_free (Ir/call)" kheap W1 kheap_free free 25
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
