#!/bin/sh
# Run every test suite, each as its own make invocation, and add up the
# "N passed, N failed" line each one ends with. A suite that ends without
# that line (build error, crash, hang past its timeout) counts as one
# failure. Prints a per-suite summary, then the total line; exits 1 on any
# failure. Usage: tools/run-suites.sh [suite-name-substring]
set -u

SUITES='
builds          make --no-print-directory test-builds
unit-x86_64     make --no-print-directory test-unit ARCH=x86_64
unit-x86_64-gen make --no-print-directory test-unit ARCH=x86_64 GENERIC=1
unit-x86_64-clg make --no-print-directory test-unit ARCH=x86_64 LLVM=1
unit-x86_64-h1  make --no-print-directory test-unit ARCH=x86_64 HARDEN=1
unit-x86_64-h2  make --no-print-directory test-unit ARCH=x86_64 HARDEN=2
unit-x86_64-h3  make --no-print-directory test-unit ARCH=x86_64 HARDEN=3
unit-x86_64-O0  make --no-print-directory test-unit ARCH=x86_64 OPT=0
asan-ubsan      make --no-print-directory test-asan
tsan            make --no-print-directory test-tsan
fuzz-short      make --no-print-directory fuzz-ci
unit-arm64      make --no-print-directory test-unit ARCH=arm64
unit-arm64-gen  make --no-print-directory test-unit ARCH=arm64 GENERIC=1
qemu-x86_64     make --no-print-directory qemu-test ARCH=x86_64
qemu-x86_64-gen make --no-print-directory qemu-test ARCH=x86_64 GENERIC=1
qemu-arm64      make --no-print-directory qemu-test ARCH=arm64
qemu-arm64-gen  make --no-print-directory qemu-test ARCH=arm64 GENERIC=1
preload         make --no-print-directory preload-test
'

filter=${1:-}
log_dir=build/logs
mkdir -p "$log_dir"
total_pass=0
total_fail=0
summary=""
echo "$SUITES" | while read -r name cmd; do
	[ -n "$name" ] || continue
	case "$name" in *"$filter"*) ;; *) continue ;; esac
	echo "$name $cmd"
done > "$log_dir/plan"

while read -r name cmd; do
	echo "=== suite $name: $cmd"
	start=$(date +%s)
	timeout 900 sh -c "$cmd" > "$log_dir/$name.log" 2>&1
	rc=$?
	cat "$log_dir/$name.log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log_dir/$name.log" | tail -n 1)
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
	summary="$summary$(printf '  %-16s %4d passed, %d failed (%ss)' "$name" "$p" "$f" $(( $(date +%s) - start )))
"
done < "$log_dir/plan"

echo "=== summary"
printf '%s' "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
