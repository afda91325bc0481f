/*
 * kh_lock.h: the heap's spinlock, a fair ticket lock that knows which CPU
 * holds it. kh_lock.c is the portable C11 twin; src/heap/<arch>/kh_lock.S
 * replaces it with the same contract. Interrupt masking is not done here:
 * callers bracket the lock with kheap_irq_save()/kheap_irq_restore(), so
 * that the same lock code runs in a kernel and in a hosted test.
 *
 * Misuse it names instead of hanging silently (kh_lock_stuck reports it
 * through kheap_panic):
 *  - Re-entry: a CPU that already holds the lock, or already waits for
 *    it, asks for it again (an interrupt handler or NMI that calls kheap
 *    while kheap ran underneath, or a hook that calls back into the same
 *    heap). Found on the first spin when kheap_cpu_id names the CPU: the
 *    holder records its number, and a waiter sets its bit in `waiting`
 *    (CPU numbers below 64). In the few instructions between taking a
 *    ticket and recording it (and between clearing the holder and
 *    releasing), or when no CPU is named, the second rule catches it
 *    instead.
 *  - A wait past a bound: KH_SPIN_STUCK rounds of KH_SPIN_YIELD spins
 *    (2^28 spins; seconds on a real core or under QEMU) without being
 *    served. Reported again after each further bound: a kheap_panic that
 *    returns leaves the CPU waiting, since the holder may yet release.
 *    On arm64 a waiter sleeps in WFE between spins, so a kernel that wants
 *    this bound on hardware with every other event source quiet enables
 *    the generic timer's event stream (CNTKCTL_EL1.EVNTEN).
 * A re-entry is a deadlock no lock can undo (the holder is the code the
 * CPU interrupted): after the report the CPU keeps waiting, so the
 * kernel's kheap_panic should stop it.
 */
#ifndef KH_LOCK_H
#define KH_LOCK_H

/* The lock's numbers (spin bounds, report reasons, field offsets) are in
 * kh_layout.h, shared with the assembly. */
#include "kh_layout.h"

#ifndef __ASSEMBLER__
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kheap.h"

/* All zero is a free lock. next: the next ticket to hand out; serving: the
 * ticket being served (free when next == serving); holder: the holder's
 * kheap_cpu_id() + 1, or 0 when it named no CPU or nobody holds the lock
 * (KHEAP_NO_CPU + 1 wraps to 0); patience: rounds before the stuck report,
 * 0 for KH_SPIN_STUCK (tests set a small one); waiting: bit n set while CPU
 * n waits (set and cleared with atomic OR/AND, on the waiting path only). */
struct kh_lock {
	_Atomic uint32_t next;
	_Atomic uint32_t serving;
	_Atomic uint32_t holder;
	uint32_t patience;
	_Atomic uint64_t waiting;
};

_Static_assert(offsetof(struct kh_lock, next) == KH_LOCK_NEXT_OFF, "asm field offset");
_Static_assert(offsetof(struct kh_lock, serving) == KH_LOCK_SERVING_OFF, "asm field offset");
_Static_assert(offsetof(struct kh_lock, holder) == KH_LOCK_HOLDER_OFF, "asm field offset");
_Static_assert(offsetof(struct kh_lock, patience) == KH_LOCK_PATIENCE_OFF, "asm field offset");
_Static_assert(offsetof(struct kh_lock, waiting) == KH_LOCK_WAITING_OFF, "asm field offset");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && KH_LOCK_WAITING_BITS == 64, "asm treats waiting as a plain doubleword, one bit per CPU");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "asm treats the fields as plain words");
_Static_assert(KHEAP_NO_CPU + 1u == 0u, "no CPU named records holder 0");

/* Take a ticket and spin until it is served, then record the calling
 * CPU (kheap_cpu_id) as the holder. Acquire ordering: no access after it
 * moves before it. Not recursive: a second acquire by the holder is
 * reported (see above) and never returns. Calls kheap_cpu_id once, and
 * kheap_spin_yield and kh_lock_stuck while it waits. Interrupts masked by
 * the caller. */
void kh_lock_acquire(struct kh_lock *l);

/* kh_lock_acquire with the holder tag passed in: kheap_cpu_id() + 1, or 0
 * when no CPU is named. The heap calls it when a port header makes the
 * CPU-number hook inline (kh_internal.h), which spares the call. */
void kh_lock_acquire_as(struct kh_lock *l, uint32_t tag);

/* Clear the holder, serve the next ticket. Release ordering: no access
 * before it moves after it. Precondition: the caller holds the lock. */
void kh_lock_release(struct kh_lock *l);

/* The waiter's report of a re-entry (why = KH_LOCK_REENTERED) or of a wait
 * past its bound (KH_LOCK_WAITED) through kheap_panic; returns when
 * kheap_panic does. In C in every build (kh_lock_stuck.c): both twins call
 * it, and it is never on a path that does not already wait. */
void kh_lock_stuck(const struct kh_lock *l, unsigned why);

/* Take the lock iff it is free right now: true when taken (acquire
 * ordering, holder recorded), false without waiting and without taking a
 * ticket, so a caller that gives up leaves nothing behind. Only kheap_dump
 * uses it, never on a hot path, so it is C only; it shares the layout, and
 * therefore works with, the assembly acquire and release. A free lock has
 * next == serving; taking ticket `serving` by moving next from serving to
 * serving + 1 is then the whole acquisition. Succeeding proves serving did
 * not move in between: it only advances past a ticket that was handed out,
 * which would have moved next. */
static inline bool kh_lock_try(struct kh_lock *l)
{
	uint32_t tag = kheap_cpu_id() + 1u;
	uint32_t o = atomic_load_explicit(&l->serving, memory_order_acquire);
	uint32_t n = o;
	if (!atomic_compare_exchange_strong_explicit(&l->next, &n, o + 1u, memory_order_acquire,
						     memory_order_relaxed))
		return false;
	atomic_store_explicit(&l->holder, tag, memory_order_relaxed);
	return true;
}

#endif /* !__ASSEMBLER__ */
#endif /* KH_LOCK_H */
