/*
 * kheap.c: the public entry points and kheap_init (contract in kheap.h).
 *
 * Each entry point checks the handle, takes the lock with interrupts masked
 * (kh_enter), does its work through the *_locked helpers, which record at
 * most one failed check in a struct kh_err instead of reporting, then
 * releases the lock and only then reports (kh_leave). The report hook
 * therefore never runs under the lock and may take it again, e.g. to dump
 * the heap.
 *
 * kheap_alloc and kheap_free first try the calling CPU's cache with one
 * fused assembly call (kh_cpu_alloc, kh_cpu_free: class, checks and list
 * operation) and keep everything else out of line (alloc_path, free_path;
 * with inline hooks also the shared lists' path), so that their own frames
 * stay small. What the fused call leaves goes to
 * the per-CPU path in C (kh_percpu.c), then to the locked path (kh_alloc.c).
 * Until some CPU has had a number (kh_percpu_on), they take the locked path
 * without asking for one.
 *
 * Where the rest lives: docs/design.md, "Source files".
 */
#include "kh_internal.h"

/* A bounded word loop: the library calls no memcpy of the kernel's. */
static void copy_words(void *dst, const void *src, size_t n)
{
	uint64_t *d = dst;
	const uint64_t *s = src;
	for (size_t i = 0; i < n / 8; i++)
		d[i] = s[i];
}

size_t kheap_control_size(void)
{
	return (sizeof(struct kheap) + KHEAP_ALIGN - 1) & ~(size_t)(KHEAP_ALIGN - 1);
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
	    !kh_region_geometry(&r, lo, lo + size, lo + ctl))
		return NULL;
	/* Each init gets its own secret even when the entropy hook is the
	 * default, so headers left in memory by an earlier heap on the same
	 * arena never validate for this one. */
	static _Atomic uint64_t inits;
	kh_word gen = atomic_fetch_add_explicit(&inits, 1u, memory_order_relaxed);
	struct kheap *h = base;
	kh_zero_words(h, ctl);
	h->magic = KH_MAGIC ^ lo;
	h->secret = mix64(kheap_entropy() ^ (kh_word)lo ^ mix64(gen + 0x6b68656170736563u));
	kh_region_attach(h, &r);
	for (unsigned k = 0; k < KH_NSLOTS; k++) {
		h->cpus[k].key = kh_key(h);
		h->cpus[k].tkey = kh_tkey(h, k);
		kh_cpu_sync(h, &h->cpus[k]);
	}
	uintptr_t irq = kh_irq_save();
	h->percpu = kh_cpu_named(kh_cpu_id());
	kh_irq_restore(irq);
	return h;
}

int kheap_add_region(struct kheap *h, void *base, size_t size)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return -KHEAP_E_BAD_HEAP;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	kh_region_add(h, base, size, &e);
	int rc = -(int)e.kind;
	kh_leave(h, irq, &e, caller);
	return rc;
}

/* The locked allocation, from inside a locked stretch (the lock held,
 * interrupts saved in irq): the shared lists' C path, then the backend. */
static __attribute__((noinline)) void *locked_alloc(struct kheap *h, size_t size, uintptr_t irq,
						    const void *caller)
{
	struct kh_err e = KH_ERR_AT(caller);
	if (KH_PERCPU && kh_percpu_on(h))
		kh_drain_if_asked(h, &e);
	uintptr_t b = kh_alloc_locked(h, size, &e);
	b = kh_leave_alloc(h, irq, b, &e, caller);
	return b ? kh_payload(b) : NULL;
}

/* Everything but the fused fast path: the handle check, the per-CPU path
 * in C, the locked path. Out of line, so that kheap_alloc's own frame
 * stays small. */
static __attribute__((noinline)) void *alloc_path(struct kheap *h, size_t size, const void *caller)
{
	if (!kh_handle_ok(h, caller))
		return NULL;
	void *p = KH_PERCPU && kh_percpu_on(h) ? kh_percpu_alloc(h, size, caller) : NULL;
	if (p != NULL)
		return p;
	return locked_alloc(h, size, kh_enter(h), caller);
}

/* The shape of kheap_alloc and kheap_free. With the hooks inline
 * (KHEAP_PORT_HEADER), the fused call is kh_call_cpu_alloc/free: with an
 * arch header the compiler knows the few registers the assembly writes and
 * keeps h, size and the IRQ state in others, so a per-CPU hit saves no
 * register; the shared lists' path, whose calls need saved registers, then
 * goes out of line (shared_alloc, shared_free) so that the hit does not
 * pay for them. With the hooks as functions, the entry saves registers for
 * their calls anyway: plain calls, and the shared path stays in the entry,
 * where a second frame would only add to the locked call. */
#ifdef KHEAP_PORT_HEADER
#define KH_SHARED_APART 1
#else
#define KH_SHARED_APART 0
#endif

/* Level 1 around the fused routines (KH_POISONS, KH_CANARIES): what the C
 * per-CPU path does in kh_grant_checks and kh_release_hook, on a block that
 * only the caller can reach, with interrupts masked (and, on the shared
 * lists, the lock held).
 * fused_granted, after kh_cpu_alloc handed out p: checks the poison that its
 * free left (false: written after free; the block is sound and handed out,
 * and the caller reports it through fused_uaf once unlocked), then arms the
 * canary, as the C path's grant does.
 * fused_kept, after kh_cpu_free pushed p: checks p's canary. A block whose
 * canary is gone is taken back off the list, whose head it is, and false
 * sends it to the locked path, which reports it. Else p is poisoned past
 * its link and token. The canary of the smallest block lies past both. */
_Static_assert(!KH_FUSED || !KH_CANARIES || KH_MIN_BLOCK - KH_HDR - KH_TAIL >= 2 * sizeof(uintptr_t),
	       "a listed block's link and token end before its canary");

static inline bool fused_granted(const struct kheap *h, void *p)
{
	uintptr_t b = kh_block_of(p);
	bool ok = kh_poison_ok_inline(b);
	kh_arm_canary(h, b);
	return ok;
}

static __attribute__((noinline, cold)) void fused_uaf(struct kheap *h, void *p, const void *caller)
{
	struct kh_err e = KH_ERR_AT(caller);
	kh_fail(&e, KHEAP_E_USE_AFTER_FREE, p, "freed memory was written after free");
	kh_report_counted(h, &e, caller);
}

static inline bool fused_kept(const struct kheap *h, struct kh_cpu *cpu, void *p)
{
	uintptr_t b = kh_block_of(p);
	if (__builtin_expect(*kh_canary_slot(b) != kh_canary(h, b), 0)) {
		kh_cpu_pop(&cpu->cls[kh_size_class(kh_size(b) - KH_HDR)], kh_key(h), cpu->tkey);
		__atomic_store_n(&cpu->frees, cpu->frees - 1, __ATOMIC_RELAXED);
		return false;
	}
	kh_poison_inline(b);
	return true;
}

static inline void *fused_alloc(struct kh_cpu *cpu, size_t n)
{
	return KH_SHARED_APART ? kh_call_cpu_alloc(cpu, n) : kh_cpu_alloc(cpu, n);
}

static inline int fused_free(struct kh_cpu *cpu, void *ptr)
{
	return KH_SHARED_APART ? kh_call_cpu_free(cpu, ptr) : kh_cpu_free(cpu, ptr);
}

/* A CPU without a cache of its own: the fused call on the shared lists,
 * with the lock held, staying in that locked stretch when they miss.
 * Interrupts are masked (saved in irq). */
static inline __attribute__((always_inline)) void *shared_alloc_at(struct kheap *h, size_t size, uintptr_t irq,
								   const void *caller)
{
	kh_lock_acquire(&h->lock);
	size_t n = kh_want(size);
	void *p = n <= KH_SHARED_MAX_PAYLOAD ? fused_alloc(&h->cpus[KH_SHARED], n) : NULL;
	if (p == NULL)
		return locked_alloc(h, size, irq, caller);
	kh_count_out(h, kh_size(kh_block_of(p)), 1); /* shared blocks are not in use */
	bool sound = !KH_POISONS || fused_granted(h, p);
	kh_lock_release(&h->lock);
	kh_irq_restore(irq);
	if (!sound)
		fused_uaf(h, p, caller);
	return p;
}

static __attribute__((noinline)) void *shared_alloc(struct kheap *h, size_t size, uintptr_t irq,
						    const void *caller)
{
	return shared_alloc_at(h, size, irq, caller);
}

/* The fused fast path: one call to kh_cpu_alloc on this CPU's cache, with
 * interrupts masked; or the shared lists' path when this CPU has none.
 * kh_cpu_alloc refuses a size above the classes itself. Anything else,
 * including a hardened or tags build and a heap of several regions, takes
 * alloc_path. */
void *kheap_alloc(struct kheap *h, size_t size)
{
	if (KH_FUSED && __builtin_expect(kh_live(h), 1)) {
		uintptr_t irq = kh_irq_save();
		unsigned id = KH_PERCPU && kh_percpu_on(h) ? kh_cpu_id() : KHEAP_NO_CPU;
		if (__builtin_expect(!kh_cpu_named(id), 0))
			return KH_SHARED_APART ? shared_alloc(h, size, irq, KH_CALLER())
					       : shared_alloc_at(h, size, irq, KH_CALLER());
		void *p = fused_alloc(&h->cpus[id], kh_want(size));
		bool sound = !KH_POISONS || p == NULL || fused_granted(h, p);
		kh_irq_restore(irq);
		if (__builtin_expect(p != NULL, 1)) {
			if (!sound)
				fused_uaf(h, p, KH_CALLER());
			return p;
		}
	}
	return alloc_path(h, size, KH_CALLER());
}

void *kheap_aligned_alloc(struct kheap *h, size_t align, size_t size)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t b = 0;
	uintptr_t irq = kh_enter(h);
	kh_drain_if_asked(h, &e);
	if (align == 0 || (align & (align - 1)) != 0)
		kh_fail(&e, KHEAP_E_BAD_ALIGN, (void *)align, "alignment is not a power of two");
	else if (size > SIZE_MAX - align)
		kh_fail(&e, KHEAP_E_OVERFLOW, (void *)size, "size + alignment overflows");
	else
		b = kh_aligned_locked(h, align, size, &e);
	b = kh_leave_alloc(h, irq, b, &e, caller);
	return b ? kh_payload(b) : NULL;
}

void *kheap_calloc(struct kheap *h, size_t n, size_t size)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t b = 0;
	void *p = NULL;
	if (KH_PERCPU && kh_percpu_on(h) && (size == 0 || n <= SIZE_MAX / size))
		p = kh_percpu_alloc(h, n * size, caller);
	if (p != NULL)
		b = kh_block_of(p);
	if (b == 0) {
		uintptr_t irq = kh_enter(h);
		kh_drain_if_asked(h, &e);
		if (size != 0 && n > SIZE_MAX / size)
			kh_fail(&e, KHEAP_E_OVERFLOW, (void *)n, "calloc count * size overflows");
		else
			b = kh_alloc_locked(h, n * size, &e);
		b = kh_leave_alloc(h, irq, b, &e, caller);
	}
	if (b == 0)
		return NULL;
	kh_zero_words(kh_payload(b), kh_usable(b)); /* outside the lock */
	return kh_payload(b);
}

/* The locked free, from inside a locked stretch (the lock held, interrupts
 * saved in irq): validate the block itself (kh_held), then the shared lists
 * or the backend, which checks the neighbours as it merges with them. */
static __attribute__((noinline)) void locked_free(struct kheap *h, void *ptr, uintptr_t irq, const void *caller)
{
	struct kh_err e = KH_ERR_AT(caller);
	if (KH_PERCPU && kh_percpu_on(h))
		kh_drain_if_asked(h, &e);
	uintptr_t b = kh_held(h, ptr, &e, KH_HELD_OWN);
	if (b != 0)
		kh_free_locked(h, b, &e);
	kh_leave(h, irq, &e, caller);
}

/* Everything but the fused fast path, as alloc_path. fused: what
 * kh_cpu_free answered, or -1 when it was not called. An answer of 0
 * through an exact span (this CPU's span covers the heap's one region)
 * means that ptr is no plain class block, which the C per-CPU path would
 * refuse too: straight to the lock. Read with interrupts masked again; a
 * stale answer (a region added meanwhile) only sends the block to the
 * lock, which takes all. */
static __attribute__((noinline)) void free_path(struct kheap *h, void *ptr, const void *caller, int fused)
{
	if (!kh_handle_ok(h, caller) || ptr == NULL)
		return;
	bool plain_no = false;
	if (fused == 0) {
		uintptr_t irq = kh_irq_save();
		const struct kh_cpu *cpu = kh_this_cpu(h);
		plain_no = cpu != NULL && __atomic_load_n(&cpu->regions, __ATOMIC_RELAXED) == 1;
		kh_irq_restore(irq);
	}
	if (KH_PERCPU && kh_percpu_on(h) && !plain_no && kh_percpu_free(h, ptr, caller))
		return;
	locked_free(h, ptr, kh_enter(h), caller);
}

/* A CPU without a cache of its own: the fused call on the shared lists
 * under the lock, as shared_alloc_at. */
static inline __attribute__((always_inline)) void shared_free_at(struct kheap *h, void *ptr, uintptr_t irq,
								 const void *caller)
{
	if (ptr == NULL) {
		kh_irq_restore(irq);
		return;
	}
	kh_lock_acquire(&h->lock);
	if (fused_free(&h->cpus[KH_SHARED], ptr) != 1 || /* not plainly a class block, or full */
	    (KH_CANARIES && !fused_kept(h, &h->cpus[KH_SHARED], ptr)))
		return locked_free(h, ptr, irq, caller);
	kh_count_back(h, kh_size(kh_block_of(ptr)), 1); /* shared blocks are not in use */
	kh_lock_release(&h->lock);
	kh_irq_restore(irq);
}

static __attribute__((noinline)) void shared_free(struct kheap *h, void *ptr, uintptr_t irq, const void *caller)
{
	shared_free_at(h, ptr, irq, caller);
}

/* The fused fast path (kh_cpu_free) as in kheap_alloc; else free_path.
 * NULL needs no test on the per-CPU path: kh_cpu_free reads nothing
 * outside its span and answers 0, and free_path returns. */
void kheap_free(struct kheap *h, void *ptr)
{
	int r = -1;
	if (KH_FUSED && __builtin_expect(kh_live(h), 1)) {
		uintptr_t irq = kh_irq_save();
		unsigned id = KH_PERCPU && kh_percpu_on(h) ? kh_cpu_id() : KHEAP_NO_CPU;
		if (__builtin_expect(!kh_cpu_named(id), 0))
			return KH_SHARED_APART ? shared_free(h, ptr, irq, KH_CALLER())
					       : shared_free_at(h, ptr, irq, KH_CALLER());
		r = fused_free(&h->cpus[id], ptr);
		if (KH_CANARIES && r == 1 && !fused_kept(h, &h->cpus[id], ptr))
			r = 0; /* taken back: the locked path reports it */
		kh_irq_restore(irq);
		if (__builtin_expect(r == 1, 1))
			return;
	}
	free_path(h, ptr, KH_CALLER(), r);
}

/* ---- realloc: a cached right neighbour counts as free -------------------- */

/* Would growing held block b in place to s bytes fit in the run of blocks
 * to its right that are free, or cached in a shared class list, in this
 * CPU's own lists, or (objects of object caches) in a cache's depot or
 * this CPU's list of it? If so, the class lists that hold the run's cached
 * blocks are named in *shared and *mine (bit c for class c), and *objs says
 * whether object caches hold some. The walk is bounded by the caches'
 * capacity: free blocks in the run never touch, so it holds at most one
 * more of them than cached ones. Lock held, interrupts masked. */
_Static_assert(KH_NCLASSES <= 64, "cached_run names classes by the bits of a 64-bit mask");

static bool cached_run(struct kheap *h, uintptr_t b, size_t s, uint64_t *shared, uint64_t *mine, bool *objs)
{
	const struct kh_region *r = kh_region_of(h, b);
	const struct kh_cpu *me = KH_PERCPU && kh_percpu_on(h) ? kh_this_cpu(h) : NULL;
	size_t got = kh_size(b);
	*shared = *mine = 0;
	*objs = false;
	for (uintptr_t x = b + got; got < s && x < r->end; x += kh_size(x)) {
		kh_word w = *kh_hdr(x);
		size_t xs = (size_t)(w & KH_SIZE_MASK);
		unsigned c = xs > KH_HDR ? kh_size_class(xs - KH_HDR) : KH_NCLASSES;
		if (!kh_block_sane(h, r, x, w) || kh_quarantined(w))
			return false;
		if (kh_is_obj(w)) { /* cached, if on a list this CPU may empty */
			uintptr_t t = kh_token_cpu(h, x);
			if (t != KH_SHARED && (me == NULL || t != (uintptr_t)(me - h->cpus)))
				return false;
			*objs = true;
			got += xs;
			continue;
		}
		if ((w & KH_USED) && (c >= KH_NCLASSES || kh_class_block_size(c) != xs))
			return false;
		if ((w & KH_USED) && kh_token_cpu(h, x) == KH_SHARED)
			*shared |= (uint64_t)1 << c;
		else if ((w & KH_USED) && me != NULL && kh_token_cpu(h, x) == (uintptr_t)(me - h->cpus))
			*mine |= (uint64_t)1 << c;
		else if (w & KH_USED)
			return false;
		got += xs;
	}
	return got >= s;
}

/* Return the named class lists (cached_run) to the coalescing bins, and
 * with objs every cache's depot and this CPU's object lists (reserves
 * stay). */
static void flush_lists(struct kheap *h, uint64_t shared, uint64_t mine, bool objs, struct kh_err *e)
{
	struct kh_cpu *me = kh_this_cpu(h);
	if (objs) {
		kh_obj_flush(h, e);
		if (KH_PERCPU && me != NULL)
			kh_obj_drain_cpu(h, (unsigned)(me - h->cpus), false, e);
	}
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		uintptr_t x;
		while ((shared >> c & 1u) && (x = kh_cache_take(h, c, e)) != 0)
			if (kh_backend_free(h, x, e) == 0) /* neighbour corrupt: keep it held */
				kh_count_out(h, kh_size(x), 1);
		if ((mine >> c & 1u) && me != NULL)
			kh_drain_class(h, me, c, e);
	}
}

/* Resize held block b in place to s bytes. A right neighbour that sits in
 * a cache is free memory too (kheap.h, kheap_realloc): when the blocks to
 * the right would make room once uncached, their lists are flushed and the
 * resize tried again. O(cache capacity) on that path only. */
static bool resize_in_place(struct kheap *h, uintptr_t b, size_t s, struct kh_err *e)
{
	uint64_t shared, mine;
	bool objs;
	if (kh_backend_resize(h, b, s, e))
		return true;
	if (e->kind != KHEAP_OK || s <= kh_size(b) || !cached_run(h, b, s, &shared, &mine, &objs) ||
	    ((shared | mine) == 0 && !objs))
		return false;
	flush_lists(h, shared, mine, objs, e);
	return e->kind == KHEAP_OK && kh_backend_resize(h, b, s, e);
}

void *kheap_realloc(struct kheap *h, void *ptr, size_t size)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return NULL;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	kh_drain_if_asked(h, &e);
	if (ptr == NULL) {
		uintptr_t b = kh_alloc_locked(h, size, &e);
		b = kh_leave_alloc(h, irq, b, &e, caller);
		return b ? kh_payload(b) : NULL;
	}
	uintptr_t b = kh_held(h, ptr, &e, KH_HELD_LOCKED), nb = 0;
	size_t s = kh_block_for(kh_want(size)), old = b ? kh_size(b) : 0;
	if (b != 0 && size == 0) {
		kh_free_locked(h, b, &e);
		b = 0;
	} else if (b != 0 && s != 0 && resize_in_place(h, b, s, &e)) {
		kh_count_back(h, old, 0);
		kh_count_out(h, kh_size(b), 0);
		kh_arm_canary(h, b);
		nb = b;
	} else if (b != 0 && e.kind == KHEAP_OK) {
		nb = kh_alg(b) ? kh_aligned_locked(h, (size_t)1 << kh_alg(b), size, &e)
			       : kh_alloc_locked(h, size, &e);
	}
	nb = kh_leave_alloc(h, irq, nb, &e, caller);
	if (nb == 0 || nb == b)
		return nb ? kh_payload(nb) : NULL;
	/* Moved: copy outside the lock (both blocks are ours), then free. */
	size_t keep = kh_size(nb) < old ? kh_size(nb) : old;
	copy_words(kh_payload(nb), ptr, keep - KH_HDR - KH_TAIL);
	e.kind = KHEAP_OK;
	irq = kh_enter(h);
	kh_free_locked(h, b, &e);
	kh_leave(h, irq, &e, caller);
	return kh_payload(nb);
}

size_t kheap_usable_size(struct kheap *h, const void *ptr)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller) || ptr == NULL)
		return 0;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	uintptr_t b = kh_held(h, ptr, &e, KH_HELD_LOCKED);
	size_t n = b ? kh_usable(b) : 0;
	kh_leave(h, irq, &e, caller);
	return n;
}

kheap_report_fn kheap_set_report(struct kheap *h, kheap_report_fn fn, void *ctx)
{
	if (!kh_handle_ok(h, KH_CALLER()))
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
	if (!kh_handle_ok(h, KH_CALLER()))
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
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	kh_flush_all(h, &e);
	bool others = KH_PERCPU && kh_cached_elsewhere(h) != 0;
	kh_leave(h, irq, &e, caller);
	if (others)
		kheap_flush_others(h);
}

void kheap_trim_cpu(struct kheap *h)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller) || !KH_PERCPU)
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	struct kh_cpu *cpu = kh_this_cpu(h);
	if (cpu != NULL)
		kh_drain_cpu(h, cpu, false, &e);
	kh_leave(h, irq, &e, caller);
}

void kheap_cpu_dead(struct kheap *h, unsigned cpu)
{
	const void *caller = KH_CALLER();
	if (!kh_handle_ok(h, caller))
		return;
	struct kh_err e = KH_ERR_AT(caller);
	uintptr_t irq = kh_enter(h);
	if (KHEAP_MAX_CPUS == 0 || cpu >= KH_NCPU)
		kh_fail(&e, KHEAP_E_BAD_ARG, (void *)(uintptr_t)cpu, "kheap_cpu_dead: cpu is not below KHEAP_MAX_CPUS");
	else if (KH_PERCPU)
		kh_drain_cpu(h, &h->cpus[cpu], true, &e);
	kh_leave(h, irq, &e, caller);
}

