/*
 * kh_class.S: arm64 twin of src/heap/kh_class.c; the contract is in
 * kh_class.h, every layout number in kh_layout.h. AAPCS64; leaf functions, no stack use, plain ARMv8.0.
 *
 * kh_size_class   in: x0 = n.  out: w0 = class (KH_NCLASSES when
 *                 n > KH_CLASS_MAX_PAYLOAD).  clobbers: x1, x2, flags.
 * kh_cpu_pop      in: x0 = c, x1 = key, x2 = tkey.  out: x0 = payload
 *                 pointer, 0 when empty, 1 (KH_CLASS_BAD) on a wrong token
 *                 or a misaligned link.  clobbers: x1-x4, flags.
 * kh_cpu_push     in: x0 = c, x1 = p, x2 = key, x3 = tkey.  out: w0 = 1 when
 *                 pushed, 0 when count >= limit.  clobbers: x2-x5, flags.
 * kh_cpu_alloc    in: x0 = cpu, x1 = n.  out: x0 = payload pointer, or 0 when
 *                 n > KH_CLASS_MAX_PAYLOAD, drain is set, the list is empty,
 *                 the token is wrong or the link bad (nothing written).
 *                 clobbers: x2-x10, flags.
 * kh_cpu_free     in: x0 = cpu, x1 = p.  out: w0 = 1 when pushed; 2 when p is
 *                 a plain class block but drain is set or the list full,
 *                 0 when it is not one (nothing written for either).
 *                 clobbers: x2-x10, flags.
 * Every other register, x1 included, survives kh_cpu_alloc and kh_cpu_free:
 * kh_arch.h's kh_call_cpu_alloc/free tell the compiler only these clobbers
 * (and x16, x17, x30, which a BL and a linker veneer may write), and
 * tests/host/t_diff.c checks them. Both are .hidden, so that no call to
 * them goes through a PLT.
 *
 * State assumed: kh_cpu_* run on the CPU that owns the list (the shared
 * slot: the lock holder), with interrupts masked (aligned loads and stores of
 * 4 and 8 bytes are single-copy atomic, which is all that another CPU
 * reading the count or a token needs). No atomics, no barriers; the IRQ
 * state is whatever the caller set. Unlike the C, the class lookups up to
 * KH_CLASS_TABLE_BLOCK go through two tables that the assembler generates
 * from kh_layout.h's KH_CLASS_GRANULES_TABLE, kept with the multiplier
 * after the routines that use them, as a literal pool would be, so that one
 * ADR or LDR (literal) reaches them. Larger classes (four per power of two)
 * are computed out of line from the highest bit of u - 1 (kh_layout.h), as
 * the C does. Every other number here is a kh_layout.h name too.
 */
#include "kh_asm.h"
#include "kh_layout.h"

/* \cls = the class of a request of \n bytes (32-bit registers, \t a
 * scratch one), for KH_CLASS_TABLE_PAYLOAD < n <= KH_CLASS_MAX_PAYLOAD:
 * with u - 1 = g - 2 and e its highest bit,
 * 4 * e - KH_CLASS_BIAS + ((u - 1) >> (e - 2)), as kh_size_class in
 * kh_class.c. \cls may be \n. */
.macro LARGE_CLASS cls, n, t
	sub	\cls, \n, #(1 << KH_GRANULE_LOG2) - KH_T_BIAS
	lsr	\cls, \cls, #KH_GRANULE_LOG2 // u - 1 = g - 2
	clz	\t, \cls		// 31 - e, e its highest bit
	sub	\t, \t, #29
	neg	\t, \t			// e - 2
	lsr	\cls, \cls, \t		// (u - 1) >> (e - 2): 4..7
	add	\cls, \cls, \t, lsl #2
	add	\cls, \cls, #8 - KH_CLASS_BIAS
.endm

KH_FUNC(kh_size_class)
	cmp	x0, #KH_CLASS_TABLE_PAYLOAD
	b.hi	.Lsc_large
	add	w1, w0, #KH_T_BIAS	// 32 bits suffice
	lsr	w1, w1, #KH_GRANULE_LOG2 // t = g - 1
	adr	x2, .Lca_class
	ldrb	w0, [x2, w1, uxtw]
	ret
.Lsc_large:
	movz	w1, #KH_CLASS_MAX_PAYLOAD & 0xffff
	movk	w1, #KH_CLASS_MAX_PAYLOAD >> 16, lsl #16
	cmp	x0, x1
	b.hi	.Lsc_huge
	LARGE_CLASS w0, w0, w2
	ret
.Lsc_huge:
	mov	w0, #KH_NCLASSES
	ret
KH_END(kh_size_class)

KH_FUNC(kh_cpu_pop)
	ldr	x3, [x0, #KH_CLASS_HEAD]		// p = head
	cbz	x3, .Lcpop_out		// empty: return NULL
	ldp	x4, x5, [x3, #KH_LINK_OFF]		// link, token
	eor	x2, x2, x3
	cmp	x5, x2			// token == p ^ tkey?
	b.ne	.Lcpop_bad
	eor	x4, x4, x3
	eor	x4, x4, x1		// next = link ^ p ^ key
	tst	x4, #KH_GRANULE_MASK
	b.ne	.Lcpop_bad
	ldr	w1, [x0, #KH_CLASS_COUNT]
	sub	w1, w1, #1
	str	x4, [x0, #KH_CLASS_HEAD]
	str	w1, [x0, #KH_CLASS_COUNT]
	str	xzr, [x3, #KH_TOKEN_OFF]		// clear the token
.Lcpop_out:
	mov	x0, x3
	ret
.Lcpop_bad:
	mov	x0, #KH_CLASS_BAD_VALUE	// list untouched
	ret
KH_END(kh_cpu_pop)

KH_FUNC(kh_cpu_push)
	ldp	w4, w5, [x0, #KH_CLASS_COUNT]	// count, limit
	cmp	w4, w5			// unsigned: count >= limit refuses
	b.hs	.Lcpush_full
	ldr	x5, [x0, #KH_CLASS_HEAD]
	eor	x5, x5, x1
	eor	x5, x5, x2		// link = head ^ p ^ key
	eor	x3, x3, x1		// token = p ^ tkey
	stp	x5, x3, [x1, #KH_LINK_OFF]
	add	w4, w4, #1
	str	x1, [x0, #KH_CLASS_HEAD]
	str	w4, [x0, #KH_CLASS_COUNT]
	mov	w0, #1
	ret
.Lcpush_full:
	mov	w0, #0
	ret
KH_END(kh_cpu_push)

/*
 * The fused fast path. A hit is one straight run to the first ret: 32
 * instructions for alloc (35 when the link decodes to 0), 47 for free,
 * ret included. Every refusal branches out of line and writes nothing;
 * the C twin's relaxed atomics are the plain aligned loads and stores
 * below. Conditional compares fold several checks into one branch;
 * the out-of-line path sorts out the one case among them that is a hit.
 */
	.hidden	kh_cpu_alloc
KH_FUNC(kh_cpu_alloc)
	cmp	x1, #KH_CLASS_TABLE_PAYLOAD
	b.hi	.Lca_large
	ldr	w4, [x0, #KH_CPU_DRAIN]
	add	w9, w1, #KH_T_BIAS	// 32 bits suffice
	lsr	w9, w9, #KH_GRANULE_LOG2 // t = g - 1
	adr	x2, .Lca_class
	ldrb	w2, [x2, w9, uxtw]	// c
.Lca_known:
	add	x2, x0, x2, lsl #KH_CLASS_SIZE_LOG2 // &cls[c] - KH_CPU_CLS
	cbnz	w4, .Lca_none
	ldp	x3, x4, [x2, #KH_CPU_CLS + KH_CLASS_HEAD] // p = head; count in w4 (limit above it)
	cbz	x3, .Lca_none		// empty: return NULL
	ldp	x5, x6, [x0, #KH_CPU_KEY] // key, tkey
	ldp	x7, x8, [x3, #KH_LINK_OFF] // link, token
	ldp	x9, x10, [x0, #KH_CPU_LO] // lo, hi
	eor	x6, x6, x3		// p ^ tkey
	eor	x7, x7, x3
	eor	x7, x7, x5		// next = link ^ p ^ key
	sub	x5, x7, #KH_HDR_BYTES	// next's block
	tst	x7, #KH_GRANULE_MASK
	ccmp	x8, x6, #0, eq		// aligned: token == p ^ tkey? else ne
	ccmp	x5, x9, #0, eq		// and block >= lo (hs)? else lo
	ccmp	x5, x10, #2, hs		// and block < hi (lo)? else hs
	b.hs	.Lca_edge
.Lca_take:
	ldr	x5, [x0, #KH_CPU_ALLOCS]
	sub	w4, w4, #1
	add	x5, x5, #1
	str	x7, [x2, #KH_CPU_CLS + KH_CLASS_HEAD] // head = next
	str	w4, [x2, #KH_CPU_CLS + KH_CLASS_COUNT] // count -= 1
	str	xzr, [x3, #KH_TOKEN_OFF] // clear the token
	str	x5, [x0, #KH_CPU_ALLOCS] // allocs += 1
	mov	x0, x3
	ret
.Lca_edge:				// the last block's link decodes to 0
	cbnz	x7, .Lca_none		// which is aligned: only the token can fail
	cmp	x8, x6
	b.eq	.Lca_take
.Lca_none:
	mov	x0, #0
	ret
.Lca_large:				// above the table: the class computed
	movz	w9, #KH_CLASS_MAX_PAYLOAD & 0xffff
	movk	w9, #KH_CLASS_MAX_PAYLOAD >> 16, lsl #16
	cmp	x1, x9
	b.hi	.Lca_none
	ldr	w4, [x0, #KH_CPU_DRAIN]
	LARGE_CLASS w2, w1, w3		// c
	b	.Lca_known
KH_END(kh_cpu_alloc)

/* t = (n + KH_T_BIAS) >> KH_GRANULE_LOG2 -> kh_size_class(n), for
 * n <= KH_CLASS_TABLE_PAYLOAD: class c serves every t from the previous
 * class's granule count up to its own minus one. */
.Lca_class:
	.set	.Lc, 0
	.set	.Lprev, 0
	.irp	g, KH_CLASS_GRANULES_TABLE
	.fill	\g - .Lprev, 1, .Lc
	.set	.Lprev, \g
	.set	.Lc, .Lc + 1
	.endr

	.hidden	kh_cpu_free
KH_FUNC(kh_cpu_free)
	ldp	x4, x5, [x0, #KH_CPU_LO] // lo, hi
	sub	x3, x1, #KH_HDR_BYTES	// b = p - 8
	tst	x1, #KH_GRANULE_MASK
	ccmp	x3, x4, #0, eq		// aligned: b >= lo (hs)? else lo
	ccmp	x3, x5, #2, hs		// and b < hi (lo)? else hs
	b.hs	.Lcf_no			// read nothing
	ldur	x6, [x1, #-KH_HDR_BYTES] // h
	ldp	x7, x8, [x0, #KH_CPU_KEY] // key, tkey
	ldr	x9, .Lcf_mul
	and	x10, x6, #(1 << KH_COOKIE_SHIFT) - 1 // body = h below the cookie
	eor	x3, x3, x7
	eor	x3, x3, x10		// body ^ b ^ key
	mul	x3, x3, x9		// low 64 bits of the product
	eor	x3, x3, x6
	tst	x3, #-(1 << KH_COOKIE_SHIFT) // the product's top bits == h's cookie?
	b.ne	.Lcf_no
	tbz	x6, #KH_USED_BIT, .Lcf_no
	ubfx	x10, x6, #KH_CACHED_BIT, #KH_COOKIE_SHIFT - KH_CACHED_BIT // CACHED, zero bit, size, alignment
	ror	x10, x10, #KH_SIZE_SHIFT - KH_CACHED_BIT // g | alignment << 36 | stray flags << 62
	cmp	x10, #KH_CLASS_TABLE_BLOCK >> KH_GRANULE_LOG2
	b.hi	.Lcf_large
	adr	x9, .Lcf_class
	ldrb	w9, [x9, x10]		// class, 0xff when g is no class size
	tbnz	w9, #7, .Lcf_no
.Lcf_known:
	add	x2, x0, x9, lsl #KH_CLASS_SIZE_LOG2 // &cls[c] - KH_CPU_CLS
	ldr	x10, [x1, #KH_TOKEN_OFF]
	eor	x7, x7, x1		// p ^ key
	eor	x10, x10, x7		// token ^ p ^ key = ~CPU when it names one
	cmn	x10, #KH_TOKEN_CPUS	// ~w < KH_TOKEN_CPUS iff w + KH_TOKEN_CPUS carries
	b.hs	.Lcf_no
	ldr	x4, [x2, #KH_CPU_CLS + KH_CLASS_HEAD]
	ldp	w5, w6, [x2, #KH_CPU_CLS + KH_CLASS_COUNT] // count, limit
	ldr	w3, [x0, #KH_CPU_DRAIN]
	cmp	w5, w6			// unsigned: count < limit?
	ccmp	w3, #0, #0, lo		// and drain clear? else ne
	b.ne	.Lcf_busy
	eor	x4, x4, x7		// link = head ^ p ^ key
	eor	x8, x8, x1		// token = p ^ tkey
	stp	x4, x8, [x1, #KH_LINK_OFF]
	add	w5, w5, #1
	str	x1, [x2, #KH_CPU_CLS + KH_CLASS_HEAD] // head = p
	str	w5, [x2, #KH_CPU_CLS + KH_CLASS_COUNT] // count += 1
	ldr	x9, [x0, #KH_CPU_FREES]
	add	x9, x9, #1
	str	x9, [x0, #KH_CPU_FREES] // frees += 1
	mov	w0, #1
	ret
.Lcf_no:
	mov	w0, #0
	ret
.Lcf_busy:
	mov	w0, #2			// ours, but the slow path must drain first
	ret
.Lcf_large:				// above the table: a class size iff u = g - 1
	mov	w9, #KH_CLASS_MAX_BLOCK >> KH_GRANULE_LOG2 // is a multiple of 2^(e-2),
	cmp	x10, x9			// e the highest bit of u - 1
	b.hi	.Lcf_no
	sub	w9, w10, #2		// u - 1
	clz	w3, w9
	mov	w4, #29
	sub	w3, w4, w3		// e - 2
	sub	w5, w10, #1		// u
	lsr	w4, w5, w3
	lsl	w4, w4, w3		// u rounded down to a multiple of 2^(e-2)
	cmp	w4, w5
	b.ne	.Lcf_no
	lsr	w9, w9, w3		// (u - 1) >> (e - 2): 4..7
	add	w9, w9, w3, lsl #2
	add	w9, w9, #8 - KH_CLASS_BIAS // c
	b	.Lcf_known
KH_END(kh_cpu_free)

	.p2align 3
.Lcf_mul:
	.quad	KH_COOKIE_MUL
/* g = block size / 16 -> class of that block size, or 0xff when the size
 * is no class size (block_class in kh_class.c), for g <= 64
 * (KH_CLASS_TABLE_BLOCK). */
.Lcf_class:
	.set	.Lc, 0
	.set	.Lprev, -1
	.irp	g, KH_CLASS_GRANULES_TABLE
	.fill	\g - .Lprev - 1, 1, 0xff
	.byte	.Lc
	.set	.Lprev, \g
	.set	.Lc, .Lc + 1
	.endr

KH_NOEXEC_STACK
