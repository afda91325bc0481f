/*
 * kh_class.S: arm64 twin of src/heap/kh_class.c; the contract and the
 * struct kh_class layout (head at 0, count at 8, limit at 12) are in
 * kh_class.h. AAPCS64; leaf functions, no stack use, plain ARMv8.0.
 *
 * kh_size_class   in: x0 = n.  out: w0 = class (KH_NCLASSES when
 *                 n > KH_CLASS_MAX_PAYLOAD).  clobbers: x1-x3, flags.
 * kh_class_pop    in: x0 = c, x1 = key.  out: x0 = payload pointer, 0 when
 *                 empty, 1 (KH_CLASS_BAD) on a misaligned link.
 *                 clobbers: x1-x3, flags.
 * kh_class_push   in: x0 = c, x1 = p, x2 = key.  out: w0 = 1 when pushed,
 *                 0 when count >= limit.  clobbers: x2-x4, flags.
 * kh_cpu_pop      in: x0 = c, x1 = key, x2 = tkey.  out: x0 = payload
 *                 pointer, 0 when empty, 1 (KH_CLASS_BAD) on a wrong token
 *                 or a misaligned link.  clobbers: x1-x4, flags.
 * kh_cpu_push     in: x0 = c, x1 = p, x2 = key, x3 = tkey.  out: w0 = 1 when
 *                 pushed, 0 when count >= limit.  clobbers: x2-x5, flags.
 * kh_cpu_alloc    in: x0 = cpu, x1 = n.  out: x0 = payload pointer, or 0 when
 *                 n > KH_CLASS_MAX_PAYLOAD, drain is set, the list is empty,
 *                 the token is wrong or the link bad (nothing written).
 *                 clobbers: x1-x10, flags.
 * kh_cpu_free     in: x0 = cpu, x1 = p.  out: w0 = 1 when pushed; 2 when p is
 *                 a plain class block but drain is set or the list full,
 *                 0 when it is not one (nothing written for either).
 *                 clobbers: x2-x13, flags.
 *
 * State assumed: kh_class_* run under the heap lock; kh_cpu_* on the CPU
 * that owns the list, with interrupts masked (aligned loads and stores of
 * 4 and 8 bytes are single-copy atomic, which is all that another CPU
 * reading the count or a token needs). No atomics, no barriers; the IRQ
 * state is whatever the caller set. Unlike the C, kh_size_class
 * uses the granule count g - 1 = (n + 7) / 16 and picks between the two
 * powers of two with a conditional select; the classes are the same.
 * kh_cpu_alloc and kh_cpu_free look the class up in a table instead, kept
 * with their multiplier after each routine, as a literal pool would be, so
 * that one ADR or LDR (literal) reaches it.
 */
#include "kh_asm.h"

KH_FUNC(kh_size_class)
	cmp	x0, #1016		// KH_CLASS_MAX_PAYLOAD
	b.hi	.Lsc_huge
	add	w1, w0, #7		// n <= 1016: 32 bits suffice
	lsr	w1, w1, #4		// g - 1, 0..63
	cmp	w1, #15
	b.hi	.Lsc_log
	subs	w0, w1, #1		// g - 2; borrows (lo) only when g - 1 == 0
	cinc	w0, w0, lo		// ...and then lands on class 0
	ret
.Lsc_log:				// g - 1 in 16..63: four classes per power of two
	lsr	w2, w1, #2
	add	w0, w2, #11		// g - 1 < 32: 11 + (g - 1) / 4, classes 15..18
	lsr	w3, w1, #3
	add	w3, w3, #15		// g - 1 >= 32: 15 + (g - 1) / 8, classes 19..22
	cmp	w1, #32
	csel	w0, w0, w3, lo
	ret
.Lsc_huge:
	mov	w0, #23			// KH_NCLASSES
	ret
KH_END(kh_size_class)

KH_FUNC(kh_class_pop)
	ldr	x2, [x0]		// p = head
	cbz	x2, .Lpop_out		// empty: return NULL
	ldr	x3, [x2]
	eor	x3, x3, x2
	eor	x3, x3, x1		// next = link ^ p ^ key
	tst	x3, #15
	b.ne	.Lpop_bad
	ldr	w1, [x0, #8]
	sub	w1, w1, #1
	str	x3, [x0]
	str	w1, [x0, #8]
.Lpop_out:
	mov	x0, x2
	ret
.Lpop_bad:
	mov	x0, #1			// KH_CLASS_BAD, list untouched
	ret
KH_END(kh_class_pop)

KH_FUNC(kh_class_push)
	ldp	w3, w4, [x0, #8]	// count, limit
	cmp	w3, w4			// unsigned: count >= limit refuses
	b.hs	.Lpush_full
	ldr	x4, [x0]
	eor	x4, x4, x1
	eor	x4, x4, x2		// link = head ^ p ^ key
	str	x4, [x1]
	add	w3, w3, #1
	str	x1, [x0]
	str	w3, [x0, #8]
	mov	w0, #1
	ret
.Lpush_full:
	mov	w0, #0
	ret
KH_END(kh_class_push)

KH_FUNC(kh_cpu_pop)
	ldr	x3, [x0]		// p = head
	cbz	x3, .Lcpop_out		// empty: return NULL
	ldp	x4, x5, [x3]		// link, token
	eor	x2, x2, x3
	cmp	x5, x2			// token == p ^ tkey?
	b.ne	.Lcpop_bad
	eor	x4, x4, x3
	eor	x4, x4, x1		// next = link ^ p ^ key
	tst	x4, #15
	b.ne	.Lcpop_bad
	ldr	w1, [x0, #8]
	sub	w1, w1, #1
	str	x4, [x0]
	str	w1, [x0, #8]
	str	xzr, [x3, #8]		// clear the token
.Lcpop_out:
	mov	x0, x3
	ret
.Lcpop_bad:
	mov	x0, #1			// KH_CLASS_BAD, list untouched
	ret
KH_END(kh_cpu_pop)

KH_FUNC(kh_cpu_push)
	ldp	w4, w5, [x0, #8]	// count, limit
	cmp	w4, w5			// unsigned: count >= limit refuses
	b.hs	.Lcpush_full
	ldr	x5, [x0]
	eor	x5, x5, x1
	eor	x5, x5, x2		// link = head ^ p ^ key
	eor	x3, x3, x1		// token = p ^ tkey
	stp	x5, x3, [x1]
	add	w4, w4, #1
	str	x1, [x0]
	str	w4, [x0, #8]
	mov	w0, #1
	ret
.Lcpush_full:
	mov	w0, #0
	ret
KH_END(kh_cpu_push)

/*
 * The fused fast path. A hit is one straight run to the first ret: 33
 * instructions for alloc (36 when the link decodes to 0), 48 for free,
 * ret included. Every refusal branches out of line and writes nothing;
 * the C twin's relaxed atomics are the plain aligned loads and stores
 * below. Conditional compares fold several checks into one branch;
 * the out-of-line path sorts out the one case among them that is a hit.
 */
KH_FUNC(kh_cpu_alloc)
	cmp	x1, #1016		// KH_CLASS_MAX_PAYLOAD
	b.hi	.Lca_none
	ldr	w4, [x0, #48]		// drain
	add	w1, w1, #7		// n <= 1016: 32 bits suffice
	lsr	w1, w1, #4		// t = g - 1 = (n + 7) / 16, 0..63
	adr	x2, .Lca_class
	ldrb	w2, [x2, w1, uxtw]	// c
	add	x2, x0, x2, lsl #4	// &cls[c] - 64
	cbnz	w4, .Lca_none
	ldp	x3, x4, [x2, #64]	// p = head; count in w4 (limit above it)
	cbz	x3, .Lca_none		// empty: return NULL
	ldp	x5, x6, [x0]		// key, tkey
	ldp	x7, x8, [x3]		// link, token
	ldp	x9, x10, [x0, #16]	// lo, hi
	eor	x6, x6, x3		// p ^ tkey
	eor	x7, x7, x3
	eor	x7, x7, x5		// next = link ^ p ^ key
	sub	x5, x7, #8
	sub	x5, x5, x9		// next - 8 - lo
	sub	x10, x10, x9		// hi - lo: unsigned, as the C compares
	tst	x7, #15
	ccmp	x8, x6, #0, eq		// aligned: token == p ^ tkey? else ne
	ccmp	x5, x10, #2, eq		// and next in [lo, hi)? else hs
	b.hs	.Lca_edge
.Lca_take:
	ldr	x5, [x0, #32]		// allocs
	sub	w4, w4, #1
	add	x5, x5, #1
	str	x7, [x2, #64]		// head = next
	str	w4, [x2, #72]		// count -= 1
	str	xzr, [x3, #8]		// clear the token
	str	x5, [x0, #32]		// allocs += 1
	mov	x0, x3
	ret
.Lca_edge:				// the last block's link decodes to 0
	cbnz	x7, .Lca_none		// which is aligned: only the token can fail
	cmp	x8, x6
	b.eq	.Lca_take
.Lca_none:
	mov	x0, #0
	ret
KH_END(kh_cpu_alloc)

/* t = (n + 7) / 16 -> kh_size_class(n), for n <= 1016. */
.Lca_class:
	.byte	0			// t = 0: n <= 8
	.irp	c, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
	.byte	\c			// t = 1..15: blocks of 32..256, c = t - 1
	.endr
	.irp	c, 15,16,17,18
	.fill	4, 1, \c		// t = 16..31: 320..512, four t per class
	.endr
	.irp	c, 19,20,21,22
	.fill	8, 1, \c		// t = 32..63: 640..1024, eight t per class
	.endr

/* Header checks: the cookie over bits 0..45 (body); USED; then bits 2..45
 * rotated right by 2, which is the block's granule count g = size / 16
 * when CACHED, the zero bit and the alignment are clear, and above 2^36
 * otherwise; then g through a table that knows the class sizes. */
KH_FUNC(kh_cpu_free)
	ldp	x4, x5, [x0, #16]	// lo, hi
	sub	x3, x1, #8		// b = p - 8
	sub	x6, x3, x4		// b - lo
	sub	x5, x5, x4		// hi - lo
	tst	x1, #15
	ccmp	x6, x5, #2, eq		// aligned: b in [lo, hi)? else hs
	b.hs	.Lcf_no			// read nothing
	ldur	x6, [x1, #-8]		// h
	ldp	x7, x8, [x0]		// key, tkey
	ldr	x9, .Lcf_mul		// KH_FAST_COOKIE_MUL
	and	x10, x6, #0x3fffffffffff // body = h & (2^46 - 1)
	eor	x3, x3, x7
	eor	x3, x3, x10		// body ^ b ^ key
	mul	x3, x3, x9		// low 64 bits of the product
	eor	x3, x3, x6
	tst	x3, #0xffffc00000000000	// KH_FAST_COOKIE_SHIFT: top 18 bits == h's cookie?
	b.ne	.Lcf_no
	tbz	x6, #0, .Lcf_no		// USED
	ubfx	x10, x6, #2, #44	// CACHED, zero bit, size, alignment
	ror	x10, x10, #2		// g | alignment << 36 | stray flags << 62
	cmp	x10, #64		// KH_CLASS_MAX_BLOCK / 16
	b.hi	.Lcf_no
	adr	x9, .Lcf_class
	ldrb	w9, [x9, x10]		// class, 0xff when g is no class size
	tbnz	w9, #7, .Lcf_no
	add	x2, x0, x9, lsl #4	// &cls[c] - 64
	ldr	x10, [x1, #8]		// token
	eor	x7, x7, x1		// p ^ key
	eor	x10, x10, x7		// token ^ p ^ key = ~CPU when it names one
	cmn	x10, #4096		// KH_FAST_TOKEN_CPUS: ~w < 4096 iff w + 4096 carries
	b.hs	.Lcf_no
	ldr	x11, [x2, #64]		// head
	ldp	w12, w13, [x2, #72]	// count, limit
	ldr	w3, [x0, #48]		// drain
	cmp	w12, w13		// unsigned: count < limit?
	ccmp	w3, #0, #0, lo		// and drain clear? else ne
	b.ne	.Lcf_busy
	eor	x11, x11, x7		// link = head ^ p ^ key
	eor	x8, x8, x1		// token = p ^ tkey
	stp	x11, x8, [x1]
	add	w12, w12, #1
	str	x1, [x2, #64]		// head = p
	str	w12, [x2, #72]		// count += 1
	ldr	x13, [x0, #40]
	add	x13, x13, #1
	str	x13, [x0, #40]		// frees += 1
	mov	w0, #1
	ret
.Lcf_no:
	mov	w0, #0
	ret
.Lcf_busy:
	mov	w0, #2			// ours, but the slow path must drain first
	ret
KH_END(kh_cpu_free)

	.p2align 3
.Lcf_mul:
	.quad	0x9e3779b97f4a7c15	// KH_FAST_COOKIE_MUL
/* g = block size / 16 -> class of that block size, or 0xff when the size is
 * no class size (block_class in kh_class.c), for g <= 64. */
.Lcf_class:
	.fill	2, 1, 0xff		// 0 and 16 bytes
	.irp	c, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14
	.byte	\c			// 32..256: every granule
	.endr
	.irp	c, 15,16,17,18
	.fill	3, 1, 0xff
	.byte	\c			// 320..512: every fourth
	.endr
	.irp	c, 19,20,21,22
	.fill	7, 1, 0xff
	.byte	\c			// 640..1024: every eighth
	.endr

KH_NOEXEC_STACK
