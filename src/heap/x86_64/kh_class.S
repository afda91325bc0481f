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
 * kh_cpu_alloc    in: rdi = cpu, rsi = n.  out: rax = payload pointer, or 0
 *                 when n > KH_CLASS_MAX_PAYLOAD, drain is set, the list is
 *                 empty, the token is wrong or the link bad (nothing
 *                 written).            clobbers: rsi, rdx, rcx, r8, flags.
 * kh_cpu_free     in: rdi = cpu, rsi = p.  out: eax = 1 when pushed; 2 when
 *                 p is a plain class block but drain is set or the list
 *                 full, 0 when it is not one (nothing written for either).
 *                 clobbers: rcx, rdx, r8, flags.
 *
 * State assumed: kh_class_* run under the heap lock; kh_cpu_* on the CPU
 * that owns the list, with interrupts masked (aligned 8-byte moves are
 * single-copy atomic, which is all that another CPU reading the count or a
 * token needs). No atomics here; the IRQ state is whatever the caller set. Unlike the C, kh_size_class uses the
 * granule count g - 1 = (n + 7) / 16 throughout; the classes are the same.
 * kh_cpu_alloc and kh_cpu_free look the class up in a table instead (the
 * end of this file): one load in place of a branch and four operations.
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

/*
 * The fused fast path. A hit is one straight run to the first ret: 31
 * instructions for alloc (33 when the link decodes to 0), 49 for free,
 * ret included. Every refusal jumps out of line and writes nothing; the
 * C twin's relaxed atomics are the plain aligned moves below.
 */
KH_FUNC(kh_cpu_alloc)
	cmpq	$1016, %rsi		/* KH_CLASS_MAX_PAYLOAD */
	ja	.Lca_none
	leal	7(%rsi), %esi		/* n <= 1016: 32 bits suffice */
	shrl	$4, %esi		/* t = g - 1 = (n + 7) / 16, 0..63 */
	leaq	.Lca_class4(%rip), %rax
	movzbl	(%rax,%rsi), %esi	/* 4c: cls[c] is at 64 + 16c = 64 + 4 * esi */
	cmpl	$0, 48(%rdi)		/* drain */
	jne	.Lca_none
	movq	64(%rdi,%rsi,4), %rax	/* p = head */
	testq	%rax, %rax
	jz	.Lca_out		/* empty: return NULL */
	movq	8(%rdi), %rdx
	xorq	%rax, %rdx
	cmpq	8(%rax), %rdx		/* token == p ^ tkey? */
	jne	.Lca_none
	movq	(%rdi), %rdx
	xorq	%rax, %rdx
	xorq	(%rax), %rdx		/* next = link ^ p ^ key */
	testb	$15, %dl
	jnz	.Lca_none
	leaq	-8(%rdx), %rcx
	subq	16(%rdi), %rcx		/* next - 8 - lo */
	movq	24(%rdi), %r8
	subq	16(%rdi), %r8		/* hi - lo: unsigned, as the C compares */
	cmpq	%r8, %rcx
	jae	.Lca_edge		/* outside [lo, hi), or next == 0 */
.Lca_take:
	movq	%rdx, 64(%rdi,%rsi,4)	/* head = next */
	subl	$1, 72(%rdi,%rsi,4)	/* count -= 1 */
	movq	$0, 8(%rax)		/* clear the token */
	addq	$1, 32(%rdi)		/* allocs += 1 */
.Lca_out:
	ret
.Lca_edge:
	testq	%rdx, %rdx		/* the last block's link decodes to 0 */
	jz	.Lca_take
.Lca_none:
	xorl	%eax, %eax
	ret
KH_END(kh_cpu_alloc)

/* Header checks in three steps: the cookie, over bits 0..45 (body); then
 * the body, PREV_FREE cleared, minus 1 and rotated right by 4, which is the
 * block's granule count g = size / 16 when the flags are USED alone and the
 * alignment 0, and above 2^36 otherwise; then g through a table that knows
 * the class sizes. */
KH_FUNC(kh_cpu_free)
	testb	$15, %sil
	jnz	.Lcf_no
	leaq	-8(%rsi), %rcx		/* b = p - 8 */
	movq	%rcx, %rax
	subq	16(%rdi), %rax		/* b - lo */
	movq	24(%rdi), %rdx
	subq	16(%rdi), %rdx		/* hi - lo */
	cmpq	%rdx, %rax
	jae	.Lcf_no			/* b outside [lo, hi): read nothing */
	movq	(%rcx), %rax		/* h */
	movq	%rax, %rdx
	shlq	$18, %rdx
	shrq	$18, %rdx		/* body = h & (2^46 - 1) */
	xorq	(%rdi), %rcx
	xorq	%rdx, %rcx		/* body ^ b ^ key */
	imulq	.Lcf_mul(%rip), %rcx	/* KH_FAST_COOKIE_MUL */
	xorq	%rax, %rcx
	shrq	$46, %rcx		/* KH_FAST_COOKIE_SHIFT: top 18 bits == h's cookie? */
	jnz	.Lcf_no
	andq	$-3, %rdx		/* PREV_FREE may be either */
	subq	$1, %rdx		/* USED alone: low 4 bits 0, else nonzero */
	rorq	$4, %rdx		/* g | alignment << 36 | stray flags << 60 */
	cmpq	$64, %rdx		/* KH_CLASS_MAX_BLOCK / 16 */
	ja	.Lcf_no
	leaq	.Lcf_class4(%rip), %rax
	movsbq	(%rax,%rdx), %rax	/* 4 * class, -1 when g is no class size */
	testq	%rax, %rax
	js	.Lcf_no
	movq	(%rdi), %rcx
	xorq	%rsi, %rcx		/* p ^ key */
	movq	8(%rsi), %rdx
	xorq	%rcx, %rdx		/* token ^ p ^ key = ~CPU when it names one */
	cmpq	$-4096, %rdx		/* KH_FAST_TOKEN_CPUS: ~w < 4096 iff w >= -4096 */
	jae	.Lcf_no
	movl	72(%rdi,%rax,4), %r8d
	cmpl	76(%rdi,%rax,4), %r8d	/* unsigned: count >= limit: busy */
	jae	.Lcf_busy
	cmpl	$0, 48(%rdi)		/* drain: busy */
	jne	.Lcf_busy
	xorq	64(%rdi,%rax,4), %rcx	/* link = head ^ p ^ key */
	movq	%rcx, (%rsi)
	movq	8(%rdi), %rdx
	xorq	%rsi, %rdx
	movq	%rdx, 8(%rsi)		/* token = p ^ tkey */
	movq	%rsi, 64(%rdi,%rax,4)	/* head = p */
	addl	$1, 72(%rdi,%rax,4)	/* count += 1 */
	addq	$1, 40(%rdi)		/* frees += 1 */
	movl	$1, %eax
	ret
.Lcf_no:
	xorl	%eax, %eax
	ret
.Lcf_busy:
	movl	$2, %eax		/* ours, but the slow path must drain first */
	ret
KH_END(kh_cpu_free)

	.section .rodata
	.p2align 3
.Lcf_mul:
	.quad	0x9e3779b97f4a7c15	/* KH_FAST_COOKIE_MUL */
/* t = (n + 7) / 16 -> 4 * kh_size_class(n), for n <= 1016. */
.Lca_class4:
	.byte	0			/* t = 0: n <= 8 */
	.irp	c, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
	.byte	4 * \c			/* t = 1..15: blocks of 32..256, c = t - 1 */
	.endr
	.irp	c, 15,16,17,18
	.fill	4, 1, 4 * \c		/* t = 16..31: 320..512, four t per class */
	.endr
	.irp	c, 19,20,21,22
	.fill	8, 1, 4 * \c		/* t = 32..63: 640..1024, eight t per class */
	.endr
/* g = block size / 16 -> 4 * class of that block size, or -1 when the size
 * is no class size (block_class in kh_class.c), for g <= 64. */
.Lcf_class4:
	.fill	2, 1, 0xff		/* 0 and 16 bytes */
	.irp	c, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
	.byte	4 * \c			/* 32..256: every granule */
	.endr
	.irp	c, 15,16,17,18
	.fill	3, 1, 0xff
	.byte	4 * \c			/* 320..512: every fourth */
	.endr
	.irp	c, 19,20,21,22
	.fill	7, 1, 0xff
	.byte	4 * \c			/* 640..1024: every eighth */
	.endr

KH_NOEXEC_STACK
