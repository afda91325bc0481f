/*
 * board_port.h: the QEMU kernels' port header (kheap_port.h,
 * -DKHEAP_PORT_HEADER): the hooks on kheap's hot path as inline code, so
 * that kheap_alloc and kheap_free call nothing but the fused routine.
 * Same contracts as kheap_irq_save, kheap_irq_restore and kheap_cpu_id.
 *
 * The number comes from the running CPU's struct pc_percpu, which
 * cpu_setup (pc.c) points GS_BASE at: one %gs-relative load, as a kernel's
 * per-CPU data. board_percpu stays the kernels' switch for per-CPU caches
 * (board.h), at the price of a load and a branch a kernel without such a
 * switch does not pay. board_mask_irqs is not read here: it is the switch
 * of the weak hooks (irq.c), which the no-mask control links (mk/qemu.mk).
 */
#ifndef BOARD_PORT_H
#define BOARD_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "kheap.h"

/* What GS_BASE points at on each CPU. */
struct pc_percpu {
	uint32_t cpu; /* board_cpu() of the CPU that owns it */
} __attribute__((aligned(64)));
_Static_assert(offsetof(struct pc_percpu, cpu) == 0, "kheap_port_cpu_id reads %gs:0");
extern struct pc_percpu pc_percpu[BOARD_MAX_CPUS];

/* Save RFLAGS, then clear IF. */
static inline uintptr_t kheap_port_irq_save(void)
{
	uint64_t flags;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags)::"memory");
	return (uintptr_t)flags;
}

/* Restore RFLAGS, and with it IF. */
static inline void kheap_port_irq_restore(uintptr_t state)
{
	__asm__ volatile("pushq %0; popfq" ::"r"((uint64_t)state) : "memory", "cc");
}

static inline unsigned kheap_port_cpu_id(void)
{
	uint32_t id;
	__asm__ volatile("movl %%gs:0, %0" : "=r"(id));
	return board_percpu ? id : KHEAP_NO_CPU;
}

#endif
