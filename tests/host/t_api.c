/*
 * t_api.c: the contract of every public function in kheap.h, case by case:
 * what it returns, what it guarantees, and each failure it documents.
 */
#include "kt.h"

#define ARENA (2u << 20)
static _Alignas(16) unsigned char arena[ARENA];
static _Alignas(16) unsigned char arena2[ARENA / 4];

/* Total managed bytes are exactly the in-use, free and cached blocks. */
static int stats_balance(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st.in_use_bytes + st.free_bytes + st.cached_bytes == st.total_bytes;
}

KT_CASE(api_init_rejects_unusable_regions)
{
	KT_CHECK(kheap_init(NULL, ARENA) == NULL);
	KT_CHECK(kheap_init(arena + 8, ARENA - 16) == NULL);                 /* misaligned */
	KT_CHECK(kheap_init(arena, kheap_control_size()) == NULL);           /* no room for a block */
	KT_CHECK(kheap_init(arena, kheap_control_size() + KHEAP_MIN_REGION - 16) == NULL);
	KT_CHECK(kheap_init((void *)(UINTPTR_MAX & ~(uintptr_t)15), 4096) == NULL); /* wraps */
	struct kheap *h = kheap_init(arena, kheap_control_size() + KHEAP_MIN_REGION);
	KT_REQUIRE(h != NULL);
	KT_EQ((uintptr_t)h, (uintptr_t)arena);
	KT_CHECK(kheap_alloc(h, 16) != NULL);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_alloc_alignment_size_contents)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *p[400];
	for (unsigned i = 0; i < 400; i++) {
		size_t n = i * 7 + (i % 3) * 1000;
		p[i] = kheap_alloc(h, n);
		KT_REQUIRE(p[i] != NULL);
		KT_EQ((uintptr_t)p[i] % KHEAP_ALIGN, 0);
		KT_CHECK(kheap_usable_size(h, p[i]) >= n);
		/* Size classes round up by at most a quarter (513 -> 632). */
		KT_CHECK(kheap_usable_size(h, p[i]) <= n + 24 + n / 4);
		kt_fill(p[i], n, i);
	}
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < 400; i += 2)
		KT_CHECK(kt_verify(p[i], i * 7 + (i % 3) * 1000, i)), kheap_free(h, p[i]);
	for (unsigned i = 1; i < 400; i += 2)
		KT_CHECK(kt_verify(p[i], i * 7 + (i % 3) * 1000, i)), kheap_free(h, p[i]);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(stats_balance(h));
	KT_EQ(rec.count, 0);
}

KT_CASE(api_alloc_zero_is_unique_minimal_block)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *a = kheap_alloc(h, 0), *b = kheap_alloc(h, 0);
	KT_REQUIRE(a != NULL && b != NULL);
	KT_CHECK(a != b);
	KT_EQ(kheap_usable_size(h, a), 32 - KHEAP_BLOCK_OVERHEAD);
	kheap_free(h, a);
	kheap_free(h, b);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(api_alloc_too_big_returns_null_never_smaller)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	struct kheap_stats st;
	static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7, SIZE_MAX - 8, SIZE_MAX - 16,
				      SIZE_MAX - 4096, SIZE_MAX / 2, SIZE_MAX / 2 + 1, (size_t)1 << 40,
				      ((size_t)1 << 40) - 24, ARENA, ARENA - 8};
	for (unsigned i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		KT_CHECK(kheap_alloc(h, huge[i]) == NULL);
		KT_CHECK(kheap_calloc(h, 1, huge[i]) == NULL);
		KT_CHECK(kheap_realloc(h, NULL, huge[i]) == NULL);
		KT_CHECK(kheap_aligned_alloc(h, 64, huge[i] > 64 ? huge[i] - 64 : huge[i]) == NULL);
	}
	kheap_get_stats(h, &st);
	KT_EQ(st.oom_count, 4 * (sizeof huge / sizeof huge[0]));
	KT_EQ(st.error_count, 0);
	KT_EQ(rec.count, 0);
	/* The largest free block is allocatable, one granule more is not. */
	void *p = kheap_alloc(h, st.largest_free - KHEAP_BLOCK_OVERHEAD);
	KT_CHECK(p != NULL);
	KT_CHECK(kheap_usable_size(h, p) >= st.largest_free - KHEAP_BLOCK_OVERHEAD);
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_free_null_is_a_noop)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	struct kheap_stats a, b;
	kheap_get_stats(h, &a);
	kheap_free(h, NULL);
	kheap_get_stats(h, &b);
	KT_EQ(a.free_count, b.free_count);
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_calloc_zeroes_and_checks_overflow)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	/* Dirty blocks of every small class, free them into the caches, then
	 * calloc the same sizes: the recycled memory must come back zeroed. */
	for (size_t n = 8; n <= 2048; n += 40) {
		void *p = kheap_alloc(h, n);
		kt_fill(p, kheap_usable_size(h, p), n);
		kheap_free(h, p);
		unsigned char *z = kheap_calloc(h, 1, n);
		KT_REQUIRE(z != NULL);
		size_t u = kheap_usable_size(h, z), nonzero = 0;
		for (size_t i = 0; i < u; i++)
			nonzero += z[i] != 0;
		KT_EQ(nonzero, 0);
		kheap_free(h, z);
	}
	KT_CHECK(kheap_calloc(h, 0, 100) != NULL);
	KT_CHECK(kheap_calloc(h, 100, 0) != NULL);
	KT_CHECK(kheap_calloc(h, SIZE_MAX / 2 + 1, 2) == NULL);
	KT_REPORTED(&rec, KHEAP_E_OVERFLOW);
	KT_CHECK(kheap_calloc(h, (size_t)1 << 33, (size_t)1 << 33) == NULL);
	KT_REPORTED(&rec, KHEAP_E_OVERFLOW);
	KT_CHECK(kheap_calloc(h, SIZE_MAX, SIZE_MAX) == NULL);
	KT_REPORTED(&rec, KHEAP_E_OVERFLOW);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_realloc_semantics)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	struct kheap_stats st;
	char *p = kheap_realloc(h, NULL, 100); /* realloc(NULL, n) is alloc(n) */
	KT_REQUIRE(p != NULL);
	kt_fill(p, 100, 7);
	/* Grow in place: the block after p is the free remainder. */
	char *q = kheap_realloc(h, p, 5000);
	KT_EQ((uintptr_t)q, (uintptr_t)p);
	KT_CHECK(kt_verify(q, 100, 7));
	KT_CHECK(kheap_usable_size(h, q) >= 5000);
	/* Shrink in place, and the tail goes back to the free bytes. */
	kheap_get_stats(h, &st);
	size_t used_before = st.in_use_bytes;
	q = kheap_realloc(h, q, 200);
	KT_EQ((uintptr_t)q, (uintptr_t)p);
	kheap_get_stats(h, &st);
	KT_CHECK(st.in_use_bytes < used_before);
	KT_CHECK(kt_verify(q, 100, 7));
	/* Blocked on the right: it must move, and keep the contents. */
	void *wall = kheap_alloc(h, 64);
	kt_fill(q, 200, 8);
	char *r = kheap_realloc(h, q, 20000);
	KT_REQUIRE(r != NULL);
	KT_CHECK(r != q);
	KT_CHECK(kt_verify(r, 200, 8));
	/* Failure leaves the old block whole. */
	KT_CHECK(kheap_realloc(h, r, SIZE_MAX - 100) == NULL);
	KT_CHECK(kheap_realloc(h, r, 2 * ARENA) == NULL);
	KT_CHECK(kt_verify(r, 200, 8));
	KT_EQ(kheap_usable_size(h, r) >= 20000, 1);
	/* realloc(p, 0) frees p and returns NULL. */
	kheap_get_stats(h, &st);
	uint64_t frees = st.free_count;
	KT_CHECK(kheap_realloc(h, r, 0) == NULL);
	kheap_get_stats(h, &st);
	KT_EQ(st.free_count, frees + 1);
	kheap_free(h, wall);
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(stats_balance(h));
}

KT_CASE(api_realloc_keeps_alignment)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	for (size_t align = 32; align <= 8192; align <<= 1) {
		char *p = kheap_aligned_alloc(h, align, 100);
		KT_REQUIRE(p != NULL);
		KT_EQ((uintptr_t)p % align, 0);
		kt_fill(p, 100, align);
		void *wall = kheap_alloc(h, 16); /* force the next realloc to move */
		char *q = kheap_realloc(h, p, 3000);
		KT_REQUIRE(q != NULL);
		KT_EQ((uintptr_t)q % align, 0);
		KT_CHECK(kt_verify(q, 100, align));
		q = kheap_realloc(h, q, 50); /* shrinks in place: same address */
		KT_EQ((uintptr_t)q % align, 0);
		kheap_free(h, q);
		kheap_free(h, wall);
	}
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_aligned_alloc)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *keep[40];
	unsigned k = 0;
	for (size_t align = 1; align <= ((size_t)1 << 16); align <<= 1) {
		for (size_t n = 1; n < 5000; n = n * 3 + 1) {
			void *p = kheap_aligned_alloc(h, align, n);
			KT_REQUIRE(p != NULL);
			KT_EQ((uintptr_t)p % (align < 16 ? 16 : align), 0);
			KT_CHECK(kheap_usable_size(h, p) >= n);
			kt_fill(p, n, n);
			if (k < 40 && (n & 1))
				keep[k++] = p;
			else
				kheap_free(h, p);
		}
	}
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < k; i++)
		kheap_free(h, keep[i]);
	KT_CHECK(kheap_aligned_alloc(h, 0, 10) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ALIGN);
	KT_CHECK(kheap_aligned_alloc(h, 48, 10) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ALIGN);
	KT_CHECK(kheap_aligned_alloc(h, 4096, SIZE_MAX - 100) == NULL);
	KT_REPORTED(&rec, KHEAP_E_OVERFLOW);
	KT_CHECK(kheap_aligned_alloc(h, (size_t)1 << 62, 16) == NULL); /* larger than any block */
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(stats_balance(h));
}

KT_CASE(api_usable_size)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_EQ(kheap_usable_size(h, NULL), 0);
	for (size_t n = 0; n < 3000; n += 13) {
		void *p = kheap_alloc(h, n);
		size_t u = kheap_usable_size(h, p);
		KT_CHECK(u >= n);
		kt_fill(p, u, n); /* all usable bytes may be written */
		KT_CHECK(kt_verify(p, u, n));
		kheap_free(h, p);
	}
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_stats_are_exact)
{
	kt_percpu(0); /* the locked path's counters; t_percpu.c has the per-CPU ones */
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(st.regions, 1);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.used_blocks, 0);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(st.free_bytes, st.total_bytes);
	KT_CHECK(st.total_bytes > ARENA - kheap_control_size() - 64);
	void *a = kheap_alloc(h, 100), *b = kheap_alloc(h, 70000), *c = kheap_alloc(h, 24);
	kheap_get_stats(h, &st);
	/* Each class's first allocation carved a batch onto its shared list
	 * (at most KHEAP_CLASS_CARVE, within the list's limit): cached, not in
	 * use, and not in the peak (checked below). */
	KT_CHECK(st.cached_blocks > 0 && st.cached_blocks <= 2 * (KHEAP_CLASS_CARVE - 1));
	KT_CHECK(stats_balance(h));
	kheap_trim(h);
	/* Block bytes: usable plus overhead; 100 and 24 are class sizes, and
	 * classes up to 256 bytes are 16 apart, so each block is its request
	 * plus the overhead, rounded up to 16 (112, 70008, 32 with 8 bytes of
	 * overhead; 128, 70016, 48 with 16). */
	size_t ba = kheap_usable_size(h, a) + KHEAP_BLOCK_OVERHEAD, bb = kheap_usable_size(h, b) + KHEAP_BLOCK_OVERHEAD,
	       bc = kheap_usable_size(h, c) + KHEAP_BLOCK_OVERHEAD;
	KT_EQ(ba, (100 + KHEAP_BLOCK_OVERHEAD + 15) & ~15u);
	KT_EQ(bb, (70000 + KHEAP_BLOCK_OVERHEAD + 15) & ~15u);
	KT_EQ(bc, (24 + KHEAP_BLOCK_OVERHEAD + 15) & ~15u);
	kheap_get_stats(h, &st);
	KT_EQ(st.in_use_bytes, ba + bb + bc);
	KT_EQ(st.used_blocks, 3);
	KT_EQ(st.alloc_count, 3);
	kheap_free(h, b);
	kheap_free(h, a); /* 112 is a class size: cached */
	kheap_get_stats(h, &st);
	KT_EQ(st.in_use_bytes, bc);
	KT_EQ(st.peak_in_use_bytes, ba + bb + bc);
	KT_EQ(st.cached_bytes, ba);
	KT_EQ(st.cached_blocks, 1);
	KT_EQ(st.free_count, 2);
	KT_CHECK(stats_balance(h));
	kheap_trim(h);
	kheap_get_stats(h, &st);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.free_blocks, 2); /* before c, and after it */
	kheap_free(h, c);
	kheap_trim(h);
	kheap_get_stats(h, &st);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(st.largest_free <= st.free_bytes, 1);
	KT_CHECK(st.largest_free >= st.free_bytes - st.free_bytes / 16);
	KT_EQ(st.error_count, 0);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(api_add_region_serves_from_both)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA / 8, &rec);
	KT_EQ(kheap_add_region(h, arena2, sizeof arena2), 0);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(st.regions, 2);
	unsigned in1 = 0, in2 = 0, n = 0;
	static void *p[1000];
	while (n < 1000 && (p[n] = kheap_alloc(h, 1000)) != NULL) {
		uintptr_t a = (uintptr_t)p[n];
		in1 += a >= (uintptr_t)arena && a < (uintptr_t)arena + ARENA / 8;
		in2 += a >= (uintptr_t)arena2 && a < (uintptr_t)arena2 + sizeof arena2;
		n++;
	}
	KT_CHECK(n < 1000); /* ran out */
	KT_EQ(in1 + in2, n);
	KT_CHECK(in1 > 100 && in2 > 100);
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < n; i++)
		kheap_free(h, p[i]);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(api_add_region_refusals)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA / 2, &rec);
	KT_EQ(kheap_add_region(h, NULL, 4096), -KHEAP_E_REGION);
	KT_REPORTED(&rec, KHEAP_E_REGION);
	KT_EQ(kheap_add_region(h, arena + ARENA / 2 + 8, 4096), -KHEAP_E_REGION);
	KT_REPORTED(&rec, KHEAP_E_REGION);
	KT_EQ(kheap_add_region(h, (void *)(UINTPTR_MAX & ~(uintptr_t)15), 4096), -KHEAP_E_REGION);
	KT_REPORTED(&rec, KHEAP_E_REGION);
	KT_EQ(kheap_add_region(h, arena + ARENA / 2, KHEAP_MIN_REGION - 16), -KHEAP_E_REGION_SMALL);
	KT_REPORTED(&rec, KHEAP_E_REGION_SMALL);
	KT_EQ(kheap_add_region(h, arena + 4096, 4096), -KHEAP_E_REGION); /* inside the first */
	KT_REPORTED(&rec, KHEAP_E_REGION);
	KT_EQ(kheap_add_region(h, arena + ARENA / 2 - 16, 4096), -KHEAP_E_REGION); /* straddles */
	KT_REPORTED(&rec, KHEAP_E_REGION);
	/* KHEAP_MAX_REGIONS in all, then one more is refused. */
	unsigned char *next = arena + ARENA / 2;
	for (unsigned i = 1; i < KHEAP_MAX_REGIONS; i++, next += 4096)
		KT_EQ(kheap_add_region(h, next, 4096), 0);
	KT_EQ(kheap_add_region(h, next, 4096), -KHEAP_E_REGION);
	KT_REPORTED(&rec, KHEAP_E_REGION);
	KT_EQ(kheap_add_region(h, next - 4096, 4096), -KHEAP_E_REGION); /* duplicate */
	KT_REPORTED(&rec, KHEAP_E_REGION);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(st.regions, KHEAP_MAX_REGIONS);
	KT_EQ(st.error_count, 8);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(kheap_alloc(h, 3000) != NULL);
}

struct walk_sum {
	size_t blocks, used, bytes;
};

static void sum_walk(void *ctx, void *ptr, size_t size, int used)
{
	struct walk_sum *w = ctx;
	(void)ptr;
	w->blocks++;
	w->used += (unsigned)used;
	w->bytes += size + 8;
}

KT_CASE(api_walk_visits_every_block)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *p[50];
	for (unsigned i = 0; i < 50; i++)
		p[i] = kheap_alloc(h, 1500 + i * 100);
	for (unsigned i = 0; i < 50; i += 3)
		kheap_free(h, p[i]);
	struct walk_sum w = {0, 0, 0};
	kheap_walk(h, sum_walk, &w);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(w.bytes, st.total_bytes);
	KT_EQ(w.used, st.used_blocks);
	KT_EQ(w.blocks, st.used_blocks + st.free_blocks + st.cached_blocks);
	KT_EQ(rec.count, 0);
}

static unsigned hook_calls;
static void other_hook(void *ctx, const struct kheap_report *r)
{
	(void)ctx, (void)r;
	hook_calls++;
}

KT_CASE(api_set_report_returns_previous_and_caller_is_recorded)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_CHECK(kheap_set_report(h, other_hook, NULL) == kt_rec_hook);
	static _Alignas(16) char x[64];
	kheap_free(h, &x[16]);
	KT_EQ(hook_calls, 1);
	KT_CHECK(kheap_set_report(h, kt_rec_hook, &rec) == other_hook);
	kheap_free(h, &x[16]);
	KT_REPORTED(&rec, KHEAP_E_FOREIGN);
	KT_CHECK(rec.last.caller != NULL);
	KT_CHECK(rec.last.ptr == &x[16]);
	KT_CHECK(rec.last.msg != NULL);
	/* NULL restores the default, which goes to kheap_panic. */
	kheap_set_report(h, NULL, NULL);
	kt_panic_expected = 1;
	unsigned before = kt_panics;
	kheap_free(h, &x[16]);
	KT_EQ(kt_panics, before + 1);
	kt_panic_expected = 0;
}

KT_CASE(api_bad_heap_handle_goes_to_panic)
{
	static _Alignas(16) unsigned char junk[4096];
	kt_panic_expected = 1;
	unsigned before = kt_panics;
	KT_CHECK(kheap_alloc(NULL, 10) == NULL);
	KT_CHECK(kheap_alloc((struct kheap *)junk, 10) == NULL);
	kheap_free((struct kheap *)junk, junk + 64);
	KT_EQ(kheap_add_region(NULL, junk, sizeof junk), -KHEAP_E_BAD_HEAP);
	KT_CHECK(kheap_calloc(NULL, 1, 1) == NULL);
	KT_CHECK(kheap_realloc(NULL, NULL, 1) == NULL);
	KT_CHECK(kheap_aligned_alloc(NULL, 64, 1) == NULL);
	KT_EQ(kheap_usable_size(NULL, junk), 0);
	KT_EQ(kt_panics, before + 8);
	KT_CHECK(kheap_check(NULL) != 0);
	kt_panic_expected = 0;
}

struct oom_seen {
	unsigned calls;
	size_t size;
};

static void note_oom(void *ctx, size_t size)
{
	struct oom_seen *o = ctx;
	o->calls++;
	o->size = size;
}

KT_CASE(api_oom_hook_gets_the_size_asked_for)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	struct oom_seen o = {0, 0};
	KT_CHECK(kheap_set_oom(h, note_oom, &o) == NULL);
	static const size_t asked[] = {SIZE_MAX, SIZE_MAX - 1, ARENA, 0};
	for (unsigned i = 0; asked[i] != 0; i++) {
		KT_CHECK(kheap_alloc(h, asked[i]) == NULL);
		KT_EQ(o.calls, i + 1);
		KT_EQ(o.size, asked[i]);
	}
	KT_CHECK(kheap_aligned_alloc(h, 4096, ARENA) == NULL);
	KT_EQ(o.size, ARENA);
	KT_CHECK(kheap_alloc(h, 100) != NULL); /* success: no call */
	KT_EQ(o.calls, 4);
	KT_CHECK(kheap_aligned_alloc(h, 48, 100) == NULL); /* misuse, not OOM */
	KT_REPORTED(&rec, KHEAP_E_BAD_ALIGN);
	KT_EQ(o.calls, 4);
	KT_CHECK(kheap_set_oom(h, NULL, NULL) == note_oom);
}
