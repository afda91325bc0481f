/*
 * irq.c: the kernel's kheap_irq_save/kheap_irq_restore overrides (see
 * kheap.h): save DAIF and mask D, A, I, F; restore the saved DAIF. Kept
 * alone in this file so it can give way to src/heap/arm64/kh_irq.S.
 */
#include "kheap.h"

uintptr_t kheap_irq_save(void)
{
	uint64_t daif;
	__asm__ volatile("mrs %0, daif; msr daifset, #0xf" : "=r"(daif)::"memory");
	return (uintptr_t)daif;
}

void kheap_irq_restore(uintptr_t state)
{
	__asm__ volatile("msr daif, %0" ::"r"((uint64_t)state) : "memory");
}
