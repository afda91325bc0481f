/*
 * kh_lock.S: arm64 twin of src/heap/kh_lock.c; contract and layout in
 * kh_lock.h (next, serving, holder, patience: four words; waiting: a
 * doubleword). AAPCS64. Plain
 * ARMv8.0 (exclusives, no LSE atomics), so it runs on a Cortex-A53/A72.
 *
 * kh_lock_acquire  in: x0 = lock.  out: none.  clobbers: whatever the C
 *                  function kheap_cpu_id clobbers (caller-saved), x1-x4,
 *                  flags, the local exclusive monitor and event register;
 *                  and, once it waits, what kheap_spin_yield and
 *                  kh_lock_stuck clobber.
 * kh_lock_acquire_as  in: x0 = lock, w1 = holder tag.  out: none.
 *                  clobbers: x1-x4, flags, the local exclusive monitor and
 *                  event register; once it waits, what kheap_spin_yield and
 *                  kh_lock_stuck clobber.
 * kh_lock_release  in: x0 = lock.  out: none.  clobbers: x1, x2.
 *
 * State assumed: interrupts are left alone (the heap brackets the lock with
 * kheap_irq_save/restore). Ordering: the LDAR/LDAXR that observes
 * serving == my ticket is the acquire; the STLR of serving is the release,
 * and orders the holder's clearing before it. A waiter sleeps in WFE with
 * an exclusive monitor armed on serving: the holder's STLR to serving
 * clears that monitor, which wakes it. Uncontended: the kheap_cpu_id call,
 * the exclusive pair, one LDAR and compare, the holder store. The wait
 * (re-entry check, spin, yield, bound) is out of line.
 */
#include "kh_asm.h"
#include "kh_lock.h"

KH_FUNC(kh_lock_acquire)
	stp	x29, x30, [sp, #-32]!
	mov	x29, sp
	str	x0, [sp, #16]
	bl	kheap_cpu_id
	add	w1, w0, #1		// w1 = holder tag, 0: no CPU named
	ldr	x0, [sp, #16]
	ldp	x29, x30, [sp], #32
	b	.Lacq_tagged
KH_END(kh_lock_acquire)

KH_FUNC(kh_lock_acquire_as)
.Lacq_tagged:
	mov	w3, w1			// w3 = holder tag
	prfm	pstl1strm, [x0]		// ask for the line in a writable state
.Lacq_take:
	ldaxr	w1, [x0]		// w1 = my ticket
	add	w2, w1, #1
	stxr	w4, w2, [x0]
	cbnz	w4, .Lacq_take		// lost the reservation: retry
	add	x4, x0, #KH_LOCK_SERVING_OFF
	ldar	w2, [x4]
	cmp	w2, w1
	b.ne	.Lacq_wait
.Lacq_done:
	str	w3, [x0, #KH_LOCK_HOLDER_OFF]
	ret
	// Callee-saved registers hold the state across the C calls:
	// x19 = lock, w20 = ticket, w21 = tag, w22 = spins left in this
	// round, w23 = rounds so far, x24 = &serving, x25 = this CPU's bit
	// in waiting (1 << (tag - 1); 0 when no CPU is named or tag > 64),
	// x26 = &waiting.
.Lacq_wait:
	stp	x29, x30, [sp, #-80]!
	mov	x29, sp
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	mov	x19, x0
	mov	w20, w1
	mov	w21, w3
	mov	w23, #0
	add	x24, x0, #KH_LOCK_SERVING_OFF
	add	x26, x0, #KH_LOCK_WAITING_OFF
	sub	w2, w21, #1
	mov	x25, #1
	lsl	x25, x25, x2
	cmp	w2, #KH_LOCK_WAITING_BITS - 1
	csel	x25, x25, xzr, ls	// tag 0 wraps to 0xffffffff: no bit
	cbz	w21, .Lacq_round	// no CPU named: no checks, no bit
	// Only this CPU writes its tag and its bit: seeing either means it
	// holds or waits for the lock already.
	ldr	w2, [x19, #KH_LOCK_HOLDER_OFF]
	cmp	w2, w21
	b.eq	.Lacq_reentered
	ldr	x2, [x26]
	tst	x2, x25
	b.eq	.Lacq_mark
.Lacq_reentered:
	mov	x0, x19
	mov	w1, #KH_LOCK_REENTERED
	bl	kh_lock_stuck
.Lacq_mark:
	ldxr	x2, [x26]
	orr	x2, x2, x25
	stxr	w3, x2, [x26]
	cbnz	w3, .Lacq_mark
.Lacq_round:
	mov	w22, #KH_SPIN_YIELD
	sevl				// first WFE falls through
.Lacq_spin:
	wfe
	ldaxr	w2, [x24]		// re-arms the monitor on serving
	cmp	w2, w20
	b.eq	.Lacq_served
	subs	w22, w22, #1
	b.ne	.Lacq_spin
	bl	kheap_spin_yield	// every KH_SPIN_YIELD waits
	add	w23, w23, #1
	ldr	w2, [x19, #KH_LOCK_PATIENCE_OFF]
	mov	w3, #KH_SPIN_STUCK
	cmp	w2, #0
	csel	w2, w3, w2, eq
	cmp	w23, w2
	b.lo	.Lacq_round
	mov	w23, #0
	mov	x0, x19
	mov	w1, #KH_LOCK_WAITED
	bl	kh_lock_stuck
	b	.Lacq_round
.Lacq_served:
	// Holder first, then the bit: at no point is this CPU in neither.
	str	w21, [x19, #KH_LOCK_HOLDER_OFF]
.Lacq_unmark:
	ldxr	x2, [x26]
	bic	x2, x2, x25
	stxr	w3, x2, [x26]
	cbnz	w3, .Lacq_unmark
	mov	x0, x19
	mov	w3, w21
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x29, x30, [sp], #80
	b	.Lacq_done
KH_END(kh_lock_acquire_as)

KH_FUNC(kh_lock_release)
	// Only the holder writes holder and serving: a plain store, a plain
	// load, then the release store that hands over (and orders the first).
	str	wzr, [x0, #KH_LOCK_HOLDER_OFF]
	ldr	w2, [x0, #KH_LOCK_SERVING_OFF]
	add	w2, w2, #1
	add	x1, x0, #KH_LOCK_SERVING_OFF
	stlr	w2, [x1]
	ret
KH_END(kh_lock_release)

KH_NOEXEC_STACK
