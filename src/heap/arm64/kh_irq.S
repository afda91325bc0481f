/*
 * kh_irq.S: arm64 interrupt save/restore for a kernel's kheap_irq_save and
 * kheap_irq_restore overrides. Twin of src/heap/kh_irq.c (which does nothing:
 * the generic build has no interrupt control); contract in kh_irq.h.
 * Privileged: DAIF is not writable from EL0 (SCTLR_EL1.UMA is clear under an
 * ordinary OS), so host tests never call them; the QEMU test kernel does.
 *
 * kh_arch_irq_save     in: none.  out: x0 = DAIF before masking.
 *                      clobbers: none besides x0; IRQ and FIQ masked on
 *                      return (debug and SError masks untouched).
 * kh_arch_irq_restore  in: x0 = a value from kh_arch_irq_save.  out: none.
 *                      DAIF is written back whole.
 *
 * Usable with any lock state (at EL1 or above); they nest as long as
 * restores come in reverse order of saves.
 */
#include "kh_asm.h"

KH_FUNC(kh_arch_irq_save)
	mrs	x0, daif
	msr	daifset, #3		// I and F
	ret
KH_END(kh_arch_irq_save)

KH_FUNC(kh_arch_irq_restore)
	msr	daif, x0
	ret
KH_END(kh_arch_irq_restore)

KH_NOEXEC_STACK
