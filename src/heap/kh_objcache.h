/*
 * kh_objcache.h: the object caches' layout, private to kh_objcache.c and
 * kh_objcache_pool.c (the rest of the heap goes through kh_internal.h's
 * kh_obj_* calls).
 *
 * A cache (struct kheap_cache) is heap number i's slot h->caches[i]. Its
 * objects are used blocks of c->block bytes whose header carries KH_CACHED
 * and i in the alignment field (KH_OBJ_BITS(i)); the seal covers both, so a
 * pointer names its cache in O(1) and no other cache, kheap_free or realloc
 * takes it. An object is always exactly one of:
 *
 *   held      token word not a slot's, header as carved;
 *   on CPU k's list of c: c->cpu[k].l, token names k (kh_tkey(h, k)),
 *             owned by CPU k alone with interrupts masked, as the per-CPU
 *             size-class lists (I8); the first cpu[k].reserve of them are
 *             promised to kheap_cache_reserve;
 *   in c's depot: c->depot, token names KH_SHARED, lock held; its first
 *             depot_reserve are promised to CPUs without a per-CPU cache.
 *
 * Every object counts as in use in h->n, wherever it is (objects move
 * between lists and the backend only under the lock: carve, drain, shrink);
 * kheap_get_stats moves the listed ones to cached. c->objects counts them
 * all, under the lock (kheap_check compares it with a walk: I9).
 *
 * Lists are struct kh_class, so the per-CPU pops and pushes are the
 * assembly kh_cpu_pop/kh_cpu_push with their C twins and differential
 * tests. A list's limit is its base limit plus its reserve, so a reserved
 * object always has room to come back.
 */
#ifndef KH_OBJCACHE_H
#define KH_OBJCACHE_H

#include "kh_internal.h"

/* One CPU's part of a cache: its own cache line. */
struct kh_obj_cpu {
	struct kh_class l; /* free objects; limit = the cache's limit + reserve */
	uint32_t reserve;  /* of l.count, promised by kheap_cache_reserve */
	uint32_t pad_;
	uint64_t allocs;   /* kheap_cache_alloc served on this CPU under the lock (a refill) */
	uint64_t hits;     /* and without it (one counter on the fast path) */
	uint64_t frees;    /* kheap_cache_free taken on this CPU */
	uint64_t pad2_[2];
};
_Static_assert(sizeof(struct kh_obj_cpu) == 64, "a CPU's part of a cache is one cache line");

#define KH_OBJ_MAGIC ((uintptr_t)0x6b6d656d63616368u) /* "kmemcach" */

struct kheap_cache {
	uintptr_t magic;   /* KH_OBJ_MAGIC ^ address: a live cache */
	struct kheap *h;
	const char *name;
	size_t size;       /* asked for */
	size_t align;      /* objects' payload alignment, >= KHEAP_ALIGN */
	size_t block;      /* every object's block size: a multiple of align */
	unsigned index;    /* h->caches[index] == this; in each object's header */
	unsigned flags;    /* KHEAP_CACHE_ZERO */
	uint32_t limit;    /* a per-CPU list's base limit */
	uint32_t batch;    /* objects a refill or a drain moves */
	/* Under the lock: */
	struct kh_class depot;
	uint32_t depot_reserve;
	uint32_t pad_;
	size_t objects;    /* carved and not given back (I9) */
	uint64_t slabs, misses, fills, shrinks, failures;
	uint64_t allocs, frees; /* on the locked path (depot) */
	_Alignas(64) struct kh_obj_cpu cpu[KH_NCPU];
};

/* kh_objcache_pool.c: carving, refilling, draining, repair. Lock held. */
/* Put objects on list l (token key tkey, slot number slot): from the depot
 * first when l is a CPU's, then by carving a backend block; at most
 * c->batch of them, never past l's limit. False when none came (out of
 * memory, or a problem in *e). */
bool kh_obj_refill(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, unsigned slot,
		   struct kh_err *e);
/* Pop from list l of slot slot; a corrupt list is repaired (reported) and
 * taken as empty. NULL when empty. */
void *kh_obj_take(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, unsigned slot,
		  struct kh_err *e);
/* Move objects from list l to the depot (to_depot) or the backend, until
 * l holds keep. Returns the objects that went to the backend. */
size_t kh_obj_drain(struct kheap *h, struct kheap_cache *c, struct kh_class *l, uintptr_t tkey, unsigned slot,
		    uint32_t keep, bool to_depot, struct kh_err *e);

#endif /* KH_OBJCACHE_H */
