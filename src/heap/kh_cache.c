/*
 * kh_cache.c: the shared size-class caches. A freed block whose size is
 * exactly a class size (kh_class.h) goes to that class's LIFO list unless
 * the list is full, flagged KH_CACHED and left unmerged, so the next request
 * of the class takes it back without touching the bins (invariant I6 in
 * kh_internal.h). The lists hand blocks to the per-CPU caches' refills and
 * take their drains. Lock held throughout. Calls down only: kh_tlsf.c,
 * kh_harden.c, kh_stats.c.
 */
#include "kh_internal.h"

/* A class list found corrupt is emptied, so it is never followed again, and
 * reported as KHEAP_E_FREELIST, which makes kh_leave() rebuild every list from
 * the headers: the blocks it held are not lost. Returns 0. */
static uintptr_t drop_class(struct kh_class *cl, struct kh_err *e, const void *p, const char *msg)
{
	kh_fail(e, KHEAP_E_FREELIST, p, msg);
	cl->head = 0, cl->count = 0;
	return 0;
}

/* Pop a cached block of class c and make it a plain used block, or 0. A
 * corrupt list is dropped (drop_class); the backend then serves. */
uintptr_t kh_cache_take(struct kheap *h, unsigned c, struct kh_err *e)
{
	struct kh_class *cl = &h->classes[c];
	void *p = kh_class_pop(cl, kh_key(h));
	if (p == NULL)
		return 0;
	if (p == KH_CLASS_BAD)
		return drop_class(cl, e, (void *)cl->head, "size-class link corrupt (write after free?)");
	uintptr_t b = kh_block_of(p);
	kh_word w = *kh_hdr(b);
	if (!kh_sealed(h, b, w) || (w & (KH_USED | KH_CACHED)) != (KH_USED | KH_CACHED) ||
	    (size_t)(w & KH_SIZE_MASK) != kh_class_block_size(c))
		return drop_class(cl, e, p, "size-class list holds a block that is not cached");
	if (KH_GRANT_NEIGHBOURS && !kh_next_ok(h, b)) {
		/* The list is sound, the neighbour is not: put b back, refuse it. */
		kh_class_push(cl, p, kh_key(h));
		return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "cached block's next header is corrupt or disagrees"), 0;
	}
	if (cl->head != 0 && kh_region_of(h, kh_block_of((void *)cl->head)) == NULL)
		/* The link decoded to an aligned address outside the heap: do
		 * not follow it next time. b itself is sound and is handed out. */
		drop_class(cl, e, p, "size-class link points outside the heap");
	if (KH_POISONS && !kh_poison_ok(b)) /* reported; the block is still sound */
		kh_fail(e, KHEAP_E_USE_AFTER_FREE, p, "freed memory was written after free");
	kh_set(h, b, kh_class_block_size(c), KH_USED | (w & KH_PREV_FREE), 0);
	h->n.cached -= kh_class_block_size(c);
	h->n.cached_blocks--;
	return b;
}

/* Cache used block b if it is exactly a class size and its list has room. */
bool kh_cache_put(struct kheap *h, uintptr_t b)
{
	size_t s = kh_size(b);
	if (s > KH_CLASS_MAX_BLOCK)
		return false;
	unsigned c = kh_size_class(s - KH_HDR);
	if (kh_class_block_size(c) != s || !kh_class_push(&h->classes[c], kh_payload(b), kh_key(h)))
		return false;
	kh_set(h, b, s, KH_USED | KH_CACHED | (kh_flags(b) & KH_PREV_FREE), 0);
	kh_release_hook(b);
	h->n.cached += s;
	h->n.cached_blocks++;
	return true;
}

/* Return every cached block to the backend. O(total cache capacity). */
void kh_cache_flush(struct kheap *h, struct kh_err *e)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		uintptr_t b;
		while ((b = kh_cache_take(h, c, e)) != 0) {
			if (kh_backend_free(h, b, e) == 0) /* neighbour corrupt: keep it held */
				kh_count_out(h, kh_size(b), 1);
		}
	}
}

/* Class-list capacities: each class holds at most KHEAP_CLASS_CACHE_MAX
 * blocks, and all together at most 1/KHEAP_CACHE_SHARE of the heap. */
void kh_cache_limits(struct kheap *h)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		size_t cap = h->n.total / ((size_t)KHEAP_CACHE_SHARE * KH_NCLASSES * kh_class_block_size(c));
		h->classes[c].limit = cap < KHEAP_CLASS_CACHE_MAX ? (uint32_t)cap : KHEAP_CLASS_CACHE_MAX;
	}
}

