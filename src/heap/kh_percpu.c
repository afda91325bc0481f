/*
 * kh_percpu.c: the per-CPU caches (layout and invariant I8 in kh_internal.h,
 * struct kh_cpu in kh_class.h).
 *
 * kheap_alloc and kheap_free try the fused assembly calls (kh_cpu_alloc,
 * kh_cpu_free) first. What those leave (a hardened build, several regions,
 * an empty, full or corrupt list, a drain request) comes here: the same
 * lists in C, with interrupts masked and without the lock
 * (kh_percpu_alloc, kh_percpu_free). An empty list is refilled and a full
 * one drained by a batch under the lock (refill, drain); a refill carves one
 * backend block into a batch. The CPU's own list work for a batch (the pops
 * of a drain, the pushes of a refill from the shared list) runs outside the
 * lock, through an array on the stack (struct moved). A drain marks its
 * batch on the shared list, and a refill that finds such a batch on top
 * takes it whole, reading none of its blocks under the lock: it claims them
 * after the unlock (kh_batch_take, kh_batch_claim in kh_cache.c), so that a
 * batch one CPU freed and another allocates (a producer and a consumer)
 * costs the lock O(1), not a cache miss per block.
 *
 * No CPU takes blocks from a live CPU's lists. kh_flush_cpus drains the
 * calling CPU's and sets the others' drain flags; each of those drains at
 * its next allocation or free (kh_drain_if_asked, and the fused calls,
 * which refuse while the flag is set), or when kheap_flush_others makes it
 * call kheap_trim_cpu. kheap_cpu_dead drains an offline CPU's.
 *
 * Calls down only: kh_cache.c (the shared lists a refill takes from and a
 * drain gives to), kh_tlsf.c, kh_stats.c, kh_harden.c.
 */
#include "kh_internal.h"

/* The span [lo, hi) the fused calls may read for the first n regions: their
 * blocks, from the first region's first block to the last one's end marker,
 * when each region starts where the one before it ends (the caller handed
 * over one contiguous range, so the few bytes between an end marker and the
 * next first block are the heap's to read); else empty, because the gaps
 * between regions are not the heap's to read, so the fused calls leave
 * every block to the C path, which asks kh_region_of. */
void kh_cpu_span(const struct kheap *h, unsigned n, uintptr_t *lo, uintptr_t *hi)
{
	bool joined = n >= 1;
	for (unsigned i = 1; joined && i < n; i++)
		joined = h->regions[i].lo == h->regions[i - 1].hi;
	*lo = joined ? h->regions[0].first : 0;
	*hi = joined ? h->regions[n - 1].end : 0;
}

/* Copy the heap's span and region count to CPU cpu's cache (the fast
 * path's snapshot, kh_internal.h). Lock held, or the heap not yet shared. */
void kh_cpu_sync(const struct kheap *h, struct kh_cpu *cpu)
{
	cpu->regions = h->nregions;
	kh_cpu_span(h, h->nregions, &cpu->lo, &cpu->hi);
}

void kh_cpu_limits(struct kheap *h)
{
	unsigned kept = kh_classes_upto(KHEAP_CPU_MAX_BLOCK);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		size_t s = kh_class_block_size(c);
		size_t cap = h->n.total / ((size_t)KHEAP_CACHE_SHARE * kept * KH_NCPU * s);
		size_t bytes = KHEAP_CPU_CACHE_BYTES / s < 2 ? 2 : KHEAP_CPU_CACHE_BYTES / s;
		if (cap > bytes)
			cap = bytes;
		if (s > KHEAP_CPU_MAX_BLOCK)
			cap = 0;
		__atomic_store_n(&h->cpu_limit[c], cap < KHEAP_CPU_CACHE_MAX ? (uint32_t)cap : KHEAP_CPU_CACHE_MAX,
				 __ATOMIC_RELAXED);
	}
}

struct repair {
	struct kheap *h;
	struct kh_err *e;
	size_t s;   /* the list's block size */
	unsigned k; /* the slot */
};

/* A block whose token names the slot goes back to the bins; the walk goes
 * on after the block it merged into, which may have grown both ways. */
static uintptr_t repair_block(void *ctx, uintptr_t b, kh_word w)
{
	struct repair *rp = ctx;
	struct kheap *h = rp->h;
	if ((size_t)(w & KH_SIZE_MASK) != rp->s || (w & (KH_USED | KH_CACHED)) != KH_USED ||
	    kh_token_cpu(h, b) != rp->k)
		return 0;
	__atomic_store_n(&((uintptr_t *)kh_payload(b))[1], 0, __ATOMIC_RELAXED);
	uintptr_t f = kh_backend_free(h, b, rp->e);
	if (f == 0) { /* neighbour corrupt (reported): the block stays held */
		if (rp->k == KH_SHARED)
			kh_count_out(h, rp->s, 1);
		return 0;
	}
	if (rp->k != KH_SHARED) /* per-CPU blocks count as in use */
		kh_count_back(h, rp->s, 1);
	return f + kh_size(f);
}

void kh_slot_repair(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct kh_err *e)
{
	kh_fail(e, KHEAP_E_FREELIST, (void *)cpu->cls[c].head, "size-class list corrupt (write after free?)");
	if (cpu == &h->cpus[KH_SHARED]) {
		/* Blocks of a batch another CPU is claiming still carry the
		 * shared token: wait, or the walk below would take them too. */
		kh_batch_quiesce(h);
		if (c < KH_BATCH_CLASSES)
			h->batches[c].n = 0;
	}
	cpu->cls[c].head = 0;
	__atomic_store_n(&cpu->cls[c].count, 0, __ATOMIC_RELAXED);
	struct repair rp = {h, e, kh_class_block_size(c), (unsigned)(cpu - h->cpus)};
	KH_ASSERT(rp.k < KH_NSLOTS && c < KH_NCLASSES);
	kh_walk_blocks(h, repair_block, &rp, false);
}

/* Pop from CPU cpu's class-c list. A popped block is sound (its token
 * was right); *bad says the list is corrupt past it (or at it, when the
 * result is KH_CLASS_BAD) and needs kh_slot_repair under the lock. */
static void *cpu_take(struct kheap *h, struct kh_cpu *cpu, unsigned c, bool *bad)
{
	struct kh_class *l = &cpu->cls[c];
	void *p = kh_cpu_pop(l, kh_key(h), cpu->tkey);
	if (__builtin_expect(p == KH_CLASS_BAD, 0) ||
	    (l->head != 0 && kh_region_of(h, kh_block_of((void *)l->head)) == NULL))
		*bad = true;
	return p;
}

/* Blocks a refill or a drain moves between a CPU's list and the shared
 * lists or the backend through an array on the stack, so that the CPU's
 * own list operations (a link, a token, the poison per block) run outside
 * the lock: under it, a refill only takes blocks and a drain only gives
 * them; a block in the array is counted in use, carries no token and is on
 * no list, as a held block. Up to KH_MOVE_MAX; a larger KHEAP_CPU_BATCH
 * moves the rest under the lock. */
#define KH_MOVE_MAX (KHEAP_CPU_BATCH < 32u ? KHEAP_CPU_BATCH : 32u)

struct moved {
	uint32_t n;
	uint32_t k;     /* a batch taken whole from the shared list (kh_batch_take): */
	uintptr_t head; /* its k blocks from head, claimed after the unlock */
	uintptr_t rest;
	uintptr_t b[KH_MOVE_MAX];
};

/* Block b (s bytes), off CPU cpu's list, back: to the shared class list
 * when it has room and bins is false, else to the backend, which checks its
 * neighbours where it merges (kh_backend_free). Lock held. */
static void give_back(struct kheap *h, uintptr_t b, size_t s, bool bins, struct kh_err *e)
{
	kh_count_back(h, s, 1);
	if ((bins || !kh_cache_put(h, b)) && kh_backend_free(h, b, e) == 0)
		kh_count_out(h, s, 1); /* neighbour corrupt (reported): keep it held */
}

/* Block b, taken for CPU cpu's class-c list, onto it. Only this CPU changes
 * the list and its limit, and its callers take no more than the limit
 * leaves room for, so the push has room. Interrupts masked. */
static void put_own(const struct kheap *h, struct kh_cpu *cpu, unsigned c, uintptr_t b)
{
	kh_release_hook(b); /* kh_cache_take checked it; the grant checks again */
	int pushed = kh_cpu_push(&cpu->cls[c], kh_payload(b), kh_key(h), cpu->tkey);
	KH_ASSERT(pushed);
	(void)pushed;
}

/* Hand up to n blocks of CPU cpu's class c back (give_back). Lock held. */
static void drain(struct kheap *h, struct kh_cpu *cpu, unsigned c, uint32_t n, bool bins, struct kh_err *e)
{
	size_t s = kh_class_block_size(c);
	for (; n > 0; n--) {
		bool bad = false;
		void *p = cpu_take(h, cpu, c, &bad);
		if (p != NULL && p != KH_CLASS_BAD)
			give_back(h, kh_block_of(p), s, bins, e);
		if (bad)
			kh_slot_repair(h, cpu, c, e);
		if (p == NULL || bad)
			return;
	}
}

/* Hand the moved blocks of class c back, as drain does. Lock held. */
static void give_moved(struct kheap *h, unsigned c, const struct moved *m, struct kh_err *e)
{
	for (uint32_t i = 0; i < m->n; i++)
		give_back(h, m->b[i], kh_class_block_size(c), false, e);
}

/* CPU cpu's class-c list back to the bins (realloc, when a block on it
 * stands right of one that grows). Lock held, cpu the calling CPU. */
void kh_drain_class(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct kh_err *e)
{
	drain(h, cpu, c, cpu->cls[c].count, true, e);
}

/* Everything on CPU cpu's lists back to the bins: the calling CPU's
 * (kheap_trim, OOM, kheap_trim_cpu), which keeps its object-cache
 * reserves, or an offline one's (kheap_cpu_dead, dead set), reserves too. */
void kh_drain_cpu(struct kheap *h, struct kh_cpu *cpu, bool dead, struct kh_err *e)
{
	__atomic_store_n(&cpu->drain, 0, __ATOMIC_RELAXED);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		drain(h, cpu, c, cpu->cls[c].count, true, e);
		if (dead)
			cpu->drains[c] = 0; /* the next owner of the number starts afresh */
	}
	kh_obj_drain_cpu(h, (unsigned)(cpu - h->cpus), dead, e);
}

/* Lock held: honour a drain request to the calling CPU, so that a CPU asked
 * to drain does so at its next allocation or free of any kind, not only at
 * its next small one (the fast path checks the flag itself). */
void kh_drain_if_asked(struct kheap *h, struct kh_err *e)
{
	if (KH_PERCPU && kh_percpu_on(h)) {
		struct kh_cpu *cpu = kh_this_cpu(h);
		if (cpu != NULL && kh_drain_asked(cpu))
			kh_drain_cpu(h, cpu, false, e);
	}
}

/* The per-CPU part of kh_flush_all: drain the calling CPU's cache now and
 * ask every other CPU to drain its own at its next allocation or free
 * (their lists are theirs alone). Lock held. */
void kh_flush_cpus(struct kheap *h, struct kh_err *e)
{
	struct kh_cpu *me = kh_this_cpu(h);
	for (unsigned k = 0; k < KH_NCPU; k++)
		if (&h->cpus[k] != me)
			__atomic_store_n(&h->cpus[k].drain, 1, __ATOMIC_RELAXED);
	if (me != NULL)
		kh_drain_cpu(h, me, false, e);
}

/* Bytes on the per-CPU lists of the CPUs other than the calling one: reads
 * of counts that their owners change without the lock, enough to tell
 * whether kheap_flush_others can help. Interrupts masked. */
size_t kh_cached_elsewhere(struct kheap *h)
{
	const struct kh_cpu *me = kh_this_cpu(h);
	size_t bytes = kh_obj_cached_elsewhere(h);
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++)
		for (unsigned c = 0; &h->cpus[k] != me && c < KH_NCLASSES; c++)
			bytes += __atomic_load_n(&h->cpus[k].cls[c].count, __ATOMIC_RELAXED) * kh_class_block_size(c);
	return bytes;
}

/* How many blocks a refill or a drain of a list with this limit moves. */
static uint32_t cpu_batch(uint32_t limit)
{
	uint32_t half = (limit + 1) / 2;
	return half < KHEAP_CPU_BATCH ? half : KHEAP_CPU_BATCH;
}

/* CPU cpu's class-c list limit after a drain. A list that has drained
 * KH_CONSUMER_DRAINS times with no refill is one this CPU frees to and does
 * not allocate from (a consumer's; a CPU that frees in a burst what it
 * allocated drains a few times, then refills): at each further drain it
 * keeps a batch less, down to one batch, so that the blocks it would keep
 * go to the CPUs that allocate them, and a consumer holds about a batch of
 * a class, not a full list. A drain still moves one batch of the full
 * list's size (drain_count), never more in one call: while the limit comes
 * down, the list stays just above what it holds, and the next free drains
 * again. A refill gives the full limit back (refill). The idea is
 * tcmalloc's per-thread list lengths that shrink on overflow. Lock held. */
static uint32_t drained_limit(const struct kheap *h, struct kh_cpu *cpu, unsigned c)
{
	uint32_t full = h->cpu_limit[c], batch = cpu_batch(full), lim = cpu->cls[c].limit;
	if (cpu->drains[c] < UINT8_MAX)
		cpu->drains[c]++;
	if (cpu->drains[c] <= KH_CONSUMER_DRAINS || lim > full)
		return full;
	lim = lim >= 2 * batch ? lim - batch : batch;
	/* Above what the list holds now: the next drain comes at the next
	 * free, so that no call drains more than one batch. */
	uint32_t count = cpu->cls[c].count;
	return lim > count ? lim : (count < full ? count + 1 : full);
}

/* How many blocks a drain of CPU cpu's full class-c list l moves: the full
 * limit's batch, or all of them when the limit has come down to a batch. */
static uint32_t drain_count(const struct kheap *h, const struct kh_class *l, unsigned c)
{
	uint32_t batch = cpu_batch(__atomic_load_n(&h->cpu_limit[c], __ATOMIC_RELAXED));
	uint32_t keep = l->limit > batch ? l->limit - batch : 0;
	return l->count > keep ? l->count - keep : 0;
}

/* Put the moved blocks on CPU cpu's class-c list. Interrupts masked, lock
 * released. */
static void push_moved(const struct kheap *h, struct kh_cpu *cpu, unsigned c, const struct moved *m)
{
	for (uint32_t i = 0; i < m->n; i++)
		put_own(h, cpu, c, m->b[i]);
}

/* Take a batch for CPU cpu's class-c list: from the shared list first (into
 * m, pushed after the unlock), then by carving. Lock held. */
static void refill(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct moved *m, struct kh_err *e)
{
	struct kh_class *l = &cpu->cls[c];
	l->limit = h->cpu_limit[c];
	cpu->drains[c] = 0;
	uint32_t want = cpu_batch(l->limit);
	uintptr_t b;
	/* A batch a drain gave, whole: no block is read under the lock. Not
	 * after an error: settling a corrupt list rebuilds the heap, which
	 * waits for every batch in flight (kh_batch_quiesce), and this one is
	 * claimed only after the lock stretch ends. */
	uint32_t room = l->limit > l->count ? l->limit - l->count : 0;
	uint32_t most = want < room ? want : room;
	m->head = e->kind == KHEAP_OK ? kh_batch_take(h, c, most < KH_MOVE_MAX ? most : KH_MOVE_MAX, &m->k, &m->rest) : 0;
	if (m->head != 0)
		return;
	while (want > 0 && l->count + m->n < l->limit && (b = kh_cache_take(h, c, e)) != 0) {
		kh_count_out(h, kh_size(b), 1);
		if (m->n < KH_MOVE_MAX)
			m->b[m->n++] = b;
		else
			put_own(h, cpu, c, b);
		want--;
	}
	if (want > 0 && e->kind == KHEAP_OK && l->count + m->n + want <= l->limit) {
		uint32_t got = kh_carve_class(h, cpu, c, want, e);
		kh_count_out(h, got * kh_class_block_size(c), got); /* per-CPU blocks are in use */
	}
}

/* The locked stretch's opening (kh_internal.h), also the object caches'. */
void kh_cpu_slow_begin(struct kheap *h, struct kh_cpu *cpu, struct kh_err *e)
{
	kh_lock_acquire(&h->lock);
	kh_cpu_sync(h, cpu);
	if (kh_drain_asked(cpu))
		kh_drain_cpu(h, cpu, false, e);
}

/* Close a locked stretch of the fast path: count an error, rebuild the
 * shared lists after a corrupt link, unlock; the report comes later. */
static void slow_done(struct kheap *h, struct kh_err *e)
{
	kh_settle(h, e);
	kh_lock_release(&h->lock);
}

/* Under the lock, from the fast path: honour a drain request, repair a
 * corrupt list, refill an empty one. */
static void cpu_slow(struct kheap *h, struct kh_cpu *cpu, unsigned c, bool bad, struct kh_err *e)
{
	struct moved m;
	m.n = 0;
	m.head = 0;
	kh_cpu_slow_begin(h, cpu, e);
	if (bad)
		kh_slot_repair(h, cpu, c, e);
	else
		refill(h, cpu, c, &m, e);
	slow_done(h, e);
	if (m.head != 0) {
		/* The taken batch's blocks are this CPU's: claim them now, and
		 * if the batch turns out corrupt, repair the shared list it came
		 * from under the lock again. What is claimed is sound. */
		struct kh_err w = KH_ERR_INIT;
		bool corrupt;
		m.n = kh_batch_claim(h, m.head, m.k, m.rest, m.b, &corrupt, &w);
		if (corrupt || w.kind != KHEAP_OK) {
			kh_lock_acquire(&h->lock);
			if (corrupt)
				kh_slot_repair(h, &h->cpus[KH_SHARED], c, &w);
			slow_done(h, &w);
			kh_fail(e, w.kind, w.ptr, w.msg); /* counted; the caller reports it */
		}
	}
	push_moved(h, cpu, c, &m);
}

/* Level 3: the full check every KHEAP_CHECK_EVERY operations of the heap
 * (kh_check_due), run by the CPU whose operation it is, so that it sees
 * that CPU's own lists. cpu is unused: the count is the heap's. */
static void fast_check(struct kheap *h, const struct kh_cpu *cpu, struct kh_err *e)
{
	(void)cpu;
	if (KH_PERIODIC_CHECK && kh_check_due(h)) {
		kh_lock_acquire(&h->lock);
		kh_full_check(h, e);
		slow_done(h, e);
	}
}

/* The per-CPU allocation of a class-size block in C, for what kheap_alloc's
 * fused call did not serve: a hardened build, several regions, an empty or
 * corrupt list, a drain request. Returns the payload, or NULL: the caller
 * then takes the locked path, which also reports what this one could not
 * serve. */
void *kh_percpu_alloc(struct kheap *h, size_t n, const void *caller)
{
	unsigned c = kh_size_class(kh_want(n));
	if (c >= KH_NCLASSES)
		return NULL;
	/* e: what the locked stretches find (counted there, slow_done); late:
	 * what the block's own checks find, counted under the lock as well. */
	struct kh_err e = KH_ERR_INIT, late = KH_ERR_INIT;
	void *p = NULL;
	uintptr_t irq = kh_irq_save();
	struct kh_cpu *cpu = kh_this_cpu(h);
	if (cpu != NULL && __atomic_load_n(&h->cpu_limit[c], __ATOMIC_RELAXED) != 0) {
		bool bad = false;
		p = kh_drain_asked(cpu) ? NULL : cpu_take(h, cpu, c, &bad);
		if (bad || p == NULL || p == KH_CLASS_BAD) {
			cpu_slow(h, cpu, c, bad, &e);
			if (p == NULL || p == KH_CLASS_BAD) {
				bad = false;
				p = cpu_take(h, cpu, c, &bad);
				if (bad) { /* corrupt again at once: repair now, never leave a wild head */
					cpu_slow(h, cpu, c, true, &e);
					p = p == KH_CLASS_BAD ? NULL : p;
				}
			}
		}
		if (p == KH_CLASS_BAD)
			p = NULL;
		if (p != NULL && KH_GRANT_NEIGHBOURS && !kh_next_ok(h, kh_block_of(p))) {
			/* The list is sound, the neighbour is not: put it back, refuse it. */
			kh_cpu_push(&cpu->cls[c], p, kh_key(h), cpu->tkey);
			kh_fail(&late, KHEAP_E_NEIGHBOUR, p, "cached block's next header is corrupt or disagrees");
			p = NULL;
		}
		if (p != NULL) {
			kh_grant_checks(h, kh_block_of(p), &late);
			__atomic_store_n(&cpu->allocs, cpu->allocs + 1, __ATOMIC_RELAXED);
		}
		if (late.kind != KHEAP_OK) {
			kh_lock_acquire(&h->lock);
			slow_done(h, &late);
		}
		if (p != NULL)
			fast_check(h, cpu, &e);
	}
	kh_irq_restore(irq);
	if (e.kind != KHEAP_OK)
		kh_report(h, &e, caller);
	if (late.kind != KHEAP_OK)
		kh_report(h, &late, caller);
	return p;
}

/* The class of ptr if the caller holds it (kh_held, the lock-free form)
 * and it may go to a per-CPU list: a class size, no alignment, a list
 * that may hold blocks, and at level 2 a sound right neighbour. Else
 * KH_NCLASSES: the locked path then frees it or says what is wrong with it. */
static unsigned fast_class(const struct kheap *h, const void *ptr)
{
	struct kh_err ignored = KH_ERR_INIT;
	uintptr_t b = kh_held(h, ptr, &ignored, KH_HELD_OWN);
	if (b == 0)
		return KH_NCLASSES;
	kh_word w = __atomic_load_n(kh_hdr(b), __ATOMIC_RELAXED);
	size_t s = (size_t)(w & KH_SIZE_MASK);
	if ((w & KH_ALG_MASK) || s > KH_CLASS_MAX_BLOCK)
		return KH_NCLASSES;
	unsigned c = kh_size_class(s - KH_HDR);
	if (kh_class_block_size(c) != s || __atomic_load_n(&h->cpu_limit[c], __ATOMIC_RELAXED) == 0)
		return KH_NCLASSES;
	if (KH_GRANT_NEIGHBOURS && !kh_next_ok(h, b))
		return KH_NCLASSES;
	return c;
}

/* The per-CPU free of a class-size block in C, for what kheap_free's fused
 * call did not take: a hardened build, several regions, a drain request, a
 * full list. Returns false when the block is not plainly a held class-size
 * block, or this CPU has no cache: the locked path then frees it or says
 * what is wrong with it. */
bool kh_percpu_free(struct kheap *h, void *ptr, const void *caller)
{
	uintptr_t irq = kh_irq_save();
	struct kh_cpu *cpu = kh_this_cpu(h);
	unsigned c = cpu != NULL ? fast_class(h, ptr) : KH_NCLASSES;
	if (c >= KH_NCLASSES) {
		kh_irq_restore(irq);
		return false;
	}
	struct kh_err e = KH_ERR_INIT;
	struct kh_class *l = &cpu->cls[c];
	kh_release_hook(kh_block_of(ptr));
	if (kh_drain_asked(cpu) || l->count >= l->limit) {
		/* The batch leaves the list before the lock is taken (struct moved). */
		struct moved m;
		bool bad = false, asked = kh_drain_asked(cpu);
		m.n = 0;
		if (!asked) {
			uint32_t n = drain_count(h, l, c);
			while (m.n < n && m.n < KH_MOVE_MAX && !bad) {
				void *q = cpu_take(h, cpu, c, &bad);
				if (q == NULL || q == KH_CLASS_BAD)
					break;
				m.b[m.n++] = kh_block_of(q);
			}
		}
		kh_cpu_slow_begin(h, cpu, &e);
		if (m.n > 0)
			kh_batch_mark(h, c);
		give_moved(h, c, &m, &e);
		if (bad)
			kh_slot_repair(h, cpu, c, &e);
		/* A drain asked for by another CPU emptied every list: not this
		 * list's own overflow, so it does not count towards a consumer's. */
		l->limit = asked ? h->cpu_limit[c] : drained_limit(h, cpu, c);
		if (l->count >= l->limit) /* a lower limit */
			drain(h, cpu, c, drain_count(h, l, c), false, &e);
		slow_done(h, &e);
	}
	bool done = kh_cpu_push(l, ptr, kh_key(h), cpu->tkey) != 0;
	if (done) {
		__atomic_store_n(&cpu->frees, cpu->frees + 1, __ATOMIC_RELAXED);
		fast_check(h, cpu, &e);
	}
	kh_irq_restore(irq);
	if (e.kind != KHEAP_OK)
		kh_report(h, &e, caller);
	return done;
}
