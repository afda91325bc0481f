#!/bin/sh
# The fuzzer's CI pass. Usage: tools/fuzz-ci.sh RUNS "FLAGS" BIN [BIN...]
# Every seed in tests/fuzz/corpus runs through every BIN, one process each
# (one pass or failure per seed and binary); then the first BIN makes RUNS
# mutations from the seeds with -seed=1 (one more pass or failure). Ends with
# "N passed, N failed"; exits 1 on any failure.
set -u
runs=$1 flags=$2
shift 2
pass=0 fail=0
for bin in "$@"; do
	for f in tests/fuzz/corpus/*; do
		if "$bin" "$f" >build/fuzz-ci.log 2>&1; then
			pass=$((pass + 1))
		else
			fail=$((fail + 1))
			echo "FAIL $bin $f"
			grep -E 'MISMATCH|ERROR|runtime error' build/fuzz-ci.log | head -n 5
		fi
	done
	echo "replayed $(ls tests/fuzz/corpus | wc -l) seeds through $bin"
done
scratch=build/fuzz-ci-corpus
rm -rf "$scratch" && mkdir -p "$scratch"
# shellcheck disable=SC2086
if "$1" $flags -runs="$runs" -seed=1 "$scratch" tests/fuzz/corpus >build/fuzz-ci.log 2>&1; then
	pass=$((pass + 1))
else
	fail=$((fail + 1))
	echo "FAIL fixed run: $1 -runs=$runs -seed=1"
	tail -n 30 build/fuzz-ci.log
fi
grep -E '^(Done|stat::|fuzz_heap:)' build/fuzz-ci.log
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
