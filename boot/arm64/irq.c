/*
 * irq.c: the kernel's kheap_irq_save/kheap_irq_restore overrides (see
 * kheap.h): save DAIF and mask D, A, I, F; restore the saved DAIF. Also the
 * kernel's kheap_spin_yield, and kheap_cpu_id while board_percpu is set.
 */
#include "board.h"
#include "kheap.h"

int board_mask_irqs = 1;

uintptr_t kheap_irq_save(void)
{
	uint64_t daif;
	if (!board_mask_irqs)
		return 0;
	__asm__ volatile("mrs %0, daif; msr daifset, #0xf" : "=r"(daif)::"memory");
	return (uintptr_t)daif;
}

void kheap_irq_restore(uintptr_t state)
{
	if (board_mask_irqs)
		__asm__ volatile("msr daif, %0" ::"r"((uint64_t)state) : "memory");
}

int board_percpu;

/* MPIDR_EL1.Aff0 is the CPU number on both boards (virt starts CPU n with
 * Aff0 = n; raspi3b's four cores are 0-3). */
unsigned kheap_cpu_id(void)
{
	uint64_t mpidr;
	if (!board_percpu)
		return KHEAP_NO_CPU;
	__asm__ volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
	return (unsigned)(mpidr & 0xff);
}

/* The heap lock's spin loop calls this every 256 spins. A spin-wait hint:
 * the generic C lock (GENERIC=1) has none of its own, and under QEMU TCG
 * with thread=single it is what lets the holder's vCPU run. */
void kheap_spin_yield(void)
{
	__asm__ volatile("yield" ::: "memory");
}
