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
