/*
 * kh_lock.c: portable C11 twin of src/heap/<arch>/kh_lock.S (contract in
 * kh_lock.h).
 */
#include "kh_lock.h"
#include "kh_bits.h"
#include "kheap.h"

/* This CPU's bit in waiting: CPU tag - 1, when below KH_LOCK_WAITING_BITS. */
static uint64_t waiting_bit(uint32_t tag) { return tag - 1u < KH_LOCK_WAITING_BITS ? (uint64_t)1 << (tag - 1u) : 0; }

/* Out of line, as in the assembly: the uncontended acquire stays short. */
static __attribute__((noinline)) void wait_turn(struct kh_lock *l, uint32_t me, uint32_t tag)
{
	/* Only this CPU writes its own tag and bit, so seeing either means
	 * this CPU holds or waits for the lock already: in the code it
	 * interrupted, or in the hook it is in. */
	uint64_t bit = waiting_bit(tag);
	if (tag != 0 && (atomic_load_explicit(&l->holder, memory_order_relaxed) == tag ||
			 (atomic_load_explicit(&l->waiting, memory_order_relaxed) & bit) != 0))
		kh_lock_stuck(l, KH_LOCK_REENTERED);
	atomic_fetch_or_explicit(&l->waiting, bit, memory_order_relaxed);
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
	/* Holder first, then the bit: at no point is this CPU in neither. */
	atomic_store_explicit(&l->holder, tag, memory_order_relaxed);
	atomic_fetch_and_explicit(&l->waiting, ~bit, memory_order_relaxed);
}

void kh_lock_acquire(struct kh_lock *l) { kh_lock_acquire_as(l, kheap_cpu_id() + 1u); }

void kh_lock_acquire_as(struct kh_lock *l, uint32_t tag)
{
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
