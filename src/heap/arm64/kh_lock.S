/*
 * kh_lock.S: arm64 twin of src/heap/kh_lock.c; contract and layout (next
 * ticket at offset 0, owner at offset 4) in kh_lock.h. AAPCS64; no stack
 * use except around the kheap_spin_yield call. Plain ARMv8.0 (exclusives,
 * no LSE atomics), so it runs on a Cortex-A53/A72.
 *
 * kh_lock_acquire  in: x0 = lock.  out: none.  clobbers: x1-x4, flags,
 *                  the local exclusive monitor and event register; and,
 *                  once it has waited KH_SPIN_YIELD times, whatever the C
 *                  function kheap_spin_yield clobbers (caller-saved).
 * kh_lock_release  in: x0 = lock.  out: none.  clobbers: x1, x2.
 *
 * State assumed: interrupts are left alone (the heap brackets the lock with
 * kheap_irq_save/restore). Ordering: the LDAR/LDAXR that observes
 * owner == my ticket is the acquire; the STLR of owner is the release.
 * A waiter sleeps in WFE with an exclusive monitor armed on owner: the
 * holder's STLR to owner clears that monitor, which wakes it. Acquire by
 * the holder deadlocks, as in the C.
 */
#include "kh_asm.h"
#include "kh_lock.h"

KH_FUNC(kh_lock_acquire)
	prfm	pstl1strm, [x0]		// ask for the line in a writable state
.Lacq_take:
	ldaxr	w1, [x0]		// w1 = my ticket
	add	w2, w1, #1
	stxr	w3, w2, [x0]
	cbnz	w3, .Lacq_take		// lost the reservation: retry
	add	x4, x0, #4
	ldar	w2, [x4]
	cmp	w2, w1
	b.ne	.Lacq_sleep
	ret
.Lacq_sleep:
	mov	w3, #KH_SPIN_YIELD
	sevl				// first WFE falls through
.Lacq_wait:
	wfe
	ldaxr	w2, [x4]		// re-arms the monitor on owner
	cmp	w2, w1
	b.eq	.Lacq_done
	subs	w3, w3, #1
	b.ne	.Lacq_wait
	stp	x29, x30, [sp, #-32]!	// every KH_SPIN_YIELD waits:
	mov	x29, sp			// kheap_spin_yield(), with a frame
	stp	x0, x1, [sp, #16]
	bl	kheap_spin_yield
	ldp	x0, x1, [sp, #16]
	ldp	x29, x30, [sp], #32
	add	x4, x0, #4
	b	.Lacq_sleep
.Lacq_done:
	ret
KH_END(kh_lock_acquire)

KH_FUNC(kh_lock_release)
	// Only the holder writes owner: a plain load, then a release store.
	add	x1, x0, #4
	ldr	w2, [x1]
	add	w2, w2, #1
	stlr	w2, [x1]
	ret
KH_END(kh_lock_release)

KH_NOEXEC_STACK
