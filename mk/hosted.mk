# ---- the library in a hosted program ---------------------------------------------
# Included from the end of the Makefile; uses its ARCH, CROSS_COMPILE, QEMU_USER
# and WARN. A distribution gcc builds position-independent executables by
# default, which cannot take the freestanding library's absolute relocations:
# a hosted program links `make lib PIC=1` instead. This target builds that
# library, links tests/hosted/link.c against it with the toolchain's default
# flags (PIE where that is the default), runs it, and prints the control
# block's size as kheap_control_size() gives it.
#   make test-hosted-lib      (ARCH=arm64 runs it under qemu-aarch64)

HOSTED_LIB := build/$(ARCH)-pic/libkheap.a
HOSTED_BIN := build/$(ARCH)-pic/hosted-link
HOSTED_RUN := $(if $(QEMU_USER),$(QEMU_USER) -L /usr/aarch64-linux-gnu)

.PHONY: test-hosted-lib

$(HOSTED_BIN): tests/hosted/link.c src/heap/kheap.h FORCE
	@$(MAKE) --no-print-directory lib PIC=1 GENERIC=0 HARDEN=0 TAGS=0 LLVM=0 OPT=2
	$(CROSS_COMPILE)gcc -std=gnu11 -O2 $(WARN) -Isrc/heap tests/hosted/link.c $(HOSTED_LIB) -o $@

test-hosted-lib: $(HOSTED_BIN)
	$(HOSTED_RUN) $(HOSTED_BIN)

.PHONY: FORCE
FORCE:
