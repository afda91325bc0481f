/*
 * kh_lock_stuck.c: the lock's reports (contract in kh_lock.h). C in every
 * build: the assembly lock calls it too, only from its waiting path.
 */
#include "kh_lock.h"

void kh_lock_stuck(const struct kh_lock *l, unsigned why)
{
	(void)l;
	if (why == KH_LOCK_REENTERED)
		kheap_panic("kheap: heap lock re-entered by the CPU that holds it (deadlock): "
			    "mask interrupts around every kheap call (kheap_irq_save/kheap_irq_restore), "
			    "and call kheap neither from an NMI nor from inside a kheap hook");
	else
		kheap_panic("kheap: heap lock still held after 2^28 spins (deadlock?): an interrupt "
			    "or NMI handler calling kheap on the CPU that holds it (mask interrupts "
			    "around every kheap call), a kheap hook calling kheap, or a CPU stopped "
			    "while holding it");
}
