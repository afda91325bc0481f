/*
 * nolock.c: the control for the SMP stress: the heap lock made a no-op. The
 * nolock kernel links these instead of the library's kh_lock.o; the stress
 * must then fail (report, token mismatch, fault or hang), which proves it
 * can see a race.
 */
#include "kh_lock.h"

void kh_lock_acquire(struct kh_lock *l) { (void)l; }
void kh_lock_acquire_as(struct kh_lock *l, uint32_t tag) { (void)l, (void)tag; }
void kh_lock_release(struct kh_lock *l) { (void)l; }
