/*
 * t_fault.c: fault injection. A scripted workload runs once per N, with the
 * Nth backend allocation made to fail (kh_fault_countdown, built in by
 * -DKH_FAULT_INJECT), for every N until the workload no longer reaches N.
 * Whatever fails must fail cleanly: NULL only from an allocating call, a
 * failed realloc leaves the old block and its contents, the OOM hook is
 * called once per NULL with the size asked for, the counters stay exact,
 * and kheap_check stays clean.
 */
#include "kh_internal.h"
#include "kt.h"

#ifdef KH_FAULT_INJECT

static _Alignas(16) unsigned char arena[1u << 20];

struct oom_log {
	unsigned calls;
	size_t last;
};

static void on_oom(void *ctx, size_t size)
{
	struct oom_log *o = ctx;
	o->calls++;
	o->last = size;
}

struct run {
	struct kheap *h;
	struct oom_log oom;
	unsigned nulls, bad;
};

/* An allocating step: a NULL must be the injected failure, reported to the
 * OOM hook with the size asked for. */
static void *step(struct run *r, void *p, size_t asked)
{
	if (p == NULL) {
		r->nulls++;
		if (r->oom.calls != r->nulls || r->oom.last != asked)
			r->bad++;
	}
	return p;
}

/* Realloc that may fail: on NULL the old block must be whole. */
static void *grow(struct run *r, void *p, size_t old, size_t n, uint64_t token)
{
	void *q = step(r, kheap_realloc(r->h, p, n), n);
	if (q == NULL) {
		if (!kt_verify(p, old, token) || kheap_usable_size(r->h, p) < old)
			r->bad++;
		return p;
	}
	if (!kt_verify(q, old < n ? old : n, token))
		r->bad++;
	return q;
}

static void workload(struct run *r)
{
	struct kheap *h = r->h;
	void *keep[8] = {0};
	keep[0] = step(r, kheap_alloc(h, 100), 100);
	keep[1] = step(r, kheap_alloc(h, 3000), 3000);
	keep[2] = step(r, kheap_calloc(h, 10, 50), 500);
	/* The batches the small ones carved back to the bins: with no cache to
	 * flush, a failure of the next two reaches the caller. */
	kheap_trim(h);
	keep[3] = step(r, kheap_aligned_alloc(h, 256, 500), 500);
	keep[4] = step(r, kheap_alloc(h, 70000), 70000);
	for (unsigned i = 0; i < 5; i++) /* small frees fill a class cache */
		kheap_free(h, step(r, kheap_alloc(h, 48), 48));
	if (keep[1]) {
		kt_fill(keep[1], 3000, 11);
		keep[1] = grow(r, keep[1], 3000, 9000, 11);
	}
	if (keep[0]) {
		kt_fill(keep[0], 100, 12);
		keep[5] = step(r, kheap_alloc(h, 16), 16); /* wall: the next grow must move */
		keep[0] = grow(r, keep[0], 100, 4000, 12);
	}
	if (keep[4]) {
		kt_fill(keep[4], 70000, 13);
		keep[4] = grow(r, keep[4], 70000, 300000, 13);
	}
	keep[6] = step(r, kheap_aligned_alloc(h, 4096, 8000), 8000);
	keep[7] = step(r, kheap_alloc(h, 200000), 200000);
	for (unsigned i = 0; i < 8; i++)
		kheap_free(h, keep[i]);
}

KT_CASE(fault_every_backend_allocation_in_turn)
{
	kt_percpu(0); /* the locked path; t_percpu.c has the per-CPU one */
	unsigned injected = 0, total_nulls = 0;
	for (unsigned long n = 1; n < 1000; n++) {
		struct kt_rec rec;
		struct run r = {kt_heap(arena, sizeof arena, &rec), {0, 0}, 0, 0};
		kheap_set_oom(r.h, on_oom, &r.oom);
		kh_fault_countdown = n;
		workload(&r);
		int reached = kh_fault_countdown == 0;
		kh_fault_countdown = 0;
		struct kheap_stats st;
		kheap_get_stats(r.h, &st);
		KT_EQ(r.bad, 0);
		KT_EQ(st.oom_count, r.nulls);
		KT_EQ(r.oom.calls, r.nulls);
		KT_EQ(st.in_use_bytes, 0);
		KT_EQ(st.used_blocks, 0);
		KT_EQ(st.alloc_count, st.free_count);
		KT_EQ(rec.count, 0);
		KT_EQ(kt_heap_check(r.h), 0);
		if (!reached) { /* the workload makes fewer than n backend allocations */
			KT_CHECK(n > 10);
			break;
		}
		injected++;
		total_nulls += r.nulls;
	}
	KT_CHECK(injected > 10);
	KT_CHECK(total_nulls > 0);        /* some failures reach the caller... */
	KT_CHECK(total_nulls < injected); /* ...and some are absorbed by a retry */
	kt_out("  injected failures: ");
	kt_putu(injected);
	kt_out(", seen by the caller as NULL: ");
	kt_putu(total_nulls);
	kt_out("\n");
}

#endif /* KH_FAULT_INJECT */
