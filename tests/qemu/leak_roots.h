/* leak_roots.h: the leak scan over a QEMU kernel's own roots (leak_roots.c). */
#ifndef LEAK_ROOTS_H
#define LEAK_ROOTS_H

#include <stddef.h>

#include "kheap.h"

/* kheap_leak_scan / kheap_leak_report of h with the kernel's roots: its
 * .data, kt_cases and .bss ([__data_start, __bss_end), which the scan clips
 * around h's regions and the scratch) and the boot CPU's stack from the
 * caller's frame up to __stack_top, with every callee-saved register
 * spilled into that range first. Boot CPU only, other CPUs parked. */
int kernel_leak_scan(struct kheap *h, void *scratch, size_t size, kheap_leak_fn fn, void *ctx,
		     struct kheap_leak_result *out);
int kernel_leak_report(struct kheap *h, void *scratch, size_t size, kheap_putc_fn putc, void *ctx);

#endif
