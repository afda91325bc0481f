/*
 * kh_lock.c: portable C11 twin of src/heap/<arch>/kh_lock.S (contract in
 * kh_lock.h).
 */
#include "kh_lock.h"
#include "kh_bits.h"
#include "kheap.h"

void kh_lock_acquire(struct kh_lock *l)
{
	/* Relaxed: the ticket only orders us among waiters; the acquire load
	 * of owner below is what orders the critical section. */
	uint32_t me = atomic_fetch_add_explicit(&l->next, 1u, memory_order_relaxed);
	for (uint32_t spins = 1; atomic_load_explicit(&l->owner, memory_order_acquire) != me; spins++) {
		kh_cpu_relax();
		if ((spins & (KH_SPIN_YIELD - 1)) == 0)
			kheap_spin_yield();
	}
}

void kh_lock_release(struct kh_lock *l)
{
	/* Only the holder writes owner, so a plain read and a release store
	 * suffice: no read-modify-write is needed. */
	uint32_t next = atomic_load_explicit(&l->owner, memory_order_relaxed) + 1u;
	atomic_store_explicit(&l->owner, next, memory_order_release);
}
