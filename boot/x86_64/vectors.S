/*
 * vectors.S: the 32 exception stubs of x86_64 (pc.c builds the IDT from
 * them). The kernels take no interrupts, so every vector is a fault: each
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

isr_common:
	mov	(%rsp), %rdi			/* vector */
	mov	8(%rsp), %rsi			/* error code */
	mov	16(%rsp), %rdx			/* RIP */
	mov	%cr2, %rcx
	and	$-16, %rsp
	call	x86_fault
	hlt
