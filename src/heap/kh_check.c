/*
 * kh_check.c: region lookup, the full validator and the walker.
 *
 * kheap_check recomputes everything the heap keeps incrementally and
 * compares: a linear walk of each region (I1-I4 of kh_internal.h) yields the
 * free, cached and used totals, which must equal what the bins and bitmaps
 * (I5), the shared class lists (I6) and the counters (I7) say. List walks are
 * bounded by what the region walk found, so a cycle is a finding, not a
 * hang. It reads only, allocates nothing, and holds the lock throughout.
 * Per-CPU lists (I8) are checked for the calling CPU only: the others
 * change under it without the lock. Their blocks count as used (I7), as
 * do object caches' objects, whose lists and counts are I9.
 */
#include "kh_internal.h"

struct tally {
	size_t free_bytes, free_blocks, cached_bytes, cached_blocks, used_bytes, used_blocks;
	size_t total;
	size_t mine; /* used blocks whose token names the calling CPU */
	/* Per object cache: its objects, those in its depot, those on the
	 * calling CPU's list of it (I9). */
	uint32_t objs[KHEAP_MAX_CACHES], depot[KHEAP_MAX_CACHES], omine[KHEAP_MAX_CACHES];
};

struct checker {
	const struct kheap *h;
	kheap_problem_fn fn;
	void *ctx;
	int problems;
	struct tally t;
	unsigned cpu; /* the calling CPU, or KHEAP_NO_CPU */
};

static void bad(struct checker *k, uintptr_t addr, const char *what)
{
	k->problems++;
	if (k->fn)
		k->fn(k->ctx, (const void *)addr, what);
}

/* The span skipped after a corrupt header is counted as one used block,
 * which is what an overwritten header most likely was. */
static uintptr_t resync(struct checker *k, const struct kh_region *r, uintptr_t b)
{
	uintptr_t x = kh_resync(k->h, r, b);
	k->t.used_bytes += x - b;
	k->t.used_blocks++;
	return x;
}

/* Level 1 and up: a free or cached block still holds its poison. Only the
 * blocks that no CPU reaches without the lock are asked: the bins, the
 * shared lists and the calling CPU's own lists. */
static void poisoned(struct checker *k, uintptr_t b)
{
	if (KH_POISONS && !kh_poison_ok(b))
		bad(k, b, "poison of a free or cached block overwritten (write after free)");
}

/* I1-I4 over one region, adding to the tally. At level 1 and up also the
 * poison of every free and cached block and the canary of every used one:
 * a used block on a per-CPU list keeps its canary (armed when it was
 * carved or handed out; the poison stops short of it), so another CPU's
 * lock-free list operations never make it read wrong. */
static void walk_region(struct checker *k, const struct kh_region *r)
{
	const struct kheap *h = k->h;
	uintptr_t b = r->first;
	bool prev_free = false;
	k->t.total += r->end - r->first;
	while (b < r->end) {
		kh_word w = *kh_hdr(b);
		size_t s = (size_t)(w & KH_SIZE_MASK);
		if (!kh_block_sane(h, r, b, w)) {
			bad(k, b, "block header corrupt (cookie or size)");
			b = resync(k, r, b);
			prev_free = b < r->end && kh_prev_free(b);
			continue;
		}
		bool is_free = !(w & KH_USED);
		if (!!(w & KH_PREV_FREE) != prev_free)
			bad(k, b, "prev-free flag disagrees with the previous block");
		if (is_free) {
			unsigned fl, sl;
			kh_mapping(s, &fl, &sl);
			if (prev_free)
				bad(k, b, "two adjacent free blocks");
			if (*kh_footer(b) != w)
				bad(k, b, "free block's footer differs from its header");
			if (w & (KH_CACHED | KH_ALG_MASK))
				bad(k, b, "free block has cached or alignment bits");
			if (!(h->sl_map[fl] & ((uint32_t)1 << sl)))
				bad(k, b, "free block's bin is marked empty");
			poisoned(k, b);
			k->t.free_bytes += s;
			k->t.free_blocks++;
		} else if (kh_quarantined(w)) {
			bad(k, b, "block quarantined: its header was found damaged (write past a block?)");
			k->t.used_bytes += s;
			k->t.used_blocks++;
		} else if (kh_is_obj(w)) {
			unsigned i = kh_obj_cache(w);
			uintptr_t slot = kh_token_cpu(h, b);
			k->t.used_bytes += s; /* every object counts as in use (kh_objcache.h) */
			k->t.used_blocks++;
			if (i >= KHEAP_MAX_CACHES) {
				bad(k, b, "object names a cache number above KHEAP_MAX_CACHES");
			} else {
				k->t.objs[i]++;
				k->t.depot[i] += slot == KH_SHARED;
				k->t.omine[i] += KH_PERCPU && slot == k->cpu;
				if (KH_CANARIES && slot >= KH_NSLOTS && *kh_canary_slot(b) != kh_canary(h, b))
					bad(k, b, "canary after the usable size overwritten (write past the block)");
			}
		} else if (kh_token_cpu(h, b) == KH_SHARED) {
			unsigned c = kh_size_class(s - KH_HDR);
			if (c >= KH_NCLASSES || kh_class_block_size(c) != s)
				bad(k, b, "cached block is not a class size");
			k->t.cached_bytes += s;
			k->t.cached_blocks++;
		} else {
			k->t.used_bytes += s;
			k->t.used_blocks++;
			if (KH_CANARIES && *kh_canary_slot(b) != kh_canary(h, b))
				bad(k, b, "canary after the usable size overwritten (write past the block)");
			if (KH_PERCPU && kh_token_cpu(h, b) == k->cpu)
				k->t.mine++;
		}
		prev_free = is_free;
		b += s;
	}
	if (b != r->end)
		bad(k, b, "blocks overrun the region's end marker");
	else if (!kh_ok(h, b) || kh_size(b) != 0 || !kh_used(b) || kh_prev_free(b) != prev_free)
		bad(k, b, "end marker corrupt");
	if (r->first != r->end && kh_ok(h, r->first) && kh_prev_free(r->first))
		bad(k, r->first, "first block claims a free predecessor");
}

static bool plausible(const struct kheap *h, uintptr_t b)
{
	return (b & (KH_GRANULE - 1)) == KH_HDR && kh_region_of(h, b) != NULL;
}

/* I5: every bin's list, links both ways, bitmaps, totals. */
static void check_bins(struct checker *k)
{
	const struct kheap *h = k->h;
	size_t blocks = 0, bytes = 0;
	for (unsigned fl = 0; fl < KH_FL_COUNT; fl++) {
		if (!!(h->fl_map & ((uint64_t)1 << fl)) != (h->sl_map[fl] != 0))
			bad(k, (uintptr_t)&h->fl_map, "first-level bitmap disagrees with second level");
		for (unsigned sl = 0; sl < KH_SL_COUNT; sl++) {
			uintptr_t b = h->bins[fl][sl], prev = 0;
			if ((b != 0) != !!(h->sl_map[fl] & ((uint32_t)1 << sl)))
				bad(k, (uintptr_t)&h->bins[fl][sl], "second-level bitmap disagrees with bin");
			for (size_t n = 0; b != 0; n++) {
				unsigned f2, s2;
				if (n > k->t.free_blocks || !plausible(h, b) || !kh_ok(h, b) || kh_used(b)) {
					bad(k, b, "bin holds a non-free block, a wild link, or a cycle");
					break;
				}
				kh_mapping(kh_size(b), &f2, &s2);
				if (f2 != fl || s2 != sl)
					bad(k, b, "free block is in the wrong bin");
				uintptr_t *pslot = (uintptr_t *)(b + 16), *nslot = (uintptr_t *)(b + 8);
				if (kh_enc(h, pslot, *pslot) != prev)
					bad(k, b, "free block's prev link is wrong");
				blocks++;
				bytes += kh_size(b);
				prev = b;
				b = kh_enc(h, nslot, *nslot);
			}
		}
	}
	if (blocks != k->t.free_blocks || bytes != k->t.free_bytes)
		bad(k, (uintptr_t)h->bins, "bins and region walk disagree on free blocks");
}

/* What the fused calls trust in every slot: its keys, and a span snapshot
 * that is kh_cpu_span of the regions the heap had when it was taken.
 * Constant or written under the lock, so exact here. */
static void check_cpu_keys(struct checker *k)
{
	const struct kheap *h = k->h;
	for (unsigned c = KH_PERCPU ? 0 : KH_SHARED; c < KH_NSLOTS; c++) {
		const struct kh_cpu *cpu = &h->cpus[c];
		uintptr_t lo = 0, hi = 0;
		if (cpu->regions >= 1 && cpu->regions <= h->nregions)
			kh_cpu_span(h, cpu->regions, &lo, &hi);
		if (cpu->key != kh_key(h) || cpu->tkey != kh_tkey(h, c))
			bad(k, (uintptr_t)cpu, "per-CPU cache keys overwritten");
		else if (cpu->regions == 0 || cpu->regions > h->nregions || cpu->lo != lo || cpu->hi != hi)
			bad(k, (uintptr_t)cpu, "per-CPU cache span disagrees with the regions");
	}
}

/* Slot k's lists (I6 for the shared slot, I8 for a CPU's): every block is
 * a used block of the list's class whose token names k, counts and limits
 * agree. Returns the blocks and bytes found. */
static void bad_fn(void *ctx, uintptr_t addr, const char *what) { bad(ctx, addr, what); }

size_t kh_check_list(const struct kheap *h, const struct kh_class *l, const struct kh_list_want *want,
		     kh_bad_fn bad_at, void *ctx)
{
	uintptr_t p = l->head;
	uint32_t n = 0;
	for (; p != 0 && n <= l->count; n++) {
		uintptr_t b = kh_block_of((void *)p);
		if ((p & (KH_GRANULE - 1)) || !plausible(h, b) || !kh_ok(h, b) ||
		    (*kh_hdr(b) & want->mask) != want->bits || kh_size(b) != want->size ||
		    kh_token_cpu(h, b) != want->slot) {
			bad_at(ctx, p, want->stray);
			break;
		}
		if (KH_POISONS && !kh_poison_ok(b))
			bad_at(ctx, b, "poison of a free or cached block overwritten (write after free)");
		p = kh_enc(h, (void *)p, *(uintptr_t *)p);
	}
	if (n != l->count || l->count > l->limit || want->reserve > l->count)
		bad_at(ctx, (uintptr_t)l, want->miscount);
	return n;
}

static void check_slot(struct checker *k, unsigned slot, size_t *blocks, size_t *bytes)
{
	const struct kh_cpu *cpu = &k->h->cpus[slot];
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		struct kh_list_want want = {KH_USED | KH_CACHED, KH_USED, kh_class_block_size(c), slot, 0,
					    "size-class list holds a block that is not cached there",
					    "size-class list count wrong or over its limit"};
		size_t n = kh_check_list(k->h, &cpu->cls[c], &want, bad_fn, k);
		*bytes += n * want.size;
		*blocks += n;
	}
}

/* The batch marks (struct kh_batches) of every shared list: oldest first,
 * each block rest[i] on its list with depth[i] blocks from it to the end
 * (the top one may be the head: a drain whose blocks all went to the bins).
 * After a fused pop on the shared slot they are forgotten at their next use,
 * and not checked until then. Run after check_slot found the lists sound. */
static void check_marks(struct checker *k)
{
	const struct kheap *h = k->h;
	const struct kh_cpu *sh = &h->cpus[KH_SHARED];
	if (!KH_PERCPU || h->batches_pops != sh->allocs)
		return;
	for (unsigned c = 0; c < KH_BATCH_CLASSES; c++) {
		const struct kh_batches *m = &h->batches[c];
		const struct kh_class *l = &sh->cls[c];
		bool ok = m->n <= KH_BATCH_MARKS;
		for (uint32_t i = 0; ok && i < m->n; i++)
			ok = m->depth[i] <= l->count && (i == 0 || m->depth[i - 1] < m->depth[i]);
		uintptr_t p = l->head;
		uint32_t j = m->n; /* the next mark from the top */
		for (uint32_t left = l->count; ok && j > 0 && p != 0; left--) {
			if (left == m->depth[j - 1]) {
				ok = p == m->rest[j - 1];
				j--;
			}
			p = kh_enc(h, (void *)p, *(uintptr_t *)p);
		}
		if (!ok || j != 0)
			bad(k, (uintptr_t)m, "shared list's batch marks disagree with the list");
	}
}

/* I6 and I8: the shared lists, and the calling CPU's (the other CPUs'
 * change under us without the lock). */
static void check_lists(struct checker *k)
{
	size_t blocks = 0, bytes = 0;
	check_cpu_keys(k);
	check_slot(k, KH_SHARED, &blocks, &bytes);
	if (k->problems == 0)
		check_marks(k);
	if (blocks != k->t.cached_blocks || bytes != k->t.cached_bytes)
		bad(k, (uintptr_t)&k->h->cpus[KH_SHARED], "shared lists and region walk disagree on cached blocks");
	if (!kh_cpu_named(k->cpu))
		return;
	blocks = bytes = 0;
	check_slot(k, k->cpu, &blocks, &bytes);
	if (blocks != k->t.mine)
		bad(k, (uintptr_t)&k->h->cpus[k->cpu], "per-CPU lists and region walk disagree on this CPU's blocks");
}

/* I9: every object cache's lists and object count (kh_objcache_pool.c). */
static void check_objcaches(struct checker *k)
{
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++)
		kh_obj_check(k->h, i, k->t.objs[i], k->t.depot[i], k->t.omine[i], k->cpu, bad_fn, k);
}

/* I7: counters. */
static void check_counts(struct checker *k)
{
	const struct kh_counts *n = &k->h->n;
	const struct tally *t = &k->t;
	if (n->total != t->total)
		bad(k, (uintptr_t)n, "total bytes counter wrong");
	if (n->in_use != t->used_bytes || n->used_blocks != t->used_blocks)
		bad(k, (uintptr_t)n, "in-use counters wrong");
	if (n->free != t->free_bytes || n->free_blocks != t->free_blocks)
		bad(k, (uintptr_t)n, "free counters wrong");
	if (n->peak < n->in_use)
		bad(k, (uintptr_t)n, "peak below current use");
}

int kh_check_locked(struct kheap *h, kheap_problem_fn fn, void *ctx)
{
	struct checker k;
	kh_batch_quiesce(h); /* a batch being claimed is on no list yet */
	/* Field by field: a zeroing initializer of this size becomes a call
	 * to memset, which a freestanding library must not make. */
	k.h = h, k.fn = fn, k.ctx = ctx, k.problems = 0, k.cpu = kh_cpu_id();
	k.t.free_bytes = k.t.free_blocks = k.t.cached_bytes = k.t.cached_blocks = 0;
	k.t.used_bytes = k.t.used_blocks = k.t.total = k.t.mine = 0;
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++)
		k.t.objs[i] = k.t.depot[i] = k.t.omine[i] = 0;
	if (h->nregions == 0 || h->nregions > KHEAP_MAX_REGIONS) {
		bad(&k, (uintptr_t)&h->nregions, "region count out of range");
	} else {
		for (unsigned i = 0; i < h->nregions; i++)
			walk_region(&k, &h->regions[i]);
		check_bins(&k);
		check_lists(&k);
		check_objcaches(&k);
		check_counts(&k);
	}
	return k.problems;
}

int kheap_check_verbose(struct kheap *h, kheap_problem_fn fn, void *ctx)
{
	if (!kh_live(h)) {
		if (fn)
			fn(ctx, h, "not a live heap handle");
		return 1;
	}
	uintptr_t irq = kh_enter(h);
	int problems = kh_check_locked(h, fn, ctx);
	kh_exit(h, irq);
	return problems;
}

int kheap_check(struct kheap *h) { return kheap_check_verbose(h, NULL, NULL); }
