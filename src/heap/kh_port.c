/*
 * kh_port.c: the default of every hook in kheap_port.h, each weak so that a
 * kernel's own definition replaces it at link time.
 */
#include "kh_internal.h"

#define WEAK __attribute__((weak))

WEAK void kheap_panic(const char *msg)
{
	(void)msg;
	__builtin_trap();
}

WEAK uintptr_t kheap_irq_save(void) { return 0; }

WEAK void kheap_irq_restore(uintptr_t state) { (void)state; }

WEAK uint64_t kheap_entropy(void) { return 0; }

WEAK void kheap_spin_yield(void) {}

WEAK unsigned kheap_cpu_id(void) { return KHEAP_NO_CPU; }

WEAK bool kheap_flush_others(struct kheap *h)
{
	(void)h;
	return false;
}
