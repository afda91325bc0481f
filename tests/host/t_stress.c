/*
 * t_stress.c: a random workload against a shadow model. Every block is
 * stamped on alloc and verified on free and on every realloc; an ownership
 * bitmap over both regions proves no two live blocks overlap; every result
 * is checked for alignment and region membership; kheap_check runs after
 * every operation for the first KT_CHECK_EVERY_OPS operations.
 */
#include "kt.h"

#ifndef KT_STRESS_OPS
#define KT_STRESS_OPS 1000000u
#endif
#ifndef KT_CHECK_EVERY_OPS
#define KT_CHECK_EVERY_OPS 100000u
#endif

#define R1 (8u << 20)
#define R2 (4u << 20)
#define SLOTS 1024u
static _Alignas(16) unsigned char r1[R1];
static _Alignas(16) unsigned char r2[R2];
static uint64_t owner[(R1 + R2) / 8 / 64]; /* one bit per 8 bytes */

struct slot {
	unsigned char *p;
	size_t n, align;
	uint64_t token;
};
static struct slot slots[SLOTS];

/* Bit index of address a in the ownership map, or -1 outside both regions. */
static long bit_of(uintptr_t a)
{
	if (a >= (uintptr_t)r1 && a < (uintptr_t)r1 + R1)
		return (long)((a - (uintptr_t)r1) / 8);
	if (a >= (uintptr_t)r2 && a < (uintptr_t)r2 + R2)
		return (long)((a - (uintptr_t)r2 + R1) / 8);
	return -1;
}

/* Claim (or release) [p - 8, p + usable): returns 0 on an overlap (or a
 * release of bits not held), or when the block leaves its region. */
static int own(unsigned char *p, size_t usable, int claim)
{
	long lo = bit_of((uintptr_t)p - 8), hi = bit_of((uintptr_t)p + usable - 1);
	if (lo < 0 || hi < 0 || (hi < R1 / 8) != (lo < R1 / 8))
		return 0;
	for (long w = lo >> 6; w <= hi >> 6; w++) {
		uint64_t m = ~(uint64_t)0;
		if (w == lo >> 6)
			m &= ~(uint64_t)0 << (lo & 63);
		if (w == hi >> 6)
			m &= ~(uint64_t)0 >> (63 - (hi & 63));
		if ((owner[w] & m) != (claim ? 0 : m))
			return 0;
		owner[w] ^= m;
	}
	return 1;
}

/* Stamp the first and last 64 bytes and one word in every 256: enough to
 * catch overlap, lost copies and stray writes at a fraction of the cost. */
static uint64_t word(uint64_t token, size_t i) { return (token + i) * 0x9e3779b97f4a7c15ull; }

/* The stamped word after offset i of an n-byte block: words below 64, one
 * word per 256 bytes, and every word of the last 64 to 72 bytes. */
static size_t next_stamp(size_t i, size_t n)
{
	size_t tail = n > 72 ? (n - 72) & ~(size_t)7 : 0;
	if (i + 8 < 64 || i >= tail)
		return i + 8;
	size_t skip = (i + 256) & ~(size_t)255;
	return skip < tail ? skip : tail;
}

#define FOR_STAMPED(i, n) for (size_t i = 0; i + 8 <= (n); i = next_stamp(i, (n)))

static void stamp(unsigned char *p, size_t n, uint64_t token)
{
	FOR_STAMPED(i, n)
	*(uint64_t *)(void *)(p + i) = word(token, i);
}

static int intact(const unsigned char *p, size_t n, uint64_t token)
{
	FOR_STAMPED(i, n)
	if (*(const uint64_t *)(const void *)(p + i) != word(token, i))
		return 0;
	return 1;
}

/* Log-uniform in [8, 64 KiB]. */
static size_t pick_size(uint64_t *seed)
{
	unsigned e = 3 + (unsigned)kt_below(seed, 14);
	size_t lo = (size_t)1 << e;
	return lo + (size_t)kt_below(seed, lo);
}

static int block_ok(struct kheap *h, unsigned char *p, size_t n, size_t align)
{
	size_t u = kheap_usable_size(h, p);
	return ((uintptr_t)p % (align < 16 ? 16 : align)) == 0 && u >= n && own(p, u, 1);
}

KT_CASE(stress_random_ops_shadow_model)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(r1, R1, &rec);
	KT_REQUIRE(h != NULL && kheap_add_region(h, r2, R2) == 0);
	for (unsigned i = 0; i < sizeof owner / sizeof owner[0]; i++)
		owner[i] = 0;
	for (unsigned i = 0; i < SLOTS; i++)
		slots[i].p = NULL;
	/* The control block is not a block: claim it so nothing overlaps it. */
	uint64_t seed = 0x5eed, live = 0, ooms = 0;
	unsigned failures = 0;
	for (uint32_t op = 0; op < KT_STRESS_OPS && failures < 5; op++) {
		struct slot *s = &slots[kt_below(&seed, SLOTS)];
		unsigned what = (unsigned)kt_below(&seed, 100);
		if (s->p == NULL) {
			size_t n = pick_size(&seed), align = 16, req = n;
			if (what < 70) {
				s->p = kheap_alloc(h, n);
			} else if (what < 85) {
				align = (size_t)1 << (5 + kt_below(&seed, 8));
				s->p = kheap_aligned_alloc(h, align, n);
			} else {
				size_t k = 1 + kt_below(&seed, 4);
				s->p = kheap_calloc(h, k, n / 4 + 1);
				req = k * (n / 4 + 1);
				n = 0; /* zero-checked below, then restamped */
			}
			if (s->p == NULL) {
				struct kheap_stats st;
				kheap_get_stats(h, &st);
				/* NULL is only allowed when no free block is big enough. */
				if (align == 16 && ((req + KHEAP_BLOCK_OVERHEAD + 15) & ~(size_t)15) <= st.largest_free &&
				    !KT_CHECK(0 && "spurious NULL"))
					failures++;
				ooms++;
				continue;
			}
			if (n == 0) {
				size_t u = kheap_usable_size(h, s->p);
				for (size_t i = 0; i < u; i += 8)
					if (*(uint64_t *)(void *)(s->p + i) != 0) {
						KT_CHECK(0 && "calloc memory not zero");
						failures++;
						break;
					}
				n = u;
			}
			if (!KT_CHECK(block_ok(h, s->p, n, align)))
				failures++;
			s->n = n, s->align = align, s->token = kt_rand(&seed);
			stamp(s->p, n, s->token);
			live++;
		} else if (what < 75) {
			if (!KT_CHECK(intact(s->p, s->n, s->token)) ||
			    !KT_CHECK(own(s->p, kheap_usable_size(h, s->p), 0)))
				failures++;
			kheap_free(h, s->p);
			s->p = NULL;
			live--;
		} else {
			size_t n = pick_size(&seed), keep = n < s->n ? n : s->n;
			size_t u = kheap_usable_size(h, s->p);
			KT_CHECK(own(s->p, u, 0));
			unsigned char *q = kheap_realloc(h, s->p, n);
			if (q == NULL) { /* old block must be untouched */
				if (!KT_CHECK(intact(s->p, s->n, s->token)) || !KT_CHECK(own(s->p, u, 1)))
					failures++;
				ooms++;
				continue;
			}
			/* Only the prefix both sizes share is guaranteed; re-stamp. */
			if (!KT_CHECK(keep < 64 || *(uint64_t *)(void *)q == word(s->token, 0)) ||
			    !KT_CHECK(block_ok(h, q, n, s->align)))
				failures++;
			s->p = q, s->n = n, s->token = kt_rand(&seed);
			stamp(q, n, s->token);
		}
		if (op < KT_CHECK_EVERY_OPS && kheap_check(h) != 0) {
			KT_CHECK(kt_heap_check(h) == 0);
			failures++;
		}
	}
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(st.used_blocks, live);
	KT_EQ(st.in_use_bytes + st.free_bytes + st.cached_bytes, st.total_bytes);
	KT_EQ(st.oom_count, ooms);
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < SLOTS; i++)
		if (slots[i].p) {
			KT_CHECK(intact(slots[i].p, slots[i].n, slots[i].token));
			kheap_free(h, slots[i].p);
		}
	kheap_trim(h);
	kheap_get_stats(h, &st);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.free_blocks, 2); /* everything coalesced back: one per region */
	KT_EQ(kt_heap_check(h), 0);
}
