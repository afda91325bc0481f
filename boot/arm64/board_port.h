/*
 * board_port.h: the QEMU kernels' port header (kheap_port.h,
 * -DKHEAP_PORT_HEADER): the hooks on kheap's hot path as inline code, so
 * that kheap_alloc and kheap_free call nothing but the fused routine.
 * Same contracts as kheap_irq_save, kheap_irq_restore and kheap_cpu_id.
 *
 * The number comes from TPIDR_EL1, which cpu_setup (start.S) sets to MPIDR
 * Aff0 on every CPU. board_percpu stays the kernels' switch for per-CPU
 * caches (board.h), at the price of a load and a branch a kernel without
 * such a switch does not pay. board_mask_irqs is not read here: it is the
 * switch of the weak hooks (irq.c), which the no-mask control links
 * (mk/qemu.mk).
 */
#ifndef BOARD_PORT_H
#define BOARD_PORT_H

#include <stdint.h>

#include "board.h"
#include "kheap.h"

/* Save DAIF, then mask D, A, I and F. */
static inline uintptr_t kheap_port_irq_save(void)
{
	uint64_t daif;
	__asm__ volatile("mrs %0, daif; msr daifset, #0xf" : "=r"(daif)::"memory");
	return (uintptr_t)daif;
}

static inline void kheap_port_irq_restore(uintptr_t state)
{
	__asm__ volatile("msr daif, %0" ::"r"((uint64_t)state) : "memory");
}

static inline unsigned kheap_port_cpu_id(void)
{
	uint64_t id;
	__asm__ volatile("mrs %0, tpidr_el1" : "=r"(id));
	return board_percpu ? (unsigned)id : KHEAP_NO_CPU;
}

#endif
