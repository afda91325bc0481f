# kheap: freestanding O(1) heap. `make help` lists the targets.
#
#   ARCH           x86_64 (default) or arm64
#   CROSS_COMPILE  toolchain prefix; arm64 defaults to aarch64-linux-gnu-
#   LLVM=1         build with clang instead of gcc
#   GENERIC=1      build the portable C twins instead of src/heap/<arch>/*.S
#   HARDEN=n       hardening level 0-3 (KHEAP_HARDEN, see kheap.h)
#   TAGS=1         caller tags: allocation site and sequence per block (KHEAP_TAGS)
#   OPT=n          optimisation level of the host tests (default 2)
#   PIC=1          position-independent library, for hosted (PIE) programs
#
# Outputs go under build/<arch>[-generic][-clang][-h<n>][-t][-O<n>]/.

ARCH ?= x86_64
GENERIC ?= 0
LLVM ?= 0
HARDEN ?= 0
TAGS ?= 0
OPT ?= 2
PIC ?= 0

ifeq ($(ARCH),x86_64)
  CROSS_COMPILE ?=
  ARCH_CFLAGS := -mno-red-zone -mno-sse -mno-mmx -mno-80387
  CLANG_TARGET := x86_64-none-elf
  QEMU_USER :=
else ifeq ($(ARCH),arm64)
  CROSS_COMPILE ?= aarch64-linux-gnu-
  ARCH_CFLAGS := -mgeneral-regs-only -mstrict-align
  CLANG_TARGET := aarch64-none-elf
  QEMU_USER := qemu-aarch64
else
  $(error ARCH=$(ARCH) is not supported: use x86_64 or arm64)
endif

ifeq ($(LLVM),1)
  CC := clang --target=$(CLANG_TARGET)
  AR := $(CROSS_COMPILE)ar
  VARIANT_CC := -clang
else
  CC := $(CROSS_COMPILE)gcc
  AR := $(CROSS_COMPILE)ar
  # gcc 12 calls libgcc's out-of-line atomics unless told not to, and turns
  # byte loops into memset calls; a freestanding library wants neither.
  ARCH_CFLAGS += -fno-tree-loop-distribute-patterns $(if $(filter arm64,$(ARCH)),-mno-outline-atomics)
  VARIANT_CC :=
endif

BUILD := build/$(ARCH)$(if $(filter 1,$(GENERIC)),-generic)$(VARIANT_CC)$(if $(filter-out 0,$(HARDEN)),-h$(HARDEN))$(if $(filter 1,$(TAGS)),-t)$(if $(filter-out 2,$(OPT)),-O$(OPT))$(if $(filter 1,$(PIC)),-pic)
HARDEN_DEF := $(if $(filter-out 0,$(HARDEN)),-DKHEAP_HARDEN=$(HARDEN))
TAGS_DEF := $(if $(filter 1,$(TAGS)),-DKHEAP_TAGS=1)
$(if $(filter-out 0 1,$(TAGS)),$(error TAGS=$(TAGS) is not supported: use 0 or 1))

# musl-style selection, defined once and used by every build of the heap:
# src/heap/<arch>/foo.S replaces src/heap/foo.c. $(call heap_s,ARCH,GENERIC)
# lists the assembly, $(call heap_c,ARCH,GENERIC) the C that goes with it.
heap_s = $(if $(filter 1,$(2)),,$(wildcard src/heap/$(1)/*.S))
heap_c = $(filter-out $(patsubst src/heap/$(1)/%.S,src/heap/%.c,$(call heap_s,$(1),$(2))),$(wildcard src/heap/*.c))
HEAP_S := $(call heap_s,$(ARCH),$(GENERIC))
HEAP_C := $(call heap_c,$(ARCH),$(GENERIC))
ARCH_HDR := $(if $(filter 1,$(GENERIC)),,-DKH_ARCH_HEADER='"$(ARCH)/kh_arch.h"')

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
PIC_CFLAGS := $(if $(filter 1,$(PIC)),-fPIC,-fno-pic -fno-pie)
LIB_CFLAGS := -std=c11 -ffreestanding -nostdlib -fno-builtin $(PIC_CFLAGS) \
  -fno-stack-protector -fno-asynchronous-unwind-tables -O2 -g $(WARN) \
  $(ARCH_CFLAGS) $(ARCH_HDR) $(HARDEN_DEF) $(TAGS_DEF) -Isrc/heap -MMD -MP

LIB := $(BUILD)/libkheap.a
LIB_OBJ := $(HEAP_C:src/heap/%.c=$(BUILD)/lib/%.o) $(HEAP_S:src/heap/$(ARCH)/%.S=$(BUILD)/lib/%.o)

# Host test programs: the heap sources built hosted (for sanitizers and
# threads), with the white-box hook opened, plus tests/host/*.c. Only these
# take host_ipi.c (kheap_flush_others by signals, emulated interrupt
# masking); bench and the preload library keep the default hooks.
TEST_CC := $(if $(filter 1,$(LLVM)),clang,$(CROSS_COMPILE)gcc)
TEST_CFLAGS := -std=gnu11 -O$(OPT) -g $(WARN) -Wno-missing-prototypes $(ARCH_HDR) $(HARDEN_DEF) $(TAGS_DEF) -DKH_PRIVATE= -DKH_FAULT_INJECT \
  -Isrc/heap -Itests/host $(if $(QEMU_USER),-static)
TEST_HDR := $(wildcard src/heap/*.h src/heap/$(ARCH)/*.h tests/host/*.h)
TEST_SRC := $(HEAP_C) $(HEAP_S) $(wildcard tests/host/t_*.c) tests/host/kt_core.c tests/host/kt_host.c tests/host/twin_c.c \
  tests/host/host_cpu.c tests/host/host_ipi.c
TEST_BIN := $(BUILD)/kt-unit
SAN_BIN := build/host-asan/kt-unit
TSAN_BIN := build/host-tsan/kt-unit
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1
DEMO_BIN := build/host/kheap-demo

.PHONY: all lib test test-unit test-asan test-tsan test-builds run host-demo help clean tools

all: lib

help:
	@echo "kheap targets (ARCH=$(ARCH), GENERIC=$(GENERIC), LLVM=$(LLVM)):"
	@echo "  make run          boot the demo kernel on QEMU arm64 and x86_64: the heap at work, instruction counts, a leak report"
	@echo "  make host-demo    build and run the host demo"
	@echo "  make qemu-test    test kernel, SMP stress with interrupts, no-lock and no-mask controls on every board of ARCH (mk/boards.tab)"
	@echo "  make qemu-bench   instructions per heap operation on both arches (QEMU -icount shift=0)"
	@echo "  make qemu-gdb     boot a kernel that waits for gdb (BOARD=, KIND=test|smp|nolock|demo|bench)"
	@echo "  make qemu-soak    the interrupt-driven SMP stress 10 times per board of ARCH"
	@echo "  make test         every test suite, ending in 'N passed, N failed'"
	@echo "  make lib          freestanding $(LIB) (PIC=1: position-independent, for hosted programs)"
	@echo "  make test-hosted-lib  link a hosted (PIE) program against make lib PIC=1 and run it"
	@echo "  make test-unit    the host suite for ARCH (arm64 runs under qemu-aarch64)"
	@echo "  make test-asan    the host suite under ASan+UBSan"
	@echo "  make test-tsan    the threads stress under ThreadSanitizer"
	@echo "  make test-builds  libkheap.a for both arches with gcc and clang, nm -u and nm -g (only kheap_*) checked"
	@echo "  make fuzz         libFuzzer+ASan+UBSan on random heap scripts for FUZZ_SECONDS (60) on one core"
	@echo "  make fuzz-ci      the fuzzer's CI pass: seed corpus (asm and C twins) + a fixed-seed run"
	@echo "  make fuzz-cov     line coverage of src/heap by the fuzz seed corpus (llvm-cov)"
	@echo "  make callgrind-class  instructions per small alloc+free, asm vs C (valgrind)"
	@echo "  make harden-cost  instructions per alloc+free at each hardening level (valgrind)"
	@echo "  make bench        W1-W9 vs glibc/jemalloc/mimalloc/tcmalloc, medians of BENCH_RUNS=5 (~5 min; QUICK=1: seconds)"
	@echo "  make bench-profile  callgrind instructions per op of the bench loops, kheap vs mimalloc"
	@echo "  make bench-check  the instruction-count goals (callgrind); exit 1 while one is missed"
	@echo "  make bench-real   real programs under glibc, jemalloc, mimalloc and kheap: time and max-RSS ratios"
	@echo "  make leak-bench   leak-scan cost per MiB of heap and per block"
	@echo "  make preload      build/host/libkheap-preload.so: LD_PRELOAD it to run any program on kheap"
	@echo "  make preload-test python3, sqlite3, gcc, xz, sort... under the preload, compared with glibc"
	@echo "  make tools        install missing Debian packages (tools/setup.sh)"
	@echo "  make clean        remove build/"

# ---- tools: installed on first use ----------------------------------------
TOOLS_STAMP := build/.tools-ok
$(TOOLS_STAMP): tools/setup.sh
	@sh tools/setup.sh
	@mkdir -p $(@D) && touch $@

tools:
	@sh tools/setup.sh

# ---- freestanding library ---------------------------------------------------
lib: $(LIB)

# One relocatable object with only kheap_* global (the API and the weak
# hooks): the internal kh_* names stay out of the kernel's namespace. The
# host tests and the QEMU test kernel link $(LIB_OBJ) or their own objects.
# Relinked when the Makefile changes, which may drop a member.
$(LIB): $(LIB_OBJ) Makefile
	@rm -f $@ $(BUILD)/kheap.o
	$(CROSS_COMPILE)ld -r -o $(BUILD)/kheap.o $(LIB_OBJ)
	$(CROSS_COMPILE)objcopy --wildcard --keep-global-symbol='kheap_*' $(BUILD)/kheap.o
	$(AR) rcs $@ $(BUILD)/kheap.o

# The library needs only a compiler: `make` and `make lib` install nothing.
# Any other goal that builds it (a QEMU kernel, say) installs the tools first.
LIB_TOOLS := $(if $(filter-out all lib,$(or $(MAKECMDGOALS),all)),$(TOOLS_STAMP))
$(LIB_OBJ): | $(LIB_TOOLS)

$(BUILD)/lib/%.o: src/heap/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# A static pattern: an implicit one would lose to the .c rule above, which
# matches the same object whenever the generic twin exists.
$(HEAP_S:src/heap/$(ARCH)/%.S=$(BUILD)/lib/%.o): $(BUILD)/lib/%.o: src/heap/$(ARCH)/%.S
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# ---- host tests -------------------------------------------------------------
$(TEST_BIN): $(TEST_SRC) $(TEST_HDR) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(TEST_CC) $(TEST_CFLAGS) $(TEST_SRC) -o $@ -lpthread

$(SAN_BIN): $(TEST_SRC) $(TEST_HDR) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	clang $(TEST_CFLAGS) $(SAN_FLAGS) -DKT_SANITIZED $(TEST_SRC) -o $@ -lpthread

# KT_PERCPU=1: every test thread gets a per-CPU cache (tests/host/host_cpu.c).
KT_PERCPU ?= 0
test-unit: $(TEST_BIN)
	KT_PERCPU=$(KT_PERCPU) $(QEMU_USER) $(TEST_BIN)

test-asan: $(SAN_BIN)
	KT_PERCPU=$(KT_PERCPU) $(SAN_BIN)

# ThreadSanitizer on the threads stress. The C twins (GENERIC=1), whose C11
# atomics TSan understands; it cannot see through the assembly lock.
$(TSAN_BIN): $(TEST_SRC) $(TEST_HDR) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	clang $(filter-out $(ARCH_HDR),$(TEST_CFLAGS)) -fsanitize=thread -O1 \
	  $(filter-out $(HEAP_C) $(HEAP_S),$(TEST_SRC)) $(call heap_c,$(ARCH),1) -o $@ -lpthread

test-tsan: $(TSAN_BIN)
	KT_PERCPU=$(KT_PERCPU) TSAN_OPTIONS=halt_on_error=1 $(TSAN_BIN) threads_

test-builds: | $(TOOLS_STAMP)
	@sh tools/check-builds.sh

test: | $(TOOLS_STAMP)
	@sh tools/run-suites.sh

# ---- demo -----------------------------------------------------------------------
$(DEMO_BIN): tests/host/demo.c $(wildcard src/heap/*.c src/heap/*.h) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	gcc -std=gnu11 -O2 $(WARN) -Wno-missing-prototypes -Isrc/heap tests/host/demo.c $(wildcard src/heap/*.c) -o $@

host-demo: $(DEMO_BIN)
	@$(DEMO_BIN)

clean:
	rm -rf build

-include $(wildcard $(BUILD)/lib/*.d)

# ---- instruction counts: assembly vs C hot path (valgrind, x86_64) ----------
.PHONY: callgrind-class harden-cost
callgrind-class: | $(TOOLS_STAMP)
	@sh tools/callgrind-class.sh $(N)

harden-cost: | $(TOOLS_STAMP)
	@sh tools/harden-cost.sh $(N)

# ---- QEMU ----------------------------------------------------------------------
include mk/qemu.mk

# ---- benchmarks (issue 6): not part of `make test` -----------------------------
include mk/bench.mk

# ---- preload: kheap as malloc for host programs (issue 7) -----------------------
include mk/preload.mk

# ---- fuzzing -------------------------------------------------------------------
include mk/fuzz.mk

# ---- the library in a hosted program ------------------------------------------
include mk/hosted.mk
