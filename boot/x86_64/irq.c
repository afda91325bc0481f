/*
 * irq.c: the kernel's kheap_irq_save/kheap_irq_restore overrides (see
 * kheap.h): save RFLAGS and clear IF; restore the saved RFLAGS (and so IF).
 * Also the kernel's kheap_spin_yield.
 */
#include "kheap.h"

uintptr_t kheap_irq_save(void)
{
	uint64_t flags;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags)::"memory");
	return (uintptr_t)flags;
}

void kheap_irq_restore(uintptr_t state)
{
	__asm__ volatile("pushq %0; popfq" ::"r"((uint64_t)state) : "memory", "cc");
}

/* The heap lock's spin loop calls this every 256 spins. A spin-wait hint:
 * the generic C lock (GENERIC=1) has none of its own, and under QEMU TCG
 * with thread=single it is what lets the holder's vCPU run. */
void kheap_spin_yield(void)
{
	__asm__ volatile("pause" ::: "memory");
}
