/*
 * t_dump.c: kheap_dump (kheap.h). The output is captured and parsed back:
 * every block the walk sees appears once, with its size and state; the
 * stats line is kheap_get_stats; a dump with the lock already held (taken
 * through the white-box route, or from inside a walk callback, as a panic
 * inside the heap would be) completes unlocked and writes nothing; an
 * overwritten header is named and stepped over; the block lines stop at
 * KHEAP_DUMP_MAX_BLOCKS. No libc: the parsing is done by hand.
 */
#include "kh_internal.h"
#include "kt.h"

#define ARENA (1u << 20)
#define ARENA2 (1u << 16)
static _Alignas(16) unsigned char arena[ARENA];
static _Alignas(16) unsigned char arena2[ARENA2];
static _Alignas(16) unsigned char copy[ARENA2];

/* ---- capture and parsing --------------------------------------------------- */

static char out[1u << 20];
static size_t out_n, out_lost;

static void cap_putc(void *ctx, char c)
{
	(void)ctx;
	if (out_n < sizeof out - 1)
		out[out_n++] = c, out[out_n] = '\0';
	else
		out_lost++;
}

static void capture(struct kheap *h)
{
	out_n = out_lost = 0;
	out[0] = '\0';
	kheap_dump(h, cap_putc, NULL);
}

static const char *next_line(const char *l)
{
	while (*l && *l != '\n')
		l++;
	return *l ? l + 1 : l;
}

#define FOR_LINES(l) for (const char *l = out; *l; l = next_line(l))

static int starts(const char *l, const char *prefix)
{
	while (*prefix)
		if (*l++ != *prefix++)
			return 0;
	return 1;
}

/* Where " key=" (or "key=" opening the line) starts its value in line l. */
static const char *value(const char *l, const char *key)
{
	for (const char *p = l; *p && *p != '\n'; p++) {
		if (p != l && p[-1] != ' ')
			continue;
		const char *k = key, *q = p;
		while (*k && *q == *k)
			q++, k++;
		if (!*k && *q == '=')
			return q + 1;
	}
	return NULL;
}

/* The number after "key=" (0x-hex or decimal); 0 and a failed check if absent. */
static uint64_t num(const char *l, const char *key)
{
	const char *v = value(l, key);
	if (!KT_CHECK(v != NULL))
		return 0;
	uint64_t x = 0;
	unsigned base = 10;
	if (v[0] == '0' && v[1] == 'x')
		base = 16, v += 2;
	for (;; v++) {
		unsigned d = *v >= '0' && *v <= '9' ? (unsigned)(*v - '0')
			     : *v >= 'a' && *v <= 'f' ? (unsigned)(*v - 'a' + 10) : 99u;
		if (d >= base)
			return x;
		x = x * base + d;
	}
}

/* Is the value of key exactly word? */
static int is(const char *l, const char *key, const char *word)
{
	const char *v = value(l, key);
	if (v == NULL)
		return 0;
	while (*word)
		if (*v++ != *word++)
			return 0;
	return *v == ' ' || *v == '\n' || *v == '\0';
}

static unsigned count(const char *prefix)
{
	unsigned n = 0;
	FOR_LINES(l)
	n += starts(l, prefix);
	return n;
}

static const char *line_of(const char *prefix)
{
	FOR_LINES(l)
	if (starts(l, prefix))
		return l;
	return NULL;
}

/* The block line of payload ptr, and how many there are. */
static const char *block_line(const void *ptr, unsigned *n)
{
	const char *found = NULL;
	*n = 0;
	FOR_LINES(l)
	if (starts(l, "kheap block ") && num(l, "ptr") == (uintptr_t)ptr)
		found = l, ++*n;
	return found;
}

/* ---- what kheap_walk sees ---------------------------------------------------- */

#define WALK_MAX 2048
static struct {
	unsigned n;
	struct {
		void *ptr;
		size_t size;
		int used;
	} b[WALK_MAX];
} walked;

static void walk_fn(void *ctx, void *ptr, size_t size, int used)
{
	(void)ctx;
	if (walked.n < WALK_MAX)
		walked.b[walked.n].ptr = ptr, walked.b[walked.n].size = size, walked.b[walked.n].used = used;
	walked.n++;
}

/* A heap with used, free and cached blocks in two regions. */
static struct kheap *mixed_heap(struct kt_rec *rec, void **keep, unsigned nkeep)
{
	struct kheap *h = kt_heap(arena, ARENA, rec);
	KT_CHECK(kheap_add_region(h, arena2, ARENA2) == 0);
	uint64_t seed = 11;
	void *tmp[64];
	for (unsigned i = 0; i < 64; i++)
		tmp[i] = kheap_alloc(h, kt_below(&seed, 4) ? kt_below(&seed, 500) : kt_below(&seed, 9000));
	for (unsigned i = 0; i < nkeep; i++)
		keep[i] = i % 5 == 4 ? kheap_aligned_alloc(h, 128, 300) : kheap_alloc(h, 1 + kt_below(&seed, 3000));
	for (unsigned i = 0; i < 64; i += 2) /* small ones to the caches, the rest to bins */
		kheap_free(h, tmp[i]);
	return h;
}

KT_CASE(dump_lists_every_block_once)
{
	struct kt_rec rec;
	void *keep[40];
	struct kheap *h = mixed_heap(&rec, keep, 40);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_REQUIRE(st.cached_blocks > 0 && st.free_blocks > 1 && st.regions == 2);
	walked.n = 0;
	kheap_walk(h, walk_fn, NULL);
	KT_REQUIRE(walked.n <= WALK_MAX);
	capture(h);
	KT_EQ(out_lost, 0);
	KT_EQ(count("kheap block "), walked.n);
	size_t bytes[3] = {0, 0, 0}, blocks[3] = {0, 0, 0};
	for (unsigned i = 0; i < walked.n; i++) {
		unsigned n;
		const char *l = block_line(walked.b[i].ptr, &n);
		if (!KT_EQ(n, 1))
			continue;
		KT_EQ(num(l, "bytes"), walked.b[i].size + 8);
		unsigned k = is(l, "state", "used") ? 0 : is(l, "state", "free") ? 1 : is(l, "state", "cached") ? 2 : 3;
		KT_REQUIRE(k < 3);
		KT_EQ(k == 0, walked.b[i].used);
		bytes[k] += num(l, "bytes");
		blocks[k]++;
	}
	KT_EQ(bytes[0], st.in_use_bytes);
	KT_EQ(bytes[1], st.free_bytes);
	KT_EQ(bytes[2], st.cached_bytes);
	KT_EQ(blocks[0], st.used_blocks);
	KT_EQ(blocks[1], st.free_blocks);
	KT_EQ(blocks[2], st.cached_blocks);
	const char *end = line_of("kheap end ");
	KT_REQUIRE(end != NULL);
	KT_EQ(num(end, "blocks"), walked.n);
	KT_EQ(num(end, "bad"), 0);
	KT_EQ(count("kheap bad "), 0);
	KT_EQ(count("kheap elided "), 0);
	KT_CHECK(line_of("kheap lock taken\n") != NULL);
	KT_EQ(rec.count, 0);
}

KT_CASE(dump_header_regions_and_stats_lines)
{
	struct kt_rec rec;
	void *keep[10];
	struct kheap *h = mixed_heap(&rec, keep, 10);
	kheap_free(h, keep[3]);
	kheap_free(h, keep[3]); /* a double free: error_count 1 */
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_CHECK(kheap_alloc(h, (size_t)1 << 30) == NULL); /* oom_count 1 */
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	capture(h);
	KT_CHECK(starts(out, "kheap dump "));
	KT_EQ(num(out, "heap"), (uintptr_t)h);
	KT_EQ(num(out, "harden"), KHEAP_HARDEN);
	KT_EQ(num(out, "tags"), KHEAP_TAGS);
	KT_EQ(count("kheap stats "), 1);
	const char *s = line_of("kheap stats ");
	KT_REQUIRE(s != NULL);
	KT_EQ(num(s, "total"), st.total_bytes);
	KT_EQ(num(s, "in_use"), st.in_use_bytes);
	KT_EQ(num(s, "peak"), st.peak_in_use_bytes);
	KT_EQ(num(s, "free"), st.free_bytes);
	KT_EQ(num(s, "cached"), st.cached_bytes);
	KT_EQ(num(s, "largest_free"), st.largest_free);
	KT_EQ(num(s, "used_blocks"), st.used_blocks);
	KT_EQ(num(s, "free_blocks"), st.free_blocks);
	KT_EQ(num(s, "cached_blocks"), st.cached_blocks);
	KT_EQ(num(s, "allocs"), st.alloc_count);
	KT_EQ(num(s, "frees"), st.free_count);
	KT_EQ(num(s, "ooms"), 1);
	KT_EQ(num(s, "errors"), 1);
	KT_EQ(num(s, "regions"), 2);
	KT_EQ(count("kheap region "), 2);
	unsigned i = 0;
	FOR_LINES(l)
	if (starts(l, "kheap region ")) {
		const struct kh_region *r = &h->regions[i];
		KT_EQ(num(l, "i"), i);
		KT_EQ(num(l, "lo"), r->lo);
		KT_EQ(num(l, "hi"), r->hi);
		KT_EQ(num(l, "first"), r->first);
		KT_EQ(num(l, "end"), r->end);
		i++;
	}
	KT_EQ(h->regions[1].lo, (uintptr_t)arena2);
	KT_EQ(h->regions[1].hi, (uintptr_t)arena2 + ARENA2);
	KT_EQ(rec.count, 0);
}

/* Block lines carry the tag under KHEAP_TAGS, and nothing else has one. */
KT_CASE(dump_block_lines_carry_tags)
{
	struct kt_rec rec;
	void *keep[30];
	struct kheap *h = mixed_heap(&rec, keep, 30);
	capture(h);
	unsigned used = 0, tagged = 0;
	FOR_LINES(l)
	{
		if (!starts(l, "kheap block "))
			continue;
		used += is(l, "state", "used");
		if (value(l, "site") == NULL) {
			KT_CHECK(value(l, "seq") == NULL);
			continue;
		}
		tagged++;
		KT_CHECK(KHEAP_TAGS && is(l, "state", "used"));
		const void *site;
		uint64_t seq;
		KT_EQ(kheap_tag_of(h, (void *)(uintptr_t)num(l, "ptr"), &site, &seq), 0);
		KT_EQ(num(l, "site"), (uintptr_t)site);
		KT_EQ(num(l, "seq"), seq);
	}
	KT_CHECK(used >= 30);
	KT_EQ(tagged, KHEAP_TAGS ? used : 0);
}

/* The lock held for good, as when this CPU panicked inside the heap: the
 * dump gives up on it, says so, finishes, and neither takes a ticket nor
 * writes a byte. */
KT_CASE(dump_with_the_lock_held_completes_unlocked)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena2, ARENA2, &rec);
	void *p[20];
	for (unsigned i = 0; i < 20; i++)
		p[i] = kheap_alloc(h, 100 + 50 * i);
	for (unsigned i = 0; i < 20; i += 3)
		kheap_free(h, p[i]);
	kh_lock_acquire(&h->lock);
	for (unsigned i = 0; i < ARENA2; i++)
		copy[i] = arena2[i];
	capture(h);
	unsigned same = 1;
	for (unsigned i = 0; i < ARENA2; i++)
		same &= copy[i] == arena2[i];
	KT_CHECK(same);
	kh_lock_release(&h->lock);
	KT_EQ(atomic_load(&h->lock.next), atomic_load(&h->lock.serving)); /* free again */
	KT_CHECK(line_of("kheap lock busy: unlocked snapshot, may be torn\n") != NULL);
	KT_CHECK(line_of("kheap lock taken") == NULL);
	KT_CHECK(line_of("kheap end ") != NULL);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(count("kheap block "), st.used_blocks + st.free_blocks + st.cached_blocks);
	capture(h); /* and the lock is taken once it is free */
	KT_CHECK(line_of("kheap lock taken\n") != NULL);
	KT_EQ(atomic_load(&h->lock.next), atomic_load(&h->lock.serving));
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* A walk callback runs with the lock held by this very thread. */
static unsigned dumps_in_walk;
static void dump_from_walk(void *ctx, void *ptr, size_t size, int used)
{
	(void)ptr, (void)size, (void)used;
	if (dumps_in_walk++ == 0)
		capture(ctx);
}

KT_CASE(dump_from_inside_the_heap_lock)
{
	struct kt_rec rec;
	void *keep[10];
	struct kheap *h = mixed_heap(&rec, keep, 10);
	dumps_in_walk = 0;
	kheap_walk(h, dump_from_walk, h);
	KT_CHECK(dumps_in_walk > 1);
	KT_CHECK(line_of("kheap lock busy") != NULL);
	KT_CHECK(line_of("kheap end ") != NULL);
	KT_EQ(count("kheap bad "), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(dump_names_an_overwritten_header_and_goes_on)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	char *p[8];
	for (unsigned i = 0; i < 8; i++)
		p[i] = kheap_alloc(h, 70000);
	uint64_t *hdr = (uint64_t *)(void *)(p[4] - 8), saved = *hdr;
	*hdr = 0x4141414141414141u; /* a string run over it */
	capture(h);
	KT_EQ(count("kheap bad "), 1);
	const char *bad = line_of("kheap bad ");
	KT_REQUIRE(bad != NULL);
	KT_EQ(num(bad, "ptr"), (uintptr_t)p[4]);
	KT_EQ(num(bad, "region"), 0);
	KT_EQ(num(bad, "resume"), (uintptr_t)p[5]);
	KT_CHECK(value(bad, "why") != NULL && value(bad, "why")[0] == '"');
	unsigned n;
	KT_CHECK(block_line(p[4], &n) == NULL);
	for (unsigned i = 0; i < 8; i++)
		if (i != 4)
			KT_CHECK(block_line(p[i], &n) != NULL && n == 1 && is(block_line(p[i], &n), "state", "used"));
	KT_CHECK(block_line(p[7] + ((70000 + KHEAP_BLOCK_OVERHEAD + 15) & ~(size_t)15), &n) != NULL); /* the free rest */
	const char *end = line_of("kheap end ");
	KT_REQUIRE(end != NULL);
	KT_EQ(num(end, "bad"), 1);
	KT_EQ(num(end, "blocks"), 8);
	*hdr = saved;
	capture(h);
	KT_EQ(count("kheap bad "), 0);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* Headers that pass the cookie but not the size test: one sealed with size
 * 0 (as an absorbed header is) would loop forever, one running past the
 * region would skip the rest of it. Both are named and stepped over. */
KT_CASE(dump_steps_over_sealed_headers_with_bad_sizes)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena2, ARENA2, &rec);
	char *p[6];
	for (unsigned i = 0; i < 6; i++)
		p[i] = kheap_alloc(h, 1500);
	uintptr_t b1 = kh_block_of(p[1]), b3 = kh_block_of(p[3]);
	kh_word s1 = *kh_hdr(b1), s3 = *kh_hdr(b3);
	kh_set(h, b1, 0, KH_USED, 0);
	kh_set(h, b3, (size_t)1 << 30, KH_USED, 0);
	capture(h);
	KT_EQ(count("kheap bad "), 2);
	unsigned n;
	KT_CHECK(block_line(p[1], &n) == NULL && block_line(p[3], &n) == NULL);
	KT_CHECK(block_line(p[2], &n) != NULL && block_line(p[4], &n) != NULL && block_line(p[5], &n) != NULL);
	FOR_LINES(l)
	if (starts(l, "kheap bad "))
		KT_CHECK(num(l, "resume") == (uintptr_t)(num(l, "ptr") == (uintptr_t)p[1] ? p[2] : p[4]));
	*kh_hdr(b1) = s1, *kh_hdr(b3) = s3;
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* A damaged end marker is named too; the blocks before it are all there. */
KT_CASE(dump_names_a_damaged_end_marker)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena2, ARENA2, &rec);
	void *p = kheap_alloc(h, 100);
	kh_word *end = kh_hdr(h->regions[0].end), saved = *end;
	*end ^= 1; /* the used bit */
	capture(h);
	const char *bad = line_of("kheap bad ");
	KT_REQUIRE(bad != NULL);
	KT_EQ(num(bad, "ptr"), h->regions[0].end + 8);
	KT_CHECK(is(bad, "resume", "end"));
	KT_EQ(count("kheap block "), 2);
	*end = saved;
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(dump_caps_block_lines)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, ARENA, &rec);
	unsigned n = KHEAP_DUMP_MAX_BLOCKS + 500;
	for (unsigned i = 0; i < n; i++)
		KT_REQUIRE(kheap_alloc(h, 0) != NULL);
	kheap_trim(h); /* the rest of the last carved batch back to the free rest */
	capture(h);
	KT_EQ(out_lost, 0);
	KT_EQ(count("kheap block "), KHEAP_DUMP_MAX_BLOCKS);
	KT_EQ(count("kheap elided "), 1);
	const char *el = line_of("kheap elided ");
	KT_REQUIRE(el != NULL);
	KT_EQ(num(el, "lines"), n + 1 - KHEAP_DUMP_MAX_BLOCKS); /* and the free rest */
	KT_EQ(num(el, "used"), n - KHEAP_DUMP_MAX_BLOCKS);
	KT_EQ(num(el, "free"), 1);
	KT_EQ(num(el, "cached"), 0);
	KT_EQ(num(el, "bad"), 0);
	const char *end = line_of("kheap end ");
	KT_REQUIRE(end != NULL);
	KT_EQ(num(end, "blocks"), n + 1);
	KT_CHECK(el < end);
}

KT_CASE(dump_of_a_dead_handle_is_one_line)
{
	static _Alignas(16) unsigned char junk[4096];
	capture(NULL);
	KT_CHECK(starts(out, "kheap dump heap=0x0 not a live heap\n"));
	KT_EQ(count("kheap "), 1);
	capture((struct kheap *)(void *)junk);
	KT_CHECK(value(out, "heap") != NULL && line_of("kheap stats") == NULL);
	KT_EQ(count("kheap "), 1);
	kheap_dump(NULL, NULL, NULL); /* no putc: nothing to do */
}
