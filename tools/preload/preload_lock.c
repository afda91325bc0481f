/*
 * preload_lock.c: the heap lock of the preload library, a mutex that
 * sleeps in the kernel (futex) after a short spin. mk/preload.mk links it in
 * place of src/heap/<arch>/kh_lock.S or kh_lock.c, with the contract of
 * kh_lock.h. Why: with more runnable threads than cores, kheap's fair ticket
 * lock hands the lock to the next waiter in line even when that waiter is
 * not running, and everyone behind it spins or yields until the scheduler
 * happens to run it; a multi-threaded program then crawls (8 threads on 2
 * cores: 16x glibc's time, 100 threads: over 60 s against 0.1 s). A mutex
 * lets whichever thread runs take a free lock, and waiters sleep instead of
 * spinning. It is not fair, which a user program does not need.
 *
 * State in struct kh_lock: next is 0 (free), 1 (held) or 2
 * (held, and a thread may sleep on it); serving stays 0. kh_lock_try's
 * moving next from serving (0) to serving + 1 is then exactly "take a free
 * lock", and the fork handlers' reset (both words 0) frees it.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kh_bits.h"
#include "kh_lock.h"

/* Spins on a held lock before sleeping: about the length of a short
 * critical section (a refill of one batch). */
#define SPINS 200

static void futex(_Atomic uint32_t *w, int op, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)w, op, val, NULL, NULL, 0);
}

void kh_lock_acquire(struct kh_lock *l)
{
	uint32_t c = 0;
	for (int i = 0; i < SPINS; i++) {
		c = atomic_load_explicit(&l->next, memory_order_relaxed);
		if (c == 0 && atomic_compare_exchange_weak_explicit(&l->next, &c, 1u, memory_order_acquire,
								    memory_order_relaxed))
			return;
		if (c == 2)
			break; /* others already sleep: join them */
		kh_cpu_relax();
	}
	/* Mark the lock contended before sleeping, so the holder wakes one. */
	while (atomic_exchange_explicit(&l->next, 2u, memory_order_acquire) != 0)
		futex(&l->next, FUTEX_WAIT_PRIVATE, 2u);
}

/* The futex word records no holder: the tag (kh_lock.h) has no use here. */
void kh_lock_acquire_as(struct kh_lock *l, uint32_t tag)
{
	(void)tag;
	kh_lock_acquire(l);
}

void kh_lock_release(struct kh_lock *l)
{
	if (atomic_exchange_explicit(&l->next, 0u, memory_order_release) == 2)
		futex(&l->next, FUTEX_WAKE_PRIVATE, 1u);
}
