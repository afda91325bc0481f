/*
 * vectors.S: arm64 exception vectors for EL1. The kernels take no
 * interrupts, so every entry is a fault: report ESR, ELR and FAR through
 * board_fault(), which exits with status 3. Nothing is saved: there is no
 * return. Entries from the current EL with SP_EL1 use the faulting stack,
 * which is fine unless the fault was a stack overflow (then the report
 * faults again and the run times out, still a failure).
 */
#include "asm.h"

.macro ENTRY kind
	.balign	0x80
	adrp	x0, .Lname\kind
	add	x0, x0, :lo12:.Lname\kind
	b	fault
.endm

	.text
	.balign	0x800
	.global	vectors
vectors:
	ENTRY 0
	ENTRY 1
	ENTRY 2
	ENTRY 3
	ENTRY 4
	ENTRY 5
	ENTRY 6
	ENTRY 7
	ENTRY 8
	ENTRY 9
	ENTRY 10
	ENTRY 11
	ENTRY 12
	ENTRY 13
	ENTRY 14
	ENTRY 15

fault:
	mrs	x1, esr_el1
	mrs	x2, elr_el1
	mrs	x3, far_el1
	bl	board_fault
	b	.

	.section .rodata
.Lname0:  .asciz "sync (EL1, SP_EL0)"
.Lname1:  .asciz "irq (EL1, SP_EL0)"
.Lname2:  .asciz "fiq (EL1, SP_EL0)"
.Lname3:  .asciz "serror (EL1, SP_EL0)"
.Lname4:  .asciz "sync (ESR)"
.Lname5:  .asciz "irq"
.Lname6:  .asciz "fiq"
.Lname7:  .asciz "serror"
.Lname8:  .asciz "sync (EL0 AArch64)"
.Lname9:  .asciz "irq (EL0 AArch64)"
.Lname10: .asciz "fiq (EL0 AArch64)"
.Lname11: .asciz "serror (EL0 AArch64)"
.Lname12: .asciz "sync (EL0 AArch32)"
.Lname13: .asciz "irq (EL0 AArch32)"
.Lname14: .asciz "fiq (EL0 AArch32)"
.Lname15: .asciz "serror (EL0 AArch32)"
