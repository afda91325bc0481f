/*
 * kh_class.S: x86_64 twin of src/heap/kh_class.c; the contract is in
 * kh_class.h, every layout number in kh_layout.h. SysV ABI; leaf functions, no stack use.
 *
 * kh_size_class   in: rdi = n.       out: eax = class (KH_NCLASSES when
 *                 n > KH_CLASS_MAX_PAYLOAD).      clobbers: rcx, rdx, flags.
 * kh_cpu_pop      in: rdi = c, rsi = key, rdx = tkey.  out: rax = payload
 *                 pointer, 0 when empty, 1 (KH_CLASS_BAD) on a wrong token
 *                 or a misaligned link.        clobbers: rsi, rdx, flags.
 * kh_cpu_push     in: rdi = c, rsi = p, rdx = key, rcx = tkey.  out: eax = 1
 *                 when pushed, 0 when count >= limit.
 *                 clobbers: rdx, rcx, flags.
 * kh_cpu_alloc    in: rdi = cpu, rsi = n.  out: rax = payload pointer, or 0
 *                 when n > KH_CLASS_MAX_PAYLOAD, drain is set, the list is
 *                 empty, the token is wrong or the link bad (nothing
 *                 written).            clobbers: rcx, rdx, r8, flags.
 * kh_cpu_free     in: rdi = cpu, rsi = p.  out: eax = 1 when pushed; 2 when
 *                 p is a plain class block but drain is set or the list
 *                 full, 0 when it is not one (nothing written for either).
 *                 clobbers: rcx, rdx, r8, flags.
 * Every other register, rdi and rsi included, survives kh_cpu_alloc and
 * kh_cpu_free: kh_arch.h's kh_call_cpu_alloc/free tell the compiler only
 * these clobbers, and tests/host/t_diff.c checks them. Both are .hidden,
 * so that no call to them goes through a PLT.
 *
 * State assumed: kh_cpu_* run on the CPU that owns the list (the shared
 * slot: the lock holder), with interrupts masked (aligned 8-byte moves are
 * single-copy atomic, which is all that another CPU reading the count or a
 * token needs). No atomics here; the IRQ state is whatever the caller set.
 * Unlike the C, the class lookups up to KH_CLASS_TABLE_BLOCK go through
 * two tables (the end of this file) that the assembler generates from
 * kh_layout.h's KH_CLASS_GRANULES_TABLE: one load in place of a branch and
 * four operations. Larger classes (four per power of two) are computed out
 * of line from the highest bit of u - 1 (kh_layout.h), as the C does. Every
 * other number here is a kh_layout.h name too.
 */
#include "kh_asm.h"
#include "kh_layout.h"

/* \cls (a 32-bit register; \cls64 the same one) = the class of a request of
 * \n bytes (a 64-bit register), for KH_CLASS_TABLE_PAYLOAD < n <=
 * KH_CLASS_MAX_PAYLOAD: with u - 1 = g - 2 and e its highest bit,
 * 4 * e - KH_CLASS_BIAS + ((u - 1) >> (e - 2)), as kh_size_class in
 * kh_class.c. Clobbers rcx (the shift count) and flags. */
.macro LARGE_CLASS n, cls, cls64
	leal	KH_T_BIAS-(1<<KH_GRANULE_LOG2)(\n), \cls
	shrl	$KH_GRANULE_LOG2, \cls	/* u - 1 = g - 2 */
	bsrl	\cls, %ecx		/* e: its highest bit */
	subl	$2, %ecx
	shrl	%cl, \cls		/* (u - 1) >> (e - 2): 4..7 */
	leal	8-KH_CLASS_BIAS(\cls64,%rcx,4), \cls
.endm

KH_FUNC(kh_size_class)
	cmpq	$KH_CLASS_TABLE_PAYLOAD, %rdi
	ja	.Lsc_large
	leal	KH_T_BIAS(%rdi), %eax	/* 32 bits suffice */
	shrl	$KH_GRANULE_LOG2, %eax	/* t = g - 1 */
	leaq	.Lca_class4(%rip), %rdx
	movzbl	(%rdx,%rax), %eax
	shrl	$2, %eax		/* the table holds 4 * class */
	ret
.Lsc_large:
	cmpq	$KH_CLASS_MAX_PAYLOAD, %rdi
	ja	.Lsc_huge
	LARGE_CLASS %rdi, %eax, %rax
	ret
.Lsc_huge:
	movl	$KH_NCLASSES, %eax
	ret
KH_END(kh_size_class)

KH_FUNC(kh_cpu_pop)
	movq	KH_CLASS_HEAD(%rdi), %rax		/* p = head */
	testq	%rax, %rax
	jz	.Lcpop_out		/* empty: return NULL */
	xorq	%rax, %rdx
	cmpq	KH_TOKEN_OFF(%rax), %rdx		/* token == p ^ tkey? */
	jne	.Lcpop_bad
	xorq	%rax, %rsi
	xorq	KH_LINK_OFF(%rax), %rsi		/* next = link ^ p ^ key */
	testb	$KH_GRANULE_MASK, %sil
	jnz	.Lcpop_bad
	movq	%rsi, KH_CLASS_HEAD(%rdi)
	subl	$1, KH_CLASS_COUNT(%rdi)
	movq	$0, KH_TOKEN_OFF(%rax)		/* clear the token */
.Lcpop_out:
	ret
.Lcpop_bad:
	movl	$KH_CLASS_BAD_VALUE, %eax /* list untouched */
	ret
KH_END(kh_cpu_pop)

KH_FUNC(kh_cpu_push)
	movl	KH_CLASS_COUNT(%rdi), %eax
	cmpl	KH_CLASS_LIMIT(%rdi), %eax		/* unsigned: count >= limit refuses */
	jae	.Lcpush_full
	xorq	KH_CLASS_HEAD(%rdi), %rdx
	xorq	%rsi, %rdx		/* link = head ^ p ^ key */
	xorq	%rsi, %rcx		/* token = p ^ tkey */
	movq	%rdx, KH_LINK_OFF(%rsi)
	movq	%rcx, KH_TOKEN_OFF(%rsi)
	movq	%rsi, KH_CLASS_HEAD(%rdi)
	addl	$1, KH_CLASS_COUNT(%rdi)
	movl	$1, %eax
	ret
.Lcpush_full:
	xorl	%eax, %eax
	ret
KH_END(kh_cpu_push)

/*
 * The fused fast path. A hit is one straight run to the first ret: 30
 * instructions for alloc (32 when the link decodes to 0), 47 for free,
 * ret included. Every refusal jumps out of line and writes nothing; the
 * C twin's relaxed atomics are the plain aligned moves below.
 */
	.hidden	kh_cpu_alloc
KH_FUNC(kh_cpu_alloc)
	cmpq	$KH_CLASS_TABLE_PAYLOAD, %rsi
	ja	.Lca_large
	leal	KH_T_BIAS(%rsi), %ecx	/* 32 bits suffice */
	shrl	$KH_GRANULE_LOG2, %ecx	/* t = g - 1 */
	leaq	.Lca_class4(%rip), %rax
	movzbl	(%rax,%rcx), %ecx	/* 4c: cls[c] is at KH_CPU_CLS + 4 * ecx */
.Lca_class:
	cmpl	$0, KH_CPU_DRAIN(%rdi)
	jne	.Lca_none
	movq	KH_CPU_CLS+KH_CLASS_HEAD(%rdi,%rcx,4), %rax /* p = head */
	testq	%rax, %rax
	jz	.Lca_out		/* empty: return NULL */
	movq	KH_CPU_TKEY(%rdi), %rdx
	xorq	%rax, %rdx
	cmpq	KH_TOKEN_OFF(%rax), %rdx		/* token == p ^ tkey? */
	jne	.Lca_none
	movq	KH_CPU_KEY(%rdi), %rdx
	xorq	%rax, %rdx
	xorq	KH_LINK_OFF(%rax), %rdx		/* next = link ^ p ^ key */
	testb	$KH_GRANULE_MASK, %dl
	jnz	.Lca_none
	leaq	-KH_HDR_BYTES(%rdx), %r8 /* next's block */
	cmpq	KH_CPU_LO(%rdi), %r8
	jb	.Lca_edge		/* below lo, or next == 0 */
	cmpq	KH_CPU_HI(%rdi), %r8
	jae	.Lca_edge		/* at or above hi */
.Lca_take:
	movq	%rdx, KH_CPU_CLS+KH_CLASS_HEAD(%rdi,%rcx,4) /* head = next */
	subl	$1, KH_CPU_CLS+KH_CLASS_COUNT(%rdi,%rcx,4)
	movq	$0, KH_TOKEN_OFF(%rax)		/* clear the token */
	addq	$1, KH_CPU_ALLOCS(%rdi)
.Lca_out:
	ret
.Lca_edge:
	testq	%rdx, %rdx		/* the last block's link decodes to 0 */
	jz	.Lca_take
.Lca_none:
	xorl	%eax, %eax
	ret
.Lca_large:				/* above the table: the class computed */
	cmpq	$KH_CLASS_MAX_PAYLOAD, %rsi
	ja	.Lca_none
	LARGE_CLASS %rsi, %edx, %rdx
	leal	(,%rdx,4), %ecx		/* 4c */
	jmp	.Lca_class
KH_END(kh_cpu_alloc)

/* Header checks in three steps: the cookie, over bits 0..45 (body); then
 * the body, PREV_FREE cleared, minus 1 and rotated right by 4, which is the
 * block's granule count g = size / 16 when the flags are USED alone and the
 * alignment 0, and above 2^36 otherwise; then g through a table that knows
 * the class sizes. */
	.hidden	kh_cpu_free
KH_FUNC(kh_cpu_free)
	testb	$KH_GRANULE_MASK, %sil
	jnz	.Lcf_no
	leaq	-KH_HDR_BYTES(%rsi), %rcx /* b = p - 8 */
	cmpq	KH_CPU_LO(%rdi), %rcx
	jb	.Lcf_no			/* b below lo: read nothing */
	cmpq	KH_CPU_HI(%rdi), %rcx
	jae	.Lcf_no			/* b at or above hi: read nothing */
	movq	(%rcx), %rax		/* h */
	movq	%rax, %rdx
	shlq	$64-KH_COOKIE_SHIFT, %rdx
	shrq	$64-KH_COOKIE_SHIFT, %rdx /* body = h below the cookie */
	xorq	KH_CPU_KEY(%rdi), %rcx
	xorq	%rdx, %rcx		/* body ^ b ^ key */
	imulq	.Lcf_mul(%rip), %rcx
	xorq	%rax, %rcx
	shrq	$KH_COOKIE_SHIFT, %rcx	/* the product's top bits == h's cookie? */
	jnz	.Lcf_no
	andq	$~(1 << KH_PREV_FREE_BIT), %rdx /* PREV_FREE may be either */
	subq	$1 << KH_USED_BIT, %rdx	/* USED alone: low 4 bits 0, else nonzero */
	rorq	$KH_SIZE_SHIFT, %rdx	/* g | alignment << 36 | stray flags << 60 */
	cmpq	$KH_CLASS_TABLE_BLOCK >> KH_GRANULE_LOG2, %rdx
	ja	.Lcf_large
	leaq	.Lcf_class4(%rip), %rax
	movsbq	(%rax,%rdx), %rax	/* 4 * class, -1 when g is no class size */
	testq	%rax, %rax
	js	.Lcf_no
.Lcf_class:
	movq	KH_CPU_KEY(%rdi), %rcx
	xorq	%rsi, %rcx		/* p ^ key */
	movq	KH_TOKEN_OFF(%rsi), %rdx
	xorq	%rcx, %rdx		/* token ^ p ^ key = ~CPU when it names one */
	cmpq	$-KH_TOKEN_CPUS, %rdx	/* ~w < KH_TOKEN_CPUS iff w >= -KH_TOKEN_CPUS */
	jae	.Lcf_no
	movl	KH_CPU_CLS+KH_CLASS_COUNT(%rdi,%rax,4), %r8d
	cmpl	KH_CPU_CLS+KH_CLASS_LIMIT(%rdi,%rax,4), %r8d /* unsigned: count >= limit: busy */
	jae	.Lcf_busy
	cmpl	$0, KH_CPU_DRAIN(%rdi)	/* drain: busy */
	jne	.Lcf_busy
	xorq	KH_CPU_CLS+KH_CLASS_HEAD(%rdi,%rax,4), %rcx /* link = head ^ p ^ key */
	movq	%rcx, KH_LINK_OFF(%rsi)
	movq	KH_CPU_TKEY(%rdi), %rdx
	xorq	%rsi, %rdx
	movq	%rdx, KH_TOKEN_OFF(%rsi)		/* token = p ^ tkey */
	movq	%rsi, KH_CPU_CLS+KH_CLASS_HEAD(%rdi,%rax,4) /* head = p */
	addl	$1, KH_CPU_CLS+KH_CLASS_COUNT(%rdi,%rax,4)
	addq	$1, KH_CPU_FREES(%rdi)
	movl	$1, %eax
	ret
.Lcf_no:
	xorl	%eax, %eax
	ret
.Lcf_busy:
	movl	$2, %eax		/* ours, but the slow path must drain first */
	ret
.Lcf_large:				/* above the table: a class size iff u = g - 1 */
	cmpq	$KH_CLASS_MAX_BLOCK >> KH_GRANULE_LOG2, %rdx /* is a multiple of */
	ja	.Lcf_no			/* 2^(e-2), e the highest bit of u - 1 */
	leal	-2(%rdx), %eax		/* u - 1 */
	bsrl	%eax, %ecx		/* e */
	subl	$2, %ecx
	leal	-1(%rdx), %r8d		/* u */
	shrl	%cl, %r8d
	shll	%cl, %r8d		/* u rounded down to a multiple of 2^(e-2) */
	addl	$1, %r8d
	cmpl	%edx, %r8d		/* plus one granule: g again? */
	jne	.Lcf_no
	shrl	%cl, %eax		/* (u - 1) >> (e - 2): 4..7 */
	leal	(%rax,%rcx,4), %eax	/* class - (8 - KH_CLASS_BIAS) */
	leal	4*(8-KH_CLASS_BIAS)(,%rax,4), %eax /* 4 * class */
	jmp	.Lcf_class
KH_END(kh_cpu_free)

	.section .rodata
	.p2align 3
.Lcf_mul:
	.quad	KH_COOKIE_MUL
/* t = (n + KH_T_BIAS) >> KH_GRANULE_LOG2 -> 4 * kh_size_class(n), for
 * n <= KH_CLASS_TABLE_PAYLOAD: class c serves every t from the previous
 * class's granule count up to its own minus one. */
.Lca_class4:
	.set	.Lc, 0
	.set	.Lprev, 0
	.irp	g, KH_CLASS_GRANULES_TABLE
	.fill	\g - .Lprev, 1, 4 * .Lc
	.set	.Lprev, \g
	.set	.Lc, .Lc + 1
	.endr
/* g = block size / 16 -> 4 * class of that block size, or -1 when the size
 * is no class size (block_class in kh_class.c), for g <= 64
 * (KH_CLASS_TABLE_BLOCK). */
.Lcf_class4:
	.set	.Lc, 0
	.set	.Lprev, -1
	.irp	g, KH_CLASS_GRANULES_TABLE
	.fill	\g - .Lprev - 1, 1, 0xff
	.byte	4 * .Lc
	.set	.Lprev, \g
	.set	.Lc, .Lc + 1
	.endr

KH_NOEXEC_STACK
