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

static inline void leave(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller)
{
	if (KHEAP_HARDEN >= 3 && ++h->ops % KHEAP_CHECK_EVERY == 0)
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
	return b;
}

/* ---- accounting --------------------------------------------------------- */

/* Hand used block b to the caller: its canary, the counters, and its tag. */
static void count_grant(struct kheap *h, uintptr_t b, const struct kh_err *e)
{
	kh_arm_canary(h, b);
	h->n.in_use += kh_size(b);
	h->n.used_blocks++;
	h->n.allocs++;
	kh_tag_put(b, (struct kh_tag){kh_err_caller(e), h->n.allocs});
	if (h->n.in_use > h->n.peak)
		h->n.peak = h->n.in_use;
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
			if (kh_backend_free(h, b, e) == 0) { /* neighbour corrupt: keep it held */
				h->n.in_use += kh_size(b);
				h->n.used_blocks++;
			}
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

/* A used block of at least s bytes from the backend, flushing the caches and
 * retrying once when it runs dry. align > KHEAP_ALIGN asks for an aligned one. */
static uintptr_t backend_take(struct kheap *h, size_t s, size_t align, struct kh_err *e)
{
	for (int tries = 0; tries < 2; tries++) {
		uintptr_t b = align > KHEAP_ALIGN ? kh_backend_aligned(h, s, align, e)
						  : kh_backend_alloc(h, s, e);
		if (b != 0 || h->n.cached_blocks == 0 || e->kind != KHEAP_OK)
			return b;
		flush_caches(h, e);
	}
	return 0;
}

/* Count an allocation of n bytes that failed; unless a misuse or corruption
 * was the cause, it is an out-of-memory event for the OOM hook. */
static uintptr_t out_of_memory(struct kheap *h, size_t n, struct kh_err *e)
{
	if (e->kind == KHEAP_OK) {
		h->n.ooms++;
		e->oom = true;
		e->oom_size = n;
	}
	return 0;
}

/* A used block for n payload bytes, counted, or 0 (counted as OOM). */
static uintptr_t alloc_locked(struct kheap *h, size_t n, struct kh_err *e)
{
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
		return out_of_memory(h, n, e);
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
		return out_of_memory(h, n, e);
	kh_set(h, b, kh_size(b), kh_flags(b), kh_fls_size(align));
	count_grant(h, b, e);
	return b;
}

/* Give back held block b (validated by held()). */
static void free_locked(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	size_t s = kh_size(b);
	if (!cache_put(h, b) && kh_backend_free(h, b, e) == 0)
		return;
	h->n.in_use -= s;
	h->n.used_blocks--;
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

void *kheap_alloc(struct kheap *h, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	uintptr_t b = alloc_locked(h, size, &e);
	leave(h, irq, &e, caller);
	return b ? kh_payload(b) : NULL;
}

void *kheap_aligned_alloc(struct kheap *h, size_t align, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t b = 0;
	uintptr_t irq = kh_enter(h);
	if (align == 0 || (align & (align - 1)) != 0)
		kh_fail(&e, KHEAP_E_BAD_ALIGN, (void *)align, "alignment is not a power of two");
	else if (size > SIZE_MAX - align)
		kh_fail(&e, KHEAP_E_OVERFLOW, (void *)size, "size + alignment overflows");
	else
		b = aligned_locked(h, align, size, &e);
	leave(h, irq, &e, caller);
	return b ? kh_payload(b) : NULL;
}

void *kheap_calloc(struct kheap *h, size_t n, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t b = 0;
	uintptr_t irq = kh_enter(h);
	if (size != 0 && n > SIZE_MAX / size)
		kh_fail(&e, KHEAP_E_OVERFLOW, (void *)n, "calloc count * size overflows");
	else
		b = alloc_locked(h, n * size, &e);
	leave(h, irq, &e, caller);
	if (b == 0)
		return NULL;
	zero_words(kh_payload(b), kh_usable(b)); /* outside the lock */
	return kh_payload(b);
}

void kheap_free(struct kheap *h, void *ptr)
{
	const void *caller = CALLER();
	if (!live(h, caller) || ptr == NULL)
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	uintptr_t b = held(h, ptr, &e);
	if (b != 0)
		free_locked(h, b, &e);
	leave(h, irq, &e, caller);
}

void *kheap_realloc(struct kheap *h, void *ptr, size_t size)
{
	const void *caller = CALLER();
	if (!live(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	if (ptr == NULL) {
		uintptr_t b = alloc_locked(h, size, &e);
		leave(h, irq, &e, caller);
		return b ? kh_payload(b) : NULL;
	}
	uintptr_t b = held(h, ptr, &e), nb = 0;
	size_t s = kh_block_for(kh_want(size)), old = b ? kh_size(b) : 0;
	if (b != 0 && size == 0) {
		free_locked(h, b, &e);
		b = 0;
	} else if (b != 0 && s != 0 && kh_backend_resize(h, b, s, &e)) {
		h->n.in_use = h->n.in_use - old + kh_size(b);
		if (h->n.in_use > h->n.peak)
			h->n.peak = h->n.in_use;
		kh_arm_canary(h, b);
		nb = b;
	} else if (b != 0 && e.kind == KHEAP_OK) {
		nb = kh_alg(b) ? aligned_locked(h, (size_t)1 << kh_alg(b), size, &e)
			       : alloc_locked(h, size, &e);
	}
	leave(h, irq, &e, caller);
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

void kh_stats_locked(const struct kheap *h, struct kheap_stats *out)
{
	out->total_bytes = h->n.total;
	out->in_use_bytes = h->n.in_use;
	out->peak_in_use_bytes = h->n.peak;
	out->free_bytes = h->n.free;
	out->cached_bytes = h->n.cached;
	out->largest_free = kh_largest_free(h);
	out->used_blocks = h->n.used_blocks;
	out->free_blocks = h->n.free_blocks;
	out->cached_blocks = h->n.cached_blocks;
	out->alloc_count = h->n.allocs;
	out->free_count = h->n.frees;
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
	flush_caches(h, &e);
	leave(h, irq, &e, caller);
}
