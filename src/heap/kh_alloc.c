/*
 * kh_alloc.c: the locked allocation and release policy, and running out.
 *
 * A request up to KH_SHARED_MAX_PAYLOAD is rounded to its size class and
 * served from the class's shared list (kh_cache.c); an empty list gets a
 * batch of the class carved from one backend block (kh_cache_carve), or
 * failing that the backend serves the one block; larger
 * and aligned ones go to the backend (kh_tlsf.c). A given-back block goes
 * to its class list when it is a class size and the list has room, else to
 * the backend.
 *
 * Running out: a backend request that fails flushes every cache it may
 * (kh_flush_all: the shared lists and the calling CPU's own) and tries
 * once more. Still short while other CPUs' caches hold enough, the
 * allocation is not counted as an OOM yet: kh_leave_alloc drops the lock,
 * calls the kernel's kheap_flush_others (an IPI that makes every CPU drain
 * its own) and asks once more (kh_retry_alloc); only a failure then is an
 * OOM for the counters and the OOM hook.
 *
 * Calls down only: kh_percpu.c (flushing), kh_cache.c, kh_tlsf.c,
 * kh_stats.c.
 */
#include "kh_internal.h"

/* Everything cached back to the backend: the shared lists and this CPU's
 * cache now, the other CPUs' when kheap_flush_others reaches them or at
 * their next allocation or free (drain flag). Lock held. */
void kh_flush_all(struct kheap *h, struct kh_err *e)
{
	if (KH_PERCPU)
		kh_flush_cpus(h, e);
	kh_cache_flush(h, e);
	kh_obj_flush(h, e);
}

/* After a backend request for s bytes (aligned to align when above
 * KHEAP_ALIGN) came back empty: flush the caches and, when that gave the
 * bins anything, ask once more. Not after a misuse or corruption. */
static __attribute__((noinline)) uintptr_t retry_flushed(struct kheap *h, size_t s, size_t align, struct kh_err *e)
{
	if (e->kind != KHEAP_OK)
		return 0;
	size_t before = h->n.free;
	kh_flush_all(h, e);
	if (h->n.free == before)
		return 0;
	return align > KHEAP_ALIGN ? kh_backend_aligned(h, s, align, e) : kh_backend_alloc(h, s, e);
}

/* A used block of at least s bytes from the backend, flushing the caches and
 * retrying once when it runs dry. align > KHEAP_ALIGN asks for an aligned one. */
static inline uintptr_t backend_take(struct kheap *h, size_t s, size_t align, struct kh_err *e)
{
	uintptr_t b = align > KHEAP_ALIGN ? kh_backend_aligned(h, s, align, e) : kh_backend_alloc(h, s, e);
	return b != 0 ? b : retry_flushed(h, s, align, e);
}

/* Count an allocation of n bytes aligned to align that failed; unless a
 * misuse or corruption was the cause, it is an out-of-memory event for the
 * OOM hook. On a first try, while other CPUs' caches hold enough that the
 * block might fit once they are flushed, it is not counted yet: e->retry
 * asks kh_leave_alloc to have them flushed and to try again. */
static uintptr_t out_of_memory(struct kheap *h, size_t align, size_t n, struct kh_err *e)
{
	if (e->kind != KHEAP_OK)
		return 0;
	size_t s = kh_block_for(kh_want(n)), elsewhere = KH_PERCPU && !e->retried ? kh_cached_elsewhere(h) : 0;
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

/* Has the calling CPU a number (for kh_alloc_locked's switch to the
 * per-CPU path)? With a port header, its inline hook; without, the number
 * the lock recorded when this CPU took it (holder = kheap_cpu_id() + 1,
 * kh_lock.h), which spares the locked path a second call. Lock held. */
#ifdef KHEAP_PORT_HEADER
#define caller_named(h) kh_cpu_named(kh_cpu_id())
#else
#define caller_named(h) kh_cpu_named((uintptr_t)atomic_load_explicit(&(h)->lock.holder, memory_order_relaxed) - 1u)
#endif

/* A used block for n payload bytes, counted, or 0 (counted as OOM). */
uintptr_t kh_alloc_locked(struct kheap *h, size_t n, struct kh_err *e)
{
	if (KH_PERCPU && !h->percpu && caller_named(h))
		__atomic_store_n(&h->percpu, 1, __ATOMIC_RELAXED); /* from the next call on */
	uintptr_t b = 0;
	size_t want = kh_want(n), s = kh_block_for(want);
	unsigned c = want <= KH_SHARED_MAX_PAYLOAD ? kh_size_class(want) : KH_NCLASSES;
	if (c < KH_NCLASSES && h->cpus[KH_SHARED].cls[c].limit != 0) {
		b = kh_cache_take(h, c, e);
		if (b == 0)
			b = kh_cache_carve(h, c, e);
		if (b == 0)
			b = kh_backend_alloc(h, kh_class_block_size(c), e);
	}
	if (b == 0 && s != 0)
		b = backend_take(h, s, KHEAP_ALIGN, e);
	if (b == 0)
		return out_of_memory(h, KHEAP_ALIGN, n, e);
	kh_count_grant(h, b, e);
	return b;
}

uintptr_t kh_aligned_locked(struct kheap *h, size_t align, size_t n, struct kh_err *e)
{
	if (align <= KHEAP_ALIGN)
		return kh_alloc_locked(h, n, e);
	size_t s = kh_block_for(kh_want(n));
	uintptr_t b = 0;
	if (s != 0 && align <= KH_MAX_BLOCK && s <= KH_MAX_BLOCK - align - KH_GRANULE)
		b = backend_take(h, s, align, e);
	if (b == 0)
		return out_of_memory(h, align, n, e);
	kh_set(h, b, kh_size(b), kh_flags(b), kh_fls_size(align));
	kh_count_grant(h, b, e);
	return b;
}

/* The slow half of kh_leave_alloc (kh_internal.h): for an allocating entry point whose locked stretch handed out b
 * (or 0). When that stretch ran short while other CPUs' caches held blocks
 * (e->retry), the lock is dropped for kheap_flush_others, which the CPUs it
 * interrupts need, and the request is made once more if the hook says every
 * cache is in the bins; a failure then, or a false answer, is the OOM. */
uintptr_t kh_retry_alloc(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller)
{
	size_t n = e->oom_size, align = (size_t)1 << e->oom_alg;
	kh_exit(h, irq);
	bool flushed = kheap_flush_others(h);
	irq = kh_enter(h);
	e->retry = false;
	e->retried = true;
	uintptr_t b = flushed ? kh_aligned_locked(h, align, n, e) : out_of_memory(h, align, n, e);
	kh_leave(h, irq, e, caller);
	return b;
}

/* Give back held block b (validated by kh_held()). */
void kh_free_locked(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	size_t s = kh_size(b);
	if (!(s <= KH_SHARED_MAX_BLOCK && kh_cache_put(h, b)) && kh_backend_free(h, b, e) == 0)
		return;
	kh_count_back(h, s, 1);
	h->n.frees++;
}
