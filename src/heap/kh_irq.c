/*
 * kh_irq.c: generic twin of src/heap/<arch>/kh_irq.S (contract in kh_irq.h).
 * Portable C cannot mask interrupts, so this build has none to save: a
 * kernel using it must override kheap_irq_save/restore with its own.
 */
#include "kh_irq.h"

uintptr_t kh_arch_irq_save(void) { return 0; }

void kh_arch_irq_restore(uintptr_t state) { (void)state; }
