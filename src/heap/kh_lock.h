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

#endif /* !__ASSEMBLER__ */
#endif /* KH_LOCK_H */
