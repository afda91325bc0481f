/*
 * kh_class.S: x86_64 twin of src/heap/kh_class.c; the contract and the
 * struct kh_class layout (head at 0, count at 8, limit at 12) are in
 * kh_class.h. SysV ABI; leaf functions, no stack use.
 *
 * kh_size_class   in: rdi = n.       out: eax = class (KH_NCLASSES when
 *                 n > KH_CLASS_MAX_PAYLOAD).      clobbers: rcx, rdx, flags.
 * kh_class_pop    in: rdi = c, rsi = key.  out: rax = payload pointer, 0 when
 *                 empty, 1 (KH_CLASS_BAD) on a misaligned link.
 *                 clobbers: rsi, flags.
 * kh_class_push   in: rdi = c, rsi = p, rdx = key.  out: eax = 1 when pushed,
 *                 0 when count >= limit.          clobbers: rdx, flags.
 * kh_cpu_pop      in: rdi = c, rsi = key, rdx = tkey.  out: rax = payload
 *                 pointer, 0 when empty, 1 (KH_CLASS_BAD) on a wrong token
 *                 or a misaligned link.        clobbers: rsi, rdx, flags.
 * kh_cpu_push     in: rdi = c, rsi = p, rdx = key, rcx = tkey.  out: eax = 1
 *                 when pushed, 0 when count >= limit.
 *                 clobbers: rdx, rcx, flags.
 *
 * State assumed: kh_class_* run under the heap lock; kh_cpu_* on the CPU
 * that owns the list, with interrupts masked (aligned 8-byte moves are
 * single-copy atomic, which is all that another CPU reading the count or a
 * token needs). No atomics here; the IRQ state is whatever the caller set. Unlike the C, kh_size_class uses the
 * granule count g - 1 = (n + 7) / 16 throughout; the classes are the same.
 */
#include "kh_asm.h"

KH_FUNC(kh_size_class)
	cmpq	$1016, %rdi		/* KH_CLASS_MAX_PAYLOAD */
	ja	.Lsc_huge
	leal	7(%rdi), %eax		/* n <= 1016: 32 bits suffice */
	shrl	$4, %eax		/* g - 1, 0..63 */
	cmpl	$15, %eax
	ja	.Lsc_log
	subl	$1, %eax		/* g - 2; borrows only when g - 1 == 0 */
	adcl	$0, %eax		/* ...and then lands on class 0 */
	ret
.Lsc_log:				/* g - 1 in 16..63: four classes per power of two */
	bsrl	%eax, %edx		/* e = 4 or 5 */
	leal	-2(%rdx), %ecx
	shrl	%cl, %eax		/* top two bits after the leading one: 4..7 */
	leal	-5(%rax,%rdx,4), %eax	/* 4e - 5 + that */
	ret
.Lsc_huge:
	movl	$23, %eax		/* KH_NCLASSES */
	ret
KH_END(kh_size_class)

KH_FUNC(kh_class_pop)
	movq	(%rdi), %rax		/* p = head */
	testq	%rax, %rax
	jz	.Lpop_out		/* empty: return NULL */
	xorq	%rax, %rsi
	xorq	(%rax), %rsi		/* next = link ^ p ^ key */
	testb	$15, %sil
	jnz	.Lpop_bad
	movq	%rsi, (%rdi)
	subl	$1, 8(%rdi)
.Lpop_out:
	ret
.Lpop_bad:
	movl	$1, %eax		/* KH_CLASS_BAD, list untouched */
	ret
KH_END(kh_class_pop)

KH_FUNC(kh_class_push)
	movl	8(%rdi), %eax
	cmpl	12(%rdi), %eax		/* unsigned: count >= limit refuses */
	jae	.Lpush_full
	xorq	(%rdi), %rdx
	xorq	%rsi, %rdx		/* link = head ^ p ^ key */
	movq	%rdx, (%rsi)
	movq	%rsi, (%rdi)
	addl	$1, 8(%rdi)
	movl	$1, %eax
	ret
.Lpush_full:
	xorl	%eax, %eax
	ret
KH_END(kh_class_push)

KH_FUNC(kh_cpu_pop)
	movq	(%rdi), %rax		/* p = head */
	testq	%rax, %rax
	jz	.Lcpop_out		/* empty: return NULL */
	xorq	%rax, %rdx
	cmpq	8(%rax), %rdx		/* token == p ^ tkey? */
	jne	.Lcpop_bad
	xorq	%rax, %rsi
	xorq	(%rax), %rsi		/* next = link ^ p ^ key */
	testb	$15, %sil
	jnz	.Lcpop_bad
	movq	%rsi, (%rdi)
	subl	$1, 8(%rdi)
	movq	$0, 8(%rax)		/* clear the token */
.Lcpop_out:
	ret
.Lcpop_bad:
	movl	$1, %eax		/* KH_CLASS_BAD, list untouched */
	ret
KH_END(kh_cpu_pop)

KH_FUNC(kh_cpu_push)
	movl	8(%rdi), %eax
	cmpl	12(%rdi), %eax		/* unsigned: count >= limit refuses */
	jae	.Lcpush_full
	xorq	(%rdi), %rdx
	xorq	%rsi, %rdx		/* link = head ^ p ^ key */
	xorq	%rsi, %rcx		/* token = p ^ tkey */
	movq	%rdx, (%rsi)
	movq	%rcx, 8(%rsi)
	movq	%rsi, (%rdi)
	addl	$1, 8(%rdi)
	movl	$1, %eax
	ret
.Lcpush_full:
	xorl	%eax, %eax
	ret
KH_END(kh_cpu_push)

KH_NOEXEC_STACK
