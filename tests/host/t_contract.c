/*
 * t_contract.c: the allocation contract of kheap.h, case by case: no false
 * NULL (a request that a free block can hold is served), realloc counts a
 * cached right neighbour as free, kheap_check sees every poison and canary,
 * a repair resyncs past a damaged header, and a refused request does not
 * panic. Each case starts from the smallest input that once broke the
 * contract; the property cases then sweep the whole kind. Freestanding (no
 * hosted header), so the QEMU test kernel runs it too.
 */
#include "kt.h"

#define MIB ((size_t)1 << 20)
#define BIG (16 * MIB)
/* One arena for every case, with room to place a heap anywhere modulo 1 MiB. */
static _Alignas(4096) unsigned char arena[BIG + 2 * MIB];

/* Block bytes that an allocation of n costs (kheap.h: usable bytes plus
 * KHEAP_BLOCK_OVERHEAD, in 16-byte granules, at least 32). */
static size_t block_of(size_t n)
{
	size_t s = (n + KHEAP_BLOCK_OVERHEAD + 15) & ~(size_t)15;
	return s < 32 ? 32 : s;
}

/* The payload of the first block of a heap made at base. */
static uintptr_t first_payload(uintptr_t base) { return base + kheap_control_size() + 16; }

/* A base in the arena whose first payload lies `off` bytes past a multiple
 * of `mod` (a power of two, at most 1 MiB; off a multiple of 16). */
static unsigned char *base_at(size_t mod, size_t off)
{
	uintptr_t lo = (uintptr_t)arena + kheap_control_size() + 16;
	uintptr_t p = ((lo + mod - 1) & ~(uintptr_t)(mod - 1)) + off;
	return (unsigned char *)(p - kheap_control_size() - 16);
}

/* A heap whose only free block is exactly B bytes (B >= 240), caches off. */
static struct kheap *single(unsigned char *base, size_t B, struct kt_rec *rec)
{
	kt_percpu(0);
	return kt_heap(base, kheap_control_size() + B + 16, rec);
}

static struct kheap_stats stats(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st;
}

/* ---- 1. no false NULL ------------------------------------------------------ */

KT_CASE(contract_fresh_heap_whole_block)
{
	struct kt_rec rec;
	struct kheap *h = single(base_at(16, 0), 528, &rec);
	KT_REQUIRE(h != NULL);
	KT_EQ(stats(h).largest_free, 528);
	void *p = kheap_alloc(h, 528 - KHEAP_BLOCK_OVERHEAD); /* 520 by default */
	KT_CHECK(p != NULL);
	KT_CHECK(kheap_alloc(h, 0) == NULL);
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(contract_16mib_top_reachable)
{
	struct kt_rec rec;
	kt_percpu(0);
	struct kheap *h = kt_heap(arena, BIG, &rec);
	KT_REQUIRE(h != NULL);
	struct kheap_stats st = stats(h);
	KT_EQ(st.largest_free, st.total_bytes);
	void *p = kheap_alloc(h, st.total_bytes - KHEAP_BLOCK_OVERHEAD);
	KT_CHECK(p != NULL);
	KT_EQ(stats(h).free_bytes, 0);
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(contract_aligned_exact_fit)
{
	struct kt_rec rec;
	struct kheap *h = single(base_at(32, 0), 240, &rec);
	KT_REQUIRE(h != NULL);
	void *p = kheap_aligned_alloc(h, 32, 240 - KHEAP_BLOCK_OVERHEAD); /* 232 by default */
	KT_CHECK(p != NULL && ((uintptr_t)p & 31) == 0);
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* 2 MiB free in one block: 1 MiB at 1 MiB alignment fits whether the
 * payload is on the boundary or 4 KiB short of it. */
KT_CASE(contract_aligned_1mib_in_2mib)
{
	static const size_t off[] = {0, MIB - 4096};
	for (unsigned i = 0; i < 2; i++) {
		struct kt_rec rec;
		struct kheap *h = single(base_at(MIB, off[i]), 2 * MIB, &rec);
		KT_REQUIRE(h != NULL);
		void *p = kheap_aligned_alloc(h, MIB, MIB - KHEAP_BLOCK_OVERHEAD);
		KT_CHECK(p != NULL && ((uintptr_t)p & (MIB - 1)) == 0);
		kheap_free(h, p);
		KT_EQ(kt_heap_check(h), 0);
	}
}

/* Does an aligned request of block size s fit a free block of B bytes whose
 * payload is at q (kheap.h: the gap before an aligned payload is 0 or a
 * block of at least 32 bytes)? */
static int aligned_fits(uintptr_t q, size_t B, size_t align, size_t s)
{
	uintptr_t p = (q + align - 1) & ~(uintptr_t)(align - 1);
	if (p != q && p - q < 32)
		p += align;
	return p - q + s <= B;
}

/* One request on a heap whose only free block is B bytes at payload q:
 * served exactly when it fits. Returns 1 when it behaved. */
static int one_request(struct kheap *h, uintptr_t q, size_t B, size_t align, size_t n)
{
	size_t s = block_of(n);
	int fits = align <= 16 ? s <= B : aligned_fits(q, B, align, s);
	void *p = align <= 16 ? kheap_alloc(h, n) : kheap_aligned_alloc(h, align, n);
	if ((p != NULL) != fits || (p != NULL && ((uintptr_t)p & (align - 1)) != 0)) {
		kt_out("  B=");
		kt_putu(B);
		kt_out(" align=");
		kt_putu(align);
		kt_out(" n=");
		kt_putu(n);
		kt_out(fits ? " fits but failed\n" : " does not fit but was served\n");
		kheap_free(h, p);
		return 0;
	}
	kheap_free(h, p);
	return 1;
}

/* Block sizes a sweep of B tries: every one up to B when B is small, else
 * the top 64, a spread below, and the bin floors near B. */
static size_t sweep_size(size_t B, unsigned i, unsigned *count)
{
	if (B <= 4096) {
		*count = (unsigned)(B / 16);
		return 16 * ((size_t)i + 1) + 16;
	}
	*count = 64 + 32 + 32;
	if (i < 64)
		return B - 16 * (size_t)i;
	if (i < 96)
		return (B / 32) * (size_t)(i - 63) & ~(size_t)15;
	unsigned top = 63 - (unsigned)__builtin_clzll((unsigned long long)B);
	size_t floor = ((size_t)1 << top) + ((size_t)(i - 96) << (top - 4));
	return floor > 32 ? floor : 32;
}

static void sweep(size_t B, size_t align, size_t off, unsigned *bad)
{
	struct kt_rec rec;
	unsigned char *base = base_at(align > 16 ? align : 16, off % (align > 16 ? align : 16));
	struct kheap *h = single(base, B, &rec);
	if (h == NULL) {
		(*bad)++;
		return;
	}
	uintptr_t q = first_payload((uintptr_t)base);
	unsigned count = 1;
	for (unsigned i = 0; i < count && *bad < 8; i++) {
		size_t s = sweep_size(B, i, &count);
		if (s < 32 || s > B + 16)
			continue;
		/* the largest n of block size s, and the smallest */
		if (!one_request(h, q, B, align, s - KHEAP_BLOCK_OVERHEAD) ||
		    (s > 32 && !one_request(h, q, B, align, s - 15 - KHEAP_BLOCK_OVERHEAD)))
			(*bad)++;
	}
	if (rec.count != 0 || kheap_check(h) != 0 || stats(h).free_blocks != 1)
		(*bad)++;
}

/* Sizes of B beyond the exhaustive range: around powers of two and bin
 * edges, up to 16 MiB. */
static const size_t big_B[] = {
	4112, 4336, 5120, 8192, 8176, 9200, 16384, 16368, 30720, 65536, 65520, 100000 & ~15u,
	(1u << 17) + 4096, 1u << 20, (1u << 20) - 16, 3u << 19, (4u << 20) - 64, BIG - 1024,
};

KT_CASE(contract_single_block_plain)
{
	unsigned bad = 0;
	for (size_t B = 240; B <= 4096 && bad == 0; B += 16)
		sweep(B, 1, 0, &bad);
	for (unsigned i = 0; i < sizeof big_B / sizeof big_B[0] && bad == 0; i++)
		sweep(big_B[i], 1, 0, &bad);
	KT_EQ(bad, 0);
}

KT_CASE(contract_single_block_aligned)
{
	static const size_t aligns[] = {32, 64, 128, 512, 4096};
	unsigned bad = 0;
	for (size_t B = 240; B <= 2048 && bad == 0; B += 48)
		for (unsigned a = 0; a < 5; a++)
			sweep(B, aligns[a], B * 7 & ~(size_t)15, &bad);
	for (unsigned i = 0; i < sizeof big_B / sizeof big_B[0] && bad == 0; i++)
		for (size_t a = 32; a <= MIB; a <<= 3)
			sweep(big_B[i], a, big_B[i] * 3 & ~(size_t)15, &bad);
	KT_EQ(bad, 0);
}

/* Fill the heap to the last byte; returns how many blocks that took. */
static unsigned fill(struct kheap *h, void **held, unsigned max)
{
	unsigned k = 0;
	while (k < max) {
		struct kheap_stats st = stats(h);
		if (st.free_blocks == 0 && st.cached_blocks == 0)
			break;
		size_t n = st.largest_free > KHEAP_BLOCK_OVERHEAD ? st.largest_free - KHEAP_BLOCK_OVERHEAD : 0;
		void *p = kheap_alloc(h, n);
		if (p == NULL)
			p = kheap_alloc(h, 0);
		if (p == NULL)
			break;
		held[k++] = p;
	}
	return k;
}

/* A block freed when nothing else is free goes out again to a request of
 * the same size and alignment. */
KT_CASE(contract_refree_same_size)
{
	static const size_t size[] = {24, 100, 1100, 1500, 3000, 4095, 10000, 100000};
	static const size_t align[] = {1, 1, 1, 64, 1, 256, 4096, 1};
	static void *held[4096];
	for (unsigned i = 0; i < 8; i++) {
		struct kt_rec rec;
		kt_percpu(0);
		struct kheap *h = kt_heap(arena, 256u << 10, &rec);
		KT_REQUIRE(h != NULL);
		void *p = align[i] > 1 ? kheap_aligned_alloc(h, align[i], size[i]) : kheap_alloc(h, size[i]);
		KT_REQUIRE(p != NULL);
		unsigned k = fill(h, held, 4096);
		KT_CHECK(stats(h).free_bytes == 0 && stats(h).cached_bytes == 0);
		kheap_free(h, p);
		p = align[i] > 1 ? kheap_aligned_alloc(h, align[i], size[i]) : kheap_alloc(h, size[i]);
		if (!KT_CHECK(p != NULL))
			kt_putu(size[i]), kt_out(" bytes not served again\n");
		kheap_free(h, p);
		while (k > 0)
			kheap_free(h, held[--k]);
		KT_EQ(kt_heap_check(h), 0);
		KT_EQ(rec.count, 0);
	}
}

/* ---- 2. realloc grows into a cached neighbour -------------------------------- */

/* A 16 MiB heap, full but for right, freed into a size-class cache (the
 * shared one, or with percpu this CPU's): realloc of left to grow by 100
 * bytes stays in place and counts no OOM. With gap, a freed block too big
 * for a cache sits between them, so the growth needs both. */
static void grow_into_cached(int percpu, int gap)
{
	static void *held[4096];
	struct kt_rec rec;
	kt_percpu(0);
	struct kheap *h = kt_heap(arena, BIG, &rec);
	KT_REQUIRE(h != NULL);
	void *left = kt_alloc_alone(h, 1000);
	void *mid = gap ? kt_alloc_alone(h, 70000) : NULL;
	void *right = kt_alloc_alone(h, 208 - KHEAP_BLOCK_OVERHEAD);
	KT_REQUIRE(left != NULL && right != NULL && (!gap || mid != NULL));
	unsigned k = fill(h, held, 4096);
	KT_REQUIRE(stats(h).free_bytes == 0);
	if (percpu) {
		kt_percpu(1);
		KT_CHECK(kheap_alloc(h, BIG) == NULL); /* a locked call on a CPU: the per-CPU path is on */
	}
	kheap_free(h, mid);
	kheap_free(h, right);
	struct kheap_stats st = stats(h);
	KT_EQ(st.cached_blocks, 1);
	size_t grow = kheap_usable_size(h, left) + (gap ? 70000 : 0) + 100;
	void *p = kheap_realloc(h, left, grow);
	KT_CHECK(p == left);
	KT_EQ(stats(h).oom_count, st.oom_count);
	KT_CHECK(kheap_usable_size(h, left) >= grow);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, p);
	while (k > 0)
		kheap_free(h, held[--k]);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(contract_realloc_into_shared_cache) { grow_into_cached(0, 0); }
KT_CASE(contract_realloc_into_percpu_cache) { grow_into_cached(1, 0); }
KT_CASE(contract_realloc_into_free_then_cached) { grow_into_cached(0, 1); }
KT_CASE(contract_realloc_into_free_then_percpu) { grow_into_cached(1, 1); }

/* ---- 3. kheap_check sees poison and canaries ---------------------------------- */

#if KHEAP_HARDEN >= 1
struct seen {
	unsigned n;
	const void *addr;
};

static void note(void *ctx, const void *addr, const char *what)
{
	struct seen *s = ctx;
	(void)what;
	s->n++;
	s->addr = addr;
}

/* kheap_check names the damaged block (its header address), and at level 3
 * the periodic check reports it within KHEAP_CHECK_EVERY operations that
 * do not touch it. */
static void damage_found(struct kheap *h, struct kt_rec *rec, void *blockp, void *other)
{
	struct seen s = {0, NULL};
	KT_CHECK(kheap_check_verbose(h, note, &s) >= 1);
	KT_CHECK(s.addr == (unsigned char *)blockp - 8);
	if (KHEAP_HARDEN >= 3) {
		rec->count = 0;
		unsigned ops = 0;
		while (ops < KHEAP_CHECK_EVERY && rec->count == 0) {
			kheap_usable_size(h, other);
			ops++;
		}
		KT_CHECK(rec->count == 1 && rec->last.kind == KHEAP_E_CORRUPT);
		rec->count = 0;
	}
}

KT_CASE(contract_check_sees_canary)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, MIB, &rec);
	unsigned char *p = kheap_alloc(h, 100), *other = kheap_alloc(h, 100);
	KT_REQUIRE(p != NULL && other != NULL);
	KT_EQ(kt_heap_check(h), 0);
	p[kheap_usable_size(h, p)] ^= 1; /* case (a) */
	damage_found(h, &rec, p, other);
}

KT_CASE(contract_check_sees_binned_poison)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, MIB, &rec);
	unsigned char *p = kheap_alloc(h, 3000), *other = kheap_alloc(h, 100);
	KT_REQUIRE(p != NULL && other != NULL);
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
	p[100] ^= 1; /* case (b): a block in a bin that nobody takes again */
	damage_found(h, &rec, p, other);
}

KT_CASE(contract_check_sees_cached_poison)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, MIB, &rec);
	unsigned char *p = kheap_alloc(h, 100), *other = kheap_alloc(h, 100);
	KT_REQUIRE(p != NULL && other != NULL);
	kheap_free(h, p);
	KT_CHECK(stats(h).cached_blocks >= 1);
	KT_EQ(kt_heap_check(h), 0);
	p[40] ^= 1; /* case (c): a block in a size-class cache */
	damage_found(h, &rec, p, other);
}
#endif

/* ---- 4. a repair resyncs past a damaged header -------------------------------- */

struct named {
	unsigned n, other;
	const void *want;
};

static void name_only(void *ctx, const void *addr, const char *what)
{
	struct named *s = ctx;
	s->n++;
	if (addr != s->want) {
		s->other++;
		kt_out("  check also names ");
		kt_putx((uintptr_t)addr);
		kt_out(": ");
		kt_out(what);
		kt_out("\n");
	}
}

/* The header of the block after held block p: one stray byte written at
 * the first address past p's block (at level 0, p[usable_size]). */
static unsigned char *next_header(struct kheap *h, unsigned char *p)
{
	return p + kheap_usable_size(h, p) + (KHEAP_BLOCK_OVERHEAD - 8);
}

/* Bit 3 of a header is always 0: this byte can never seal. */
#define STRAY 0x2a

KT_CASE(contract_repair_past_damaged_free_header)
{
	struct kt_rec rec;
	kt_percpu(0);
	struct kheap *h = kt_heap(arena, 4 * MIB, &rec);
	unsigned char *p = kt_alloc_alone(h, 100);
	KT_REQUIRE(p != NULL);
	unsigned char *hdr = next_header(h, p); /* the large free remainder */
	*hdr = STRAY;
	kheap_alloc(h, 200); /* meets the damage: reported, repaired */
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	void *q = kheap_alloc(h, 5000);
	KT_CHECK(q != NULL);
	struct named s = {0, 0, hdr};
	KT_EQ(kheap_check_verbose(h, name_only, &s), 1);
	KT_EQ(s.other, 0);
	KT_EQ(rec.count, 0);
}

/* A held block's header is damaged; a later repair (here set off by a
 * forged free-list link elsewhere) must not give up at it: the free blocks
 * after it are served again, and only the damaged block is named. */
KT_CASE(contract_repair_past_damaged_held_header)
{
	struct kt_rec rec;
	kt_percpu(0);
	struct kheap *h = kt_heap(arena, 4 * MIB, &rec);
	unsigned char *a = kt_alloc_alone(h, 100), *victim = kt_alloc_alone(h, 300);
	unsigned char *b = kt_alloc_alone(h, 100), *f = kt_alloc_alone(h, 3000), *w = kt_alloc_alone(h, 100);
	KT_REQUIRE(a && victim && b && f && w);
	kheap_free(h, f); /* in a bin */
	unsigned char *hdr = next_header(h, a);
	KT_CHECK(hdr == victim - 8);
	*hdr = STRAY;
	((uintptr_t *)f)[1] ^= 0x100; /* forge f's prev link */
	kheap_alloc(h, 2900); /* meets the forged link: reported, repaired */
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	void *q = kheap_alloc(h, 5000), *r = kheap_alloc(h, 2900);
	KT_CHECK(q != NULL && r != NULL);
	struct named s = {0, 0, hdr};
	KT_EQ(kheap_check_verbose(h, name_only, &s), 1);
	KT_EQ(s.other, 0);
	kheap_free(h, victim); /* its owner frees it: refused, heap intact */
	KT_CHECK(rec.count == 1 && rec.last.kind == KHEAP_E_BAD_HEADER);
	rec.count = 0;
	KT_EQ(kheap_check_verbose(h, name_only, &s), 1);
}

/* ---- 5. a refused request does not panic ---------------------------------- */

/* The default report hook: a refused request returns NULL or an error and
 * is counted, without kheap_panic (which fails the case unless expected). */
KT_CASE(contract_refused_request_no_panic)
{
	struct kheap *h = kheap_init(arena, MIB);
	KT_REQUIRE(h != NULL);
	KT_CHECK(kheap_calloc(h, SIZE_MAX / 2, 3) == NULL);
	KT_CHECK(kheap_aligned_alloc(h, 48, 100) == NULL);
	KT_CHECK(kheap_aligned_alloc(h, 64, SIZE_MAX - 8) == NULL);
	KT_EQ(kheap_add_region(h, arena + MIB + 8, 4096), -KHEAP_E_REGION);
	KT_EQ(kheap_add_region(h, arena + MIB, 64), -KHEAP_E_REGION_SMALL);
	kheap_cpu_dead(h, KHEAP_MAX_CPUS);
	struct kheap_stats st = stats(h);
	KT_EQ(st.error_count, 6);
	KT_EQ(st.oom_count, 0);
	KT_EQ(kt_heap_check(h), 0);
	/* pointer misuse still panics by default */
	void *p = kheap_alloc(h, 10);
	kheap_free(h, p);
	kt_panic_expected = 1;
	unsigned before = kt_panics;
	kheap_free(h, p);
	KT_EQ(kt_panics, before + 1);
	kt_panic_expected = 0;
}

/* Every report carries the severity kheap.h gives its kind. */
KT_CASE(contract_report_severity)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, MIB, &rec);
	KT_REQUIRE(h != NULL);
	KT_CHECK(kheap_calloc(h, SIZE_MAX / 2, 3) == NULL);
	KT_CHECK(rec.last.kind == KHEAP_E_OVERFLOW && rec.last.severity == KHEAP_SEV_REFUSED);
	KT_CHECK(kheap_aligned_alloc(h, 48, 1) == NULL);
	KT_CHECK(rec.last.kind == KHEAP_E_BAD_ALIGN && rec.last.severity == KHEAP_SEV_REFUSED);
	KT_CHECK(kheap_add_region(h, arena + MIB, 64) == -KHEAP_E_REGION_SMALL);
	KT_CHECK(rec.last.severity == KHEAP_SEV_REFUSED);
	kheap_cpu_dead(h, KHEAP_MAX_CPUS + 3);
	KT_CHECK(rec.last.kind == KHEAP_E_BAD_ARG && rec.last.severity == KHEAP_SEV_REFUSED);
	unsigned char *p = kheap_alloc(h, 3000);
	kheap_free(h, p + 16);
	KT_CHECK(rec.last.kind == KHEAP_E_BAD_HEADER && rec.last.severity == KHEAP_SEV_CORRUPT);
	kheap_free(h, p + 1);
	KT_CHECK(rec.last.kind == KHEAP_E_MISALIGNED && rec.last.severity == KHEAP_SEV_MISUSE);
	kheap_free(h, p);
	kheap_free(h, p);
	KT_CHECK(rec.last.kind == KHEAP_E_DOUBLE_FREE && rec.last.severity == KHEAP_SEV_MISUSE);
	KT_EQ(rec.count, 7);
	KT_EQ(stats(h).error_count, 7);
	KT_EQ(kt_heap_check(h), 0);
}
