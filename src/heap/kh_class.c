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
	size_t g = (n + 8 + 15) >> 4; /* granules of the block, 1..4097 */
	if (g <= KH_CLASS_STEP_GRANULES)
		return g < 2 ? 0u : (unsigned)g - 2;
	unsigned e = kh_fls64((uint64_t)(g - 2)); /* u - 1's highest bit, 4..11 */
	return 4 * e - KH_CLASS_BIAS + (unsigned)((g - 2) >> (e - 2));
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

void *kh_cpu_alloc(struct kh_cpu *cpu, size_t n)
{
	unsigned c = kh_size_class(n);
	if (c >= KH_NCLASSES || __atomic_load_n(&cpu->drain, __ATOMIC_RELAXED) != 0)
		return NULL;
	struct kh_class *l = &cpu->cls[c];
	uintptr_t p = l->head;
	if (p == 0)
		return NULL;
	uintptr_t *w = (uintptr_t *)p;
	uintptr_t next = w[0] ^ p ^ cpu->key;
	if (__atomic_load_n(&w[1], __ATOMIC_RELAXED) != (p ^ cpu->tkey) || (next & 15u) ||
	    (next != 0 && (next - 8 < cpu->lo || next - 8 >= cpu->hi)))
		return NULL;
	l->head = next;
	__atomic_store_n(&l->count, l->count - 1, __ATOMIC_RELAXED);
	__atomic_store_n(&w[1], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->allocs, cpu->allocs + 1, __ATOMIC_RELAXED);
	return (void *)p;
}

/* The class of block size s, or KH_NCLASSES when s is not a class size
 * (s is a multiple of 16). Above the steps of 16 the classes are 4 per
 * power of two of u = g - 1 (kh_layout.h), so a class's u is a multiple of
 * 2^(e-2), where e is the highest bit of u - 1. */
static unsigned block_class(uint64_t s)
{
	if (s - 32 > KH_CLASS_MAX_BLOCK - 32)
		return KH_NCLASSES;
	unsigned g = (unsigned)(s >> 4);
	if (g <= KH_CLASS_STEP_GRANULES)
		return g - 2;
	unsigned e = kh_fls64(g - 2);
	if ((g - 1) & ((1u << (e - 2)) - 1))
		return KH_NCLASSES;
	return 4 * e - KH_CLASS_BIAS + ((g - 2) >> (e - 2));
}

int kh_cpu_free(struct kh_cpu *cpu, void *ptr)
{
	uintptr_t p = (uintptr_t)ptr, b = p - 8, key = cpu->key;
	if ((p & 15u) || b < cpu->lo || b >= cpu->hi)
		return 0;
	/* The backend may rewrite PREV_FREE under the lock meanwhile: either
	 * value seals, and this path never writes the header. */
	uint64_t h = __atomic_load_n((uint64_t *)b, __ATOMIC_RELAXED);
	uint64_t body = h & (((uint64_t)1 << KH_COOKIE_SHIFT) - 1);
	if ((((body ^ b ^ key) * (uint64_t)KH_COOKIE_MUL) >> KH_COOKIE_SHIFT) !=
		    h >> KH_COOKIE_SHIFT ||
	    (h & ((uint64_t)0x3f << 40 | 8u | 4u | 1u)) != 1u)
		return 0;
	unsigned c = block_class(h & 0xfffffffff0u);
	uintptr_t *w = ptr;
	if (c >= KH_NCLASSES || (__atomic_load_n(&w[1], __ATOMIC_RELAXED) ^ p ^ ~key) < KH_TOKEN_CPUS)
		return 0;
	struct kh_class *l = &cpu->cls[c];
	if (l->count >= l->limit || __atomic_load_n(&cpu->drain, __ATOMIC_RELAXED) != 0)
		return 2;
	w[0] = l->head ^ p ^ key;
	__atomic_store_n(&w[1], p ^ cpu->tkey, __ATOMIC_RELAXED);
	l->head = p;
	__atomic_store_n(&l->count, l->count + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->frees, cpu->frees + 1, __ATOMIC_RELAXED);
	return 1;
}
