/*
 * kh_lock.c: portable C11 twin of src/heap/<arch>/kh_lock.S (contract in
 * kh_lock.h).
 */
#include "kh_lock.h"
#include "kh_bits.h"

void kh_lock_acquire(struct kh_lock *l)
{
	/* Relaxed: the ticket only orders us among waiters; the acquire load
	 * of owner below is what orders the critical section. */
	uint32_t me = atomic_fetch_add_explicit(&l->next, 1u, memory_order_relaxed);
	while (atomic_load_explicit(&l->owner, memory_order_acquire) != me)
		kh_cpu_relax();
}

void kh_lock_release(struct kh_lock *l)
{
	/* Only the holder writes owner, so a plain read and a release store
	 * suffice: no read-modify-write is needed. */
	uint32_t next = atomic_load_explicit(&l->owner, memory_order_relaxed) + 1u;
	atomic_store_explicit(&l->owner, next, memory_order_release);
}
