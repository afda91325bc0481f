/*
 * vectors.S: arm64 exception vectors for EL1. An IRQ from EL1 (SP_EL1)
 * saves the caller-saved registers, ELR and SPSR on the interrupted stack,
 * calls arm64_irq() and returns; the C code keeps no FP/SIMD state
 * (-mgeneral-regs-only). Every other entry is a fault: report ESR, ELR and
 * FAR through board_fault(), which exits with status 3. Nothing is saved:
 * there is no return. Entries from the current EL with SP_EL1 use the faulting stack,
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
	.balign	0x80
	b	irq
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

/* 22 words: x0-x18, x30, ELR, SPSR (x29 is callee-saved; 16-aligned). */
irq:
	sub	sp, sp, #176
	stp	x0, x1, [sp, #0]
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x30, [sp, #144]
	mrs	x0, elr_el1
	mrs	x1, spsr_el1
	stp	x0, x1, [sp, #160]
	bl	arm64_irq
	ldp	x0, x1, [sp, #160]
	msr	elr_el1, x0
	msr	spsr_el1, x1
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x30, [sp, #144]
	add	sp, sp, #176
	eret

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
