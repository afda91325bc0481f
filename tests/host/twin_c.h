/*
 * twin_c.h: the generic C twins of the assembly routines, compiled a second
 * time under twin_* names (twin_c.c) so that a test can run them beside
 * whatever the build selected for kh_* (the .S by default, the same C with
 * GENERIC=1). Test builds only: never part of libkheap.a.
 */
#ifndef TWIN_C_H
#define TWIN_C_H

#include <stddef.h>
#include <stdint.h>

#include "kh_class.h"
#include "kh_lock.h"

unsigned twin_size_class(size_t n);
void *twin_cpu_pop(struct kh_class *c, uintptr_t key, uintptr_t tkey);
int twin_cpu_push(struct kh_class *c, void *p, uintptr_t key, uintptr_t tkey);
void *twin_cpu_alloc(struct kh_cpu *cpu, size_t n);
int twin_cpu_free(struct kh_cpu *cpu, void *p);
void twin_lock_acquire(struct kh_lock *l);
void twin_lock_acquire_as(struct kh_lock *l, uint32_t tag);
void twin_lock_release(struct kh_lock *l);

#endif
