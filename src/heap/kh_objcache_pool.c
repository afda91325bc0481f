/*
 * kh_objcache_pool.c: where object-cache objects come from and go back to,
 * all under the heap lock (layout and states in kh_objcache.h): carving a
 * backend block into objects, refilling a list from the depot, draining a
 * list to the depot or the backend, repairing a corrupt list, and the
 * heap-wide hooks (drain a CPU, flush, statistics, check) that kh_internal.h
 * declares for the rest of the heap.
 *
 * Calls down only: kh_cache.c (kh_carve_list), kh_tlsf.c (backend),
 * kh_harden.c, kh_walk.c.
 */
#include "kh_objcache.h"

/* Carve objects onto list l from one backend block: up to want, fewer when
 * memory is short (then one object from a block with room to split).
 * Each object is sealed with the cache's bits, poisoned (level 1) and its
 * canary armed before it goes on the list. Returns how many. */
static uint32_t carve(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, uint32_t want,
		      struct kh_err *e)
{
	size_t s = c->block;
	bool aligned = c->align > KHEAP_ALIGN;
	uintptr_t b = aligned ? kh_backend_aligned(h, want * s, c->align, e)
			      : kh_backend_alloc_upto(h, want > 1 ? s + KH_MIN_BLOCK : s, want * s, e);
	if (b == 0 && want > 1 && e->kind == KHEAP_OK) {
		/* One object: from an aligned block that fits it or leaves a
		 * whole block, or from an exact hole. */
		b = aligned ? kh_backend_aligned(h, s + KH_MIN_BLOCK, c->align, e) : kh_backend_alloc(h, s, e);
	}
	if (b == 0)
		return 0;
	uint32_t got = kh_carve_list(h, b, s, want, KH_OBJ_BITS(c->index), c->index, l, tkey, e);
	kh_count_out(h, got * s, got); /* every object counts as in use */
	c->objects += got;
	c->slabs += got != 0;
	return got;
}

/* Repair list l of slot slot, found corrupt: empty it (and its reserve),
 * and give every object of c whose token names the slot back to the
 * backend (a linear walk, on this error only). Reported as KHEAP_E_FREELIST. */
struct repair {
	struct kheap *h;
	struct kheap_cache *c;
	struct kh_err *e;
	unsigned slot;
};

static uintptr_t repair_block(void *ctx, uintptr_t b, kh_word w)
{
	struct repair *rp = ctx;
	struct kheap *h = rp->h;
	if (!kh_is_obj(w) || kh_obj_cache(w) != rp->c->index || kh_token_cpu(h, b) != rp->slot)
		return 0;
	__atomic_store_n(&((uintptr_t *)kh_payload(b))[1], 0, __ATOMIC_RELAXED);
	size_t s = (size_t)(w & KH_SIZE_MASK);
	kh_set(h, b, s, (w & KH_FLAGS & ~KH_CACHED), 0);
	uintptr_t f = kh_backend_free(h, b, rp->e);
	if (f == 0) /* neighbour corrupt (reported): a plain held block now */
		return 0;
	kh_count_back(h, s, 1);
	rp->c->objects--;
	return f + kh_size(f);
}

static void repair(struct kheap *h, struct kheap_cache *c, struct kh_class *l, unsigned slot, struct kh_err *e)
{
	kh_fail(e, KHEAP_E_FREELIST, (void *)l->head, "object-cache list corrupt (write after free?)");
	l->head = 0;
	__atomic_store_n(&l->count, 0, __ATOMIC_RELAXED);
	if (slot == KH_SHARED) {
		c->depot_reserve = 0;
	} else {
		l->limit = c->limit;
		c->cpu[slot].reserve = 0;
	}
	struct repair rp = {h, c, e, slot};
	kh_walk_blocks(h, repair_block, &rp, false);
}

void *kh_obj_take(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, unsigned slot,
		  struct kh_err *e)
{
	void *p = kh_cpu_pop(l, kh_key(h), tkey);
	if (p == KH_CLASS_BAD || (l->head != 0 && kh_region_of(h, kh_block_of((void *)l->head)) == NULL)) {
		repair(h, c, l, slot, e);
		if (p == KH_CLASS_BAD)
			return NULL;
	}
	if (p != NULL)
		kh_poison_check(kh_block_of(p), e);
	return p;
}

bool kh_obj_refill(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, unsigned slot,
		   struct kh_err *e)
{
	uint32_t want = c->batch;
	if (want > l->limit - l->count)
		want = l->limit - l->count;
	c->misses++;
	uint32_t moved = 0;
	while (slot != KH_SHARED && moved < want && c->depot.count > c->depot_reserve) {
		void *p = kh_obj_take(h, c, &c->depot, kh_tkey(h, KH_SHARED), KH_SHARED, e);
		if (p == NULL)
			break;
		kh_cpu_push(l, p, kh_key(h), tkey);
		moved++;
	}
	/* Carve unless the backend itself reported a problem in this stretch
	 * (a list repaired just now, KHEAP_E_FREELIST from kh_obj_take, is no
	 * reason to fail: the backend checks every link it follows anyway). */
	if (moved == 0 && want > 0 && (e->kind == KHEAP_OK || e->kind == KHEAP_E_FREELIST))
		moved = carve(h, c, l, tkey, want, e);
	return moved != 0;
}

/* Object p, off a list, to the backend: its neighbours checked first, as
 * any cached block's (kh_merge_ok). */
static bool to_backend(struct kheap *h, struct kheap_cache *c, void *p, struct kh_err *e)
{
	uintptr_t b = kh_block_of(p);
	size_t s = kh_size(b);
	if (!kh_merge_ok(h, b, e))
		return false; /* reported: it stays a held object, lost to the cache */
	kh_set(h, b, s, kh_flags(b) & ~KH_CACHED, 0);
	if (kh_backend_free(h, b, e) == 0)
		return false;
	kh_count_back(h, s, 1);
	c->objects--;
	return true;
}

size_t kh_obj_drain(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, unsigned slot,
		    uint32_t keep, bool to_depot, struct kh_err *e)
{
	size_t freed = 0;
	while (l->count > keep) {
		void *p = kh_obj_take(h, c, l, tkey, slot, e);
		if (p == NULL)
			break;
		if (to_depot && kh_cpu_push(&c->depot, p, kh_key(h), kh_tkey(h, KH_SHARED)))
			continue;
		freed += to_backend(h, c, p, e);
	}
	return freed;
}

/* ---- the heap-wide hooks (kh_internal.h) ---------------------------------- */

void kh_obj_drain_cpu(struct kheap *h, unsigned k, bool dead, struct kh_err *e)
{
	for (unsigned i = 0; KH_PERCPU && k < KH_NCPU && i < KHEAP_MAX_CACHES; i++) {
		struct kheap_cache *c = h->caches[i];
		if (c == NULL)
			continue;
		struct kh_obj_cpu *oc = &c->cpu[k];
		if (dead) {
			oc->reserve = 0;
			oc->l.limit = c->limit;
		}
		c->shrinks += kh_obj_drain(h, c, &oc->l, kh_tkey(h, k), k, oc->reserve, false, e);
	}
}

void kh_obj_flush(struct kheap *h, struct kh_err *e)
{
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++) {
		struct kheap_cache *c = h->caches[i];
		if (c != NULL)
			c->shrinks += kh_obj_drain(h, c, &c->depot, kh_tkey(h, KH_SHARED), KH_SHARED, c->depot_reserve,
						   false, e);
	}
}

size_t kh_obj_cached_elsewhere(struct kheap *h)
{
	size_t bytes = 0;
	unsigned me = kh_cpu_id();
	for (unsigned i = 0; KH_PERCPU && i < KHEAP_MAX_CACHES; i++) {
		const struct kheap_cache *c = h->caches[i];
		for (unsigned k = 0; c != NULL && k < KH_NCPU; k++)
			if (k != me)
				bytes += __atomic_load_n(&c->cpu[k].l.count, __ATOMIC_RELAXED) * c->block;
	}
	return bytes;
}

void kh_obj_stats(const struct kheap *h, size_t *bytes, size_t *blocks, uint64_t *allocs, uint64_t *frees)
{
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++) {
		const struct kheap_cache *c = h->caches[i];
		if (c == NULL)
			continue;
		size_t n = c->depot.count; /* the locked path's operations are in h->n already */
		for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++) {
			n += __atomic_load_n(&c->cpu[k].l.count, __ATOMIC_RELAXED);
			*allocs += __atomic_load_n(&c->cpu[k].allocs, __ATOMIC_RELAXED) +
				   __atomic_load_n(&c->cpu[k].hits, __ATOMIC_RELAXED);
			*frees += __atomic_load_n(&c->cpu[k].frees, __ATOMIC_RELAXED);
		}
		*bytes += n * c->block;
		*blocks += n;
	}
}

/* One list of c (slot's, with its reserve) as kheap_check walks it. */
static size_t check_list(const struct kheap *h, const struct kheap_cache *c, const struct kh_class *l,
			 unsigned slot, uint32_t reserve, kh_bad_fn bad, void *ctx)
{
	struct kh_list_want want = {KH_USED | KH_CACHED | KH_ALG_MASK, KH_OBJ_BITS(c->index), c->block, slot, reserve,
				    "object-cache list holds a block that is not one of its objects",
				    "object-cache list count, limit or reserve wrong"};
	return kh_check_list(h, l, &want, bad, ctx);
}

void kh_obj_check(const struct kheap *h, unsigned i, size_t objs, size_t depot, size_t mine, unsigned cpu,
		  kh_bad_fn bad, void *ctx)
{
	const struct kheap_cache *c = h->caches[i];
	if (c == NULL) {
		if (objs != 0)
			bad(ctx, (uintptr_t)&h->caches[i], "objects of an object cache that does not exist");
		return;
	}
	if (c->magic != (KH_OBJ_MAGIC ^ (uintptr_t)c) || c->h != h || c->index != i ||
	    c->block % c->align != 0 || c->block < KH_MIN_BLOCK) {
		bad(ctx, (uintptr_t)c, "object-cache descriptor overwritten");
		return;
	}
	if (check_list(h, c, &c->depot, KH_SHARED, c->depot_reserve, bad, ctx) != depot)
		bad(ctx, (uintptr_t)&c->depot, "object-cache depot and region walk disagree");
	if (KH_PERCPU && kh_cpu_named(cpu) &&
	    check_list(h, c, &c->cpu[cpu].l, cpu, c->cpu[cpu].reserve, bad, ctx) != mine)
		bad(ctx, (uintptr_t)&c->cpu[cpu], "object-cache per-CPU list and region walk disagree");
	if (c->objects != objs)
		bad(ctx, (uintptr_t)c, "object-cache object count and region walk disagree");
}

/* The descriptor in slot i, if it looks like one: it lies in the heap and
 * its magic, heap and number agree. kheap_dump reads it unlocked, perhaps
 * on a damaged heap, so nothing else is read before this holds. */
static const struct kheap_cache *cache_at(const struct kheap *h, unsigned i)
{
	const struct kheap_cache *c = h->caches[i];
	uintptr_t a = (uintptr_t)c;
	if (c == NULL || (a & 63) || kh_region_of(h, a) == NULL || kh_region_of(h, a + sizeof *c - 1) == NULL)
		return NULL;
	return c->magic == (KH_OBJ_MAGIC ^ a) && c->h == h && c->index == i ? c : NULL;
}

bool kh_obj_figures(const struct kheap *h, unsigned i, struct kheap_cache_stats *out)
{
	const struct kheap_cache *c = i < KHEAP_MAX_CACHES ? cache_at(h, i) : NULL;
	if (c == NULL)
		return false;
	size_t cached = c->depot.count, reserved = c->depot_reserve;
	uint64_t allocs = c->allocs, frees = c->frees, hits = 0;
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++) {
		const struct kh_obj_cpu *oc = &c->cpu[k];
		cached += __atomic_load_n(&oc->l.count, __ATOMIC_RELAXED);
		reserved += __atomic_load_n(&oc->reserve, __ATOMIC_RELAXED);
		hits += __atomic_load_n(&oc->hits, __ATOMIC_RELAXED);
		allocs += __atomic_load_n(&oc->allocs, __ATOMIC_RELAXED) + __atomic_load_n(&oc->hits, __ATOMIC_RELAXED);
		frees += __atomic_load_n(&oc->frees, __ATOMIC_RELAXED);
	}
	*out = (struct kheap_cache_stats){
		.name = c->name,
		.obj_size = c->size,
		.obj_align = c->align,
		.obj_block = c->block,
		.objects = c->objects,
		.in_use = c->objects >= cached ? c->objects - cached : 0,
		.cached = cached,
		.reserved = reserved,
		.slabs = c->slabs,
		.allocs = allocs,
		.frees = frees,
		.hits = hits,
		.misses = c->misses,
		.reserve_fills = c->fills,
		.shrinks = c->shrinks,
		.failures = c->failures,
	};
	return true;
}
