# ---- benchmarks (issue 6) -----------------------------------------------------
# Included from the end of the Makefile. Not part of `make test`: timings
# are not pass/fail. bench/bench.c is built hosted for x86_64 with the
# heap's C files and its x86_64 .S files at -O2, whatever ARCH says;
# tools/setup-bench.sh installs jemalloc, mimalloc, tcmalloc and gnuplot
# on first use. Outputs: build/bench/results.md, raw.txt, *.png.
#
#   make bench            every workload x allocator, BENCH_RUNS (5) times, medians
#   make bench QUICK=1    a smoke pass: 1/50 of each workload, one run
#   make bench W="W1 W8"  only these workloads
#   make bench-profile    callgrind Ir per op, kheap vs mimalloc, and kheap's per function
#   make bench-check      the instruction-count goals (docs/performance.md); exit 1 if one is missed

BENCH_DIR := build/bench
BENCH_BIN := $(BENCH_DIR)/bench
BENCH_STAMP := $(BENCH_DIR)/.tools-ok
BENCH_HEAP_S := $(call heap_s,x86_64,0)
BENCH_HEAP_C := $(call heap_c,x86_64,0)
BENCH_CFLAGS := -std=gnu11 -O2 -g $(WARN) -DKH_ARCH_HEADER='"x86_64/kh_arch.h"' -Isrc/heap
BENCH_RUNS ?= 5

.PHONY: bench bench-build bench-tools bench-profile bench-check

$(BENCH_STAMP): tools/setup-bench.sh
	@sh tools/setup-bench.sh
	@mkdir -p $(@D) && touch $@

bench-tools:
	@sh tools/setup-bench.sh

# tests/host/host_cpu.c makes each bench thread a CPU with its own cache.
$(BENCH_BIN): bench/bench.c tests/host/host_cpu.c $(BENCH_HEAP_C) $(BENCH_HEAP_S) $(wildcard src/heap/*.h src/heap/x86_64/*.h) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc $(BENCH_CFLAGS) -Itests/host bench/bench.c tests/host/host_cpu.c $(BENCH_HEAP_C) $(BENCH_HEAP_S) -o $@ -lpthread

# The same with the hot path's hooks inline (bench/port_host.h), as a
# kernel with a port header builds it: what bench-check's per-CPU goals use.
BENCH_INLINE_BIN := $(BENCH_DIR)/bench-inline
$(BENCH_INLINE_BIN): bench/bench.c bench/port_host.h tests/host/host_cpu.c $(BENCH_HEAP_C) $(BENCH_HEAP_S) $(wildcard src/heap/*.h src/heap/x86_64/*.h) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc $(BENCH_CFLAGS) -Itests/host -Ibench -DKHEAP_PORT_HEADER='"port_host.h"' bench/bench.c \
	  tests/host/host_cpu.c $(BENCH_HEAP_C) $(BENCH_HEAP_S) -o $@ -lpthread

bench-build: $(BENCH_BIN) $(BENCH_INLINE_BIN)

bench: $(BENCH_BIN) $(BENCH_INLINE_BIN) | $(BENCH_STAMP)
	@sh tools/bench.sh $(if $(filter 1,$(QUICK)),-q,-r $(BENCH_RUNS)) $(if $(W),-w "$(W)")

bench-profile: $(BENCH_BIN) | $(BENCH_STAMP)
	@sh tools/bench-profile.sh $(W)

# The instruction-count goals: fails when a figure is above its goal.
bench-check: $(BENCH_BIN) $(BENCH_INLINE_BIN) | $(TOOLS_STAMP)
	@sh tools/bench-check.sh

# make leak-bench: what the leak scan costs per MiB of heap, per block and
# per MiB of held bytes (bench/leak.c). Timings, not part of `make test`.
.PHONY: leak-bench
LEAK_BENCH_BIN := $(BENCH_DIR)/leak
$(LEAK_BENCH_BIN): bench/leak.c $(BENCH_HEAP_C) $(BENCH_HEAP_S) $(wildcard src/heap/*.h src/heap/x86_64/*.h) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc $(BENCH_CFLAGS) bench/leak.c $(BENCH_HEAP_C) $(BENCH_HEAP_S) -o $@

leak-bench: $(LEAK_BENCH_BIN)
	@$(LEAK_BENCH_BIN)
