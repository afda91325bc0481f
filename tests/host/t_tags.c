/*
 * t_tags.c: caller tags (KHEAP_TAGS, kheap.h): the site names the call, the
 * sequence follows alloc_count, tags survive the backend's splitting and
 * merging, and a walk of the held blocks is a leak report. The cases that
 * read real tags need a TAGS=1 build (run-suites.sh has one); without tags
 * the same file checks what kheap.h promises instead: site NULL, seq 0, -1.
 */
#include "kt.h"

#define ARENA (1u << 20)
static _Alignas(16) unsigned char arena[ARENA];

/* What a walk saw, for the cases to compare. */
#define SEEN_MAX 512
struct seen {
	unsigned n, overflow;
	struct {
		void *ptr;
		size_t size;
		const void *site;
		uint64_t seq;
	} b[SEEN_MAX];
};

static void record(void *ctx, void *ptr, size_t size, const void *site, uint64_t seq)
{
	struct seen *s = ctx;
	if (s->n == SEEN_MAX) {
		s->overflow++;
		return;
	}
	s->b[s->n].ptr = ptr, s->b[s->n].size = size, s->b[s->n].site = site, s->b[s->n].seq = seq;
	s->n++;
}

static struct seen seen;

static void walk(struct kheap *h)
{
	seen.n = seen.overflow = 0;
	kheap_walk_tags(h, record, &seen);
}

/* The walk's entry for ptr, or -1. */
static int find(const void *ptr)
{
	for (unsigned i = 0; i < seen.n; i++)
		if (seen.b[i].ptr == ptr)
			return (int)i;
	return -1;
}

/* A corrupt header is stepped over: the held blocks past it are still
 * listed, and the damaged one is not. Holds with and without tags. */
KT_CASE(tags_walk_steps_over_a_corrupt_header)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	char *p[6];
	for (unsigned i = 0; i < 6; i++)
		p[i] = kheap_alloc(h, 2000);
	uint64_t *hdr = (uint64_t *)(void *)(p[2] - 8), saved = *hdr;
	*hdr ^= 0x40000; /* a size bit: the cookie no longer matches */
	walk(h);
	KT_EQ(seen.n, 5);
	KT_EQ(find(p[2]), -1);
	for (unsigned i = 0; i < 6; i++)
		if (i != 2)
			KT_CHECK(find(p[i]) >= 0);
	*hdr = saved;
	walk(h);
	KT_EQ(seen.n, 6);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

#if !KHEAP_TAGS

KT_CASE(tags_absent_say_no_tags)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *a = kheap_alloc(h, 100), *b = kheap_calloc(h, 3, 700);
	const void *site = (const void *)1;
	uint64_t seq = 99;
	KT_EQ(kheap_tag_of(h, a, &site, &seq), -1);
	KT_CHECK(site == NULL);
	KT_EQ(seq, 0);
	KT_EQ(kheap_tag_of(h, a, NULL, NULL), -1);
	walk(h);
	KT_EQ(seen.n, 2);
	for (unsigned i = 0; i < seen.n; i++) {
		KT_CHECK(seen.b[i].site == NULL);
		KT_EQ(seen.b[i].seq, 0);
		KT_EQ(seen.b[i].size, kheap_usable_size(h, seen.b[i].ptr));
	}
	KT_CHECK(find(a) >= 0 && find(b) >= 0);
	KT_EQ(KHEAP_BLOCK_OVERHEAD, KHEAP_HARDEN >= 1 ? 16 : 8);
	KT_EQ(rec.count, 0);
}

#else /* KHEAP_TAGS */

/* One call site per helper. noinline, and a store after the call, so the
 * call is not a tail call: its return address lies inside the helper, a
 * few instructions from its start. Each stores to its own variable so that
 * identical-code folding cannot merge two helpers into one. */
static volatile uintptr_t sink_a, sink_b, sink_c, sink_al, sink_r;

__attribute__((noinline)) static void *site_a(struct kheap *h, size_t n)
{
	void *p = kheap_alloc(h, n);
	sink_a = (uintptr_t)p;
	return p;
}

__attribute__((noinline)) static void *site_b(struct kheap *h, size_t n)
{
	void *p = kheap_alloc(h, n);
	sink_b = (uintptr_t)p;
	return p;
}

__attribute__((noinline)) static void *site_c(struct kheap *h, size_t n)
{
	void *p = kheap_calloc(h, 1, n);
	sink_c = (uintptr_t)p;
	return p;
}

__attribute__((noinline)) static void *site_al(struct kheap *h, size_t n)
{
	void *p = kheap_aligned_alloc(h, 256, n);
	sink_al = (uintptr_t)p;
	return p;
}

__attribute__((noinline)) static void *site_r(struct kheap *h, void *q, size_t n)
{
	void *p = kheap_realloc(h, q, n);
	sink_r = (uintptr_t)p;
	return p;
}

/* Is site within the first bytes of fn's code (the call's return address)?
 * 256 bytes hold each helper even unoptimised or sanitised. */
static int from(const void *site, uintptr_t fn) { return (uintptr_t)site > fn && (uintptr_t)site < fn + 256; }
#define FROM(site, fn) from((site), (uintptr_t)(fn))

static const void *site_of(struct kheap *h, const void *p)
{
	const void *site = NULL;
	uint64_t seq;
	return kheap_tag_of(h, p, &site, &seq) == 0 ? site : NULL;
}

static uint64_t seq_of(struct kheap *h, const void *p)
{
	const void *site;
	uint64_t seq = 0;
	kheap_tag_of(h, p, &site, &seq);
	return seq;
}

static uint64_t allocs(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st.alloc_count;
}

KT_CASE(tags_name_the_call_site)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *a = site_a(h, 40), *a2 = site_a(h, 5000), *b = site_b(h, 40), *c = site_c(h, 300);
	void *al = site_al(h, 100), *r = site_r(h, NULL, 70);
	KT_REQUIRE(a && a2 && b && c && al && r);
	KT_CHECK(FROM(site_of(h, a), site_a));
	KT_CHECK(site_of(h, a2) == site_of(h, a)); /* same call, class or backend */
	KT_CHECK(FROM(site_of(h, b), site_b));
	KT_CHECK(FROM(site_of(h, c), site_c));
	KT_CHECK(FROM(site_of(h, al), site_al));
	KT_CHECK(FROM(site_of(h, r), site_r));
	const void *s[5] = {site_of(h, a), site_of(h, b), site_of(h, c), site_of(h, al), site_of(h, r)};
	for (unsigned i = 0; i < 5; i++)
		for (unsigned j = i + 1; j < 5; j++)
			KT_CHECK(s[i] != s[j]);
	/* A cached block handed out again carries its new caller. */
	kheap_free(h, a);
	void *a3 = site_b(h, 40);
	KT_CHECK(a3 == a);
	KT_CHECK(FROM(site_of(h, a3), site_b));
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(tags_seq_is_alloc_count_after_the_allocation)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *p[60];
	uint64_t last = 0;
	for (unsigned i = 0; i < 60; i++) {
		size_t n = 16 + (size_t)i * 97;
		p[i] = i % 3 == 0 ? site_a(h, n) : i % 3 == 1 ? site_c(h, n) : site_al(h, n);
		KT_REQUIRE(p[i] != NULL);
		uint64_t seq = seq_of(h, p[i]);
		KT_EQ(seq, allocs(h));
		KT_CHECK(seq > last);
		last = seq;
		if (i % 4 == 3) /* frees in between: the sequence does not care */
			kheap_free(h, p[i - 1]), p[i - 1] = NULL;
	}
	KT_EQ(seq_of(h, p[0]), 1); /* the first block a heap hands out */
	for (unsigned i = 0; i < 60; i++)
		kheap_free(h, p[i]);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(tags_realloc_in_place_keeps_the_tag_a_move_retags)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	char *p = site_a(h, 3000); /* the first block: free space follows it */
	KT_REQUIRE(p != NULL);
	const void *site = site_of(h, p);
	uint64_t seq = seq_of(h, p);
	kt_fill(p, 3000, 7);
	KT_CHECK(site_r(h, p, 9000) == p); /* grows into the free neighbour */
	KT_CHECK(site_of(h, p) == site && seq_of(h, p) == seq);
	KT_CHECK(site_r(h, p, 1000) == p); /* shrinks, freeing a tail block */
	KT_CHECK(site_of(h, p) == site && seq_of(h, p) == seq);
	KT_CHECK(kt_verify(p, 1000, 7));
	KT_EQ(allocs(h), 1);
	KT_EQ(kt_heap_check(h), 0);
	char *wall = site_b(h, 3000); /* now p cannot grow in place */
	char *q = site_r(h, p, 20000);
	KT_REQUIRE(q != NULL && q != p);
	KT_CHECK(FROM(site_of(h, q), site_r));
	KT_EQ(seq_of(h, q), allocs(h));
	KT_CHECK(kt_verify(q, 1000, 7));
	kheap_free(h, q);
	kheap_free(h, wall);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* The recipe of the README: take alloc_count, run the code, free what it
 * should free; the held blocks with a later seq are its leaks. */
KT_CASE(tags_leak_report_lists_exactly_the_leaks)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	void *before = site_b(h, 500); /* held before the checkpoint: not a leak */
	uint64_t checkpoint = allocs(h);
	void *keep[200], *leak[3];
	uint64_t seed = 5;
	for (unsigned i = 0; i < 200; i++) {
		keep[i] = site_a(h, 1 + kt_below(&seed, 3000));
		if (i == 50)
			leak[0] = site_b(h, 123);
		if (i == 120)
			leak[1] = site_c(h, 4000);
		if (i % 7 == 6) /* churn, so leaks sit among free and cached blocks */
			kheap_free(h, keep[i - 3]), keep[i - 3] = NULL;
	}
	leak[2] = site_al(h, 40);
	for (unsigned i = 0; i < 200; i++)
		kheap_free(h, keep[i]);
	walk(h);
	KT_EQ(seen.overflow, 0);
	unsigned leaks = 0;
	for (unsigned i = 0; i < seen.n; i++) {
		if (seen.b[i].seq <= checkpoint) {
			KT_CHECK(seen.b[i].ptr == before);
			continue;
		}
		leaks++;
		KT_EQ(seen.b[i].size, kheap_usable_size(h, seen.b[i].ptr));
	}
	KT_EQ(leaks, 3);
	KT_EQ(seen.n, 4);
	int i0 = find(leak[0]), i1 = find(leak[1]), i2 = find(leak[2]);
	KT_REQUIRE(i0 >= 0 && i1 >= 0 && i2 >= 0);
	KT_CHECK(FROM(seen.b[i0].site, site_b));
	KT_CHECK(FROM(seen.b[i1].site, site_c));
	KT_CHECK(FROM(seen.b[i2].site, site_al));
	KT_CHECK(seen.b[i0].seq < seen.b[i1].seq && seen.b[i1].seq < seen.b[i2].seq);
	KT_CHECK(seen.b[i1].size >= 4000);
	for (unsigned i = 0; i < 3; i++)
		kheap_free(h, leak[i]);
	kheap_free(h, before);
	walk(h);
	KT_EQ(seen.n, 0);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(tags_tag_of_refuses_what_the_caller_does_not_hold)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	char *p = site_a(h, 3000), *small = site_a(h, 40), *wall = site_a(h, 40);
	const void *site = (const void *)1;
	uint64_t seq = 7;
	KT_EQ(kheap_tag_of(h, p, &site, &seq), 0);
	KT_CHECK(FROM(site, site_a));
	KT_EQ(kheap_tag_of(h, NULL, &site, &seq), -1);
	KT_CHECK(site == NULL && seq == 0);
	KT_EQ(kheap_tag_of(h, p + 16, &site, &seq), -1); /* interior */
	KT_EQ(kheap_tag_of(h, p + 8, &site, &seq), -1);  /* misaligned */
	KT_EQ(kheap_tag_of(h, arena, &site, &seq), -1);  /* the control block */
	KT_EQ(kheap_tag_of(h, &seq, &site, &seq), -1);   /* foreign */
	KT_EQ(kheap_tag_of(NULL, p, &site, &seq), -1);
	kheap_free(h, small); /* cached */
	KT_EQ(kheap_tag_of(h, small, &site, &seq), -1);
	kheap_free(h, p); /* free, in a bin */
	KT_EQ(kheap_tag_of(h, p, &site, &seq), -1);
	KT_EQ(rec.count, 0); /* never reports (nor panics: kt_core.c would fail the case) */
	kheap_free(h, wall);
}

#if KHEAP_HARDEN >= 1
/* The use kheap_tag_of is shaped for: a report hook naming who allocated
 * the block whose canary an overflow broke. */
struct who {
	struct kheap *h;
	const void *site;
	int rc;
};

static void who_hook(void *ctx, const struct kheap_report *r)
{
	struct who *w = ctx;
	uint64_t seq;
	w->rc = kheap_tag_of(w->h, r->ptr, &w->site, &seq);
}

KT_CASE(tags_report_hook_names_the_overflowed_block_site)
{
	struct who w = {kheap_init(arena, ARENA), NULL, 1};
	kheap_set_report(w.h, who_hook, &w);
	char *p = site_c(w.h, 200), *q = site_a(w.h, 200);
	p[kheap_usable_size(w.h, p)] ^= 1; /* the canary */
	kheap_free(w.h, p);
	KT_EQ(w.rc, 0);
	KT_CHECK(FROM(w.site, site_c));
	kheap_free(w.h, q);
}
#else
/* What kheap.h warns about: with no canary the bytes past the usable size
 * are the tag, so a short overflow changes the site, unreported. */
KT_CASE(tags_level0_overflow_lands_in_the_tag)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	char *p = site_a(h, 200), *q = site_a(h, 200);
	const void *site = site_of(h, p);
	p[kheap_usable_size(h, p)] ^= 1;
	KT_CHECK(site_of(h, p) != site);
	kheap_free(h, p);
	KT_EQ(rec.count, 0);
	kheap_free(h, q);
	KT_EQ(kt_heap_check(h), 0);
}
#endif

/* Random alloc, calloc, aligned, realloc and free against a shadow of every
 * block's expected tag: the backend's splits, merges and in-place resizes
 * never disturb a held block's tag. */
#define SLOTS 256
static struct {
	void *p;
	const void *site;
	uint64_t seq;
} slot[SLOTS];

static int tags_match(struct kheap *h)
{
	walk(h);
	unsigned held = 0;
	for (unsigned i = 0; i < SLOTS; i++) {
		if (slot[i].p == NULL)
			continue;
		held++;
		int k = find(slot[i].p);
		if (k < 0 || seen.b[k].site != slot[i].site || seen.b[k].seq != slot[i].seq)
			return 0;
	}
	return held == seen.n;
}

KT_CASE(tags_survive_random_churn)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	for (unsigned i = 0; i < SLOTS; i++)
		slot[i].p = NULL;
	uint64_t seed = 0x7a95;
	unsigned bad = 0;
	for (unsigned op = 0; op < 40000 && bad < 3; op++) {
		unsigned i = (unsigned)kt_below(&seed, SLOTS), what = (unsigned)kt_below(&seed, 4);
		size_t n = kt_below(&seed, 8) == 0 ? 1 + kt_below(&seed, 20000) : 1 + kt_below(&seed, 600);
		if (slot[i].p != NULL && what == 0) {
			kheap_free(h, slot[i].p);
			slot[i].p = NULL;
			continue;
		}
		if (slot[i].p != NULL) {
			void *q = site_r(h, slot[i].p, n);
			if (q == NULL)
				continue;
			if (q != slot[i].p) { /* moved: a new allocation */
				slot[i].site = site_of(h, q), slot[i].seq = allocs(h);
				if (!KT_CHECK(FROM(slot[i].site, site_r)))
					bad++;
			}
			slot[i].p = q;
		} else {
			void *q = what == 1 ? site_a(h, n) : what == 2 ? site_c(h, n) : site_al(h, n);
			if (q == NULL)
				continue;
			slot[i].p = q, slot[i].site = site_of(h, q), slot[i].seq = allocs(h);
			uintptr_t fn = what == 1 ? (uintptr_t)site_a : what == 2 ? (uintptr_t)site_c : (uintptr_t)site_al;
			if (!KT_CHECK(from(slot[i].site, fn)))
				bad++;
		}
		if (op % 1000 == 999 && !KT_CHECK(tags_match(h)))
			bad++;
	}
	KT_CHECK(tags_match(h));
	for (unsigned i = 0; i < SLOTS; i++)
		kheap_free(h, slot[i].p);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

#endif /* KHEAP_TAGS */
