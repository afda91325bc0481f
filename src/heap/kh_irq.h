/*
 * kh_irq.h: interrupt masking for a kernel's kheap_irq_save() and
 * kheap_irq_restore() overrides (kheap.h), e.g.
 *
 *     uintptr_t kheap_irq_save(void) { return kh_arch_irq_save(); }
 *     void kheap_irq_restore(uintptr_t s) { kh_arch_irq_restore(s); }
 *
 * The heap never calls these itself: its hooks default to doing nothing, so
 * hosted programs and single-context firmware need no privilege.
 *
 * src/heap/<arch>/kh_irq.S implements them with privileged instructions:
 * arm64 saves DAIF and masks IRQ and FIQ; x86_64 saves RFLAGS and clears IF.
 * The generic C twin, kh_irq.c (GENERIC=1, or an arch without kh_irq.S), has
 * no interrupt control at all: save returns 0 and restore does nothing, so a
 * kernel on the generic build must write its own hooks.
 */
#ifndef KH_IRQ_H
#define KH_IRQ_H

#include <stdint.h>

/* Mask interrupts on this CPU and return the previous state (an opaque
 * word: DAIF on arm64, RFLAGS on x86_64, 0 on the generic build). Needs
 * kernel privilege on arm64 and x86_64. O(1). */
uintptr_t kh_arch_irq_save(void);

/* Put back the interrupt state that kh_arch_irq_save returned: interrupts
 * are unmasked iff they were unmasked before that save. Saves and restores
 * nest when restores come in reverse order. O(1). */
void kh_arch_irq_restore(uintptr_t state);

#endif /* KH_IRQ_H */
