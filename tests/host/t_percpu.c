/*
 * t_percpu.c: the per-CPU caches (kh_internal.h). Every case turns them on
 * for its own thread, whatever KT_PERCPU says, and checks what only they
 * do: exact statistics with blocks in per-CPU lists, double frees caught
 * without the lock (also across CPUs), corrupt lists repaired, kheap_trim's
 * drain requests, the OOM drain, and injected refill failures. Host only:
 * a second CPU is a second thread.
 */
#include <pthread.h>

#include "kh_internal.h"
#include "kt.h"

#if KH_PERCPU /* not in builds without them (KHEAP_MAX_CPUS=0, KHEAP_TAGS) */

#define ARENA (1u << 20)
static _Alignas(16) unsigned char arena[ARENA];

static struct kheap_stats stats(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st;
}

static int balanced(struct kheap *h)
{
	struct kheap_stats st = stats(h);
	return KT_EQ(st.in_use_bytes + st.free_bytes + st.cached_bytes, st.total_bytes);
}

static size_t block_bytes(struct kheap *h, void *p) { return kheap_usable_size(h, p) + KHEAP_BLOCK_OVERHEAD; }

/* Everything freed and trimmed on this (the only) CPU: one free block. */
static void all_back(struct kheap *h)
{
	kheap_trim(h);
	struct kheap_stats st = stats(h);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(percpu_stats_are_exact)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	void *a = kheap_alloc(h, 100), *b = kheap_alloc(h, 5000), *c = kheap_alloc(h, 24);
	size_t ba = block_bytes(h, a), bb = block_bytes(h, b), bc = block_bytes(h, c);
	struct kheap_stats st = stats(h);
	KT_EQ(st.in_use_bytes, ba + bb + bc);
	KT_EQ(st.used_blocks, 3);
	KT_EQ(st.alloc_count, 3);
	KT_CHECK(st.cached_blocks > 1); /* the refills carved batches */
	KT_CHECK(balanced(h));
	kheap_free(h, b);
	kheap_free(h, a);
	st = stats(h);
	KT_EQ(st.in_use_bytes, bc);
	KT_EQ(st.used_blocks, 1);
	KT_EQ(st.free_count, 2);
	KT_CHECK(st.peak_in_use_bytes >= ba + bb + bc);
	KT_CHECK(balanced(h));
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, c);
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* The walk calls blocks on a per-CPU list free, like kheap_stats. */
static void count_used(void *ctx, void *ptr, size_t size, int used)
{
	(void)ptr, (void)size;
	*(size_t *)ctx += (size_t)used;
}

KT_CASE(percpu_walk_and_stats_agree)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	void *p[40];
	for (unsigned i = 0; i < 40; i++)
		p[i] = kheap_alloc(h, 16 + 8 * (i % 5));
	for (unsigned i = 0; i < 40; i += 3)
		kheap_free(h, p[i]);
	size_t used = 0;
	kheap_walk(h, count_used, &used);
	KT_EQ(used, stats(h).used_blocks);
	KT_EQ(used, 40 - 14);
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < 40; i++)
		if (i % 3)
			kheap_free(h, p[i]);
	all_back(h);
}

KT_CASE(percpu_double_free_is_refused)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	char *p = kheap_alloc(h, 40), *q = kheap_alloc(h, 40);
	kheap_free(h, p);
	struct kheap_stats before = stats(h);
	kheap_free(h, p);
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_EQ(kheap_usable_size(h, p), 0);
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_CHECK(kheap_realloc(h, p, 100) == NULL);
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	struct kheap_stats after = stats(h);
	KT_EQ(after.free_count, before.free_count);
	KT_EQ(after.in_use_bytes, before.in_use_bytes);
	KT_EQ(after.error_count, before.error_count + 3);
	KT_EQ(kt_heap_check(h), 0);
	char *r = kheap_alloc(h, 40); /* p again, once */
	char *s = kheap_alloc(h, 40);
	KT_CHECK(r == p && s != p && s != q);
	kheap_free(h, r), kheap_free(h, s), kheap_free(h, q);
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* ---- a second CPU --------------------------------------------------------- */

struct other {
	struct kheap *h;
	void *p;
};

static void *free_there(void *arg)
{
	struct other *o = arg;
	kheap_free(o->h, o->p); /* onto this thread's per-CPU list */
	return NULL;
}

static void on_other_cpu(void *(*fn)(void *), struct other *o)
{
	pthread_t t;
	KT_REQUIRE(pthread_create(&t, NULL, fn, o) == 0);
	pthread_join(t, NULL);
}

KT_CASE(percpu_double_free_across_cpus)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct other o = {h, kheap_alloc(h, 200)};
	on_other_cpu(free_there, &o);
	KT_EQ(rec.count, 0);
	kheap_free(h, o.p); /* it sits on the other CPU's list */
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(stats(h).used_blocks, 0);
	KT_EQ(stats(h).free_count, 1);
}

static void *one_free(void *arg)
{
	struct other *o = arg;
	void *q = kheap_alloc(o->h, 48);
	kheap_free(o->h, q);
	return NULL;
}

/* kheap_trim on one CPU drains its own cache at once and another CPU's at
 * that CPU's next call. */
KT_CASE(percpu_trim_asks_the_other_cpus)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct other o = {h, NULL};
	on_other_cpu(one_free, &o); /* leaves a carved batch there */
	size_t theirs = stats(h).cached_bytes;
	KT_CHECK(theirs > 0);
	void *mine = kheap_alloc(h, 300);
	o.p = kheap_alloc(h, 64);
	KT_REQUIRE(o.p != NULL);
	size_t bo = block_bytes(h, o.p);
	kheap_free(h, mine);
	KT_CHECK(stats(h).cached_bytes > theirs);
	kheap_trim(h);
	KT_EQ(stats(h).cached_bytes, theirs); /* only ours went back */
	/* The other thread has exited; the next thread takes over its number,
	 * and so its cache and the pending drain. */
	on_other_cpu(free_there, &o);
	KT_EQ(stats(h).cached_blocks, 1); /* drained to the bins, then o.p pushed */
	KT_EQ(stats(h).cached_bytes, bo);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* ---- corruption on a per-CPU list ------------------------------------------ */

KT_CASE(percpu_overwritten_link_is_repaired)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	uint64_t *p = kheap_alloc(h, 56), *q = kheap_alloc(h, 56);
	kheap_free(h, q);
	kheap_free(h, p); /* p on top, its link leads to q */
	p[0] ^= (uint64_t)1 << 62; /* a write after free into the link: it now leads out of the heap */
	void *r = kheap_alloc(h, 56);
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	KT_CHECK(r != NULL);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(balanced(h));
	kheap_free(h, r);
	all_back(h); /* p and q both came back: their tokens were intact */
}

KT_CASE(percpu_overwritten_token_is_caught)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	uint64_t *p = kheap_alloc(h, 56), *q = kheap_alloc(h, 56);
	size_t bp = block_bytes(h, p);
	kheap_free(h, q);
	kheap_free(h, p);
	p[1] = 0; /* a write after free over the token */
	void *r = kheap_alloc(h, 56);
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	KT_CHECK(r != NULL && r != p);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, r);
	kheap_trim(h);
	/* p lost its mark: it is kept as a held block, never handed out twice. */
	KT_EQ(stats(h).in_use_bytes, bp);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, p); /* and it is sound enough to free */
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* ---- running out ----------------------------------------------------------- */

KT_CASE(percpu_oom_drains_this_cpu)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	static void *p[ARENA / 32];
	unsigned n = 0;
	while (n < ARENA / 32 && (p[n] = kheap_alloc(h, 24)) != NULL)
		n++;
	KT_CHECK(n > 1000);
	for (unsigned i = 0; i < n; i++)
		kheap_free(h, p[i]);
	KT_CHECK(stats(h).cached_bytes > 0);
	/* Another class until memory runs out: the allocation that fails has
	 * drained every cache first, so nothing is left cached. */
	unsigned m = 0;
	while (m < ARENA / 32 && (p[m] = kheap_alloc(h, 200)) != NULL)
		m++;
	struct kheap_stats st = stats(h);
	KT_EQ(st.cached_bytes, 0);
	KT_CHECK(st.free_bytes < 4096);
	KT_EQ(st.oom_count, 2);
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < m; i++)
		kheap_free(h, p[i]);
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* A second region: each CPU's fast path takes it in at its next locked
 * stretch (its span snapshot, kh_internal.h), blocks from both regions go
 * through the per-CPU lists with their contents intact, and a sealed
 * header in the gap between the regions is refused as foreign. */
KT_CASE(percpu_second_region)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, 64u << 10, &rec);
	KT_REQUIRE(h != NULL);
	kheap_free(h, kheap_alloc(h, 48));
	const struct kh_cpu *cpu = &h->cpus[kheap_cpu_id()];
	KT_EQ(cpu->regions, 1);
	unsigned char *b = arena + (256u << 10);
	KT_EQ(kheap_add_region(h, b, 512u << 10), 0);
	KT_EQ(cpu->regions, 1); /* until this CPU's next locked stretch */
	enum { N = 6000 }; /* 64-byte blocks: more than the first region holds */
	static void *p[N];
	unsigned in_b = 0;
	for (unsigned i = 0; i < N; i++) {
		p[i] = kheap_alloc(h, 48);
		KT_REQUIRE(p[i] != NULL);
		kt_fill(p[i], 48, i);
		in_b += (unsigned char *)p[i] >= b;
	}
	KT_CHECK(in_b > 0 && in_b < N);
	KT_EQ(cpu->regions, 2);
	uintptr_t g = (uintptr_t)arena + (128u << 10) + 8; /* a block address in the gap */
	kh_set(h, g, 64, KH_USED, 0);
	kheap_free(h, (void *)(g + 8));
	KT_REPORTED(&rec, KHEAP_E_FOREIGN);
	for (unsigned i = 0; i < N; i++) {
		KT_CHECK(kt_verify(p[i], 48, i));
		kheap_free(h, p[i]);
		if (i % 1000 == 0)
			KT_EQ(kt_heap_check(h), 0);
	}
	kheap_trim(h);
	struct kheap_stats st = stats(h);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.free_blocks, 2);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

#ifdef KH_FAULT_INJECT
/* Fail the Nth backend allocation, N = 1, 2, ...: refills and carving give
 * up cleanly, nothing is lost, and contents survive. */
KT_CASE(percpu_refill_failures_lose_nothing)
{
	kt_percpu(1);
	unsigned injected = 0;
	for (unsigned long n = 1; n < 200; n++) {
		struct kt_rec rec;
		struct kheap *h = kt_heap(arena, ARENA, &rec);
		KT_REQUIRE(h != NULL);
		kh_fault_countdown = n;
		void *p[300] = {0};
		for (unsigned i = 0; i < 300; i++) {
			size_t sz = 8 + (i * 37) % 900;
			p[i] = kheap_alloc(h, sz);
			if (p[i] != NULL)
				kt_fill(p[i], sz, i);
			if (i % 4 == 3) {
				kheap_free(h, p[i - 2]);
				p[i - 2] = NULL;
			}
		}
		injected += kh_fault_countdown == 0;
		kh_fault_countdown = 0;
		for (unsigned i = 0; i < 300; i++)
			if (p[i] != NULL) {
				KT_CHECK(kt_verify(p[i], 8 + (i * 37) % 900, i));
				kheap_free(h, p[i]);
			}
		KT_EQ(stats(h).alloc_count, stats(h).free_count);
		all_back(h);
		KT_EQ(rec.count, 0);
	}
	KT_CHECK(injected > 50);
}
#endif
#endif /* KH_PERCPU */
