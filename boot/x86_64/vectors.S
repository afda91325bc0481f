/*
 * vectors.S: the interrupt stubs of x86_64 (pc.c builds the IDT from them).
 * irq_timer and irq_ipi (the local APIC's timer and IPI vectors) save the
 * caller-saved registers, call x86_irq(kind) with the stack 16-aligned, and
 * return with iretq (no SSE state: the C is built -mno-sse). The 32
 * exception vectors are faults: each
 * stub pushes a zero where the CPU pushes no error code, then its vector,
 * and x86_fault() reports vector, error code, RIP and CR2 and exits with
 * status 3. Each stub is 16 bytes long: pc.c finds stub n at
 * isr_stubs + 16 * n. Nothing is saved: there is no return.
 */
#include "asm.h"

.macro STUB n, err
	.balign	16
	.if	\err == 0
	push	$0
	.endif
	push	$\n
	jmp	isr_common
.endm

	.text
	.code64
	.balign	16
	.global	isr_stubs
isr_stubs:
	STUB 0, 0
	STUB 1, 0
	STUB 2, 0
	STUB 3, 0
	STUB 4, 0
	STUB 5, 0
	STUB 6, 0
	STUB 7, 0
	STUB 8, 1
	STUB 9, 0
	STUB 10, 1
	STUB 11, 1
	STUB 12, 1
	STUB 13, 1
	STUB 14, 1
	STUB 15, 0
	STUB 16, 0
	STUB 17, 1
	STUB 18, 0
	STUB 19, 0
	STUB 20, 0
	STUB 21, 1
	STUB 22, 0
	STUB 23, 0
	STUB 24, 0
	STUB 25, 0
	STUB 26, 0
	STUB 27, 0
	STUB 28, 0
	STUB 29, 1
	STUB 30, 1
	STUB 31, 0

.macro IRQ name, kind
	.balign	16
	.global	\name
\name:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%rbp
	mov	%rsp, %rbp
	and	$-16, %rsp
	mov	$\kind, %edi
	call	x86_irq
	mov	%rbp, %rsp
	pop	%rbp
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq
.endm

	IRQ irq_timer, 0
	IRQ irq_ipi, 1

/* The local APIC's spurious vector: no handler, no EOI. */
	.balign	16
	.global	irq_spurious
irq_spurious:
	iretq

isr_common:
	mov	(%rsp), %rdi			/* vector */
	mov	8(%rsp), %rsi			/* error code */
	mov	16(%rsp), %rdx			/* RIP */
	mov	%cr2, %rcx
	and	$-16, %rsp
	call	x86_fault
	hlt
