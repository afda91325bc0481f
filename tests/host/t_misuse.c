/*
 * t_misuse.c: the misuse catalogue. Each case commits one misuse and checks
 * that it is reported with the right kind, that the operation is refused
 * (counters unchanged, memory untouched), that kheap_check still returns 0,
 * and that the heap keeps serving afterwards.
 */
#include "kt.h"

#define ARENA (256u << 10)
static _Alignas(16) unsigned char arena[ARENA];
static _Alignas(16) unsigned char elsewhere[4096];

struct fixture {
	struct kt_rec rec;
	struct kheap *h;
	struct kheap_stats before;
};

static void setup(struct fixture *f)
{
	f->h = kt_heap(arena, ARENA, &f->rec);
}

static void snapshot(struct fixture *f) { kheap_get_stats(f->h, &f->before); }

/* The refused operation left every counter but error_count alone, the heap
 * validates, and it still allocates, fills and frees. */
static void still_serving(struct fixture *f)
{
	struct kheap_stats st;
	kheap_get_stats(f->h, &st);
	KT_EQ(st.in_use_bytes, f->before.in_use_bytes);
	KT_EQ(st.free_bytes + st.cached_bytes, f->before.free_bytes + f->before.cached_bytes);
	KT_EQ(st.free_count, f->before.free_count);
	KT_EQ(st.error_count, f->before.error_count + 1);
	KT_EQ(kt_heap_check(f->h), 0);
	void *p[8];
	for (unsigned i = 0; i < 8; i++) {
		p[i] = kheap_alloc(f->h, 40 + i * 300);
		KT_REQUIRE(p[i] != NULL);
		kt_fill(p[i], 40 + i * 300, i);
	}
	for (unsigned i = 0; i < 8; i++) {
		KT_CHECK(kt_verify(p[i], 40 + i * 300, i));
		kheap_free(f->h, p[i]);
	}
	KT_EQ(kt_heap_check(f->h), 0);
	KT_EQ(f->rec.count, 0);
}

KT_CASE(misuse_double_free_small_cached)
{
	struct fixture f;
	setup(&f);
	void *p = kheap_alloc(f.h, 40);
	kheap_free(f.h, p); /* goes to a size-class cache */
	snapshot(&f);
	kheap_free(f.h, p);
	KT_REPORTED(&f.rec, KHEAP_E_DOUBLE_FREE);
	KT_CHECK(f.rec.last.ptr == p);
	still_serving(&f);
}

KT_CASE(misuse_double_free_large_binned)
{
	struct fixture f;
	setup(&f);
	void *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a); /* a free block with a used neighbour: no merge */
	snapshot(&f);
	kheap_free(f.h, a);
	KT_REPORTED(&f.rec, KHEAP_E_DOUBLE_FREE);
	still_serving(&f);
	kheap_free(f.h, b);
}

KT_CASE(misuse_double_free_after_coalescing)
{
	struct fixture f;
	setup(&f);
	void *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000), *c = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a);
	kheap_free(f.h, b); /* b's header is absorbed into a's block */
	snapshot(&f);
	kheap_free(f.h, b);
	KT_REPORTED(&f.rec, KHEAP_E_DOUBLE_FREE);
	still_serving(&f);
	kheap_free(f.h, c);
}

KT_CASE(misuse_double_free_after_reuse)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000), *c = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a);
	kheap_free(f.h, b);
	char *big = kheap_alloc(f.h, 5000); /* reuses a and b's space */
	KT_CHECK(big == a);
	kt_fill(big, 5000, 9);
	snapshot(&f);
	kheap_free(f.h, b); /* b now points into big's payload */
	KT_CHECK(f.rec.count == 1 && (f.rec.last.kind == KHEAP_E_BAD_HEADER ||
				      f.rec.last.kind == KHEAP_E_DOUBLE_FREE));
	f.rec.count = 0;
	KT_CHECK(kt_verify(big, 5000, 9));
	still_serving(&f);
	kheap_free(f.h, big);
	kheap_free(f.h, c);
}

KT_CASE(misuse_interior_pointer)
{
	struct fixture f;
	setup(&f);
	char *p = kheap_alloc(f.h, 1000);
	kt_fill(p, 1000, 3);
	snapshot(&f);
	for (unsigned off = 16; off < 1000; off += 16 * 7) {
		kheap_free(f.h, p + off);
		KT_REPORTED(&f.rec, KHEAP_E_BAD_HEADER);
		f.before.error_count++;
	}
	KT_CHECK(kt_verify(p, 1000, 3));
	kheap_free(f.h, p + 16);
	KT_REPORTED(&f.rec, KHEAP_E_BAD_HEADER);
	still_serving(&f);
	kheap_free(f.h, p);
}

KT_CASE(misuse_foreign_pointer)
{
	struct fixture f;
	setup(&f);
	snapshot(&f);
	kheap_free(f.h, elsewhere + 16);
	KT_REPORTED(&f.rec, KHEAP_E_FOREIGN);
	still_serving(&f);
	snapshot(&f);
	kheap_free(f.h, arena + 16); /* inside the control block, not a block */
	KT_REPORTED(&f.rec, KHEAP_E_FOREIGN);
	still_serving(&f);
}

KT_CASE(misuse_misaligned_pointer)
{
	struct fixture f;
	setup(&f);
	char *p = kheap_alloc(f.h, 100);
	snapshot(&f);
	kheap_free(f.h, p + 1);
	KT_REPORTED(&f.rec, KHEAP_E_MISALIGNED);
	still_serving(&f);
	snapshot(&f);
	kheap_free(f.h, p + 8);
	KT_REPORTED(&f.rec, KHEAP_E_MISALIGNED);
	still_serving(&f);
	kheap_free(f.h, p);
}

KT_CASE(misuse_overwritten_header)
{
	struct fixture f;
	setup(&f);
	char *p = kheap_alloc(f.h, 500), *q = kheap_alloc(f.h, 500);
	uint64_t *hdr = (uint64_t *)(void *)(p - 8), saved = *hdr;
	*hdr ^= (uint64_t)1 << 60; /* a one-bit flip in the header */
	snapshot(&f);
	kheap_free(f.h, p);
	KT_REPORTED(&f.rec, KHEAP_E_BAD_HEADER);
	/* The validator pins exactly that block and nothing else... */
	KT_EQ(kt_heap_check(f.h), 1);
	/* ...the rest of the heap keeps serving meanwhile... */
	void *r = kheap_alloc(f.h, 2000);
	KT_CHECK(r != NULL);
	kheap_free(f.h, r);
	kheap_free(f.h, q);
	KT_EQ(f.rec.count, 0);
	/* ...and once the caller's damage is undone, all is consistent. */
	*hdr = saved;
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, p);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}

KT_CASE(misuse_size_field_overwritten)
{
	struct fixture f;
	setup(&f);
	char *p = kheap_alloc(f.h, 500);
	uint64_t *hdr = (uint64_t *)(void *)(p - 8), saved = *hdr;
	*hdr += 4096; /* a plausible bigger size, cookie not updated */
	snapshot(&f);
	kheap_free(f.h, p);
	KT_REPORTED(&f.rec, KHEAP_E_BAD_HEADER);
	*hdr = saved;
	still_serving(&f);
	kheap_free(f.h, p);
}

KT_CASE(misuse_overwritten_boundary_tag)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000), *c = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a); /* a is free: its footer sits just before b's header */
	uint64_t *tag = (uint64_t *)(void *)(b - 16), saved = *tag;
	*tag = 0x4141414141414141u; /* a stray write from a's old owner */
	snapshot(&f);
	kheap_free(f.h, b);
	KT_REPORTED(&f.rec, KHEAP_E_NEIGHBOUR);
	*tag = saved;
	still_serving(&f);
	kheap_free(f.h, b);
	kheap_free(f.h, c);
}

/* One byte past the usable size of a block of n bytes: with a canary
 * (KHEAP_HARDEN >= 1) it lands in the canary; without, in the next block's
 * header. Both are caught, and the block stays held. With KHEAP_TAGS and no
 * canary the 16 bytes past the usable size are the tag, which nothing
 * checks (kheap.h; t_tags.c pins that down), so the byte goes just past the
 * tag, where a check starts. */
static void one_byte_overflow(size_t n)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, n), *b = kheap_alloc(f.h, n);
	char *over = a + kheap_usable_size(f.h, a) + (KHEAP_HARDEN == 0 && KHEAP_TAGS ? 16 : 0);
	uint64_t saved = *(uint64_t *)(void *)over;
	over[0] ^= 0x55;
	snapshot(&f);
	kheap_free(f.h, a);
	KT_REPORTED(&f.rec, KHEAP_HARDEN >= 1 ? KHEAP_E_CANARY : KHEAP_E_NEIGHBOUR);
	*(uint64_t *)(void *)over = saved;
	still_serving(&f);
	kheap_free(f.h, a);
	kheap_free(f.h, b);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}

KT_CASE(misuse_one_byte_overflow) { one_byte_overflow(3000); }

KT_CASE(misuse_next_header_overwritten)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000);
	char *hdr = b - 8; /* b's header: right after a's block */
	uint64_t saved = *(uint64_t *)(void *)hdr;
	hdr[3] ^= 0x10;
	snapshot(&f);
	kheap_free(f.h, a);
	KT_REPORTED(&f.rec, KHEAP_E_NEIGHBOUR);
	*(uint64_t *)(void *)hdr = saved;
	still_serving(&f);
	kheap_free(f.h, a);
	kheap_free(f.h, b);
}

#if KHEAP_HARDEN >= 1
static struct kheap_stats stats_of(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st;
}

/* A write through a dangling pointer into a freed block is found when the
 * block is handed out again; the heap stays consistent. */
KT_CASE(misuse_write_after_free_small)
{
	struct fixture f;
	setup(&f);
	char *p = kheap_alloc(f.h, 200);
	kheap_free(f.h, p); /* cached and poisoned */
	p[40] = 1;          /* dangling write */
	snapshot(&f);
	char *q = kheap_alloc(f.h, 200);
	KT_CHECK(q == p);
	KT_REPORTED(&f.rec, KHEAP_E_USE_AFTER_FREE);
	KT_EQ(stats_of(f.h).error_count, f.before.error_count + 1); /* counted on every path */
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, q);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}

/* The same for a small block, into its canary: the free is refused and
 * reported on every path (at level 1 the fused routine's, which takes the
 * block back off the list it has just pushed it on). Level 0 checks a
 * small block's neighbours only where it merges. */
KT_CASE(misuse_one_byte_overflow_small) { one_byte_overflow(200); }

KT_CASE(misuse_write_after_free_large)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a); /* binned and poisoned */
	a[100] = 7;
	char *c = kheap_alloc(f.h, 2000); /* good fit: a's block is the smallest that fits */
	KT_CHECK(c == a);
	KT_REPORTED(&f.rec, KHEAP_E_USE_AFTER_FREE);
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, c);
	kheap_free(f.h, b);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}
#endif

KT_CASE(misuse_forged_class_link)
{
	struct fixture f;
	setup(&f);
	void *p[4];
	for (unsigned i = 0; i < 4; i++)
		p[i] = kheap_alloc(f.h, 64);
	kheap_trim(f.h); /* the rest of their carved batch, if any, to the bins */
	for (unsigned i = 0; i < 4; i++)
		kheap_free(f.h, p[i]); /* all four cached, p[3] on top */
	*(uintptr_t *)p[3] = (uintptr_t)(elsewhere + 16); /* write after free */
	struct kheap_stats st;
	kheap_get_stats(f.h, &st);
	KT_EQ(st.cached_blocks, 4);
	void *q = kheap_alloc(f.h, 64); /* pops p[3]; its link is garbage */
	KT_REPORTED(&f.rec, KHEAP_E_FREELIST);
	KT_EQ(kt_heap_check(f.h), 0); /* lists rebuilt from the headers */
	void *r = kheap_alloc(f.h, 64);
	KT_CHECK(r != NULL && r != q);
	kheap_free(f.h, q);
	kheap_free(f.h, r);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}

KT_CASE(misuse_forged_bin_link)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000), *c = kheap_alloc(f.h, 3000),
	     *d = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a);
	kheap_free(f.h, c); /* a and c share a bin */
	*(uintptr_t *)(void *)a = (uintptr_t)(elsewhere + 8); /* forged next link */
	kheap_free(f.h, b); /* merges with a and c: must unlink them */
	KT_CHECK(f.rec.count == 1 && f.rec.last.kind == KHEAP_E_FREELIST);
	f.rec.count = 0;
	KT_EQ(kt_heap_check(f.h), 0);
	void *p = kheap_alloc(f.h, 9000);
	KT_CHECK(p != NULL);
	kheap_free(f.h, p);
	kheap_free(f.h, d);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}

KT_CASE(misuse_realloc_and_usable_size_of_freed_block)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a);
	snapshot(&f);
	KT_CHECK(kheap_realloc(f.h, a, 100) == NULL);
	KT_REPORTED(&f.rec, KHEAP_E_DOUBLE_FREE);
	still_serving(&f);
	snapshot(&f);
	KT_EQ(kheap_usable_size(f.h, a), 0);
	KT_REPORTED(&f.rec, KHEAP_E_DOUBLE_FREE);
	still_serving(&f);
	kheap_free(f.h, b);
}

KT_CASE(misuse_calloc_overflow)
{
	struct fixture f;
	setup(&f);
	snapshot(&f);
	KT_CHECK(kheap_calloc(f.h, (SIZE_MAX >> 4) + 2, 16) == NULL);
	KT_REPORTED(&f.rec, KHEAP_E_OVERFLOW);
	still_serving(&f);
}

KT_CASE(misuse_alloc_size_max_and_near)
{
	struct fixture f;
	setup(&f);
	for (size_t d = 0; d < 64; d++) {
		KT_CHECK(kheap_alloc(f.h, SIZE_MAX - d) == NULL);
		KT_CHECK(kheap_aligned_alloc(f.h, 32, SIZE_MAX - d - 32) == NULL);
	}
	struct kheap_stats st;
	kheap_get_stats(f.h, &st);
	KT_EQ(st.oom_count, 128);
	KT_EQ(st.error_count, 0); /* an impossible size is OOM, not misuse */
	KT_EQ(kt_heap_check(f.h), 0);
	snapshot(&f);
	f.before.error_count--; /* still_serving expects one report */
	still_serving(&f);
}

KT_CASE(misuse_aligned_alloc_bad_alignment)
{
	struct fixture f;
	setup(&f);
	static const size_t bad[] = {0, 3, 24, 48, 100, 4097, SIZE_MAX};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snapshot(&f);
		KT_CHECK(kheap_aligned_alloc(f.h, bad[i], 64) == NULL);
		KT_REPORTED(&f.rec, KHEAP_E_BAD_ALIGN);
		still_serving(&f);
	}
}

KT_CASE(misuse_regions_too_small_overlapping_misaligned_wrapping)
{
	struct fixture f;
	setup(&f);
	static _Alignas(16) unsigned char bank[8192];
	struct {
		void *base;
		size_t size;
		enum kheap_error kind;
	} bad[] = {
		{bank, 64, KHEAP_E_REGION_SMALL},
		{bank, 0, KHEAP_E_REGION_SMALL},
		{arena + 1024, 4096, KHEAP_E_REGION},         /* overlaps the heap */
		{(void *)((uintptr_t)arena - 4096), 8192, KHEAP_E_REGION}, /* overlaps its start */
		{bank + 4, 4096, KHEAP_E_REGION},             /* misaligned */
		{(void *)(UINTPTR_MAX - 4095), 8192, KHEAP_E_REGION}, /* wraps */
		{NULL, 4096, KHEAP_E_REGION},
	};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snapshot(&f);
		KT_EQ(kheap_add_region(f.h, bad[i].base, bad[i].size), -(int)bad[i].kind);
		KT_REPORTED(&f.rec, bad[i].kind);
		still_serving(&f);
	}
	KT_EQ(kheap_add_region(f.h, bank, sizeof bank), 0);
	snapshot(&f);
	KT_EQ(kheap_add_region(f.h, bank + 4096, 4096), -KHEAP_E_REGION); /* overlaps the new bank */
	KT_REPORTED(&f.rec, KHEAP_E_REGION);
	still_serving(&f);
}

KT_CASE(misuse_null_stats_out)
{
	struct fixture f;
	setup(&f);
	kt_panic_expected = 1;
	unsigned before = kt_panics;
	kheap_get_stats(f.h, NULL);
	KT_EQ(kt_panics, before + 1);
	kt_panic_expected = 0;
	KT_EQ(kt_heap_check(f.h), 0);
}

/* A small block may go to a size-class list (shared or per-CPU) without
 * its neighbours being read; they are read before it merges into the bins.
 * So a right neighbour overwritten while the block is cached is reported
 * once, by the free or by the flush, and the block is never merged with the
 * damage. */
KT_CASE(misuse_cached_block_neighbour_checked_at_merge)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 64), *b = kheap_alloc(f.h, 64);
	uint64_t *hdr = (uint64_t *)(void *)(b - 8), saved = *hdr;
	*hdr ^= 0x100;
	kheap_free(f.h, a);
	kheap_trim(f.h); /* every cache back to the bins: a must not merge */
	KT_REPORTED(&f.rec, KHEAP_E_NEIGHBOUR);
	*hdr = saved;
	f.rec.count = 0;
	struct kheap_stats st;
	kheap_get_stats(f.h, &st);
	KT_EQ(st.cached_blocks, 0);
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, b);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}

#if KHEAP_HARDEN >= 2
/* A free block's boundary tag overwritten while it sits in a bin: level 2
 * checks the neighbours of every block it hands out. */
KT_CASE(misuse_free_footer_overwritten_found_at_handout)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000);
	kheap_free(f.h, a);
	*(uint64_t *)(void *)(b - 16) ^= 0x40; /* a's footer */
	char *c = kheap_alloc(f.h, 2000); /* refused (NULL) or served elsewhere */
	KT_REPORTED(&f.rec, KHEAP_E_FREELIST);
	KT_EQ(kt_heap_check(f.h), 0); /* rebuilt from the headers */
	kheap_free(f.h, c);
	c = kheap_alloc(f.h, 2000);
	KT_CHECK(c != NULL);
	kheap_free(f.h, c);
	kheap_free(f.h, b);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}


/* A cached block whose right neighbour's header was overwritten: level 2
 * refuses to hand it out, leaves it cached, and the backend serves. */
KT_CASE(misuse_cached_block_neighbour_overwritten)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 64), *b = kheap_alloc(f.h, 64), *c = kheap_alloc(f.h, 64);
	kheap_free(f.h, c);
	kheap_free(f.h, a); /* cached, on top; b is its right neighbour */
	uint64_t *hdr = (uint64_t *)(void *)(b - 8), saved = *hdr;
	*hdr ^= 0x100;
	char *d = kheap_alloc(f.h, 64);
	KT_REPORTED(&f.rec, KHEAP_E_NEIGHBOUR);
	KT_CHECK(d != NULL && d != a);
	*hdr = saved;
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, d);
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, b);
	KT_EQ(kt_heap_check(f.h), 0);
	KT_EQ(f.rec.count, 0);
}
#endif

#if KHEAP_HARDEN >= 3
/* Damage no operation touches is found by the periodic full check. */
KT_CASE(misuse_periodic_check_finds_silent_damage)
{
	struct fixture f;
	setup(&f);
	char *a = kheap_alloc(f.h, 3000), *b = kheap_alloc(f.h, 3000);
	kheap_free(f.h, kheap_alloc(f.h, 64)); /* warm the class cache: the loop below never reaches the bins */
	kheap_free(f.h, a);
	uint64_t *tag = (uint64_t *)(void *)(b - 16), saved = *tag;
	*tag ^= 0x40;
	for (unsigned i = 0; i < KHEAP_CHECK_EVERY; i++)
		kheap_free(f.h, kheap_alloc(f.h, 64));
	KT_CHECK(f.rec.count >= 1);
	KT_EQ(f.rec.last.kind, KHEAP_E_CORRUPT);
	f.rec.count = 0;
	*tag = saved;
	KT_EQ(kt_heap_check(f.h), 0);
	kheap_free(f.h, b);
	KT_EQ(f.rec.count, 0);
}
#endif

