#!/bin/sh
# Run every test suite, each as its own make invocation, and add up the
# "N passed, N failed" line each one ends with. A suite that ends without
# that line (build error, crash, hang past its timeout) counts as one
# failure. Prints each suite's log, a per-suite summary, then the total
# line; exits 1 on any failure. Usage: tools/run-suites.sh [name-substring]
#
# The machine has two cores. Suites marked S run one after the other: they
# build every tree, or run four threads that race for a fair lock and crawl
# when a neighbour takes a core. The rest use one core each (QEMU with
# thread=single, the fuzzer) and run afterwards in two chains, A and B, whose
# build trees are disjoint (x86_64 and host; arm64, one board per suite).
set -u

SUITES='
S docs            sh tools/check-docs.sh
S builds          make --no-print-directory test-builds
S unit-x86_64     make --no-print-directory test-unit ARCH=x86_64
S unit-x86_64-gen make --no-print-directory test-unit ARCH=x86_64 GENERIC=1
S unit-x86_64-clg make --no-print-directory test-unit ARCH=x86_64 LLVM=1
S unit-x86_64-h1  make --no-print-directory test-unit ARCH=x86_64 HARDEN=1
S unit-x86_64-h2  make --no-print-directory test-unit ARCH=x86_64 HARDEN=2
S unit-x86_64-h3  make --no-print-directory test-unit ARCH=x86_64 HARDEN=3
S unit-x86_64-tags make --no-print-directory test-unit ARCH=x86_64 TAGS=1
S unit-x86_64-h1-tags make --no-print-directory test-unit ARCH=x86_64 HARDEN=1 TAGS=1
S unit-x86_64-O0  make --no-print-directory test-unit ARCH=x86_64 OPT=0
S unit-x86_64-pcpu make --no-print-directory test-unit ARCH=x86_64 KT_PERCPU=1
S unit-x86_64-h1-pcpu make --no-print-directory test-unit ARCH=x86_64 HARDEN=1 KT_PERCPU=1
S unit-x86_64-h2-pcpu make --no-print-directory test-unit ARCH=x86_64 HARDEN=2 KT_PERCPU=1
S unit-x86_64-h3-pcpu make --no-print-directory test-unit ARCH=x86_64 HARDEN=3 KT_PERCPU=1
S asan-ubsan      make --no-print-directory test-asan
S asan-ubsan-pcpu make --no-print-directory test-asan KT_PERCPU=1
S tsan            make --no-print-directory test-tsan
S tsan-pcpu       make --no-print-directory test-tsan KT_PERCPU=1
S unit-arm64      make --no-print-directory test-unit ARCH=arm64
S unit-arm64-gen  make --no-print-directory test-unit ARCH=arm64 GENERIC=1
S unit-arm64-pcpu make --no-print-directory test-unit ARCH=arm64 KT_PERCPU=1
S unit-arm64-h1   make --no-print-directory test-unit ARCH=arm64 HARDEN=1 KT_PERCPU=1
S unit-arm64-gen-pcpu make --no-print-directory test-unit ARCH=arm64 GENERIC=1 KT_PERCPU=1
S preload         make --no-print-directory preload-test
S hosted-lib      make --no-print-directory test-hosted-lib
A qemu-x86_64     make --no-print-directory qemu-test ARCH=x86_64
A qemu-x86_64-gen make --no-print-directory qemu-test ARCH=x86_64 GENERIC=1
A fuzz-short      make --no-print-directory fuzz-ci
A qemu-virt       make --no-print-directory qemu-test ARCH=arm64 QEMU_BOARDS=virt
A qemu-virt-gen   make --no-print-directory qemu-test ARCH=arm64 GENERIC=1 QEMU_BOARDS=virt
A qemu-zcu102-gen make --no-print-directory qemu-test ARCH=arm64 GENERIC=1 QEMU_BOARDS=zcu102
B qemu-raspi3b    make --no-print-directory qemu-test ARCH=arm64 QEMU_BOARDS=raspi3b
B qemu-raspi3b-gen make --no-print-directory qemu-test ARCH=arm64 GENERIC=1 QEMU_BOARDS=raspi3b
B qemu-zcu102     make --no-print-directory qemu-test ARCH=arm64 QEMU_BOARDS=zcu102
'

filter=${1:-}
log_dir=build/logs
mkdir -p "$log_dir"
echo "$SUITES" | while read -r chain name cmd; do
	[ -n "$name" ] || continue
	case "$name" in *"$filter"*) ;; *) continue ;; esac
	echo "$chain $name $cmd"
done > "$log_dir/plan"

# Run the suites listed in file $1, one after the other; each leaves its
# log, exit status and duration in $log_dir.
run_chain() {
	while read -r chain name cmd; do
		echo "=== suite $name: $cmd" > "$log_dir/$name.log"
		start=$(date +%s)
		timeout 900 sh -c "$cmd" >> "$log_dir/$name.log" 2>&1
		echo $? > "$log_dir/$name.rc"
		echo $(( $(date +%s) - start )) > "$log_dir/$name.secs"
	done < "$1"
}

for c in S A B; do grep "^$c " "$log_dir/plan" > "$log_dir/plan.$c"; done
echo "running $(wc -l < "$log_dir/plan") suites: $(wc -l < "$log_dir/plan.S") in turn, then two chains"
run_chain "$log_dir/plan.S"
run_chain "$log_dir/plan.A" &
run_chain "$log_dir/plan.B" &
wait

total_pass=0
total_fail=0
summary=""
while read -r chain name cmd; do
	cat "$log_dir/$name.log"
	rc=$(cat "$log_dir/$name.rc" 2>/dev/null || echo 1)
	line=$(grep -a -E '^[0-9]+ passed, [0-9]+ failed' "$log_dir/$name.log" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | cut -d' ' -f1)
		f=$(echo "$line" | cut -d' ' -f3)
	else
		p=0
		f=0
	fi
	# A non-zero exit with no failure counted (crash, build error) is one.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	summary="$summary$(printf '  %-16s %4d passed, %d failed (%ss)' "$name" "$p" "$f" "$(cat "$log_dir/$name.secs" 2>/dev/null)")
"
done < "$log_dir/plan"

echo "=== summary"
printf '%s' "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
