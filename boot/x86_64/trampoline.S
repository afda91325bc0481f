/*
 * trampoline.S: real-mode start of an application processor. pc.c copies
 * ap_trampoline..ap_trampoline_end to TRAMPOLINE_BASE (0x8000, below 1 MiB
 * and 4 KiB-aligned as a SIPI vector requires) and sends SIPI vector 0x08,
 * so the AP starts here with CS = 0x0800, IP = 0. The code is addressed
 * relative to its own start, so where it is linked does not matter.
 *
 * In:  real mode, interrupts in any state. Out: ap_entry32 in 32-bit
 * protected mode with the kernel's GDT loaded. Clobbers eax.
 */
#include "asm.h"

	.section .rodata
	.code16
FUNC(ap_trampoline)
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	(.Lgdtr - ap_trampoline)
	mov	%cr0, %eax
	or	$1, %eax			/* CR0.PE */
	mov	%eax, %cr0
	ljmpl	$0x08, $ap_entry32
	.balign	4
.Lgdtr:
	.word	4 * 8 - 1
	.long	gdt
	.global	ap_trampoline_end
ap_trampoline_end:
ENDF(ap_trampoline)
	.code64
