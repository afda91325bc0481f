/*
 * kheap.c: the public entry points (contract in kheap.h).
 *
 * Each entry point checks the handle, takes the lock with interrupts masked
 * (enter), does its work through the *_locked helpers, which record at most
 * one failed check in a struct kh_err instead of reporting, then releases
 * the lock and only then reports (leave). The report hook therefore never
 * runs under the lock and may take it again, e.g. to dump the heap.
 *
 * Small requests (up to KH_CLASS_MAX_PAYLOAD) are rounded to their size
 * class; a freed block whose size is exactly a class size goes to that
 * class's LIFO list (kh_class.h) unless the list is full, else to the
 * coalescing backend (kh_tlsf.c). An allocation the backend cannot meet
 * flushes the class lists back and tries once more.
 *
 * Per-CPU caches (layout and invariants in kh_internal.h) sit in front:
 * kheap_alloc/calloc/free of a class-size block first try the calling
 * CPU's list with interrupts masked and no lock. kheap_alloc and kheap_free
 * do it with one fused assembly call (kh_cpu_alloc, kh_cpu_free: class,
 * checks and list operation) and keep everything else out of line
 * (alloc_path, free_path), so that their own frames stay small. What the
 * fused call leaves (a hardened build, several regions, an empty or full
 * list, a drain request) goes through the same lists in C (alloc_fast,
 * free_fast); an empty list is refilled and a full one drained by a
 * batch under the lock (refill, drain), the refill carving one backend
 * block into a batch. Until some CPU has had a number (h->percpu),
 * kheap_alloc, calloc and free take the locked path without asking for one.
 *
 * No CPU takes blocks from a live CPU's lists. kheap_trim, and an
 * allocation still short after flushing the shared lists and its own CPU's
 * (flush_all), drop the lock and call the kernel's kheap_flush_others,
 * which makes every other CPU drain its own (kheap_trim_cpu, from an IPI);
 * the allocation then tries once more, and only a failure after that is an
 * OOM (out_of_memory asks, leave_alloc retries). A CPU the hook did not
 * reach drains at its next allocation or free (its drain flag, which
 * drain_if_asked and the per-CPU path honour); an offline one is
 * drained by kheap_cpu_dead.
 */
#include "kh_internal.h"

#define CALLER() __builtin_return_address(0)

/* ---- lock, handle, reports ---------------------------------------------- */

static bool live(const struct kheap *h, const void *caller)
{
	if (kh_live(h))
		return true;
	kh_report_global(KHEAP_E_BAD_HEAP, h, caller, "not a live heap handle");
	return false;
}

static void first_problem(void *ctx, const void *addr, const char *what)
{
	struct kh_err *e = ctx;
	kh_fail(e, KHEAP_E_CORRUPT, addr, what);
}

/* leave() when something went wrong: count, repair, unlock, then report
 * and call the OOM hook, both with the lock released. */
static void leave_slow(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller)
{
	if (e->kind != KHEAP_OK)
		h->n.errors++;
	if (e->kind == KHEAP_E_FREELIST)
		kh_rebuild(h);
	kheap_oom_fn oom = e->oom ? h->oom : NULL;
	void *oom_ctx = h->oom_ctx;
	kh_exit(h, irq);
	if (e->kind != KHEAP_OK)
		kh_report(h, e, caller);
	if (oom != NULL)
		oom(oom_ctx, e->oom_size);
}

/* Level 3: is this operation a KHEAP_CHECK_EVERY-th one, counting every
 * path of every CPU together (the per-CPU path counts without the lock)? */
static inline bool check_due(struct kheap *h)
{
	return __atomic_add_fetch(&h->ops, 1, __ATOMIC_RELAXED) % KHEAP_CHECK_EVERY == 0;
}

static inline void leave(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller)
{
	if (KHEAP_HARDEN >= 3 && check_due(h))
		kh_check_locked(h, first_problem, e);
	if (__builtin_expect(e->kind != KHEAP_OK || e->oom, 0)) {
		leave_slow(h, irq, e, caller);
		return;
	}
	kh_exit(h, irq);
}

/* ---- block validation --------------------------------------------------- */

/* Is p the payload of a block the caller holds? Checks, in this order, that
 * cost O(KHEAP_MAX_REGIONS): alignment, ownership, header cookie, state,
 * size, and both neighbours' agreement. Returns the block, or 0 with *e set. */
KH_PRIVATE uintptr_t held(const struct kheap *h, const void *p, struct kh_err *e)
{
	uintptr_t b = kh_block_of(p);
	if ((uintptr_t)p & (KHEAP_ALIGN - 1))
		return kh_fail(e, KHEAP_E_MISALIGNED, p, "pointer is not 16-byte aligned"), 0;
	const struct kh_region *r = kh_region_of(h, b);
	if (r == NULL)
		return kh_fail(e, KHEAP_E_FOREIGN, p, "pointer is outside every region"), 0;
	kh_word w = *kh_hdr(b);
	if (!kh_sealed(h, b, w))
		return kh_fail(e, KHEAP_E_BAD_HEADER, p, "header cookie mismatch: interior pointer or overwritten header"), 0;
	if (kh_quarantined(w))
		return kh_fail(e, KHEAP_E_BAD_HEADER, p, "block quarantined: its header was found damaged"), 0;
	if (!(w & KH_USED) || (w & KH_CACHED))
		return kh_fail(e, KHEAP_E_DOUBLE_FREE, p, "block is already free"), 0;
	size_t s = (size_t)(w & KH_SIZE_MASK);
	if (s < KH_MIN_BLOCK || s > r->end - b)
		return kh_fail(e, KHEAP_E_BAD_HEADER, p, "block size runs past its region"), 0;
	uintptr_t nx = b + s;
	if (!kh_ok(h, nx) || kh_prev_free(nx))
		return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "next block's header is corrupt or disagrees"), 0;
	if (w & KH_PREV_FREE) {
		kh_word tag = *(kh_word *)(b - KH_HDR);
		size_t ps = (size_t)(tag & KH_SIZE_MASK);
		if (b == r->first || ps < KH_MIN_BLOCK || ps > b - r->first || *kh_hdr(b - ps) != tag ||
		    !kh_sealed(h, b - ps, tag) || (tag & KH_USED))
			return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "previous block's boundary tag is corrupt"), 0;
	}
	if (KHEAP_HARDEN >= 1 && *kh_canary_slot(b) != kh_canary(h, b))
		return kh_fail(e, KHEAP_E_CANARY, p, "canary after the usable size overwritten (overflow)"), 0;
	if (kh_on_cpu_list(h, b))
		return kh_fail(e, KHEAP_E_DOUBLE_FREE, p, "block is already free (in a per-CPU cache)"), 0;
	return b;
}

/* ---- accounting --------------------------------------------------------- */

/* Blocks join or leave the in-use counters: handed to the caller or to a
 * per-CPU list, or given back. */
static void count_out(struct kheap *h, size_t bytes, size_t blocks)
{
	h->n.in_use += bytes;
	h->n.used_blocks += blocks;
	if (h->n.in_use > h->n.peak)
		h->n.peak = h->n.in_use;
}

static void count_back(struct kheap *h, size_t bytes, size_t blocks)
{
	h->n.in_use -= bytes;
	h->n.used_blocks -= blocks;
}

/* Hand used block b to the caller: its canary, the counters, and its tag. */
static void count_grant(struct kheap *h, uintptr_t b, const struct kh_err *e)
{
	kh_arm_canary(h, b);
	count_out(h, kh_size(b), 1);
	h->n.allocs++;
	kh_tag_put(b, (struct kh_tag){kh_err_caller(e), h->n.allocs});
}

/* ---- size-class caches -------------------------------------------------- */

/* A class list found corrupt is emptied, so it is never followed again, and
 * reported as KHEAP_E_FREELIST, which makes leave() rebuild every list from
 * the headers: the blocks it held are not lost. Returns 0. */
static uintptr_t drop_class(struct kh_class *cl, struct kh_err *e, const void *p, const char *msg)
{
	kh_fail(e, KHEAP_E_FREELIST, p, msg);
	cl->head = 0, cl->count = 0;
	return 0;
}

/* Pop a cached block of class c and make it a plain used block, or 0. A
 * corrupt list is dropped (drop_class); the backend then serves. */
static uintptr_t cache_take(struct kheap *h, unsigned c, struct kh_err *e)
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
	if (KHEAP_HARDEN >= 2 && (!kh_ok(h, b + kh_size(b)) || kh_prev_free(b + kh_size(b)))) {
		/* The list is sound, the neighbour is not: put b back, refuse it. */
		kh_class_push(cl, p, kh_key(h));
		return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "cached block's next header is corrupt or disagrees"), 0;
	}
	if (cl->head != 0 && kh_region_of(h, kh_block_of((void *)cl->head)) == NULL)
		/* The link decoded to an aligned address outside the heap: do
		 * not follow it next time. b itself is sound and is handed out. */
		drop_class(cl, e, p, "size-class link points outside the heap");
	if (KHEAP_HARDEN >= 1 && !kh_poison_ok(b)) /* reported; the block is still sound */
		kh_fail(e, KHEAP_E_USE_AFTER_FREE, p, "freed memory was written after free");
	kh_set(h, b, kh_class_block_size(c), KH_USED | (w & KH_PREV_FREE), 0);
	h->n.cached -= kh_class_block_size(c);
	h->n.cached_blocks--;
	return b;
}

/* Cache used block b if it is exactly a class size and its list has room. */
static bool cache_put(struct kheap *h, uintptr_t b)
{
	size_t s = kh_size(b);
	if (s > KH_CLASS_MAX_BLOCK)
		return false;
	unsigned c = kh_size_class(s - KH_HDR);
	if (kh_class_block_size(c) != s || !kh_class_push(&h->classes[c], kh_payload(b), kh_key(h)))
		return false;
	kh_set(h, b, s, KH_USED | KH_CACHED | (kh_flags(b) & KH_PREV_FREE), 0);
	if (KHEAP_HARDEN >= 1)
		kh_poison(b);
	h->n.cached += s;
	h->n.cached_blocks++;
	return true;
}

/* Return every cached block to the backend. O(total cache capacity). */
static void flush_caches(struct kheap *h, struct kh_err *e)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		uintptr_t b;
		while ((b = cache_take(h, c, e)) != 0) {
			if (kh_backend_free(h, b, e) == 0) /* neighbour corrupt: keep it held */
				count_out(h, kh_size(b), 1);
		}
	}
}

/* Class-list capacities: each class holds at most KHEAP_CLASS_CACHE_MAX
 * blocks, and all together at most 1/KHEAP_CACHE_SHARE of the heap. */
static void set_class_limits(struct kheap *h)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		size_t cap = h->n.total / ((size_t)KHEAP_CACHE_SHARE * KH_NCLASSES * kh_class_block_size(c));
		h->classes[c].limit = cap < KHEAP_CLASS_CACHE_MAX ? (uint32_t)cap : KHEAP_CLASS_CACHE_MAX;
	}
}

/* ---- allocation and release --------------------------------------------- */

static void flush_all(struct kheap *h, struct kh_err *e);
static size_t cached_elsewhere(struct kheap *h);

/* A used block of at least s bytes from the backend, flushing the caches and
 * retrying once when it runs dry. align > KHEAP_ALIGN asks for an aligned one. */
static uintptr_t backend_take(struct kheap *h, size_t s, size_t align, struct kh_err *e)
{
	for (int tries = 0; tries < 2; tries++) {
		uintptr_t b = align > KHEAP_ALIGN ? kh_backend_aligned(h, s, align, e)
						  : kh_backend_alloc(h, s, e);
		if (b != 0 || tries == 1 || e->kind != KHEAP_OK)
			return b;
		size_t before = h->n.free;
		flush_all(h, e);
		if (h->n.free == before)
			return 0;
	}
	return 0;
}

/* Count an allocation of n bytes aligned to align that failed; unless a
 * misuse or corruption was the cause, it is an out-of-memory event for the
 * OOM hook. On a first try, while other CPUs' caches hold enough that the
 * block might fit once they are flushed, it is not counted yet: e->retry
 * asks leave_alloc to have them flushed and to try again. */
static uintptr_t out_of_memory(struct kheap *h, size_t align, size_t n, struct kh_err *e)
{
	if (e->kind != KHEAP_OK)
		return 0;
	size_t s = kh_block_for(kh_want(n)), elsewhere = KH_PERCPU && !e->retried ? cached_elsewhere(h) : 0;
	if (elsewhere != 0 && s != 0 && s <= h->n.free + elsewhere) {
		e->retry = true;
		e->oom_alg = (uint8_t)kh_fls_size(align);
	} else {
		h->n.ooms++;
		e->oom = true;
	}
	e->oom_size = n;
	return 0;
}

/* A used block for n payload bytes, counted, or 0 (counted as OOM). */
static uintptr_t alloc_locked(struct kheap *h, size_t n, struct kh_err *e)
{
	if (KH_PERCPU && !h->percpu && kh_cpu_named(kheap_cpu_id()))
		__atomic_store_n(&h->percpu, 1, __ATOMIC_RELAXED); /* from the next call on */
	uintptr_t b = 0;
	size_t s = kh_block_for(kh_want(n));
	unsigned c = kh_size_class(kh_want(n));
	if (c < KH_NCLASSES) {
		b = cache_take(h, c, e);
		if (b == 0)
			b = kh_backend_alloc(h, kh_class_block_size(c), e);
	}
	if (b == 0 && s != 0)
		b = backend_take(h, s, KHEAP_ALIGN, e);
	if (b == 0)
		return out_of_memory(h, KHEAP_ALIGN, n, e);
	count_grant(h, b, e);
	return b;
}

static uintptr_t aligned_locked(struct kheap *h, size_t align, size_t n, struct kh_err *e)
{
	if (align <= KHEAP_ALIGN)
		return alloc_locked(h, n, e);
	size_t s = kh_block_for(kh_want(n));
	uintptr_t b = 0;
	if (s != 0 && align <= KH_MAX_BLOCK && s <= KH_MAX_BLOCK - align - KH_GRANULE)
		b = backend_take(h, s, align, e);
	if (b == 0)
		return out_of_memory(h, align, n, e);
	kh_set(h, b, kh_size(b), kh_flags(b), kh_fls_size(align));
	count_grant(h, b, e);
	return b;
}

/* leave() for an allocating entry point whose locked stretch handed out b
 * (or 0). When that stretch ran short while other CPUs' caches held blocks
 * (e->retry), the lock is dropped for kheap_flush_others, which the CPUs it
 * interrupts need, and the request is made once more if the hook says every
 * cache is in the bins; a failure then, or a false answer, is the OOM. */
static __attribute__((noinline)) uintptr_t retry_alloc(struct kheap *h, uintptr_t irq, struct kh_err *e,
							const void *caller)
{
	size_t n = e->oom_size, align = (size_t)1 << e->oom_alg;
	kh_exit(h, irq);
	bool flushed = kheap_flush_others(h);
	irq = kh_enter(h);
	e->retry = false;
	e->retried = true;
	uintptr_t b = flushed ? aligned_locked(h, align, n, e) : out_of_memory(h, align, n, e);
	leave(h, irq, e, caller);
	return b;
}

static inline uintptr_t leave_alloc(struct kheap *h, uintptr_t irq, uintptr_t b, struct kh_err *e,
				    const void *caller)
{
	if (__builtin_expect(e->retry, 0))
		return retry_alloc(h, irq, e, caller);
	leave(h, irq, e, caller);
	return b;
}

/* Give back held block b (validated by held()). */
static void free_locked(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	size_t s = kh_size(b);
	if (!cache_put(h, b) && kh_backend_free(h, b, e) == 0)
		return;
	count_back(h, s, 1);
	h->n.frees++;
}

/* Bounded word loops: the library calls no memcpy/memset of the kernel's. */
static void zero_words(void *p, size_t n)
{
	uint64_t *w = p;
	for (size_t i = 0; i < n / 8; i++)
		w[i] = 0;
}

static void copy_words(void *dst, const void *src, size_t n)
{
	uint64_t *d = dst;
	const uint64_t *s = src;
	for (size_t i = 0; i < n / 8; i++)
		d[i] = s[i];
}

/* ---- per-CPU caches --------------------------------------------------------- */

/* Has any CPU had a number for this heap? Until one has, alloc, calloc and
 * free take the locked path without asking (alloc_locked asks). */
static inline bool percpu_on(const struct kheap *h) { return __atomic_load_n(&h->percpu, __ATOMIC_RELAXED) != 0; }

/* The calling CPU's cache, or NULL. Interrupts must be masked. */
static inline struct kh_cpu *this_cpu(struct kheap *h)
{
	unsigned id = kheap_cpu_id();
	return kh_cpu_named(id) ? &h->cpus[id] : NULL;
}

/* Copy the heap's span and region count to CPU cpu's cache (the fast
 * path's snapshot, kh_internal.h): a heap of one region gets its blocks'
 * span, one of several an empty span, because the gaps between regions are
 * not the heap's to read, so the fused calls leave every block to the C
 * path, which asks kh_region_of. Lock held, or the heap not yet shared. */
static void cpu_sync(const struct kheap *h, struct kh_cpu *cpu)
{
	bool one = h->nregions == 1;
	cpu->regions = h->nregions;
	cpu->lo = one ? h->regions[0].first : 0;
	cpu->hi = one ? h->regions[0].end : 0;
}

static void cpu_limits(struct kheap *h)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		size_t s = kh_class_block_size(c);
		size_t cap = h->n.total / ((size_t)KHEAP_CACHE_SHARE * KH_NCLASSES * KH_NCPU * s);
		if (cap > KHEAP_CPU_CACHE_BYTES / s)
			cap = KHEAP_CPU_CACHE_BYTES / s;
		__atomic_store_n(&h->cpu_limit[c], cap < KHEAP_CPU_CACHE_MAX ? (uint32_t)cap : KHEAP_CPU_CACHE_MAX,
				 __ATOMIC_RELAXED);
	}
}

/* A per-CPU list found corrupt (wrong token, a link that does not decode,
 * or a head outside the heap) is emptied, so it is never followed again;
 * the blocks whose tokens still say they were on it go back to the
 * backend (a linear walk, only on this error). Reported as KHEAP_E_FREELIST. */
static void cpu_repair(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct kh_err *e)
{
	kh_fail(e, KHEAP_E_FREELIST, (void *)cpu->cls[c].head, "per-CPU list corrupt (write after free?)");
	cpu->cls[c].head = 0;
	__atomic_store_n(&cpu->cls[c].count, 0, __ATOMIC_RELAXED);
	size_t s = kh_class_block_size(c);
	unsigned k = (unsigned)(cpu - h->cpus);
	for (unsigned i = 0; i < h->nregions; i++) {
		const struct kh_region *r = &h->regions[i];
		for (uintptr_t b = r->first, nx; b < r->end; b = nx) {
			if (!kh_ok(h, b) || kh_size(b) < KH_MIN_BLOCK || kh_size(b) > r->end - b)
				break;
			nx = b + kh_size(b);
			if (kh_size(b) != s || !kh_used(b) || kh_cached(b) || kh_token_cpu(h, b) != k)
				continue;
			__atomic_store_n(&((uintptr_t *)kh_payload(b))[1], 0, __ATOMIC_RELAXED);
			uintptr_t f = kh_backend_free(h, b, e);
			if (f != 0) { /* merged, maybe both ways: go on after it */
				count_back(h, s, 1);
				nx = f + kh_size(f);
			}
		}
	}
}

/* Pop from CPU cpu's class-c list. A popped block is sound (its token
 * was right); *bad says the list is corrupt past it (or at it, when the
 * result is KH_CLASS_BAD) and needs cpu_repair under the lock. */
static void *cpu_take(struct kheap *h, struct kh_cpu *cpu, unsigned c, bool *bad)
{
	struct kh_class *l = &cpu->cls[c];
	void *p = kh_cpu_pop(l, kh_key(h), cpu->tkey);
	if (__builtin_expect(p == KH_CLASS_BAD, 0) ||
	    (l->head != 0 && kh_region_of(h, kh_block_of((void *)l->head)) == NULL))
		*bad = true;
	return p;
}

/* Hand up to n blocks of CPU cpu's class c back: to the shared class list
 * when it has room and bins is false, else to the backend. Lock held. */
static void drain(struct kheap *h, struct kh_cpu *cpu, unsigned c, uint32_t n, bool bins, struct kh_err *e)
{
	size_t s = kh_class_block_size(c);
	for (; n > 0; n--) {
		bool bad = false;
		void *p = cpu_take(h, cpu, c, &bad);
		if (p != NULL && p != KH_CLASS_BAD) {
			uintptr_t b = kh_block_of(p);
			count_back(h, s, 1);
			if ((bins || !cache_put(h, b)) && kh_backend_free(h, b, e) == 0)
				count_out(h, s, 1); /* neighbour corrupt (reported): keep it held */
		}
		if (bad)
			cpu_repair(h, cpu, c, e);
		if (p == NULL || bad)
			return;
	}
}

static bool drain_asked(struct kh_cpu *cpu) { return __atomic_load_n(&cpu->drain, __ATOMIC_RELAXED) != 0; }

/* Everything on CPU cpu's lists back to the bins: the calling CPU's
 * (kheap_trim, OOM, kheap_trim_cpu), or an offline one's (kheap_cpu_dead). */
static void drain_cpu(struct kheap *h, struct kh_cpu *cpu, struct kh_err *e)
{
	__atomic_store_n(&cpu->drain, 0, __ATOMIC_RELAXED);
	for (unsigned c = 0; c < KH_NCLASSES; c++)
		drain(h, cpu, c, cpu->cls[c].count, true, e);
}

/* Lock held: honour a drain request to the calling CPU, so that a CPU asked
 * to drain does so at its next allocation or free of any kind, not only at
 * its next small one (the fast path checks the flag itself). */
static void drain_if_asked(struct kheap *h, struct kh_err *e)
{
	if (KH_PERCPU && percpu_on(h)) {
		struct kh_cpu *cpu = this_cpu(h);
		if (cpu != NULL && drain_asked(cpu))
			drain_cpu(h, cpu, e);
	}
}

/* Everything cached back to the backend: the shared lists and this CPU's
 * cache now, the other CPUs' when kheap_flush_others reaches them or at
 * their next allocation or free (drain flag). Lock held. */
static void flush_all(struct kheap *h, struct kh_err *e)
{
	if (KH_PERCPU) {
		struct kh_cpu *me = this_cpu(h);
		for (unsigned k = 0; k < KH_NCPU; k++)
			if (&h->cpus[k] != me)
				__atomic_store_n(&h->cpus[k].drain, 1, __ATOMIC_RELAXED);
		if (me != NULL)
			drain_cpu(h, me, e);
	}
	flush_caches(h, e);
}

/* Bytes on the per-CPU lists of the CPUs other than the calling one: reads
 * of counts that their owners change without the lock, enough to tell
 * whether kheap_flush_others can help. Interrupts masked. */
static size_t cached_elsewhere(struct kheap *h)
{
	const struct kh_cpu *me = this_cpu(h);
	size_t bytes = 0;
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++)
		for (unsigned c = 0; &h->cpus[k] != me && c < KH_NCLASSES; c++)
			bytes += __atomic_load_n(&h->cpus[k].cls[c].count, __ATOMIC_RELAXED) * kh_class_block_size(c);
	return bytes;
}

/* Carve one backend block into up to n class-c blocks on CPU cpu's list.
 * The backend's block may be 16 bytes over (too little to split off); that
 * last piece is not a class size and goes straight back. Lock held. */
static void carve(struct kheap *h, struct kh_cpu *cpu, unsigned c, uint32_t n, struct kh_err *e)
{
	size_t s = kh_class_block_size(c);
	uintptr_t b = kh_backend_alloc(h, n * s, e);
	if (b == 0 && n > 1 && e->kind == KHEAP_OK)
		b = kh_backend_alloc(h, s, e), n = 1;
	if (b == 0)
		return;
	uintptr_t end = b + kh_size(b);
	kh_word flags = KH_USED | (kh_flags(b) & KH_PREV_FREE);
	uint32_t got = 0;
	for (uintptr_t x = b; x < end; x += s, flags = KH_USED) {
		if (end - x != s && end - x < 2 * s) { /* the odd last piece */
			kh_set(h, x, end - x, flags, 0);
			if (kh_backend_free(h, x, e) == 0)
				count_out(h, end - x, 1); /* neighbour corrupt (reported): held */
			break;
		}
		kh_set(h, x, s, flags, 0);
		if (KHEAP_HARDEN >= 1) /* armed now: kheap_check reads it while another CPU pops x */
			kh_poison(x), kh_arm_canary(h, x);
		kh_cpu_push(&cpu->cls[c], kh_payload(x), kh_key(h), cpu->tkey);
		got++;
	}
	count_out(h, got * s, got);
}

/* How many blocks a refill or a drain of a list with this limit moves. */
static uint32_t cpu_batch(uint32_t limit)
{
	uint32_t half = (limit + 1) / 2;
	return half < KHEAP_CPU_BATCH ? half : KHEAP_CPU_BATCH;
}

/* Put a batch on CPU cpu's class-c list: from the shared list first, then
 * by carving. Lock held. */
static void refill(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct kh_err *e)
{
	struct kh_class *l = &cpu->cls[c];
	l->limit = h->cpu_limit[c];
	uint32_t want = cpu_batch(l->limit);
	uintptr_t b;
	while (want > 0 && l->count < l->limit && (b = cache_take(h, c, e)) != 0) {
		count_out(h, kh_size(b), 1);
		if (KHEAP_HARDEN >= 1) /* cache_take checked it; the pop checks again */
			kh_poison(b);
		kh_cpu_push(l, kh_payload(b), kh_key(h), cpu->tkey);
		want--;
	}
	if (want > 0 && e->kind == KHEAP_OK && l->count + want <= l->limit)
		carve(h, cpu, c, want, e);
}

/* Open a locked stretch of the per-CPU path for CPU cpu: take the lock,
 * refresh the CPU's span snapshot, honour a drain request. */
static void slow_begin(struct kheap *h, struct kh_cpu *cpu, struct kh_err *e)
{
	kh_lock_acquire(&h->lock);
	cpu_sync(h, cpu);
	if (drain_asked(cpu))
		drain_cpu(h, cpu, e);
}

/* Close a locked stretch of the fast path: count an error, rebuild the
 * shared lists after a corrupt link, unlock; the report comes later. */
static void slow_done(struct kheap *h, struct kh_err *e)
{
	if (e->kind != KHEAP_OK)
		h->n.errors++;
	if (e->kind == KHEAP_E_FREELIST)
		kh_rebuild(h);
	kh_lock_release(&h->lock);
}

/* Under the lock, from the fast path: honour a drain request, repair a
 * corrupt list, refill an empty one. */
static void cpu_slow(struct kheap *h, struct kh_cpu *cpu, unsigned c, bool bad, struct kh_err *e)
{
	slow_begin(h, cpu, e);
	if (bad)
		cpu_repair(h, cpu, c, e);
	else
		refill(h, cpu, c, e);
	slow_done(h, e);
}

/* Level 3: the full check every KHEAP_CHECK_EVERY operations of the heap
 * (check_due), run by the CPU whose operation it is, so that it sees that
 * CPU's own lists. cpu is unused: the count is the heap's. */
static void fast_check(struct kheap *h, const struct kh_cpu *cpu, struct kh_err *e)
{
	(void)cpu;
	if (KHEAP_HARDEN >= 3 && check_due(h)) {
		kh_lock_acquire(&h->lock);
		kh_check_locked(h, first_problem, e);
		slow_done(h, e);
	}
}

/* Level 2: used block b's right neighbour is sealed and knows b is used. */
static bool next_ok(const struct kheap *h, uintptr_t b)
{
	uintptr_t nx = b + kh_size(b);
	kh_word w = __atomic_load_n(kh_hdr(nx), __ATOMIC_RELAXED);
	return kh_sealed(h, nx, w) && !(w & KH_PREV_FREE);
}

/* Level 1 and up: what the locked path checks and arms on hand-out. */
static void fast_grant(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	if (KHEAP_HARDEN >= 1 && !kh_poison_ok(b))
		kh_fail(e, KHEAP_E_USE_AFTER_FREE, kh_payload(b), "freed memory was written after free");
	kh_arm_canary(h, b);
}

/* The per-CPU allocation of a class-size block in C, for what kheap_alloc's
 * fused call did not serve: a hardened build, several regions, an empty or
 * corrupt list, a drain request. Returns the payload, or NULL: the caller
 * then takes the locked path, which also reports what this one could not
 * serve. */
static void *alloc_fast(struct kheap *h, size_t n, const void *caller)
{
	unsigned c = kh_size_class(kh_want(n));
	if (c >= KH_NCLASSES)
		return NULL;
	struct kh_err e = KH_ERR_INIT;
	void *p = NULL;
	uintptr_t irq = kheap_irq_save();
	struct kh_cpu *cpu = this_cpu(h);
	if (cpu != NULL && __atomic_load_n(&h->cpu_limit[c], __ATOMIC_RELAXED) != 0) {
		bool bad = false;
		p = drain_asked(cpu) ? NULL : cpu_take(h, cpu, c, &bad);
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
		if (p != NULL && KHEAP_HARDEN >= 2 && !next_ok(h, kh_block_of(p))) {
			/* The list is sound, the neighbour is not: put it back, refuse it. */
			kh_cpu_push(&cpu->cls[c], p, kh_key(h), cpu->tkey);
			kh_fail(&e, KHEAP_E_NEIGHBOUR, p, "cached block's next header is corrupt or disagrees");
			p = NULL;
		}
		if (p != NULL) {
			fast_grant(h, kh_block_of(p), &e);
			__atomic_store_n(&cpu->allocs, cpu->allocs + 1, __ATOMIC_RELAXED);
			fast_check(h, cpu, &e);
		}
	}
	kheap_irq_restore(irq);
	if (e.kind != KHEAP_OK)
		kh_report(h, &e, caller);
	return p;
}

/* The class of ptr if it is plainly a held class-size block that may go to
 * a per-CPU list, else KH_NCLASSES (the locked path then frees it or says
 * what is wrong with it). Reads the header without the lock: the backend
 * may change only its KH_PREV_FREE flag meanwhile, and either value seals. */
static unsigned fast_class(const struct kheap *h, const void *ptr)
{
	uintptr_t b = kh_block_of(ptr);
	if (((uintptr_t)ptr & (KHEAP_ALIGN - 1)) || kh_region_of(h, b) == NULL)
		return KH_NCLASSES;
	kh_word w = __atomic_load_n(kh_hdr(b), __ATOMIC_RELAXED);
	size_t s = (size_t)(w & KH_SIZE_MASK);
	if (!kh_sealed(h, b, w) || (w & (KH_USED | KH_CACHED | KH_ALG_MASK)) != KH_USED ||
	    s > KH_CLASS_MAX_BLOCK || s < KH_MIN_BLOCK || kh_on_cpu_list(h, b))
		return KH_NCLASSES;
	unsigned c = kh_size_class(s - KH_HDR);
	if (kh_class_block_size(c) != s || __atomic_load_n(&h->cpu_limit[c], __ATOMIC_RELAXED) == 0)
		return KH_NCLASSES;
	if (KHEAP_HARDEN >= 1 && *kh_canary_slot(b) != kh_canary(h, b))
		return KH_NCLASSES;
	if (KHEAP_HARDEN >= 2 && !next_ok(h, b))
		return KH_NCLASSES;
	return c;
}

/* The per-CPU free of a class-size block in C, for what kheap_free's fused
 * call did not take: a hardened build, several regions, a drain request, a
 * full list. Returns false when the block is not plainly a held class-size
 * block, or this CPU has no cache: the locked path then frees it or says
 * what is wrong with it. */
static bool free_fast(struct kheap *h, void *ptr, const void *caller)
{
	uintptr_t irq = kheap_irq_save();
	struct kh_cpu *cpu = this_cpu(h);
	unsigned c = cpu != NULL ? fast_class(h, ptr) : KH_NCLASSES;
	if (c >= KH_NCLASSES) {
		kheap_irq_restore(irq);
		return false;
	}
	struct kh_err e = KH_ERR_INIT;
	struct kh_class *l = &cpu->cls[c];
	if (KHEAP_HARDEN >= 1)
		kh_poison(kh_block_of(ptr));
	if (drain_asked(cpu) || l->count >= l->limit) {
		slow_begin(h, cpu, &e);
		l->limit = h->cpu_limit[c];
		if (l->count >= l->limit)
			drain(h, cpu, c, l->count - (l->limit - cpu_batch(l->limit)), false, &e);
		slow_done(h, &e);
	}
	bool done = kh_cpu_push(l, ptr, kh_key(h), cpu->tkey) != 0;
	if (done) {
		__atomic_store_n(&cpu->frees, cpu->frees + 1, __ATOMIC_RELAXED);
		fast_check(h, cpu, &e);
	}
	kheap_irq_restore(irq);
	if (e.kind != KHEAP_OK)
		kh_report(h, &e, caller);
	return done;
}

/* ---- public API ----------------------------------------------------------- */

size_t kheap_control_size(void)
{
	return (sizeof(struct kheap) + KHEAP_ALIGN - 1) & ~(size_t)(KHEAP_ALIGN - 1);
}

/* Block geometry of [lo, hi): first block 8 mod 16, end marker 8 mod 16,
 * span clipped to KH_MAX_BLOCK. Returns false when no block fits. */
static bool region_geometry(struct kh_region *r, uintptr_t lo, uintptr_t hi, uintptr_t from)
{
	r->lo = lo;
	r->hi = hi;
	r->first = ((from + KH_HDR + KH_GRANULE - 1) & ~(uintptr_t)(KH_GRANULE - 1)) - KH_HDR;
	r->end = ((hi - 2 * KH_HDR) & ~(uintptr_t)(KH_GRANULE - 1)) + KH_HDR;
	if (hi - from < KHEAP_MIN_REGION || r->end < r->first + KH_MIN_BLOCK)
		return false;
	if (r->end - r->first > KH_MAX_BLOCK)
		r->end = r->first + KH_MAX_BLOCK;
	return true;
}

static void region_attach(struct kheap *h, const struct kh_region *r)
{
	struct kh_region *slot = &h->regions[h->nregions++];
	*slot = *r;
	kh_region_seed(h, slot);
	h->n.total += slot->end - slot->first;
	set_class_limits(h);
	cpu_limits(h);
}

static kh_word mix64(kh_word x)
{
	x ^= x >> 30;
	x *= (kh_word)0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= (kh_word)0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

struct kheap *kheap_init(void *base, size_t size)
{
	uintptr_t lo = (uintptr_t)base, ctl = kheap_control_size();
	struct kh_region r;
	if (base == NULL || (lo & (KHEAP_ALIGN - 1)) || size > UINTPTR_MAX - lo || size < ctl ||
	    !region_geometry(&r, lo, lo + size, lo + ctl))
		return NULL;
	/* Each init gets its own secret even when the entropy hook is the
	 * default, so headers left in memory by an earlier heap on the same
	 * arena never validate for this one. */
	static _Atomic uint64_t inits;
	kh_word gen = atomic_fetch_add_explicit(&inits, 1u, memory_order_relaxed);
	struct kheap *h = base;
	zero_words(h, ctl);
	h->magic = KH_MAGIC ^ lo;
	h->secret = mix64(kheap_entropy() ^ (kh_word)lo ^ mix64(gen + 0x6b68656170736563u));
	region_attach(h, &r);
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++) {
		h->cpus[k].key = kh_key(h);
		h->cpus[k].tkey = kh_tkey(h, k);
		cpu_sync(h, &h->cpus[k]);
	}
	uintptr_t irq = kheap_irq_save();
	h->percpu = kh_cpu_named(kheap_cpu_id());
	kheap_irq_restore(irq);
	return h;
}

int kheap_add_region(struct kheap *h, void *base, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return -KHEAP_E_BAD_HEAP;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t lo = (uintptr_t)base;
	struct kh_region r;
	uintptr_t irq = kh_enter(h);
	if (base == NULL)
		kh_fail(&e, KHEAP_E_REGION, base, "region base is NULL");
	else if (lo & (KHEAP_ALIGN - 1))
		kh_fail(&e, KHEAP_E_REGION, base, "region base is not 16-byte aligned");
	else if (size > UINTPTR_MAX - lo)
		kh_fail(&e, KHEAP_E_REGION, base, "region wraps around the address space");
	else if (!region_geometry(&r, lo, lo + size, lo))
		kh_fail(&e, KHEAP_E_REGION_SMALL, base, "region too small for one block");
	else if (h->nregions == KHEAP_MAX_REGIONS)
		kh_fail(&e, KHEAP_E_REGION, base, "KHEAP_MAX_REGIONS regions already in use");
	for (unsigned i = 0; e.kind == KHEAP_OK && i < h->nregions; i++)
		if (lo < h->regions[i].hi && h->regions[i].lo < lo + size)
			kh_fail(&e, KHEAP_E_REGION, base, "region overlaps a region of this heap");
	if (e.kind == KHEAP_OK)
		region_attach(h, &r);
	int rc = -(int)e.kind;
	leave(h, irq, &e, caller);
	return rc;
}

/* Everything but the fused fast path: the handle check, the per-CPU path
 * in C (alloc_fast), the locked path. Out of line, so that kheap_alloc's
 * own frame stays small. */
static __attribute__((noinline)) void *alloc_path(struct kheap *h, size_t size, const void *caller)
{
	if (!live(h, caller))
		return NULL;
	void *p = KH_PERCPU && percpu_on(h) ? alloc_fast(h, size, caller) : NULL;
	if (p != NULL)
		return p;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	drain_if_asked(h, &e);
	uintptr_t b = alloc_locked(h, size, &e);
	b = leave_alloc(h, irq, b, &e, caller);
	return b ? kh_payload(b) : NULL;
}

/* The fused fast path (kh_cpu_alloc, with interrupts masked) serves a
 * small block from this CPU's list; anything else, including a hardened
 * build and a heap of several regions, takes alloc_path. */
void *kheap_alloc(struct kheap *h, size_t size)
{
	if (KH_PERCPU && KHEAP_HARDEN == 0 && size <= KH_CLASS_MAX_PAYLOAD &&
	    __builtin_expect(kh_live(h) && percpu_on(h), 1)) {
		uintptr_t irq = kheap_irq_save();
		unsigned id = kheap_cpu_id();
		if (__builtin_expect(kh_cpu_named(id), 1)) {
			void *p = kh_cpu_alloc(&h->cpus[id], kh_want(size));
			if (__builtin_expect(p != NULL, 1)) {
				kheap_irq_restore(irq);
				return p;
			}
		}
		kheap_irq_restore(irq);
	}
	return alloc_path(h, size, CALLER());
}

void *kheap_aligned_alloc(struct kheap *h, size_t align, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t b = 0;
	uintptr_t irq = kh_enter(h);
	drain_if_asked(h, &e);
	if (align == 0 || (align & (align - 1)) != 0)
		kh_fail(&e, KHEAP_E_BAD_ALIGN, (void *)align, "alignment is not a power of two");
	else if (size > SIZE_MAX - align)
		kh_fail(&e, KHEAP_E_OVERFLOW, (void *)size, "size + alignment overflows");
	else
		b = aligned_locked(h, align, size, &e);
	b = leave_alloc(h, irq, b, &e, caller);
	return b ? kh_payload(b) : NULL;
}

void *kheap_calloc(struct kheap *h, size_t n, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t b = 0;
	void *p = NULL;
	if (KH_PERCPU && percpu_on(h) && (size == 0 || n <= SIZE_MAX / size))
		p = alloc_fast(h, n * size, caller);
	if (p != NULL)
		b = kh_block_of(p);
	if (b == 0) {
		uintptr_t irq = kh_enter(h);
		drain_if_asked(h, &e);
		if (size != 0 && n > SIZE_MAX / size)
			kh_fail(&e, KHEAP_E_OVERFLOW, (void *)n, "calloc count * size overflows");
		else
			b = alloc_locked(h, n * size, &e);
		b = leave_alloc(h, irq, b, &e, caller);
	}
	if (b == 0)
		return NULL;
	zero_words(kh_payload(b), kh_usable(b)); /* outside the lock */
	return kh_payload(b);
}

/* Everything but the fused fast path, as alloc_path. plain_no: the fused
 * call looked at ptr through an exact span and found it no plain class
 * block, so the C per-CPU path would refuse it too: straight to the lock. */
static __attribute__((noinline)) void free_path(struct kheap *h, void *ptr, const void *caller, bool plain_no)
{
	if (!live(h, caller) || ptr == NULL)
		return;
	if (KH_PERCPU && percpu_on(h) && !plain_no && free_fast(h, ptr, caller))
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	drain_if_asked(h, &e);
	uintptr_t b = held(h, ptr, &e);
	if (b != 0)
		free_locked(h, b, &e);
	leave(h, irq, &e, caller);
}

/* The fused fast path (kh_cpu_free) as in kheap_alloc; else free_path. */
void kheap_free(struct kheap *h, void *ptr)
{
	bool plain_no = false;
	if (KH_PERCPU && KHEAP_HARDEN == 0 && __builtin_expect(kh_live(h) && percpu_on(h), 1)) {
		uintptr_t irq = kheap_irq_save();
		unsigned id = kheap_cpu_id();
		int r = kh_cpu_named(id) ? kh_cpu_free(&h->cpus[id], ptr) : 2;
		kheap_irq_restore(irq);
		if (__builtin_expect(r == 1, 1))
			return;
		/* Read after the restore: a stale answer (a region added
		 * meanwhile) only sends the block to the lock, which takes all. */
		plain_no = r == 0 && h->cpus[id].regions == 1;
	}
	free_path(h, ptr, CALLER(), plain_no);
}

/* ---- realloc: a cached right neighbour counts as free -------------------- */

/* Would growing held block b in place to s bytes fit in the run of blocks
 * to its right that are free, or cached in a shared class list or in this
 * CPU's own lists? If so, the lists that hold the run's cached blocks are
 * named in *shared and *mine (bit c for class c). The walk is bounded by
 * the caches' capacity: free blocks in the run never touch, so it holds at
 * most one more of them than cached ones. Lock held, interrupts masked. */
static bool cached_run(struct kheap *h, uintptr_t b, size_t s, uint32_t *shared, uint32_t *mine)
{
	const struct kh_region *r = kh_region_of(h, b);
	const struct kh_cpu *me = KH_PERCPU && percpu_on(h) ? this_cpu(h) : NULL;
	size_t got = kh_size(b);
	*shared = *mine = 0;
	for (uintptr_t x = b + got; got < s && x < r->end; x += kh_size(x)) {
		kh_word w = *kh_hdr(x);
		size_t xs = (size_t)(w & KH_SIZE_MASK);
		unsigned c = xs > KH_HDR ? kh_size_class(xs - KH_HDR) : KH_NCLASSES;
		if (!kh_block_sane(h, r, x, w) || kh_quarantined(w) ||
		    ((w & KH_USED) && (c >= KH_NCLASSES || kh_class_block_size(c) != xs)))
			return false;
		if ((w & KH_USED) && (w & KH_CACHED))
			*shared |= (uint32_t)1 << c;
		else if ((w & KH_USED) && me != NULL && kh_token_cpu(h, x) == (uintptr_t)(me - h->cpus))
			*mine |= (uint32_t)1 << c;
		else if (w & KH_USED)
			return false;
		got += xs;
	}
	return got >= s;
}

/* Return the named class lists (cached_run) to the coalescing bins. */
static void flush_lists(struct kheap *h, uint32_t shared, uint32_t mine, struct kh_err *e)
{
	struct kh_cpu *me = this_cpu(h);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		uintptr_t x;
		while ((shared >> c & 1u) && (x = cache_take(h, c, e)) != 0)
			if (kh_backend_free(h, x, e) == 0) /* neighbour corrupt: keep it held */
				count_out(h, kh_size(x), 1);
		if ((mine >> c & 1u) && me != NULL)
			drain(h, me, c, me->cls[c].count, true, e);
	}
}

/* Resize held block b in place to s bytes. A right neighbour that sits in
 * a cache is free memory too (kheap.h, kheap_realloc): when the blocks to
 * the right would make room once uncached, their lists are flushed and the
 * resize tried again. O(cache capacity) on that path only. */
static bool resize_in_place(struct kheap *h, uintptr_t b, size_t s, struct kh_err *e)
{
	uint32_t shared, mine;
	if (kh_backend_resize(h, b, s, e))
		return true;
	if (e->kind != KHEAP_OK || s <= kh_size(b) || !cached_run(h, b, s, &shared, &mine) || (shared | mine) == 0)
		return false;
	flush_lists(h, shared, mine, e);
	return e->kind == KHEAP_OK && kh_backend_resize(h, b, s, e);
}

void *kheap_realloc(struct kheap *h, void *ptr, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	drain_if_asked(h, &e);
	if (ptr == NULL) {
		uintptr_t b = alloc_locked(h, size, &e);
		b = leave_alloc(h, irq, b, &e, caller);
		return b ? kh_payload(b) : NULL;
	}
	uintptr_t b = held(h, ptr, &e), nb = 0;
	size_t s = kh_block_for(kh_want(size)), old = b ? kh_size(b) : 0;
	if (b != 0 && size == 0) {
		free_locked(h, b, &e);
		b = 0;
	} else if (b != 0 && s != 0 && resize_in_place(h, b, s, &e)) {
		count_back(h, old, 0);
		count_out(h, kh_size(b), 0);
		kh_arm_canary(h, b);
		nb = b;
	} else if (b != 0 && e.kind == KHEAP_OK) {
		nb = kh_alg(b) ? aligned_locked(h, (size_t)1 << kh_alg(b), size, &e)
			       : alloc_locked(h, size, &e);
	}
	nb = leave_alloc(h, irq, nb, &e, caller);
	if (nb == 0 || nb == b)
		return nb ? kh_payload(nb) : NULL;
	/* Moved: copy outside the lock (both blocks are ours), then free. */
	size_t keep = kh_size(nb) < old ? kh_size(nb) : old;
	copy_words(kh_payload(nb), ptr, keep - KH_HDR - KH_TAIL);
	e.kind = KHEAP_OK;
	irq = kh_enter(h);
	free_locked(h, b, &e);
	leave(h, irq, &e, caller);
	return kh_payload(nb);
}

size_t kheap_usable_size(struct kheap *h, const void *ptr)
{
	const void *caller = CALLER();
	if (!live(h, caller) || ptr == NULL)
		return 0;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	uintptr_t b = held(h, ptr, &e);
	size_t n = b ? kh_usable(b) : 0;
	leave(h, irq, &e, caller);
	return n;
}

void kheap_get_stats(struct kheap *h, struct kheap_stats *out)
{
	if (!live(h, CALLER()))
		return;
	if (out == NULL) {
		kh_report_global(KHEAP_E_NULL, out, CALLER(), "kheap_get_stats: out is NULL");
		return;
	}
	uintptr_t irq = kh_enter(h);
	kh_stats_locked(h, out);
	kh_exit(h, irq);
}

/* The per-CPU counts are read with relaxed loads: their owners change them
 * without the lock (the sums are exact when no CPU is inside a kheap call). */
void kh_stats_locked(const struct kheap *h, struct kheap_stats *out)
{
	size_t bytes = 0, blocks = 0;
	uint64_t allocs = 0, frees = 0;
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++) {
		const struct kh_cpu *cpu = &h->cpus[k];
		for (unsigned c = 0; c < KH_NCLASSES; c++) {
			uint32_t n = __atomic_load_n(&cpu->cls[c].count, __ATOMIC_RELAXED);
			blocks += n;
			bytes += n * kh_class_block_size(c);
		}
		allocs += __atomic_load_n(&cpu->allocs, __ATOMIC_RELAXED);
		frees += __atomic_load_n(&cpu->frees, __ATOMIC_RELAXED);
	}
	out->total_bytes = h->n.total;
	out->in_use_bytes = h->n.in_use - bytes;
	out->peak_in_use_bytes = h->n.peak;
	out->free_bytes = h->n.free;
	out->cached_bytes = h->n.cached + bytes;
	out->largest_free = kh_largest_free(h);
	out->used_blocks = h->n.used_blocks - blocks;
	out->free_blocks = h->n.free_blocks;
	out->cached_blocks = h->n.cached_blocks + blocks;
	out->alloc_count = h->n.allocs + allocs;
	out->free_count = h->n.frees + frees;
	out->oom_count = h->n.ooms;
	out->error_count = h->n.errors;
	out->regions = h->nregions;
}

kheap_report_fn kheap_set_report(struct kheap *h, kheap_report_fn fn, void *ctx)
{
	if (!live(h, CALLER()))
		return NULL;
	uintptr_t irq = kh_enter(h);
	kheap_report_fn old = h->report;
	h->report = fn;
	h->report_ctx = ctx;
	kh_exit(h, irq);
	return old;
}

kheap_oom_fn kheap_set_oom(struct kheap *h, kheap_oom_fn fn, void *ctx)
{
	if (!live(h, CALLER()))
		return NULL;
	uintptr_t irq = kh_enter(h);
	kheap_oom_fn old = h->oom;
	h->oom = fn;
	h->oom_ctx = ctx;
	kh_exit(h, irq);
	return old;
}

void kheap_trim(struct kheap *h)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	flush_all(h, &e);
	bool others = KH_PERCPU && cached_elsewhere(h) != 0;
	leave(h, irq, &e, caller);
	if (others)
		kheap_flush_others(h);
}

void kheap_trim_cpu(struct kheap *h)
{
	const void *caller = CALLER();
	if (!live(h, caller) || !KH_PERCPU)
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	struct kh_cpu *cpu = this_cpu(h);
	if (cpu != NULL)
		drain_cpu(h, cpu, &e);
	leave(h, irq, &e, caller);
}

void kheap_cpu_dead(struct kheap *h, unsigned cpu)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	if (KHEAP_MAX_CPUS == 0 || cpu >= KH_NCPU)
		kh_fail(&e, KHEAP_E_BAD_ARG, (void *)(uintptr_t)cpu, "kheap_cpu_dead: cpu is not below KHEAP_MAX_CPUS");
	else if (KH_PERCPU)
		drain_cpu(h, &h->cpus[cpu], &e);
	leave(h, irq, &e, caller);
}
