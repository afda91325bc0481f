/*
 * irq.c: the kernel's kheap_irq_save/kheap_irq_restore overrides (see
 * kheap.h): save RFLAGS and clear IF; restore the saved RFLAGS (and so IF).
 * Also the kernel's kheap_spin_yield, and kheap_cpu_id while board_percpu is
 * set.
 */
#include "board.h"
#include "kheap.h"

int board_mask_irqs = 1;

uintptr_t kheap_irq_save(void)
{
	uint64_t flags;
	if (!board_mask_irqs)
		return 0;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags)::"memory");
	return (uintptr_t)flags;
}

void kheap_irq_restore(uintptr_t state)
{
	if (board_mask_irqs)
		__asm__ volatile("pushq %0; popfq" ::"r"((uint64_t)state) : "memory", "cc");
}

int board_percpu;

/* The local APIC ID register (0xfee00020, bits 31:24): QEMU numbers the
 * CPUs of the pc board 0, 1, ... (pc.c starts them by that ID). */
unsigned kheap_cpu_id(void)
{
	if (!board_percpu)
		return KHEAP_NO_CPU;
	return *(volatile uint32_t *)(uintptr_t)0xfee00020u >> 24;
}

/* The heap lock's spin loop calls this every 256 spins. A spin-wait hint:
 * the generic C lock (GENERIC=1) has none of its own, and under QEMU TCG
 * with thread=single it is what lets the holder's vCPU run. */
void kheap_spin_yield(void)
{
	__asm__ volatile("pause" ::: "memory");
}
