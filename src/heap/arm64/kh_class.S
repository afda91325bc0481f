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
 *
 * State assumed: kh_class_* run under the heap lock; kh_cpu_* on the CPU
 * that owns the list, with interrupts masked (aligned loads and stores of
 * 4 and 8 bytes are single-copy atomic, which is all that another CPU
 * reading the count or a token needs). No atomics, no barriers; the IRQ
 * state is whatever the caller set. Unlike the C, kh_size_class
 * uses the granule count g - 1 = (n + 7) / 16 and picks between the two
 * powers of two with a conditional select; the classes are the same.
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

KH_NOEXEC_STACK
