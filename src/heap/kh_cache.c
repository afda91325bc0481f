/*
 * kh_cache.c: the shared size-class caches. A freed block whose size is
 * exactly a class size (kh_class.h) goes to that class's LIFO list unless
 * the list is full, left unmerged and marked by a token as per-CPU blocks
 * are, so the next request of the class takes it back without touching the
 * bins (invariant I6 in kh_internal.h). The lists are one more slot of the
 * per-CPU machinery, cpus[KH_SHARED], owned by whoever holds the lock; its
 * blocks do not count as in use. The lists hand blocks to the per-CPU caches' refills and
 * take their drains. A locked allocation that finds its class's list empty
 * has a batch carved onto it (kh_cache_carve), so that a class's blocks lie
 * together; the per-CPU refills and the object caches carve with the same
 * loop (kh_carve_class, kh_carve_list). Lock held throughout. Calls down only: kh_tlsf.c,
 * kh_harden.c, kh_stats.c.
 */
#include "kh_internal.h"

/* The shared lists are the lock holder's slot: struct kh_cpu
 * cpus[KH_SHARED], with its own token key. */
static struct kh_cpu *shared(struct kheap *h) { return &h->cpus[KH_SHARED]; }

/* Pop a cached block of class c, now a plain used block, or 0. A list found
 * corrupt (a wrong token, a link that does not decode, a next head outside
 * the heap) is repaired (kh_slot_repair: its blocks go back to the bins,
 * reported as KHEAP_E_FREELIST); the backend then serves. For a hand-out
 * (level 2) the block's right neighbour must agree too; a block on its way
 * to the bins has its neighbours checked where it merges (kh_backend_free). */
static inline __attribute__((always_inline)) uintptr_t pop(struct kheap *h, unsigned c, bool handout,
								   struct kh_err *e)
{
	struct kh_cpu *sh = shared(h);
	struct kh_class *l = &sh->cls[c];
	void *p = kh_cpu_pop(l, kh_key(h), sh->tkey);
	if (p == NULL)
		return 0;
	if (p == KH_CLASS_BAD) {
		kh_slot_repair(h, sh, c, e);
		return 0;
	}
	uintptr_t b = kh_block_of(p);
	if (KH_GRANT_NEIGHBOURS && handout && !kh_next_ok(h, b)) {
		/* The list is sound, the neighbour is not: put b back, refuse it. */
		kh_cpu_push(l, p, kh_key(h), sh->tkey);
		return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "cached block's next header is corrupt or disagrees"), 0;
	}
	if (l->head != 0 && !kh_in_span(h, kh_block_of((void *)l->head)))
		/* The link decoded to an aligned address outside the heap: do
		 * not follow it next time. b itself is sound and is handed out. */
		kh_slot_repair(h, sh, c, e);
	if (KH_POISONS)
		kh_poison_check(b, e);
	return b;
}

uintptr_t kh_cache_take(struct kheap *h, unsigned c, struct kh_err *e) { return pop(h, c, true, e); }

/* Cache used block b if it is exactly the size of a class the shared lists
 * keep (up to KH_SHARED_MAX_BLOCK), not aligned, and its list has room. */
bool kh_cache_put(struct kheap *h, uintptr_t b)
{
	kh_word w = *kh_hdr(b);
	size_t s = (size_t)(w & KH_SIZE_MASK);
	if (s > KH_SHARED_MAX_BLOCK || (w & KH_ALG_MASK) != 0)
		return false;
	KH_ASSERT(kh_used(b) && !kh_on_list(h, b)); /* a held block, off every list */
	unsigned c = kh_size_class(s - KH_HDR);
	struct kh_cpu *sh = shared(h);
	if (kh_class_block_size(c) != s || !kh_cpu_push(&sh->cls[c], kh_payload(b), kh_key(h), sh->tkey))
		return false;
	if (KH_POISONS)
		kh_release_hook(b); /* the poison starts past the link and the token */
	return true;
}

/* Carve one backend block into up to n class-c blocks on slot's list (a
 * CPU's, or the shared one):
 * the good fit for KHEAP_CPU_CARVE_MIN of them (kheap_config.h), cut to n
 * (kh_backend_alloc_upto; asking for all n in one piece passed the holes
 * freed blocks leave by, and kept python3's RSS a quarter above glibc's
 * through the preload), or else an exact hole for one. Each block is
 * carved where what is left is exactly one or one and a whole block; the
 * rest goes straight back (kh_carve_list). Lock held. */
uint32_t kh_carve_class(struct kheap *h, struct kh_cpu *slot, unsigned c, uint32_t n, struct kh_err *e)
{
	size_t s = kh_class_block_size(c);
	size_t least = (n < KHEAP_CPU_CARVE_MIN ? n : KHEAP_CPU_CARVE_MIN) * s;
	if (n > 1 && least < s + KH_MIN_BLOCK)
		least = s + KH_MIN_BLOCK; /* one block, and a whole one left */
	uintptr_t b = kh_backend_alloc_upto(h, least, n * s, e);
	if (b == 0 && n > 1 && e->kind == KHEAP_OK)
		b = kh_backend_alloc(h, s, e);
	return b != 0 ? kh_carve_list(h, b, s, n, KH_USED, 0, &slot->cls[c], slot->tkey, e) : 0;
}

uint32_t kh_carve_list(struct kheap *h, uintptr_t b, size_t s, uint32_t n, kh_word bits, unsigned alg,
		       struct kh_class *l, uintptr_t tkey, struct kh_err *e)
{
	uintptr_t end = b + kh_size(b), x = b;
	kh_word prev = kh_flags(b) & KH_PREV_FREE;
	uint32_t got = 0;
	while (got < n && (end - x == s || end - x >= s + KH_MIN_BLOCK)) {
		kh_set(h, x, s, bits | prev, alg);
		kh_release_hook(x);
		/* With per-CPU lists kheap_check may read the canary of a block
		 * another CPU has just popped; without them (tags builds, whose
		 * longer tail lies inside the poisoned span) the grant arms it. */
		if (KH_PERCPU)
			kh_arm_canary(h, x);
		x += s, got++, prev = 0;
	}
	if (x != end) {
		kh_set(h, x, end - x, KH_USED | prev, 0);
		if (kh_backend_free(h, x, e) == 0)
			kh_count_out(h, end - x, 1); /* neighbour corrupt (reported): held */
	}
	/* Pushed from the top down, so that the list hands them out in address
	 * order and a run of allocations gets neighbouring blocks. */
	while (x != b) {
		x -= s;
		kh_cpu_push(l, kh_payload(x), kh_key(h), tkey);
	}
	return got;
}

/* A block of class c for the locked path when the shared list is empty: a
 * batch of up to KHEAP_CLASS_CARVE carved onto the list from one backend
 * block, and the first of them taken. Keeping a class's blocks side by
 * side keeps them from scattering among other sizes (W5 of make bench). 0
 * when the list has no room for a batch or the backend has no block for
 * one: the caller then asks the backend for a single block. */
uintptr_t kh_cache_carve(struct kheap *h, unsigned c, struct kh_err *e)
{
	struct kh_class *l = &shared(h)->cls[c];
	uint32_t n = l->limit > l->count ? l->limit - l->count : 0;
	if (n > KHEAP_CLASS_CARVE)
		n = KHEAP_CLASS_CARVE;
	if (n < 2 || e->kind != KHEAP_OK || kh_carve_class(h, shared(h), c, n, e) == 0)
		return 0;
	return pop(h, c, true, e);
}

/* Return every cached block to the backend. O(total cache capacity). */
void kh_cache_flush(struct kheap *h, struct kh_err *e)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		uintptr_t b;
		while ((b = pop(h, c, false, e)) != 0) {
			if (kh_backend_free(h, b, e) == 0) { /* neighbour corrupt: keep it held */
				kh_count_out(h, kh_size(b), 1);
				kh_arm_canary(h, b); /* the poison may have run over it */
			}
		}
	}
}

/* Class-list capacities: each class up to KH_SHARED_MAX_BLOCK holds at
 * most KHEAP_CLASS_CACHE_MAX blocks, and all together at most
 * 1/KHEAP_CACHE_SHARE of the heap, in equal bytes per class; a larger class
 * none. */
void kh_cache_limits(struct kheap *h)
{
	unsigned kept = kh_classes_upto(KH_SHARED_MAX_BLOCK);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		size_t cap = h->n.total / ((size_t)KHEAP_CACHE_SHARE * kept * kh_class_block_size(c));
		if (kh_class_block_size(c) > KH_SHARED_MAX_BLOCK)
			cap = 0;
		shared(h)->cls[c].limit = cap < KHEAP_CLASS_CACHE_MAX ? (uint32_t)cap : KHEAP_CLASS_CACHE_MAX;
	}
}
