/*
 * kh_irq.S: x86_64 interrupt save/restore for a kernel's kheap_irq_save and
 * kheap_irq_restore overrides. Twin of src/heap/kh_irq.c (which does nothing:
 * the generic build has no interrupt control); contract in kh_irq.h.
 * Privileged: CLI/STI fault outside ring 0 (unless IOPL allows), so host
 * tests never call them; the QEMU test kernel does.
 *
 * kh_arch_irq_save     in: none.  out: rax = RFLAGS before masking.
 *                      clobbers: none besides rax; IF cleared on return.
 * kh_arch_irq_restore  in: rdi = a value from kh_arch_irq_save.  out: none.
 *                      sets IF iff bit 9 (IF) of rdi is set; never clears it.
 *
 * Usable with any lock state; they nest as long as restores come in reverse
 * order of saves.
 */
#include "kh_asm.h"

KH_FUNC(kh_arch_irq_save)
	pushfq
	popq	%rax
	cli
	ret
KH_END(kh_arch_irq_save)

KH_FUNC(kh_arch_irq_restore)
	testl	$0x200, %edi		/* RFLAGS.IF */
	jz	.Lrestore_masked
	sti
.Lrestore_masked:
	ret
KH_END(kh_arch_irq_restore)

KH_NOEXEC_STACK
