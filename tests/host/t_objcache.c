/*
 * t_objcache.c: the object caches (kheap.h, "Object caches"), on whatever
 * path KT_PERCPU selects (per-CPU lists, or the locked depot). Freestanding:
 * the QEMU test kernel runs these too. Every case checks contents with fill
 * tokens, runs kheap_check after each step that changes a cache, and ends
 * with the whole heap back in one free block.
 */
#include "kt.h"

#define ARENA (1u << 20)
static _Alignas(64) unsigned char arena[ARENA];

static struct kheap_stats hstats(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st;
}

static struct kheap_cache_stats cstats(struct kheap_cache *c)
{
	struct kheap_cache_stats st = {0};
	KT_EQ(kheap_cache_stats(c, &st), 0);
	return st;
}

/* Heap-wide figures add up, and the heap is sound. */
static void sound(struct kheap *h)
{
	struct kheap_stats st = hstats(h);
	KT_EQ(st.in_use_bytes + st.free_bytes + st.cached_bytes, st.total_bytes);
	KT_EQ(kt_heap_check(h), 0);
}

/* Everything given back: one free block. */
static void all_back(struct kheap *h)
{
	kheap_trim(h);
	struct kheap_stats st = hstats(h);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(objcache_create_checks_its_arguments)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	KT_CHECK(kheap_cache_size() >= 64);
	kt_panic_expected = 1; /* a NULL name is misuse: the recording hook takes it */
	KT_CHECK(kheap_cache_create(h, NULL, 64, 0, 0) == NULL);
	kt_panic_expected = 0;
	KT_REPORTED(&rec, KHEAP_E_NULL);
	KT_CHECK(kheap_cache_create(h, "x", 64, 48, 0) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ALIGN);
	KT_CHECK(rec.last.severity == KHEAP_SEV_REFUSED);
	KT_CHECK(kheap_cache_create(h, "x", 0, 0, 0) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_CHECK(kheap_cache_create(h, "x", KHEAP_CACHE_MAX_SIZE + 1, 0, 0) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_CHECK(kheap_cache_create(h, "x", 64, KHEAP_CACHE_MAX_ALIGN * 2, 0) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_CHECK(kheap_cache_create(h, "x", 64, 0, 0x80) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	/* KHEAP_MAX_CACHES live at once, then a refusal, then room again. */
	static struct kheap_cache *cs[KHEAP_MAX_CACHES];
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++) {
		cs[i] = kheap_cache_create(h, "many", 16 + i, 0, 0);
		KT_CHECK(cs[i] != NULL);
	}
	KT_CHECK(kheap_cache_create(h, "one too many", 32, 0, 0) == NULL);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_EQ(kheap_cache_destroy(cs[3]), 0);
	cs[3] = kheap_cache_create(h, "again", 40, 0, 0);
	KT_CHECK(cs[3] != NULL);
	sound(h);
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++)
		KT_EQ(kheap_cache_destroy(cs[i]), 0);
	KT_EQ(kheap_cache_destroy(NULL), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

KT_CASE(objcache_objects_hold_their_contents)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *c = kheap_cache_create(h, "inode", 200, 0, 0);
	KT_REQUIRE(c != NULL);
	static void *p[300];
	uint64_t seed = 7;
	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = 0; i < 300; i++) {
			p[i] = kheap_cache_alloc(c);
			KT_REQUIRE(p[i] != NULL);
			KT_EQ((uintptr_t)p[i] % KHEAP_ALIGN, 0);
			kt_fill(p[i], 200, i * 31 + round);
		}
		sound(h);
		struct kheap_cache_stats st = cstats(c);
		KT_EQ(st.in_use, 300);
		KT_EQ(st.objects, st.in_use + st.cached);
		KT_CHECK(st.obj_block >= 200 + KHEAP_BLOCK_OVERHEAD && st.obj_block <= 200 + KHEAP_BLOCK_OVERHEAD + 15);
		for (unsigned i = 0; i < 300; i++)
			KT_CHECK(kt_verify(p[i], 200, i * 31 + round));
		/* Free in a random order, checking the rest each time. */
		for (unsigned n = 300; n > 0; n--) {
			unsigned i = (unsigned)kt_below(&seed, n);
			void *q = p[i];
			p[i] = p[n - 1];
			kheap_cache_free(c, q);
			if (n % 50 == 0)
				sound(h);
		}
		struct kheap_cache_stats end = cstats(c);
		KT_EQ(end.in_use, 0);
		KT_EQ(end.allocs, 300 * (round + 1));
		KT_EQ(end.frees, 300 * (round + 1));
	}
	KT_EQ(rec.count, 0);
	KT_EQ(kheap_cache_destroy(c), 0);
	all_back(h);
}

KT_CASE(objcache_alignment_is_kept)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	static const size_t aligns[] = {32, 64, 256, 4096};
	static void *p[40];
	for (unsigned a = 0; a < 4; a++) {
		struct kheap_cache *c = kheap_cache_create(h, "aligned", 100, aligns[a], 0);
		KT_REQUIRE(c != NULL);
		KT_EQ(cstats(c).obj_align, aligns[a]);
		for (unsigned i = 0; i < 40; i++) {
			p[i] = kheap_cache_alloc(c);
			KT_REQUIRE(p[i] != NULL);
			KT_EQ((uintptr_t)p[i] % aligns[a], 0);
			kt_fill(p[i], 100, i + a);
		}
		sound(h);
		for (unsigned i = 0; i < 40; i++) {
			KT_CHECK(kt_verify(p[i], 100, i + a));
			kheap_cache_free(c, p[i]);
		}
		KT_EQ(kheap_cache_destroy(c), 0);
		sound(h);
	}
	KT_EQ(rec.count, 0);
	all_back(h);
}

KT_CASE(objcache_misuse_is_reported_and_refused)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *a = kheap_cache_create(h, "a", 64, 0, 0);
	struct kheap_cache *b = kheap_cache_create(h, "b", 64, 0, 0);
	KT_REQUIRE(a != NULL && b != NULL);
	char *x = kheap_cache_alloc(a), *y = kheap_cache_alloc(a);
	char *plain = kheap_alloc(h, 56);
	KT_REQUIRE(x != NULL && y != NULL && plain != NULL);
	kt_fill(x, 64, 1);
	kt_fill(plain, 56, 2);
	struct kheap_stats before = hstats(h);

	kheap_cache_free(b, x); /* another cache's object, same size */
	KT_REPORTED(&rec, KHEAP_E_WRONG_CACHE);
	KT_CHECK(rec.last.severity == KHEAP_SEV_MISUSE && rec.last.ptr == x);
	kheap_cache_free(a, plain); /* a kheap_alloc block */
	KT_REPORTED(&rec, KHEAP_E_WRONG_CACHE);
	kheap_free(h, x); /* an object given to kheap_free */
	KT_REPORTED(&rec, KHEAP_E_WRONG_CACHE);
	KT_CHECK(kheap_realloc(h, x, 100) == NULL);
	KT_REPORTED(&rec, KHEAP_E_WRONG_CACHE);
	kheap_cache_free(a, x + 16); /* interior */
	KT_REPORTED(&rec, KHEAP_E_BAD_HEADER);
	kheap_cache_free(a, x + 8); /* misaligned */
	KT_REPORTED(&rec, KHEAP_E_MISALIGNED);
	static _Alignas(16) char outside[64];
	kheap_cache_free(a, outside + 16);
	KT_REPORTED(&rec, KHEAP_E_FOREIGN);
	KT_CHECK(kt_verify(x, 64, 1) && kt_verify(plain, 56, 2));
	struct kheap_stats mid = hstats(h);
	KT_EQ(mid.in_use_bytes, before.in_use_bytes);
	KT_EQ(cstats(a).in_use, 2);
	KT_EQ(cstats(b).in_use, 0);
	sound(h);

	kheap_cache_free(a, y);
	kheap_cache_free(a, y); /* double free: on a list now */
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	kheap_cache_shrink(a);
	kheap_trim(h);
	kheap_cache_free(a, y); /* double free: back in the backend now */
	/* A free header, or (level 1, merged into a poisoned free block) none. */
	KT_EQ(rec.count, 1);
	KT_CHECK(rec.last.kind == KHEAP_E_DOUBLE_FREE || rec.last.kind == KHEAP_E_BAD_HEADER);
	rec.count = 0;
	sound(h);

	/* Destroying a cache whose objects are held is refused. */
	KT_EQ(kheap_cache_destroy(a), -KHEAP_E_BAD_ARG);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	kheap_cache_free(a, x);
	KT_EQ(kheap_cache_destroy(a), 0);
	/* A destroyed cache is not a cache: reported to kheap_panic. */
	kt_panic_expected = 1;
	unsigned panics = kt_panics;
	KT_CHECK(kheap_cache_alloc(a) == NULL);
	kheap_cache_free(a, plain);
	KT_EQ(kheap_cache_reserve(a, 1), -KHEAP_E_BAD_CACHE);
	KT_CHECK(kheap_cache_alloc(NULL) == NULL);
	KT_EQ(kt_panics, panics + 4);
	kt_panic_expected = 0;
	KT_CHECK(kt_verify(plain, 56, 2));
	kheap_free(h, plain);
	KT_EQ(kheap_cache_destroy(b), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

/* Fill the heap with kheap_alloc blocks until it refuses; returns how many. */
static unsigned exhaust(struct kheap *h, void **blocks, unsigned max, size_t size)
{
	unsigned n = 0;
	while (n < max && (blocks[n] = kheap_alloc(h, size)) != NULL)
		n++;
	return n;
}

KT_CASE(objcache_reserve_cannot_fail)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *c = kheap_cache_create(h, "skb", 512, 0, KHEAP_CACHE_ZERO);
	KT_REQUIRE(c != NULL);
	KT_EQ(kheap_cache_reserve(c, 20), 0);
	KT_EQ(kheap_cache_reserve(c, 5), 0); /* reserves add up */
	struct kheap_cache_stats st = cstats(c);
	KT_EQ(st.reserved, 25);
	KT_EQ(st.reserve_fills, 2);
	KT_CHECK(st.cached >= 25);
	sound(h);
	/* Trimming and shrinking keep what is reserved. */
	kheap_trim(h);
	kheap_cache_shrink(c);
	KT_EQ(cstats(c).reserved, 25);
	KT_CHECK(cstats(c).cached >= 25);
	sound(h);
	/* The heap runs dry; the reserve still serves, zeroed. */
	static void *blocks[4096];
	unsigned n = exhaust(h, blocks, 4096, 1000);
	KT_CHECK(n > 100);
	(void)exhaust(h, blocks + n, 4096 - n, 16); /* to the last small block */
	static void *objs[25];
	for (unsigned i = 0; i < 25; i++) {
		objs[i] = kheap_cache_alloc(c);
		KT_REQUIRE(objs[i] != NULL);
		for (unsigned j = 0; j < 512; j++)
			KT_CHECK(((unsigned char *)objs[i])[j] == 0);
		kt_fill(objs[i], 512, i);
	}
	KT_EQ(cstats(c).reserved, 0);
	sound(h);
	for (unsigned i = 0; i < 25; i++) {
		KT_CHECK(kt_verify(objs[i], 512, i));
		kheap_cache_free(c, objs[i]);
	}
	for (unsigned i = 0; i < 4096 && blocks[i] != NULL; i++)
		kheap_free(h, blocks[i]);
	/* Above KHEAP_CACHE_RESERVE_MAX: refused, nothing reserved. */
	KT_EQ(kheap_cache_reserve(c, KHEAP_CACHE_RESERVE_MAX + 1), -KHEAP_E_BAD_ARG);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_EQ(cstats(c).reserved, 0);
	/* Unreserve gives back what is left. */
	KT_EQ(kheap_cache_reserve(c, 8), 0);
	void *o = kheap_cache_alloc(c);
	KT_EQ(kheap_cache_unreserve(c, 3), 4);
	KT_EQ(kheap_cache_unreserve(c, 100), 0);
	kheap_cache_free(c, o);
	sound(h);
	KT_EQ(kheap_cache_destroy(c), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

KT_CASE(objcache_reserve_fails_cleanly_when_memory_is_short)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *c = kheap_cache_create(h, "big", 16000, 0, 0);
	KT_REQUIRE(c != NULL);
	KT_EQ(kheap_cache_reserve(c, 200), -1); /* 3 MiB in a 1 MiB heap */
	struct kheap_cache_stats st = cstats(c);
	KT_EQ(st.reserved, 0);
	KT_EQ(st.failures, 1);
	sound(h);
	KT_EQ(kheap_cache_reserve(c, 10), 0);
	KT_EQ(kheap_cache_unreserve(c, 10), 0);
	KT_EQ(kheap_cache_destroy(c), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

KT_CASE(objcache_shrink_and_oom_give_memory_back)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *c = kheap_cache_create(h, "dentry", 192, 0, 0);
	KT_REQUIRE(c != NULL);
	static void *p[2000];
	unsigned n = 0;
	while (n < 2000 && (p[n] = kheap_cache_alloc(c)) != NULL)
		n++;
	KT_CHECK(n > 1000);
	for (unsigned i = 0; i < n; i++)
		kheap_cache_free(c, p[i]);
	sound(h);
	KT_CHECK(cstats(c).cached > 0);
	/* An allocation that fits only once the caches are shrunk succeeds. */
	void *big = kheap_alloc(h, ARENA / 2);
	KT_CHECK(big != NULL);
	kheap_free(h, big);
	sound(h);
	/* Shrink gives the rest back; the counts say so. */
	for (unsigned i = 0; i < 100; i++)
		p[i] = kheap_cache_alloc(c);
	for (unsigned i = 0; i < 100; i++)
		kheap_cache_free(c, p[i]);
	size_t cached = cstats(c).cached;
	KT_EQ(kheap_cache_shrink(c), cached);
	struct kheap_cache_stats st = cstats(c);
	KT_EQ(st.cached, 0);
	KT_EQ(st.objects, 0);
	KT_CHECK(st.shrinks >= cached);
	KT_CHECK(st.slabs > 0 && st.misses > 0);
	KT_EQ(kheap_cache_destroy(c), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

struct ooms {
	unsigned calls;
	size_t size;
};

static void on_oom(void *ctx, size_t size)
{
	struct ooms *o = ctx;
	o->calls++;
	o->size = size;
}

/* A cache that runs short takes back what other caches hold cached (and
 * this CPU's and the shared lists), then fails with an OOM. */
KT_CASE(objcache_running_short_flushes_other_caches)
{
	struct kt_rec rec;
	struct ooms o = {0, 0};
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	kheap_set_oom(h, on_oom, &o);
	struct kheap_cache *a = kheap_cache_create(h, "small", 200, 0, 0);
	struct kheap_cache *b = kheap_cache_create(h, "big", 4000, 0, 0);
	KT_REQUIRE(a != NULL && b != NULL);
	static void *p[8192];
	unsigned n = 0;
	while (n < 8192 && (p[n] = kheap_cache_alloc(a)) != NULL)
		n++;
	KT_CHECK(n > 2000 && n < 8192);
	KT_EQ(o.calls, 1); /* the last one ran out */
	KT_EQ(cstats(a).failures, 1);
	for (unsigned i = 0; i < n; i++)
		kheap_cache_free(a, p[i]);
	KT_CHECK(cstats(a).cached > 0);
	/* b runs the heap dry; before it fails, a's cached objects go back. */
	unsigned m = 0;
	while (m < 8192 && (p[m] = kheap_cache_alloc(b)) != NULL)
		m++;
	KT_CHECK(m >= 100 && m < 8192);
	KT_EQ(cstats(a).cached, 0);
	KT_EQ(cstats(a).objects, 0);
	KT_EQ(o.calls, 2);
	KT_EQ(o.size, cstats(b).obj_block);
	struct kheap_stats st = hstats(h);
	KT_EQ(st.oom_count, 2);
	sound(h);
	for (unsigned i = 0; i < m; i++)
		kheap_cache_free(b, p[i]);
	KT_EQ(kheap_cache_destroy(a), 0);
	KT_EQ(kheap_cache_destroy(b), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

KT_CASE(objcache_write_after_free_is_found_and_repaired)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *c = kheap_cache_create(h, "victim", 64, 0, 0);
	KT_REQUIRE(c != NULL);
	void *keep = kheap_cache_alloc(c);
	uintptr_t *x = kheap_cache_alloc(c);
	void *y = kheap_cache_alloc(c);
	KT_REQUIRE(keep != NULL && x != NULL && y != NULL);
	kheap_cache_free(c, y);
	kheap_cache_free(c, x);
	x[0] ^= 0x1000; /* the list link of a freed object */
	KT_CHECK(kheap_check(h) > 0);
	void *q = kheap_cache_alloc(c); /* pops x; the link past it is wild */
	void *r = kheap_cache_alloc(c);
	KT_CHECK(q == x);
	KT_CHECK(r != NULL);
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	sound(h);
	kheap_cache_free(c, q);
	kheap_cache_free(c, r);
	kheap_cache_free(c, keep);
	KT_EQ(kheap_cache_destroy(c), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}

#if KHEAP_HARDEN >= 1
KT_CASE(objcache_hardening_applies_to_objects)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *c = kheap_cache_create(h, "hard", 96, 0, 0);
	KT_REQUIRE(c != NULL);
	unsigned char *x = kheap_cache_alloc(c);
	KT_REQUIRE(x != NULL);
	x[96] ^= 1; /* the canary, right after the 96 usable bytes */
	kheap_cache_free(c, x);
	KT_REPORTED(&rec, KHEAP_E_CANARY);
	x[96] ^= 1;
	kheap_cache_free(c, x);
	x[40] = 0x5a; /* write after free, past the link and token */
	void *again = kheap_cache_alloc(c);
	KT_CHECK(again == x);
	KT_REPORTED(&rec, KHEAP_E_USE_AFTER_FREE);
	kheap_cache_free(c, again);
	sound(h);
	KT_EQ(kheap_cache_destroy(c), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}
#endif

/* kheap_dump lists every cache. */
static char dump_buf[1u << 16];
static size_t dump_n;
static void dump_putc(void *ctx, char ch)
{
	(void)ctx;
	if (dump_n < sizeof dump_buf - 1)
		dump_buf[dump_n++] = ch;
}

static int contains(const char *s, const char *what)
{
	for (; *s; s++) {
		size_t i = 0;
		while (what[i] && s[i] == what[i])
			i++;
		if (!what[i])
			return 1;
	}
	return 0;
}

static void count_cache(void *ctx, struct kheap_cache *c)
{
	(void)c;
	(*(unsigned *)ctx)++;
}

KT_CASE(objcache_dump_and_walk_list_every_cache)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_cache *a = kheap_cache_create(h, "task_struct", 1000, 64, 0);
	struct kheap_cache *b = kheap_cache_create(h, "buffer_head", 104, 0, 0);
	KT_REQUIRE(a != NULL && b != NULL);
	void *x = kheap_cache_alloc(a), *y = kheap_cache_alloc(b);
	unsigned seen = 0;
	kheap_cache_walk(h, count_cache, &seen);
	KT_EQ(seen, 2);
	dump_n = 0;
	kheap_dump(h, dump_putc, NULL);
	dump_buf[dump_n] = 0;
	KT_CHECK(contains(dump_buf, "kheap cache i=0 name=task_struct size=1000 align=64 block="));
	KT_CHECK(contains(dump_buf, "kheap cache i=1 name=buffer_head size=104 align=16 block="));
	KT_CHECK(contains(dump_buf, " objects="));
	KT_CHECK(contains(dump_buf, " in_use=1 cached="));
	KT_EQ(cstats(a).obj_block % 64, 0);
	kheap_cache_free(a, x);
	kheap_cache_free(b, y);
	KT_EQ(kheap_cache_destroy(a), 0);
	KT_EQ(kheap_cache_destroy(b), 0);
	KT_EQ(rec.count, 0);
	all_back(h);
}
