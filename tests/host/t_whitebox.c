/*
 * t_whitebox.c: the bin mapping, size classes, coalescing and the always-on
 * validator, checked against the layout in kh_internal.h. The test build
 * defines KH_PRIVATE empty, which makes file-local helpers reachable.
 */
#include "kh_internal.h"
#include "kh_objcache.h"
#include "kt.h"

static _Alignas(16) unsigned char arena[1u << 20];

KT_CASE(wb_mapping_brackets_every_size)
{
	/* Every block size lies in [floor(bin), floor(next bin)). */
	uint64_t seed = 1;
	for (unsigned i = 0; i < 200000; i++) {
		size_t s = i < 100000 ? KH_MIN_BLOCK + 16 * (size_t)i
				      : (KH_MIN_BLOCK + (kt_rand(&seed) % (KH_MAX_BLOCK - KH_MIN_BLOCK))) & ~(size_t)15;
		unsigned fl, sl;
		kh_mapping(s, &fl, &sl);
		KT_REQUIRE(fl < KH_FL_COUNT && sl < KH_SL_COUNT);
		KT_REQUIRE(kh_bin_floor(fl, sl) <= s);
		unsigned nfl = sl + 1 == KH_SL_COUNT ? fl + 1 : fl, nsl = sl + 1 == KH_SL_COUNT ? 0 : sl + 1;
		if (nfl < KH_FL_COUNT && !(fl == 0 && nfl == 1))
			KT_REQUIRE(s < kh_bin_floor(nfl, nsl));
	}
	KT_EQ(kh_bin_floor(1, 0), (size_t)1 << KH_FL_SHIFT);
	unsigned fl, sl;
	kh_mapping(KH_MAX_BLOCK, &fl, &sl);
	KT_EQ(fl, KH_FL_COUNT - 1);
}

KT_CASE(wb_size_class_is_smallest_fit)
{
	for (size_t n = 0; n <= KH_CLASS_MAX_PAYLOAD + 64; n++) {
		unsigned c = kh_size_class(n);
		if (n > KH_CLASS_MAX_PAYLOAD) {
			KT_REQUIRE(c == KH_NCLASSES);
			continue;
		}
		KT_REQUIRE(c < KH_NCLASSES);
		KT_REQUIRE(kh_class_block_size(c) >= kh_block_for(n));
		if (c > 0)
			KT_REQUIRE(kh_class_block_size(c - 1) < kh_block_for(n));
	}
	KT_EQ(kh_size_class(SIZE_MAX), KH_NCLASSES);
	KT_EQ(kh_class_block_size(0), 32);
	KT_EQ(kh_class_block_size(14), 256);
	KT_EQ(kh_class_block_size(KH_NCLASSES - 1), KH_CLASS_MAX_BLOCK);
	for (unsigned c = 1; c < KH_NCLASSES; c++)
		KT_CHECK(kh_class_block_size(c) > kh_class_block_size(c - 1));
}

KT_CASE(wb_header_seal_detects_every_bit_flip)
{
	struct kheap *h = kheap_init(arena, sizeof arena);
	char *p = kheap_alloc(h, 3000);
	uintptr_t b = kh_block_of(p);
	kh_word w = *kh_hdr(b);
	KT_CHECK(kh_sealed(h, b, w));
	for (unsigned bit = 0; bit < 64; bit++)
		KT_CHECK(!kh_sealed(h, b, w ^ ((kh_word)1 << bit)));
	KT_CHECK(!kh_sealed(h, b + 16, w)); /* the cookie binds the address */
}

KT_CASE(wb_immediate_coalescing_both_sides)
{
	struct kheap *h = kheap_init(arena, sizeof arena);
	char *p[5];
	for (unsigned i = 0; i < 5; i++)
		p[i] = kheap_alloc(h, 70000 - KH_TAIL); /* 70016-byte blocks: above every class */
	uintptr_t b[5];
	for (unsigned i = 0; i < 5; i++)
		b[i] = kh_block_of(p[i]);
	KT_EQ(kh_size(b[1]), 70016);
	kheap_free(h, p[1]);
	KT_CHECK(!kh_used(b[1]) && kh_prev_free(b[2]));
	KT_EQ(*kh_footer(b[1]), *kh_hdr(b[1]));
	kheap_free(h, p[3]);
	kheap_free(h, p[2]); /* merges with both neighbours */
	KT_CHECK(!kh_used(b[1]));
	KT_EQ(kh_size(b[1]), 3 * 70016);
	KT_EQ(kh_size(b[2]), 0); /* absorbed headers are killed */
	KT_EQ(kh_size(b[3]), 0);
	KT_CHECK(kh_prev_free(b[4]) && kh_used(b[4]));
	unsigned fl, sl;
	kh_mapping(3 * 70016, &fl, &sl);
	KT_CHECK(h->sl_map[fl] & (1u << sl));
	KT_CHECK(h->fl_map & ((uint64_t)1 << fl));
	KT_EQ(h->bins[fl][sl], b[1]);
	kheap_free(h, p[4]); /* merges with the tail remainder too */
	kheap_free(h, p[0]);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(st.free_bytes, st.total_bytes);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(wb_good_fit_takes_first_fitting_bin)
{
	struct kheap *h = kheap_init(arena, sizeof arena);
	/* Carve free blocks of 4 KiB and 8 KiB separated by used walls. */
	char *a = kheap_alloc(h, 4096 - 8), *w1 = kheap_alloc(h, 2000);
	char *c = kheap_alloc(h, 8192 - 8), *w2 = kheap_alloc(h, 2000);
	kheap_free(h, a);
	kheap_free(h, c);
	char *x = kheap_alloc(h, 3000); /* fits the 4 KiB block: bin below 8 KiB */
	KT_CHECK(x == a);
	char *y = kheap_alloc(h, 6000);
	KT_CHECK(y == c);
	kheap_free(h, x), kheap_free(h, y), kheap_free(h, w1), kheap_free(h, w2);
	KT_EQ(kt_heap_check(h), 0);
}

KT_CASE(wb_class_cache_is_lifo_and_bounded)
{
	kt_percpu(0); /* the shared lists, not the per-CPU ones */
	struct kheap *h = kheap_init(arena, sizeof arena);
	unsigned c = kh_size_class(kh_want(40));
	uint32_t limit = h->cpus[KH_SHARED].cls[c].limit;
	KT_CHECK(limit > 0 && limit <= KHEAP_CLASS_CACHE_MAX);
	void *p[64];
	for (unsigned i = 0; i < limit + 4; i++)
		p[i] = kheap_alloc(h, 40);
	kheap_trim(h); /* the rest of the last carved batch to the bins: the list is empty */
	KT_EQ(h->cpus[KH_SHARED].cls[c].count, 0);
	for (unsigned i = 0; i < limit + 4; i++)
		kheap_free(h, p[i]);
	KT_EQ(h->cpus[KH_SHARED].cls[c].count, limit); /* the rest went to the bins */
	KT_CHECK(kheap_alloc(h, 40) == p[limit - 1]); /* LIFO */
	KT_CHECK(kheap_alloc(h, 33) == p[limit - 2]); /* same class */
	KT_EQ(kt_heap_check(h), 0);
}

/* A locked allocation of a class size that finds its shared list empty
 * carves KHEAP_CLASS_CARVE blocks of the class from one backend block, hands
 * out the first and leaves the rest on the list in address order: cached,
 * not in use, not in the peak. A list without room for two takes single
 * blocks from the backend. */
KT_CASE(wb_shared_miss_carves_a_batch)
{
	kt_percpu(0);
	struct kheap *h = kheap_init(arena, sizeof arena);
	unsigned c = kh_size_class(kh_want(40));
	struct kh_class *l = &h->cpus[KH_SHARED].cls[c];
	size_t s = kh_class_block_size(c);
	KT_REQUIRE(l->limit >= KHEAP_CLASS_CARVE);
	char *p = kheap_alloc(h, 40);
	KT_EQ(l->count, KHEAP_CLASS_CARVE - 1);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	KT_EQ(st.in_use_bytes, s);
	KT_EQ(st.peak_in_use_bytes, s);
	KT_EQ(st.cached_bytes, (KHEAP_CLASS_CARVE - 1) * s);
	KT_EQ(st.used_blocks, 1);
	for (unsigned i = 1; i < KHEAP_CLASS_CARVE; i++)
		KT_CHECK(kheap_alloc(h, 40) == p + i * s);
	KT_EQ(l->count, 0);
	KT_EQ(kt_heap_check(h), 0);
	l->limit = 1;
	char *q = kheap_alloc(h, 40);
	KT_CHECK(q == p + KHEAP_CLASS_CARVE * s); /* the backend's next block, alone */
	KT_EQ(l->count, 0);
	KT_EQ(kt_heap_check(h), 0);
}

/* kheap_check's list walk (kh_check_list) names a block of the wrong size
 * on a size-class list, and an object-cache list whose reserve is above
 * its count. */
KT_CASE(wb_check_names_list_damage)
{
	kt_percpu(0);
	struct kheap *h = kheap_init(arena, sizeof arena);
	unsigned c = kh_size_class(kh_want(40));
	struct kh_cpu *sh = &h->cpus[KH_SHARED];
	void *small = kheap_alloc(h, 40), *other = kheap_alloc(h, 100);
	kheap_trim(h); /* the rest of their carved batches: room on the list */
	kheap_free(h, small); /* on class c's shared list */
	KT_EQ(kt_heap_check(h), 0);
	KT_REQUIRE(kh_cpu_push(&sh->cls[c], other, kh_key(h), sh->tkey));
	h->n.in_use -= kh_size(kh_block_of(other)); /* cached blocks count in neither */
	h->n.used_blocks--;
	KT_CHECK(kheap_check(h) > 0);
	KT_CHECK(kh_cpu_pop(&sh->cls[c], kh_key(h), sh->tkey) == other);
	h->n.in_use += kh_size(kh_block_of(other));
	h->n.used_blocks++;
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, other);

	kt_percpu(kt_percpu_default);
	struct kheap_cache *oc = kheap_cache_create(h, "wb", 64, 0, 0);
	KT_REQUIRE(oc != NULL);
	KT_EQ(kheap_cache_reserve(oc, 3), 0);
	unsigned k = kheap_cpu_id();
	bool mine = KH_PERCPU && kh_cpu_named(k);
	struct kh_class *l = mine ? &oc->cpu[k].l : &oc->depot;
	uint32_t *rsv = mine ? &oc->cpu[k].reserve : &oc->depot_reserve;
	KT_EQ(kt_heap_check(h), 0);
	uint32_t was = *rsv;
	*rsv = l->count + 1;
	KT_CHECK(kheap_check(h) > 0);
	*rsv = was;
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(kheap_cache_unreserve(oc, 3), 0);
	KT_EQ(kheap_cache_destroy(oc), 0);
}

KT_CASE(wb_held_accepts_only_live_blocks)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, sizeof arena, &rec);
	char *p = kheap_alloc(h, 3000);
	struct kh_err e = KH_ERR_INIT;
	KT_EQ(kh_held(h, p, &e, KH_HELD_LOCKED), kh_block_of(p));
	KT_EQ(e.kind, KHEAP_OK);
	KT_EQ(kh_held(h, p + 16, &e, KH_HELD_LOCKED), 0);
	KT_EQ(e.kind, KHEAP_E_BAD_HEADER);
	e.kind = KHEAP_OK;
	kheap_free(h, p);
	KT_EQ(kh_held(h, p, &e, KH_HELD_LOCKED), 0);
	KT_EQ(e.kind, KHEAP_E_DOUBLE_FREE);
	KT_EQ(rec.count, 0);
}

/* The internal-assert tier is compiled into test builds and reaches
 * kheap_panic, naming the broken precondition. */
KT_CASE(wb_internal_assert_reaches_kheap_panic)
{
	static _Alignas(16) unsigned char small[64u << 10];
	struct kheap *h = kheap_init(small, sizeof small);
	kt_panic_expected = 1;
	kt_panics = 0;
	KH_ASSERT(1 + 1 == 2);
	KT_EQ(kt_panics, 0);
	kh_count_back(h, h->n.in_use + 16, 1); /* more back than is in use */
	KT_EQ(kt_panics, 1);
	kt_panic_expected = 0;
}
