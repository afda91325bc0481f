/*
 * kh_class.c: portable C twin of src/heap/<arch>/kh_class.S. The contract is
 * in kh_class.h; keep the two in lockstep (tests/host/t_diff.c compares them).
 */
#include "kh_class.h"
#include "kh_bits.h"

unsigned kh_size_class(size_t n)
{
	if (n > KH_CLASS_MAX_PAYLOAD)
		return KH_NCLASSES;
	size_t g = (n + 8 + 15) >> 4; /* granules of the block, 1..64 */
	if (g <= 16)
		return g < 2 ? 0u : (unsigned)g - 2;
	unsigned e = kh_fls64((uint64_t)(g - 1)); /* 4 or 5 */
	return 4 * e - 5 + (unsigned)((g - 1) >> (e - 2));
}

void *kh_class_pop(struct kh_class *c, uintptr_t key)
{
	uintptr_t p = c->head;
	if (p == 0)
		return NULL;
	uintptr_t next = *(uintptr_t *)p ^ p ^ key;
	if (next & 15u)
		return KH_CLASS_BAD;
	c->head = next;
	c->count--;
	return (void *)p;
}

int kh_class_push(struct kh_class *c, void *p, uintptr_t key)
{
	if (c->count >= c->limit)
		return 0;
	*(uintptr_t *)p = c->head ^ (uintptr_t)p ^ key;
	c->head = (uintptr_t)p;
	c->count++;
	return 1;
}

/* The count and the token word are read by other CPUs (statistics, the walk)
 * while the owner changes them: relaxed atomics, which compile to plain
 * loads and stores, keep that a defined race. */
void *kh_cpu_pop(struct kh_class *c, uintptr_t key, uintptr_t tkey)
{
	uintptr_t p = c->head;
	if (p == 0)
		return NULL;
	uintptr_t *w = (uintptr_t *)p;
	uintptr_t next = w[0] ^ p ^ key;
	if (__atomic_load_n(&w[1], __ATOMIC_RELAXED) != (p ^ tkey) || (next & 15u))
		return KH_CLASS_BAD;
	c->head = next;
	__atomic_store_n(&c->count, c->count - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&w[1], 0, __ATOMIC_RELAXED);
	return (void *)p;
}

int kh_cpu_push(struct kh_class *c, void *p, uintptr_t key, uintptr_t tkey)
{
	if (c->count >= c->limit)
		return 0;
	uintptr_t *w = p;
	w[0] = c->head ^ (uintptr_t)p ^ key;
	__atomic_store_n(&w[1], (uintptr_t)p ^ tkey, __ATOMIC_RELAXED);
	c->head = (uintptr_t)p;
	__atomic_store_n(&c->count, c->count + 1, __ATOMIC_RELAXED);
	return 1;
}
