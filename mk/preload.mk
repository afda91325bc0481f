# ---- preload: kheap as the malloc of host programs (issue 7) -----------------
# Included from the end of the Makefile; uses its WARN and TOOLS_STAMP.
# build/host/libkheap-preload.so is the heap sources built hosted and
# position-independent (room for 64 regions and 64 per-thread caches) plus
# tools/preload/kheap_preload.c; the version script exports only the malloc
# family. It ignores ARCH and GENERIC: on an x86_64 host it takes the x86_64
# assembly (musl-style swap, as for the library), elsewhere the C twins.
#   make preload        build the library
#   make preload-test   real programs under it, compared with glibc
#   make bench-real     real programs on glibc, jemalloc, mimalloc, kheap: ratios

PRELOAD_SO := build/host/libkheap-preload.so
PRELOAD_DIR := build/host/preload
PRELOAD_ARCH := $(filter x86_64,$(shell uname -m))
PRELOAD_S := $(if $(PRELOAD_ARCH),$(call heap_s,$(PRELOAD_ARCH),0))
# PRELOAD_LOCK=futex (default): tools/preload/preload_lock.c, a mutex that
# sleeps, replaces the heap's ticket lock (kh_lock.S or kh_lock.c);
# PRELOAD_LOCK=ticket keeps the heap's own lock, for comparison.
PRELOAD_LOCK ?= futex
ifeq ($(filter futex ticket,$(PRELOAD_LOCK)),)
$(error PRELOAD_LOCK must be futex or ticket)
endif
PRELOAD_HEAP := $(if $(PRELOAD_ARCH),$(call heap_c,$(PRELOAD_ARCH),0),$(call heap_c,none,1)) $(PRELOAD_S)
PRELOAD_SRC := $(if $(filter futex,$(PRELOAD_LOCK)),$(filter-out %/kh_lock.S %/kh_lock.c,$(PRELOAD_HEAP)) \
  tools/preload/preload_lock.c,$(PRELOAD_HEAP)) tools/preload/kheap_preload.c tools/preload/preload_direct.c
# KHEAP_CPU_CARVE_MIN=1: a refill carves its batch (32) from the free block
# that best fits one class block, so the small holes freed blocks leave are
# used before the untouched end of a region; with the heap's default (half a
# batch) python3 keeps a quarter more pages resident (python3-rss in
# preload-test holds kheap's max RSS to 1.2x glibc's).
# KHEAP_CPU_MAX_BLOCK=1040: a thread's cache keeps no class above 1 KiB; each
# thread is a CPU here, and with classes up to 64 KiB cached per thread
# make bench-real's max RSS rose to 1.21x glibc's (fork-stress) and 1.45x
# (handoff-4p).
# KHEAP_CPU_CACHE_BYTES=8192, KHEAP_CLASS_CACHE_MAX=256: threads that only
# free (handoff-4p) keep half as much each, and what they drain waits on
# the shared lists for the threads that allocate instead of going through
# the bins. handoff-4p, three 5-round runs each way: max RSS 1.31-1.42x
# glibc's before, 1.14-1.23x after; time 1.98x, 8.5x and 7.4x before (the
# last two in the VM's slow phases, where mimalloc took 3.4-4.1x),
# 1.42x, 3.2x and 1.78x after.
PRELOAD_ARCH_H := $(if $(PRELOAD_ARCH),-DKH_ARCH_HEADER='"$(PRELOAD_ARCH)/kh_arch.h"')
PRELOAD_CFLAGS := -std=gnu11 -O2 -g -fPIC -fvisibility=hidden -fno-stack-protector $(WARN) \
  -DKHEAP_MAX_REGIONS=64 -DKHEAP_MAX_CPUS=64 -DKHEAP_CPU_CARVE_MIN=1 \
  -DKHEAP_CPU_MAX_BLOCK=1040u -DKHEAP_CPU_CACHE_BYTES=8192u -DKHEAP_CLASS_CACHE_MAX=256u \
  -Isrc/heap $(PRELOAD_ARCH_H)
PRELOAD_LDFLAGS := -shared -Wl,--version-script=tools/preload/kheap_preload.map -Wl,-z,now \
  -Wl,-z,noexecstack
# Test helpers: ordinary glibc programs, run with and without the preload.
PRELOAD_PROGS := $(PRELOAD_DIR)/contract $(PRELOAD_DIR)/fork-stress $(PRELOAD_DIR)/churn $(PRELOAD_DIR)/rss \
  $(PRELOAD_DIR)/direct-test $(PRELOAD_DIR)/handoff

.PHONY: preload preload-test

preload: $(PRELOAD_SO)

$(PRELOAD_SO): $(PRELOAD_SRC) $(wildcard src/heap/*.h src/heap/$(PRELOAD_ARCH)/*.h) \
    tools/preload/kheap_preload.map tools/preload/preload_direct.h mk/preload.mk | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc $(PRELOAD_CFLAGS) $(PRELOAD_SRC) $(PRELOAD_LDFLAGS) -o $@

# The table of large blocks against a model, with a small table
# (tools/preload/direct-test.c includes preload_direct.c).
$(PRELOAD_DIR)/direct-test: tools/preload/direct-test.c tools/preload/preload_direct.c \
    tools/preload/preload_direct.h tools/preload/preload_lock.c | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc -std=gnu11 -O2 -g $(WARN) -Isrc/heap $(PRELOAD_ARCH_H) $< tools/preload/preload_lock.c -o $@

$(PRELOAD_DIR)/%: tools/preload/%.c | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc -std=gnu11 -O2 -g $(WARN) -Wno-missing-prototypes $< -o $@ -lpthread

preload-test: $(PRELOAD_SO) $(PRELOAD_PROGS)
	@sh tools/preload/preload-test.sh $(PRELOAD_SO) $(PRELOAD_DIR)

# make bench-real: real programs on glibc, jemalloc, mimalloc and kheap,
# interleaved, and the table of time and max-RSS ratios to glibc
# (tools/bench-real.sh; BENCH_REAL_ROUNDS rounds, default 3; BENCH_REAL_PROGS
# names the rows to run, default all). Not in make test.
BENCH_REAL_ROUNDS ?= 3
BENCH_REAL_PROGS ?=
.PHONY: bench-real
bench-real: $(PRELOAD_SO) $(PRELOAD_PROGS)
	@sh tools/bench-real.sh $(PRELOAD_SO) $(PRELOAD_DIR) $(BENCH_REAL_ROUNDS) "$(BENCH_REAL_PROGS)"
