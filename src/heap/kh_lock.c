/*
 * kh_lock.c: portable C11 twin of src/heap/<arch>/kh_lock.S (contract in
 * kh_lock.h).
 */
#include "kh_lock.h"
#include "kh_bits.h"
#include "kheap.h"

/* Out of line, as in the assembly: the uncontended acquire stays short. */
static __attribute__((noinline)) void wait_turn(struct kh_lock *l, uint32_t me, uint32_t tag)
{
	/* Only this CPU writes its own tag, so seeing it means this CPU holds
	 * the lock: the code it interrupted, or the hook it is in. */
	if (tag != 0 && atomic_load_explicit(&l->holder, memory_order_relaxed) == tag)
		kh_lock_stuck(l, KH_LOCK_REENTERED);
	uint32_t rounds = 0;
	for (uint32_t spins = 1; atomic_load_explicit(&l->serving, memory_order_acquire) != me; spins++) {
		kh_cpu_relax();
		if ((spins & (KH_SPIN_YIELD - 1)) != 0)
			continue;
		kheap_spin_yield();
		if (++rounds >= (l->patience ? l->patience : (uint32_t)KH_SPIN_STUCK)) {
			kh_lock_stuck(l, KH_LOCK_WAITED);
			rounds = 0;
		}
	}
}

void kh_lock_acquire(struct kh_lock *l)
{
	uint32_t tag = kheap_cpu_id() + 1u;
	/* Relaxed: the ticket only orders us among waiters; the acquire load
	 * of serving is what orders the critical section. */
	uint32_t me = atomic_fetch_add_explicit(&l->next, 1u, memory_order_relaxed);
	if (atomic_load_explicit(&l->serving, memory_order_acquire) != me)
		wait_turn(l, me, tag);
	atomic_store_explicit(&l->holder, tag, memory_order_relaxed);
}

void kh_lock_release(struct kh_lock *l)
{
	/* Only the holder writes serving and holder, so plain reads and a
	 * release store suffice: no read-modify-write is needed. The release
	 * store also orders the holder's clearing before the hand-over. */
	atomic_store_explicit(&l->holder, 0u, memory_order_relaxed);
	uint32_t next = atomic_load_explicit(&l->serving, memory_order_relaxed) + 1u;
	atomic_store_explicit(&l->serving, next, memory_order_release);
}
