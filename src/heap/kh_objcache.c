/*
 * kh_objcache.c: the object-cache API (kheap.h, "Object caches"; layout and
 * states in kh_objcache.h; the locked pool work in kh_objcache_pool.c).
 *
 * kheap_cache_alloc and kheap_cache_free on a numbered CPU: interrupts
 * masked, the CPU's list of the cache popped or pushed with the assembly
 * kh_cpu_pop/kh_cpu_push, no lock; an empty list refills a batch and a full
 * one drains a batch under the lock, still with interrupts masked. Without
 * a per-CPU cache every call takes the lock and uses the depot. The free
 * path's checks are kh_held's (kh_held_obj), which also tells a wrong cache.
 *
 * Calls down only: kh_objcache_pool.c, kh_percpu.c (a drain request),
 * kh_harden.c, kh_alloc.c (flushing when memory runs short).
 */
#include "kh_objcache.h"

static bool cache_live(const struct kheap_cache *c)
{
	return c != NULL && ((uintptr_t)c & 63) == 0 && c->magic == (KH_OBJ_MAGIC ^ (uintptr_t)c) &&
	       c->index < KHEAP_MAX_CACHES && kh_live(c->h) && c->h->caches[c->index] == c;
}

/* The hot paths' handle check: the magic alone, which destroy clears (the
 * other calls, and a failure here, check everything). */
static inline bool cache_ok_fast(const struct kheap_cache *c)
{
	return c != NULL && ((uintptr_t)c & 63) == 0 && c->magic == (KH_OBJ_MAGIC ^ (uintptr_t)c);
}

static bool cache_ok(const struct kheap_cache *c, const void *caller)
{
	if (__builtin_expect(cache_live(c), 1))
		return true;
	kh_report_global(KHEAP_E_BAD_CACHE, c, caller, "not a live object cache (destroyed, or never created)");
	return false;
}

size_t kheap_cache_size(void) { return sizeof(struct kheap_cache); }

/* ---- create, destroy ------------------------------------------------------ */

struct kheap_cache *kheap_cache_create(struct kheap *h, const char *name, size_t size, size_t align, unsigned flags)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	if (name == NULL)
		kh_fail(&e, KHEAP_E_NULL, name, "kheap_cache_create: name is NULL");
	else if (align != 0 && (align & (align - 1)))
		kh_fail(&e, KHEAP_E_BAD_ALIGN, (void *)align, "kheap_cache_create: align is not a power of two");
	else if (size == 0 || size > KHEAP_CACHE_MAX_SIZE || align > KHEAP_CACHE_MAX_ALIGN ||
		 (flags & ~KHEAP_CACHE_ZERO))
		kh_fail(&e, KHEAP_E_BAD_ARG, (void *)size, "kheap_cache_create: size, align or flags out of range");
	if (e.kind != KHEAP_OK) {
		kh_report_counted(h, &e, caller);
		return NULL;
	}
	struct kheap_cache *c = kheap_aligned_alloc(h, 64, sizeof *c);
	if (c == NULL)
		return NULL;
	kh_zero_words(c, sizeof *c);
	c->h = h;
	c->name = name;
	c->size = size;
	c->align = align > KHEAP_ALIGN ? align : KHEAP_ALIGN;
	c->flags = flags;
	size_t s = kh_block_for(size + KH_TAIL);
	c->block = (s + c->align - 1) & ~(c->align - 1);
	size_t cap = KHEAP_CPU_CACHE_BYTES / c->block;
	c->limit = (uint32_t)(cap < 2 ? 2 : cap > KHEAP_CPU_CACHE_MAX ? KHEAP_CPU_CACHE_MAX : cap);
	c->batch = (c->limit + 1) / 2 < KHEAP_CPU_BATCH ? (c->limit + 1) / 2 : KHEAP_CPU_BATCH;
	c->depot.limit = 2 * c->limit;
	for (unsigned k = 0; k < KH_NCPU; k++)
		c->cpu[k].l.limit = c->limit;

	uintptr_t irq = kh_enter(h);
	unsigned i = 0;
	while (i < KHEAP_MAX_CACHES && h->caches[i] != NULL)
		i++;
	if (i < KHEAP_MAX_CACHES) {
		c->index = i;
		c->magic = KH_OBJ_MAGIC ^ (uintptr_t)c;
		h->caches[i] = c;
	} else {
		kh_fail(&e, KHEAP_E_BAD_ARG, h, "kheap_cache_create: KHEAP_MAX_CACHES caches exist");
	}
	kh_leave(h, irq, &e, caller);
	if (i < KHEAP_MAX_CACHES)
		return c;
	kheap_free(h, c);
	return NULL;
}

int kheap_cache_destroy(struct kheap_cache *c)
{
	const void *caller = KH_CALLER();
	if (c == NULL)
		return 0;
	if (!cache_ok(c, caller))
		return -KHEAP_E_BAD_CACHE;
	struct kheap *h = c->h;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	struct kheap_cache_stats st; /* its listed objects: every CPU's and the depot's */
	kh_obj_figures(h, c->index, &st);
	bool held = st.objects != st.cached;
	if (held) {
		kh_fail(&e, KHEAP_E_BAD_ARG, c, "kheap_cache_destroy: objects of the cache are still held");
	} else {
		/* No CPU is inside a call on c (the caller's word): every list is ours. */
		for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++)
			kh_obj_drain(h, c, &c->cpu[k].l, kh_tkey(h, k), k, 0, false, &e);
		kh_obj_drain(h, c, &c->depot, kh_tkey(h, KH_SHARED), KH_SHARED, 0, false, &e);
		/* The heap's alloc and free counts keep what the CPUs did on c. */
		for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++) {
			h->n.allocs += c->cpu[k].allocs + c->cpu[k].hits;
			h->n.frees += c->cpu[k].frees;
		}
		h->caches[c->index] = NULL;
		c->magic = 0;
	}
	kh_leave(h, irq, &e, caller);
	if (held)
		return -KHEAP_E_BAD_ARG;
	kheap_free(h, c);
	return 0;
}

/* ---- allocate ------------------------------------------------------------- */

/* Hand object p of c to the caller: poison checked, canary armed, zeroed
 * when asked. */
static void *grant(struct kheap *h, struct kheap_cache *c, void *p, struct kh_err *e)
{
	if (KH_POISONS || KH_CANARIES)
		kh_grant_checks(h, kh_block_of(p), e);
	if (c->flags & KHEAP_CACHE_ZERO)
		kh_zero_words(p, c->block - KH_HDR - KH_TAIL);
	return p;
}

/* The list that holds the calling CPU's reserve of c: its own (slot k),
 * or, on a CPU without a per-CPU cache, the depot (slot KH_SHARED). */
static struct kh_class *reserve_list(struct kheap_cache *c, unsigned k, unsigned *slot, uint32_t **rsv)
{
	bool mine = KH_PERCPU && kh_cpu_named(k);
	*slot = mine ? k : KH_SHARED;
	*rsv = mine ? &c->cpu[k].reserve : &c->depot_reserve;
	return mine ? &c->cpu[k].l : &c->depot;
}

/* An allocation took one object from list l, whose reserve is *rsv: one
 * less is promised, and the room the reserve added to the list's limit
 * goes with it. */
static inline void use_reserve(struct kh_class *l, uint32_t *rsv)
{
	if (*rsv > 0) {
		(*rsv)--;
		l->limit--;
	}
}

/* An object from list l of slot slot, refilling it when empty; when
 * memory runs short, every cache's and list's spare goes back to the
 * backend first (kh_flush_all), as an allocation does before it fails.
 * NULL is an OOM (counted, for the hook) unless *e says otherwise. */
static void *take_or_flush(struct kheap *h, struct kheap_cache *c, struct kh_class *l, unsigned slot,
			   struct kh_err *e)
{
	uintptr_t tkey = kh_tkey(h, slot);
	bool flushed = false;
	for (int tries = 0; tries < 3; tries++) {
		if (l->count > 0 || kh_obj_refill(h, c, l, tkey, slot, e)) {
			void *p = kh_obj_take(h, c, l, tkey, slot, e);
			if (p != NULL)
				return p;
		} else if (!flushed && e->kind == KHEAP_OK) {
			kh_flush_all(h, e);
			flushed = true;
		} else {
			break;
		}
	}
	if (e->kind == KHEAP_OK) {
		c->failures++;
		h->n.ooms++;
		e->oom = true;
		e->oom_size = c->block;
	}
	return NULL;
}

/* The locked path: the depot (no per-CPU cache for this CPU). */
static __attribute__((noinline)) void *alloc_locked(struct kheap *h, struct kheap_cache *c, const void *caller)
{
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	/* A reserved object may be taken: only such calls promised one. */
	void *p = take_or_flush(h, c, &c->depot, KH_SHARED, &e);
	if (p != NULL) {
		use_reserve(&c->depot, &c->depot_reserve);
		c->allocs++;
		h->n.allocs++;
		grant(h, c, p, &e); /* the poison check first: the tag lies in the poisoned span */
		kh_tag_put(kh_block_of(p), (struct kh_tag){caller, h->n.allocs});
	}
	kh_leave(h, irq, &e, caller);
	return p;
}

/* The per-CPU path's locked stretch (interrupts already masked): honour a
 * drain request, refill, pop. */
static __attribute__((noinline)) void *alloc_refill(struct kheap *h, struct kheap_cache *c, unsigned k, uintptr_t irq,
						  const void *caller)
{
	struct kh_err e = KH_ERR_AT(caller);
	struct kh_cpu *cpu = &h->cpus[k];
	struct kh_obj_cpu *oc = &c->cpu[k];
	kh_cpu_slow_begin(h, cpu, &e);
	void *p = take_or_flush(h, c, &oc->l, k, &e);
	if (p != NULL) {
		use_reserve(&oc->l, &oc->reserve);
		__atomic_store_n(&oc->allocs, oc->allocs + 1, __ATOMIC_RELAXED);
		grant(h, c, p, &e);
	}
	kh_leave(h, irq, &e, caller);
	return p;
}

void *kheap_cache_alloc(struct kheap_cache *c)
{
	const void *caller = KH_CALLER();
	if (!__builtin_expect(cache_ok_fast(c), 1) && !cache_ok(c, caller))
		return NULL;
	struct kheap *h = c->h;
	if (!KH_PERCPU)
		return alloc_locked(h, c, caller);
	uintptr_t irq = kh_irq_save();
	unsigned k = kh_cpu_id();
	if (!kh_cpu_named(k)) {
		kh_irq_restore(irq);
		return alloc_locked(h, c, caller);
	}
	struct kh_cpu *cpu = &h->cpus[k];
	struct kh_obj_cpu *oc = &c->cpu[k];
	if (__builtin_expect(!kh_drain_asked(cpu), 1)) {
		void *p = kh_cpu_pop(&oc->l, kh_key(h), cpu->tkey);
		uintptr_t next = oc->l.head;
		if (p != NULL && p != KH_CLASS_BAD &&
		    (next == 0 || (next - KH_HDR >= cpu->lo && next < cpu->hi) ||
		     kh_region_of(h, kh_block_of((void *)next)) != NULL)) {
			use_reserve(&oc->l, &oc->reserve);
			__atomic_store_n(&oc->hits, oc->hits + 1, __ATOMIC_RELAXED);
			struct kh_err e = KH_ERR_AT(caller);
			grant(h, c, p, &e);
			bool due = KH_PERIODIC_CHECK && kh_check_due(h); /* level 3 */
			kh_irq_restore(irq);
			if (__builtin_expect(due || e.kind != KHEAP_OK, 0)) {
				uintptr_t again = kh_enter(h);
				if (due)
					kh_full_check(h, &e);
				kh_leave(h, again, &e, caller);
			}
			return p;
		}
		if (p != NULL && p != KH_CLASS_BAD) /* p is sound, the list past it is not: */
			kh_cpu_push(&oc->l, p, kh_key(h), cpu->tkey); /* the locked pop repairs it */
	}
	return alloc_refill(h, c, k, irq, caller);
}

/* ---- free ----------------------------------------------------------------- */

/* Everything but a plain free to a list with room: the checks that name
 * what is wrong, a drain, the depot. Interrupts masked on entry (irq). */
static __attribute__((noinline)) void free_slow(struct kheap_cache *c, void *p, uintptr_t irq, unsigned k,
						const void *caller)
{
	struct kheap *h = c->h;
	struct kh_err e = KH_ERR_AT(caller);
	bool mine = KH_PERCPU && kh_cpu_named(k);
	uintptr_t b = kh_block_of(p);
	if (!(mine && kh_obj_plainly_held(h, &h->cpus[k], p, c->index, c->block))) {
		b = kh_held_obj(h, p, &e, mine ? KH_HELD_OWN : KH_HELD_HEADER, c->index);
		/* Relaxed: the backend may rewrite the header's PREV_FREE under the lock. */
		if (b != 0 && (size_t)(__atomic_load_n(kh_hdr(b), __ATOMIC_RELAXED) & KH_SIZE_MASK) != c->block)
			b = 0, kh_fail(&e, KHEAP_E_WRONG_CACHE, p, "object's size disagrees with its cache");
	}
	if (b == 0) {
		kh_irq_restore(irq);
		kh_report_counted(h, &e, caller);
		return;
	}
	if (mine) {
		struct kh_cpu *cpu = &h->cpus[k];
		struct kh_obj_cpu *oc = &c->cpu[k];
		kh_release_hook(b);
		if (__builtin_expect(kh_drain_asked(cpu) || oc->l.count >= oc->l.limit, 0)) {
			kh_cpu_slow_begin(h, cpu, &e);
			if (oc->l.count >= oc->l.limit) /* half a batch to the depot, the rest to the backend */
				kh_obj_drain(h, c, &oc->l, cpu->tkey, k, oc->l.count - c->batch, true, &e);
			kh_settle(h, &e);
			kh_lock_release(&h->lock);
		}
		kh_cpu_push(&oc->l, p, kh_key(h), cpu->tkey);
		__atomic_store_n(&oc->frees, oc->frees + 1, __ATOMIC_RELAXED);
		kh_irq_restore(irq);
		if (e.kind != KHEAP_OK)
			kh_report(h, &e, caller);
		return;
	}
	kh_irq_restore(irq);
	/* The locked path checks again with the neighbours, then the depot. */
	irq = kh_enter(h);
	b = kh_held_obj(h, p, &e, KH_HELD_LOCKED, c->index);
	if (b != 0) {
		kh_release_hook(b);
		if (c->depot.count >= c->depot.limit)
			kh_obj_drain(h, c, &c->depot, kh_tkey(h, KH_SHARED), KH_SHARED, c->depot.count - c->batch,
				     false, &e);
		kh_cpu_push(&c->depot, p, kh_key(h), kh_tkey(h, KH_SHARED));
		c->frees++;
		h->n.frees++;
	}
	kh_leave(h, irq, &e, caller);
}

void kheap_cache_free(struct kheap_cache *c, void *p)
{
	const void *caller = KH_CALLER();
	if (p == NULL || (!__builtin_expect(cache_ok_fast(c), 1) && !cache_ok(c, caller)))
		return;
	struct kheap *h = c->h;
	uintptr_t irq = kh_irq_save();
	unsigned k = kh_cpu_id();
	if (KH_PERCPU && __builtin_expect(kh_cpu_named(k), 1)) {
		struct kh_cpu *cpu = &h->cpus[k];
		struct kh_obj_cpu *oc = &c->cpu[k];
		if (__builtin_expect(!kh_drain_asked(cpu) && oc->l.count < oc->l.limit &&
					     kh_obj_plainly_held(h, cpu, p, c->index, c->block),
				     1)) {
			kh_release_hook(kh_block_of(p));
			kh_cpu_push(&oc->l, p, kh_key(h), cpu->tkey);
			__atomic_store_n(&oc->frees, oc->frees + 1, __ATOMIC_RELAXED);
			kh_irq_restore(irq);
			return;
		}
	}
	free_slow(c, p, irq, k, caller);
}

/* ---- reserve -------------------------------------------------------------- */

/* Take n from the room list l (slot's) had for a reserve; what it holds
 * beyond the room left goes on: a CPU's to the depot, the depot's to the
 * backend. Lock held. */
static void shrink_room(struct kheap *h, struct kheap_cache *c, struct kh_class *l, unsigned slot, uint32_t n,
			struct kh_err *e)
{
	l->limit -= n;
	if (l->count > l->limit)
		kh_obj_drain(h, c, l, kh_tkey(h, slot), slot, l->limit, slot != KH_SHARED, e);
}

int kheap_cache_reserve(struct kheap_cache *c, unsigned n)
{
	const void *caller = KH_CALLER();
	if (!cache_ok(c, caller))
		return -KHEAP_E_BAD_CACHE;
	struct kheap *h = c->h;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	unsigned slot;
	uint32_t *rsv;
	struct kh_class *l = reserve_list(c, kh_cpu_id(), &slot, &rsv);
	uintptr_t tkey = kh_tkey(h, slot);
	int rc = 0;
	if (n > KHEAP_CACHE_RESERVE_MAX - *rsv) {
		kh_fail(&e, KHEAP_E_BAD_ARG, c, "kheap_cache_reserve: reserve above KHEAP_CACHE_RESERVE_MAX");
		rc = -KHEAP_E_BAD_ARG;
	} else {
		uint32_t want = *rsv + n;
		l->limit += n; /* room for the reserve on top of the list's own */
		for (int tries = 0; l->count < want && tries < 2; tries++) {
			while (l->count < want && kh_obj_refill(h, c, l, tkey, slot, &e))
				;
			if (l->count < want && e.kind == KHEAP_OK && tries == 0)
				kh_flush_all(h, &e); /* keeps reserves, frees room */
		}
		if (l->count >= want) {
			*rsv = want;
			c->fills++;
		} else {
			shrink_room(h, c, l, slot, n, &e);
			c->failures++;
			rc = -1;
		}
	}
	kh_leave(h, irq, &e, caller);
	return rc;
}

unsigned kheap_cache_unreserve(struct kheap_cache *c, unsigned n)
{
	const void *caller = KH_CALLER();
	if (!cache_ok(c, caller))
		return 0;
	struct kheap *h = c->h;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	unsigned slot;
	uint32_t *rsv;
	struct kh_class *l = reserve_list(c, kh_cpu_id(), &slot, &rsv);
	uint32_t d = n < *rsv ? n : *rsv;
	*rsv -= d;
	shrink_room(h, c, l, slot, d, &e);
	unsigned left = *rsv;
	kh_leave(h, irq, &e, caller);
	return left;
}

/* ---- shrink, stats, walk -------------------------------------------------- */

size_t kheap_cache_shrink(struct kheap_cache *c)
{
	const void *caller = KH_CALLER();
	if (!cache_ok(c, caller))
		return 0;
	struct kheap *h = c->h;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	size_t n = kh_obj_drain(h, c, &c->depot, kh_tkey(h, KH_SHARED), KH_SHARED, c->depot_reserve, false, &e);
	unsigned me = kh_cpu_id();
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++) {
		struct kh_obj_cpu *oc = &c->cpu[k];
		if (k == me)
			n += kh_obj_drain(h, c, &oc->l, kh_tkey(h, k), k, oc->reserve, false, &e);
		else if (__atomic_load_n(&oc->l.count, __ATOMIC_RELAXED) > oc->reserve)
			__atomic_store_n(&h->cpus[k].drain, 1, __ATOMIC_RELAXED);
	}
	c->shrinks += n;
	kh_leave(h, irq, &e, caller);
	return n;
}

int kheap_cache_stats(struct kheap_cache *c, struct kheap_cache_stats *out)
{
	const void *caller = KH_CALLER();
	if (!cache_ok(c, caller))
		return -KHEAP_E_BAD_CACHE;
	if (out == NULL) {
		kh_report_global(KHEAP_E_NULL, out, caller, "kheap_cache_stats: out is NULL");
		return -KHEAP_E_NULL;
	}
	uintptr_t irq = kh_enter(c->h);
	kh_obj_figures(c->h, c->index, out);
	kh_exit(c->h, irq);
	return 0;
}

void kheap_cache_walk(struct kheap *h, kheap_cache_fn fn, void *ctx)
{
	if (!kh_handle_ok(h, KH_CALLER()) || fn == NULL)
		return;
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++) {
		uintptr_t irq = kh_enter(h);
		struct kheap_cache *c = h->caches[i];
		kh_exit(h, irq);
		if (c != NULL)
			fn(ctx, c);
	}
}
