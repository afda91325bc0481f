/*
 * irq.c: the kernel's kheap_irq_save/kheap_irq_restore overrides (see
 * kheap.h): save RFLAGS and clear IF; restore the saved RFLAGS (and so IF).
 * Kept alone in this file so it can give way to src/heap/x86_64/kh_irq.S.
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
