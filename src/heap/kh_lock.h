/*
 * kh_lock.h: the heap's spinlock, a fair ticket lock. kh_lock.c is the
 * portable C11 twin; src/heap/<arch>/kh_lock.S replaces it with the same
 * contract. Interrupt masking is not done here: callers bracket the lock
 * with kheap_irq_save()/kheap_irq_restore(), so that the same lock code runs
 * in a kernel and in a hosted test.
 */
#ifndef KH_LOCK_H
#define KH_LOCK_H

/* The spin loop calls kheap_spin_yield() once every KH_SPIN_YIELD spins.
 * Also read by the assembly twins. */
#define KH_SPIN_YIELD 256

#ifndef __ASSEMBLER__
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Layout shared with the assembly: next ticket at offset 0, ticket being
 * served at offset 4. Both start at 0; the lock is free when they are equal. */
struct kh_lock {
	_Atomic uint32_t next;
	_Atomic uint32_t owner;
};

_Static_assert(sizeof(struct kh_lock) == 8, "asm addresses owner at offset 4");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "asm treats the fields as plain words");

/* Take a ticket and spin until it is served. Acquire ordering: no access
 * after it moves before it. Not recursive: a second acquire by the holder
 * deadlocks. */
void kh_lock_acquire(struct kh_lock *l);

/* Serve the next ticket. Release ordering: no access before it moves after
 * it. Precondition: the caller holds the lock. */
void kh_lock_release(struct kh_lock *l);

/* Take the lock iff it is free right now: true when taken (acquire
 * ordering), false without waiting and without taking a ticket, so a caller
 * that gives up leaves nothing behind. Only kheap_dump uses it, never on a
 * hot path, so it is C only; it shares the layout, and therefore works with,
 * the assembly acquire and release. A free lock has next == owner; taking
 * ticket `owner` by moving next from owner to owner + 1 is then the whole
 * acquisition. Succeeding proves owner did not move in between: owner only
 * advances past a ticket that was handed out, which would have moved next. */
static inline bool kh_lock_try(struct kh_lock *l)
{
	uint32_t o = atomic_load_explicit(&l->owner, memory_order_acquire);
	uint32_t n = o;
	return atomic_compare_exchange_strong_explicit(&l->next, &n, o + 1u, memory_order_acquire,
						       memory_order_relaxed);
}

#endif /* !__ASSEMBLER__ */
#endif /* KH_LOCK_H */
