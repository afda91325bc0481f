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
 * loop (kh_carve_class, kh_carve_list).
 *
 * Each list is also a stack of the batches the per-CPU drains gave (struct
 * kh_batches in kh_internal.h): a refill takes the top batch whole by
 * moving the head to the block below its mark, and claims its blocks after
 * the unlock (kh_batch_claim). Until it has, those blocks still carry the
 * shared token while on no list, so the walks that read tokens as owners
 * wait for it (kh_batch_quiesce); that wait is bounded by one claim, a
 * batch of pops with interrupts masked.
 *
 * Lock held throughout, except kh_batch_claim. Calls down only: kh_tlsf.c,
 * kh_harden.c, kh_stats.c.
 */
#include "kh_internal.h"

/* The shared lists are the lock holder's slot: struct kh_cpu
 * cpus[KH_SHARED], with its own token key. */
static struct kh_cpu *shared(struct kheap *h) { return &h->cpus[KH_SHARED]; }

/* The locked path's fused pops (kheap.c) leave the marks alone; the shared
 * slot's allocs counts them, so after any, forget every mark. */
static void marks_sync(struct kheap *h)
{
	uint64_t pops = __atomic_load_n(&shared(h)->allocs, __ATOMIC_RELAXED);
	if (pops == h->batches_pops)
		return;
	for (unsigned c = 0; c < KH_BATCH_CLASSES; c++)
		h->batches[c].n = 0;
	h->batches_pops = pops;
}

/* Class c's marks, less those whose block is no longer below the list's
 * head; NULL for a class that has none. */
static struct kh_batches *marks_of(struct kheap *h, unsigned c)
{
	if (!KH_PERCPU || c >= KH_BATCH_CLASSES)
		return NULL;
	marks_sync(h);
	struct kh_batches *m = &h->batches[c];
	uint32_t count = shared(h)->cls[c].count;
	while (m->n > 0 && m->depth[m->n - 1] >= count)
		m->n--;
	return m;
}

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
	(void)marks_of(h, c); /* forgets a mark on the block just popped */
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

void kh_batch_mark(struct kheap *h, unsigned c)
{
	struct kh_batches *m = marks_of(h, c);
	struct kh_class *l = &shared(h)->cls[c];
	if (m == NULL || l->count == 0 || l->count >= l->limit || (m->n > 0 && m->depth[m->n - 1] == l->count))
		return; /* the list's end, or a mark here already, bounds the batch; or none comes */
	if (m->n == KH_BATCH_MARKS) { /* forget the oldest */
		for (unsigned i = 1; i < KH_BATCH_MARKS; i++)
			m->depth[i - 1] = m->depth[i], m->rest[i - 1] = m->rest[i];
		m->n--;
	}
	m->depth[m->n] = l->count;
	m->rest[m->n] = l->head;
	m->n++;
}

uintptr_t kh_batch_take(struct kheap *h, unsigned c, uint32_t most, uint32_t *k, uintptr_t *rest)
{
	struct kh_batches *m = marks_of(h, c);
	struct kh_class *l = &shared(h)->cls[c];
	if (m == NULL)
		return 0;
	uint32_t depth = m->n > 0 ? m->depth[m->n - 1] : 0;
	uint32_t n = l->count - depth;
	if (n < 2 || n > most)
		return 0;
	uintptr_t head = l->head;
	*rest = m->n > 0 ? m->rest[m->n - 1] : 0;
	*k = n;
	m->n -= m->n > 0;
	l->head = *rest;
	__atomic_store_n(&l->count, depth, __ATOMIC_RELAXED);
	kh_count_out(h, n * kh_class_block_size(c), n);
	__atomic_fetch_add(&h->batches_out, 1, __ATOMIC_RELAXED);
	return head;
}

uint32_t kh_batch_claim(struct kheap *h, uintptr_t head, uint32_t k, uintptr_t rest, uintptr_t *out, bool *bad,
			struct kh_err *e)
{
	struct kh_class t = {head, k, k};
	uint32_t got = 0;
	*bad = true;
	while (got < k) {
		void *p = kh_cpu_pop(&t, kh_key(h), shared(h)->tkey);
		if (p == NULL || p == KH_CLASS_BAD)
			break;
		out[got++] = kh_block_of(p);
		if (KH_POISONS)
			kh_poison_check(kh_block_of(p), e);
		if (got == k)
			*bad = t.head != rest;
		else if (t.head == 0 || t.head == rest || kh_region_of(h, kh_block_of((void *)t.head)) == NULL)
			break; /* a link that leaves the heap, or leads back onto the list */
	}
	__atomic_fetch_sub(&h->batches_out, 1, __ATOMIC_RELEASE);
	return got;
}

void kh_batch_quiesce(const struct kheap *h)
{
	while (KH_PERCPU && __atomic_load_n(&h->batches_out, __ATOMIC_ACQUIRE) != 0)
		kh_cpu_relax();
}

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
