# ---- QEMU ---------------------------------------------------------------------
# Kernels that boot kheap on QEMU boards (issue 4). Included from the end of
# the Makefile; uses its ARCH, GENERIC, CC, BUILD, HEAP_C/HEAP_S, LIB,
# LIB_OBJ and LIB_CFLAGS. One kernel per board and purpose, under
# $(BUILD)/qemu/:
#   <board>-test.elf    tests/host/t_*.c (the freestanding ones) + kt_core.c
#   <board>-smp.elf     4-CPU stress on one shared heap
#   <board>-nolock.elf  the same stress with the heap lock made a no-op: must fail
#   <board>-nomask.elf  the same stress with interrupts left unmasked around
#                       kheap calls: must fail through the lock's re-entry report
#   <board>-demo.elf    the heap at work, then the instruction-count table
#   <board>-bench.elf   the instruction-count table alone

QB := $(BUILD)/qemu
# The boards come from mk/boards.tab: one line per board (name, arch, board
# file, image format, passing exit status, QEMU command line).
BOARDS_TAB := mk/boards.tab
board_field = $(shell awk '$$1 == "$(1)" { print $$$(2) }' $(BOARDS_TAB))
QEMU_BOARDS := $(shell awk '$$2 == "$(ARCH)" { print $$1 }' $(BOARDS_TAB))
ifeq ($(ARCH),arm64)
  QEMU_BENCH_BOARD := virt
  QEMU_BOOT := boot/arm64/start.S boot/arm64/vectors.S boot/arm64/arm64.c boot/arm64/irq.c
  QEMU_GDB := gdb-multiarch
else
  QEMU_BENCH_BOARD := pc
  QEMU_BOOT := boot/x86_64/start.S boot/x86_64/trampoline.S boot/x86_64/vectors.S boot/x86_64/irq.c
  QEMU_GDB := gdb
endif
QEMU_BOOT += boot/common/console.c boot/common/string.c
BOARD_LD = linker/$(ARCH)-$(1).ld
BOARD_SRC = $(call board_field,$(1),3)

# Test files that include a hosted header (threads, stdio) cannot build
# freestanding: the test kernel takes every other tests/host/t_*.c.
QEMU_HOSTED_RE := ^\#include <(pthread|stdio|stdlib|string|unistd|signal|time)\.h>
QEMU_T_SRC := $(shell grep -L -E '$(QEMU_HOSTED_RE)' tests/host/t_*.c)
QEMU_T_SKIP := $(filter-out $(QEMU_T_SRC),$(wildcard tests/host/t_*.c))

QEMU_CFLAGS := $(filter-out -std=c11,$(LIB_CFLAGS)) -std=gnu11 -Iboot/common -Iboot/$(ARCH) -Itests/host
QEMU_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=4096 \
  -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
qobj = $(patsubst %,$(QB)/obj/%.o,$(basename $(1)))

# The kernels build the heap as a kernel with a port header would
# (kheap_port.h): boot/$(ARCH)/board_port.h inlines the IRQ and CPU-number
# hooks, so the fast path calls only the fused routine. $(QB)/lib holds the
# library built so, $(QB)/libkheap.a the same as one object with only
# kheap_* global, as $(LIB). The test kernel builds the heap with the
# private helpers opened too (KH_PRIVATE empty) for white-box cases. The
# SMP stress links $(QB)/libkheap.a, as a kernel would. The demo and bench
# kernels time internal routines (kh_cpu_alloc...), which the archive keeps
# local: they link the objects. The no-lock control links those minus the
# lock, plus tests/qemu/nolock.c. The no-mask control links the shipped
# $(LIB), whose weak hooks (boot/$(ARCH)/irq.c) honour board_mask_irqs: it
# keeps a kernel with out-of-line hooks under test.
QEMU_PORT_CFLAGS := -Iboot/common -Iboot/$(ARCH) -DKHEAP_PORT_HEADER='"board_port.h"'
QEMU_HEAP_BASE := $(basename $(subst src/heap/$(ARCH)/,src/heap/,$(HEAP_C) $(HEAP_S)))
QEMU_WB_OBJ := $(patsubst src/heap/%,$(QB)/wb/%.o,$(QEMU_HEAP_BASE))
QEMU_LIB_OBJ := $(patsubst src/heap/%,$(QB)/lib/%.o,$(QEMU_HEAP_BASE))
QEMU_LIB := $(QB)/libkheap.a
QEMU_NOLOCK_LIB := $(filter-out $(QB)/lib/kh_lock.o,$(QEMU_LIB_OBJ))

# Test files build as on the host, with the random stress cut to a quarter
# of its host length: TCG runs it ten to forty times slower.
QEMU_TEST_DEFS := -Wno-missing-prototypes -DKH_FAULT_INJECT -DKT_STRESS_OPS=250000u -DKT_CHECK_EVERY_OPS=25000u

QEMU_KIND_test := tests/qemu/kt_qemu.c tests/host/kt_core.c tests/host/twin_c.c $(QEMU_T_SRC)
# The leak scan over the kernel's own roots (tests/qemu/leak_*.c).
QEMU_KIND_test += tests/qemu/leak_test.c tests/qemu/leak_roots.c
QEMU_KIND_smp := tests/qemu/smp_stress.c
QEMU_KIND_nolock := tests/qemu/smp_stress.c tests/qemu/nolock.c
QEMU_KIND_nomask := tests/qemu/nomask.c
QEMU_KIND_demo := tests/qemu/demo.c tests/qemu/bench.c tests/qemu/leak_demo.c tests/qemu/leak_roots.c
QEMU_KIND_bench := tests/qemu/bench_main.c tests/qemu/bench.c
QEMU_HEAP_test := $(QEMU_WB_OBJ)
QEMU_HEAP_smp := $(QEMU_LIB)
QEMU_HEAP_nolock := $(QEMU_NOLOCK_LIB)
QEMU_HEAP_nomask := $(LIB)
QEMU_HEAP_demo := $(QEMU_LIB_OBJ)
QEMU_HEAP_bench := $(QEMU_LIB_OBJ)
QEMU_KINDS := test smp nolock nomask demo bench

$(QB)/obj/%.o: %.c | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(QEMU_CFLAGS) $(if $(filter tests/%,$<),$(QEMU_TEST_DEFS)) -c $< -o $@

$(QB)/obj/%.o: %.S | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(QEMU_CFLAGS) -c $< -o $@

$(QB)/wb/%.o: src/heap/%.c | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(QEMU_PORT_CFLAGS) -DKH_PRIVATE= -DKH_FAULT_INJECT -Wno-missing-prototypes -c $< -o $@

# Static pattern, as for $(LIB): an implicit rule would lose to the .c one.
$(HEAP_S:src/heap/$(ARCH)/%.S=$(QB)/wb/%.o): $(QB)/wb/%.o: src/heap/$(ARCH)/%.S | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(QEMU_PORT_CFLAGS) -DKH_PRIVATE= -DKH_FAULT_INJECT -Wno-missing-prototypes -c $< -o $@

$(QB)/lib/%.o: src/heap/%.c | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(QEMU_PORT_CFLAGS) -c $< -o $@

$(HEAP_S:src/heap/$(ARCH)/%.S=$(QB)/lib/%.o): $(QB)/lib/%.o: src/heap/$(ARCH)/%.S | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) $(QEMU_PORT_CFLAGS) -c $< -o $@

# As $(LIB); the hooks' board variables stay undefined, for the kernel.
$(QEMU_LIB): $(QEMU_LIB_OBJ)
	@rm -f $@ $(QB)/kheap.o
	$(CROSS_COMPILE)ld -r -o $(QB)/kheap.o $(QEMU_LIB_OBJ)
	$(CROSS_COMPILE)objcopy --wildcard --keep-global-symbol='kheap_*' $(QB)/kheap.o
	$(AR) rcs $@ $(QB)/kheap.o

# Header and #include dependencies of the kernels' own objects and of the
# test kernel's and the port-header library's heap objects.
-include $(shell find $(QB)/obj $(QB)/wb $(QB)/lib -name '*.d' 2>/dev/null)

# $(1) board, $(2) kind. Always relinked (cheap): the object list follows
# the tests/host/t_*.c wildcard, and a removed test must leave the kernel.
.PHONY: qemu-relink
define QEMU_KERNEL
$(QB)/$(1)-$(2).elf: qemu-relink $(call qobj,$(QEMU_BOOT) $(call BOARD_SRC,$(1)) $(QEMU_KIND_$(2))) \
    $(QEMU_HEAP_$(2)) $(call BOARD_LD,$(1))
	$$(CC) $$(QEMU_LDFLAGS) -T $(call BOARD_LD,$(1)) -o $$@ $$(filter %.o %.a,$$^) -lgcc
endef
$(foreach b,$(QEMU_BOARDS),$(foreach k,$(QEMU_KINDS),$(eval $(call QEMU_KERNEL,$(b),$(k)))))

# The image QEMU boots: the ELF as linked, or (image elf32) the same code
# re-wrapped as a 32-bit ELF, the only kind QEMU's multiboot loader takes.
define QEMU_IMAGE
$(QB)/$(1)-%.img: $(QB)/$(1)-%.elf
	$(if $(filter elf32,$(call board_field,$(1),4)),objcopy -O elf32-i386 $$< $$@,cp $$< $$@)
endef
$(foreach b,$(QEMU_BOARDS),$(eval $(call QEMU_IMAGE,$(b))))

QEMU_IMGS = $(foreach b,$(QEMU_BOARDS),$(foreach k,$(1),$(QB)/$(b)-$(k).img))

.PHONY: qemu-test qemu-bench qemu-bench-one qemu-demo qemu-gdb qemu-soak qemu-kernels

qemu-kernels: $(call QEMU_IMGS,$(QEMU_KINDS))

# KINDS picks a subset, e.g. make qemu-test KINDS=test.
KINDS ?= test smp nolock nomask
qemu-test: $(call QEMU_IMGS,$(KINDS))
	@QEMU_SKIPPED='$(QEMU_T_SKIP)' KINDS='$(KINDS)' sh tools/qemu-test.sh $(QB) $(QEMU_BOARDS)

# make run: the demo kernel on both arches, one after the other, under
# -icount shift=0 so that the table counts instructions. Each arch is built
# by a sub-make (ARCH selects the toolchain and build tree).
QEMU_ICOUNT := -icount shift=0
# The third boot is the arm64 demo built with caller tags (TAGS=1), which
# runs only its leak report: tags name each leak's site and age, and turn
# the per-CPU caches off, so the instruction table above is from the
# untagged library.
run:
	@$(MAKE) --no-print-directory -s qemu-demo ARCH=arm64
	@echo
	@$(MAKE) --no-print-directory -s qemu-demo ARCH=x86_64
	@echo
	@$(MAKE) --no-print-directory -s qemu-demo ARCH=arm64 TAGS=1

qemu-demo: $(QB)/$(QEMU_BENCH_BOARD)-demo.img
	@echo "==== $(ARCH): QEMU $(QEMU_BENCH_BOARD), demo kernel$(if $(filter 1,$(TAGS)), with caller tags (TAGS=1): the leak report)"
	@sh tools/qemu-run.sh $(QEMU_BENCH_BOARD) $< 60 $(QEMU_ICOUNT)

qemu-bench:
	@$(MAKE) --no-print-directory -s qemu-bench-one ARCH=arm64
	@$(MAKE) --no-print-directory -s qemu-bench-one ARCH=x86_64

qemu-bench-one: $(QB)/$(QEMU_BENCH_BOARD)-bench.img
	@echo "==== $(ARCH): QEMU $(QEMU_BENCH_BOARD) $(QEMU_ICOUNT)"
	@sh tools/qemu-run.sh $(QEMU_BENCH_BOARD) $< 60 $(QEMU_ICOUNT)

# make qemu-gdb ARCH=arm64 [BOARD=raspi3b] [KIND=smp]: QEMU waits for a
# debugger on :1234; attach with: $(QEMU_GDB) $(QB)/<board>-<kind>.elf -ex 'target remote :1234'
BOARD ?= $(firstword $(QEMU_BOARDS))
KIND ?= test
qemu-gdb: $(QB)/$(BOARD)-$(KIND).img
	@echo "waiting for gdb: $(QEMU_GDB) $(QB)/$(BOARD)-$(KIND).elf -ex 'target remote :1234'"
	@sh tools/qemu-run.sh $(BOARD) $< 3600 -s -S $(if $(filter smp nolock nomask,$(KIND)),-smp 4)

# make qemu-soak [RUNS=10]: the SMP stress (timer interrupts that allocate on
# every CPU, IPIs, a CPU that stops) RUNS times in a row on every board.
RUNS ?= 10
qemu-soak: $(call QEMU_IMGS,smp)
	@ok=0; for i in $$(seq $(RUNS)); do for b in $(QEMU_BOARDS); do \
	  if sh tools/qemu-run.sh $$b $(QB)/$$b-smp.img 120 -smp 4 -accel tcg,thread=single >$(QB)/soak.log 2>&1; \
	  then ok=$$((ok + 1)); echo "run $$i $$b: ok"; else echo "run $$i $$b: FAIL"; cat $(QB)/soak.log; fi; \
	done; done; echo "$$ok of $$(( $(RUNS) * $(words $(QEMU_BOARDS)) )) SMP stress runs passed"; \
	[ $$ok -eq $$(( $(RUNS) * $(words $(QEMU_BOARDS)) )) ]
