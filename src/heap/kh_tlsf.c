/*
 * kh_tlsf.c: the coalescing backend, a two-level segregated fit.
 *
 * Bin (fl, sl) holds free blocks whose size maps to it (kh_mapping): fl = 0
 * is linear, one bin per 16 bytes below 2^KH_FL_SHIFT; above, each power of
 * two is split into KH_SL_COUNT bins. fl_map has bit fl set iff sl_map[fl]
 * is non-zero; sl_map[fl] has bit sl set iff bin (fl, sl) is non-empty.
 *
 * A request is rounded up to the next bin boundary first, so any block of
 * the first non-empty bin at or above it fits (good fit, two find-first-set
 * operations, no list search); when there is none, the head of the
 * request's own bin is tried, so that a block no bigger than the request's
 * bin can still be handed out whole. Frees coalesce at once with both
 * neighbours through the boundary tags, so no two free blocks are ever
 * adjacent.
 *
 * Every function expects h->lock held. Counters kept here: free bytes and
 * free blocks; the caller keeps the in-use and cached ones.
 */
#include "kh_internal.h"

/* The steps of an allocation and a free, each one call's worth of work,
 * are compiled into kh_backend_alloc and kh_backend_free whole: a call
 * apiece would cost as much as some of them do. */
#define HOT static inline __attribute__((always_inline))

/* Links of a free block: next at b + 8, prev at b + 16, both encoded. */
static inline uintptr_t *slot_next(uintptr_t b) { return (uintptr_t *)(b + 8); }
static inline uintptr_t *slot_prev(uintptr_t b) { return (uintptr_t *)(b + 16); }

static inline uintptr_t get_link(const struct kheap *h, uintptr_t *slot) { return kh_enc(h, slot, *slot); }
static inline void put_link(const struct kheap *h, uintptr_t *slot, uintptr_t v) { *slot = kh_enc(h, slot, v); }

/* Is x plausibly a block of this heap? Checked before any link is followed. */
static inline bool in_heap(const struct kheap *h, uintptr_t x)
{
	return (x & (KH_GRANULE - 1)) == KH_HDR && kh_in_span(h, x);
}

/* A free block's place in its bin: its decoded links and the bin. */
struct place {
	uintptr_t next, prev;
	unsigned fl, sl;
};

/* The second half of a place check: free block b's decoded next link is 0
 * or a block of the heap whose prev link points back at b. */
HOT bool next_check(const struct kheap *h, uintptr_t b, const struct place *pl, struct kh_err *e)
{
	if (pl->next != 0 && (!in_heap(h, pl->next) || get_link(h, slot_prev(pl->next)) != b))
		return kh_fail(e, KHEAP_E_FREELIST, kh_payload(b), "free-list next link corrupt");
	return true;
}

/* Decode free block b's links into *pl, whose bin is set, and check them
 * before anything is written: both list neighbours, or the bin head, point
 * back at b. The one link check of an unlink. */
HOT bool place_check(const struct kheap *h, uintptr_t b, struct place *pl, struct kh_err *e)
{
	pl->next = get_link(h, slot_next(b));
	pl->prev = get_link(h, slot_prev(b));
	if (pl->prev == 0 ? h->bins[pl->fl][pl->sl] != b
			  : !in_heap(h, pl->prev) || get_link(h, slot_next(pl->prev)) != b)
		return kh_fail(e, KHEAP_E_FREELIST, kh_payload(b), "free-list prev link corrupt");
	return next_check(h, b, pl, e);
}

/* place_check for b, the head of its bin: its prev link must decode to 0. */
HOT bool head_check(const struct kheap *h, uintptr_t b, struct place *pl, struct kh_err *e)
{
	pl->next = get_link(h, slot_next(b));
	pl->prev = 0;
	if (get_link(h, slot_prev(b)) != 0)
		return kh_fail(e, KHEAP_E_FREELIST, kh_payload(b), "free-list prev link corrupt");
	return next_check(h, b, pl, e);
}

/* place_check for free block b of size s, wherever it is listed. */
HOT bool place_of(const struct kheap *h, uintptr_t b, size_t s, struct place *pl, struct kh_err *e)
{
	kh_mapping(s, &pl->fl, &pl->sl);
	return place_check(h, b, pl, e);
}

/* Take the block whose checked place is *pl (size s) off its list. */
HOT void cut(struct kheap *h, const struct place *pl, size_t s)
{
	if (pl->next)
		put_link(h, slot_prev(pl->next), pl->prev);
	if (pl->prev) {
		put_link(h, slot_next(pl->prev), pl->next);
	} else {
		h->bins[pl->fl][pl->sl] = pl->next;
		if (pl->next == 0) {
			h->sl_map[pl->fl] &= ~((uint32_t)1 << pl->sl);
			if (h->sl_map[pl->fl] == 0)
				h->fl_map &= ~((uint64_t)1 << pl->fl);
		}
	}
	h->n.free -= s;
	h->n.free_blocks--;
}

/* Precondition: b's header says free with size s, and its footer is written. */
HOT void bin_insert(struct kheap *h, uintptr_t b, size_t s)
{
	unsigned fl, sl;
	kh_mapping(s, &fl, &sl);
	uintptr_t head = h->bins[fl][sl];
	put_link(h, slot_next(b), head);
	put_link(h, slot_prev(b), 0);
	if (head)
		put_link(h, slot_prev(head), b);
	h->bins[fl][sl] = b;
	h->sl_map[fl] |= (uint32_t)1 << sl;
	h->fl_map |= (uint64_t)1 << fl;
	h->n.free += s;
	h->n.free_blocks++;
}

void kh_bin_insert(struct kheap *h, uintptr_t b) { bin_insert(h, b, kh_size(b)); }

bool kh_bin_remove(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	struct place pl;
	if (!place_of(h, b, kh_size(b), &pl, e))
		return false;
	cut(h, &pl, kh_size(b));
	return true;
}

#ifdef KH_FAULT_INJECT
unsigned long kh_fault_countdown;
#endif

/* Reseal block x, whose header word w is sealed, with its PREV_FREE flag
 * set to prev_free and the rest kept: one cookie, no field re-read. */
HOT void reseal_prev(const struct kheap *h, uintptr_t x, kh_word w, kh_word prev_free)
{
	kh_word body = (w & KH_BODY_MASK & ~KH_PREV_FREE) | prev_free;
	__atomic_store_n(kh_hdr(x), body | (kh_cookie(h, x, body) << KH_COOKIE_SHIFT), __ATOMIC_RELAXED);
}

/* Mark b free with size s (its predecessor is used, by I3), write its footer
 * and bin it; its successor already knows (its PREV_FREE is set). */
HOT void bin_free(struct kheap *h, uintptr_t b, size_t s)
{
	kh_set(h, b, s, 0, 0);
	*kh_footer(b) = *kh_hdr(b);
	if (KH_POISONS)
		kh_release_hook(b);
	bin_insert(h, b, s);
}

/* bin_free, and tell the successor. */
static void make_free(struct kheap *h, uintptr_t b, size_t s)
{
	uintptr_t nx = b + s;
	kh_set_flags(h, nx, kh_flags(nx) | KH_PREV_FREE);
	bin_free(h, b, s);
}

/* A header absorbed by a neighbour: sealed, size 0, not used, so a later
 * free of its old payload pointer reads as a double free. */
static void kill(const struct kheap *h, uintptr_t b) { kh_set(h, b, 0, 0, 0); }

/* First non-empty bin at or above the one s rounds up to, so that every
 * block in it holds s bytes: its head, with its indices in *fl, *sl; or 0. */
HOT uintptr_t bin_above(const struct kheap *h, size_t s, unsigned *fl, unsigned *sl)
{
	if (s >= ((size_t)1 << KH_FL_SHIFT)) {
		s += ((size_t)1 << (kh_fls_size(s) - KHEAP_SL_LOG2)) - 1;
		if (kh_fls_size(s) - KH_FL_SHIFT + 1 >= KH_FL_COUNT)
			return 0;
	}
	kh_mapping(s, fl, sl);
	uint32_t slm = h->sl_map[*fl] & (~(uint32_t)0 << *sl);
	if (slm == 0) {
		uint64_t flm = h->fl_map & (~(uint64_t)0 << (*fl + 1));
		if (flm == 0)
			return 0;
		*fl = kh_ctz64(flm);
		slm = h->sl_map[*fl];
	}
	*sl = kh_ctz64(slm);
	return h->bins[*fl][*sl];
}

/* Is bin head b a free block whose header can be trusted? */
static bool sound(const struct kheap *h, uintptr_t b)
{
	return in_heap(h, b) && kh_ok(h, b) && !kh_used(b);
}

/* The head of s's own bin, whose blocks may be smaller than s: returned
 * when it holds s, or when it is not sound (take() then reports it). */
static uintptr_t own_head(const struct kheap *h, size_t s, unsigned *fl, unsigned *sl)
{
	kh_mapping(s, fl, sl);
	uintptr_t b = h->bins[*fl][*sl];
	return b != 0 && (!sound(h, b) || kh_size(b) >= s) ? b : 0;
}

/* Good fit in O(1): a block of the first non-empty bin above s's own, else
 * the head of s's own bin if it is big enough. So a request fails only
 * when every free block that could hold it sits in its own bin behind a
 * head that cannot (kheap.h, kheap_alloc). */
HOT uintptr_t find_fit(const struct kheap *h, size_t s, unsigned *fl, unsigned *sl)
{
	if (s > KH_MAX_BLOCK)
		return 0;
	uintptr_t b = bin_above(h, s, fl, sl);
	return b != 0 ? b : own_head(h, s, fl, sl);
}

/* find_fit, but the head of s's own bin first when it holds s: where a
 * carve of class blocks looks, because a freed block of the same class
 * waits there, which TLSF's search, starting one bin up, passes by (W5 of
 * make bench with per-CPU caches: 1.28 without this, 1.20 with it). */
static uintptr_t find_fit_own_first(const struct kheap *h, size_t s, unsigned *fl, unsigned *sl)
{
	uintptr_t b = s <= KH_MAX_BLOCK ? own_head(h, s, fl, sl) : 0;
	return b != 0 ? b : find_fit(h, s, fl, sl);
}

/* A bin whose head is corrupt is emptied, so the heap keeps serving from the
 * others; kh_rebuild (run as the report goes out) bins its blocks again. */
static void drop_bin(struct kheap *h, unsigned fl, unsigned sl)
{
	h->bins[fl][sl] = 0;
	h->sl_map[fl] &= ~((uint32_t)1 << sl);
	if (h->sl_map[fl] == 0)
		h->fl_map &= ~((uint64_t)1 << fl);
}

/* Test builds: fail this backend allocation as if memory had run out? */
static bool injected_fault(void)
{
#ifdef KH_FAULT_INJECT
	if (kh_fault_countdown != 0 && --kh_fault_countdown == 0)
		return true;
#endif
	return false;
}

/* Take free block b, the head of bin (fl, sl), for s bytes: checked,
 * unlinked, its poison checked, the part past s freed when it makes a
 * block. Returns b, used; or 0 with the bin dropped and *e set. */
HOT uintptr_t take(struct kheap *h, uintptr_t b, unsigned fl, unsigned sl, size_t s, struct kh_err *e)
{
	struct place pl = {0, 0, fl, sl};
	kh_word w = 0;
	if (!in_heap(h, b) || !kh_sealed(h, b, w = *kh_hdr(b)) || (w & KH_USED) ||
	    (size_t)(w & KH_SIZE_MASK) < s || (KH_GRANT_NEIGHBOURS && !kh_free_block_ok(h, b))) {
		kh_fail(e, KHEAP_E_FREELIST, kh_payload(b), "bin head is not a sound free block");
		drop_bin(h, fl, sl);
		return 0;
	}
	if (!head_check(h, b, &pl, e)) {
		drop_bin(h, fl, sl);
		return 0;
	}
	size_t bs = (size_t)(w & KH_SIZE_MASK);
	cut(h, &pl, bs);
	if (KH_POISONS)
		kh_poison_check(b, e);
	if (bs - s >= KH_MIN_BLOCK) {
		kh_set(h, b, s, KH_USED, 0);
		bin_free(h, b + s, bs - s); /* b + bs still follows a free block */
	} else {
		kh_set(h, b, bs, KH_USED, 0);
		uintptr_t nx = b + bs;
		kh_word nw = *kh_hdr(nx);
		if (kh_sealed(h, nx, nw)) /* a damaged one is left for its own check to find */
			reseal_prev(h, nx, nw, 0);
	}
	return b;
}

uintptr_t kh_backend_alloc(struct kheap *h, size_t s, struct kh_err *e)
{
	unsigned fl, sl;
	if (injected_fault())
		return 0;
	uintptr_t b = find_fit(h, s, &fl, &sl);
	return b != 0 ? take(h, b, fl, sl, s, e) : 0;
}

/* At least s and at most `most` bytes from the block a request of s
 * would get (the good fit for s), cut to `most` when it is larger: a
 * batch of small blocks comes from a hole that fits them, where a request
 * of `most` bytes would pass the holes by for the untouched end of the
 * region (measured through the preload: python3's peak RSS 1.27x glibc's
 * with batches of 32 carved whole). O(1). */
uintptr_t kh_backend_alloc_upto(struct kheap *h, size_t s, size_t most, struct kh_err *e)
{
	unsigned fl, sl;
	if (injected_fault())
		return 0;
	uintptr_t b = find_fit_own_first(h, s, &fl, &sl);
	if (b == 0)
		return 0;
	size_t want = most;
	if (sound(h, b) && kh_size(b) < most) /* take() checks it again */
		want = kh_size(b);
	return take(h, b, fl, sl, want, e);
}

/* The free predecessor of b, whose header says it has one, when its
 * boundary tag at b - 8 is sound: a sealed free header of a size that
 * lands on a block of the heap, which the tag copies. Else 0. */
HOT uintptr_t prev_of(const struct kheap *h, uintptr_t b)
{
	kh_word tag = *(kh_word *)(b - KH_HDR);
	size_t ps = (size_t)(tag & KH_SIZE_MASK);
	uintptr_t pv = b - ps;
	return ps >= KH_MIN_BLOCK && in_heap(h, pv) && *kh_hdr(pv) == tag && !(tag & KH_USED) &&
			       kh_sealed(h, pv, tag)
		       ? pv
		       : 0;
}

/* The neighbours are checked here, where they merge, and only here (the
 * callers check the block's own header): the next header is sealed and
 * knows b is used, a free predecessor's boundary tag is sound, and the
 * links of each free neighbour point back at it. Nothing changes before
 * every check has passed. */
uintptr_t kh_backend_free(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	kh_word w = *kh_hdr(b);
	size_t s = (size_t)(w & KH_SIZE_MASK);
	uintptr_t nx = b + s, pv = 0;
	kh_word nw = __atomic_load_n(kh_hdr(nx), __ATOMIC_RELAXED);
	struct place np, pp;
	if (!kh_sealed(h, nx, nw) || (nw & KH_PREV_FREE))
		return kh_fail(e, KHEAP_E_NEIGHBOUR, kh_payload(b), "next block's header is corrupt or disagrees"), 0;
	if ((w & KH_PREV_FREE) && (pv = prev_of(h, b)) == 0)
		return kh_fail(e, KHEAP_E_NEIGHBOUR, kh_payload(b), "previous block's boundary tag is corrupt"), 0;
	size_t ns = (size_t)(nw & KH_SIZE_MASK), ps = pv ? kh_size(pv) : 0;
	bool merge_next = !(nw & KH_USED);
	if (merge_next && !place_of(h, nx, ns, &np, e))
		return 0;
	if (pv && !place_of(h, pv, ps, &pp, e))
		return 0;
	if (merge_next) {
		cut(h, &np, ns);
		if (pv) { /* pv's place as read may name nx, just cut: step over it */
			pp.next = pp.next == nx ? np.next : pp.next;
			pp.prev = pp.prev == nx ? np.prev : pp.prev;
		}
		s += ns;
		kill(h, nx);
	}
	if (pv) {
		cut(h, &pp, ps);
		s += ps;
		kill(h, b);
		b = pv;
	}
	if (!merge_next)
		reseal_prev(h, nx, nw, KH_PREV_FREE);
	bin_free(h, b, s);
	return b;
}

/* Shrink used block b to s bytes, freeing the tail when it makes a block. */
static void split_tail(struct kheap *h, uintptr_t b, size_t s, struct kh_err *e)
{
	size_t bs = kh_size(b);
	if (bs - s < KH_MIN_BLOCK)
		return;
	kh_word keep = kh_flags(b);
	unsigned alg = kh_alg(b);
	kh_set(h, b + s, bs - s, KH_USED, 0);
	kh_set(h, b, s, keep, alg);
	if (kh_backend_free(h, b + s, e) == 0) /* corrupt neighbour: undo */
		kh_set(h, b, bs, keep, alg);
}

/* Where the block of an align-aligned payload of s bytes starts inside
 * free block b: at b itself when b's payload is aligned, else past a gap
 * that makes a free block of its own (at least KH_MIN_BLOCK). 0 when it
 * does not fit. */
static uintptr_t aligned_spot(uintptr_t b, size_t s, size_t align)
{
	uintptr_t p = (b + KH_HDR + align - 1) & ~(uintptr_t)(align - 1);
	if (p - KH_HDR != b && p - KH_HDR - b < KH_MIN_BLOCK)
		p += align;
	size_t gap = p - KH_HDR - b, bs = kh_size(b);
	return gap <= bs && s <= bs - gap ? p - KH_HDR : 0;
}

/* An aligned block asks only for the slack it needs: the two blocks a
 * plain request of s would get (the first fit above, the head of its own
 * bin) are tried as they lie, and only when neither can place the payload
 * does it ask for s + align + 16, which any block holds wherever it lies. */
uintptr_t kh_backend_aligned(struct kheap *h, size_t s, size_t align, struct kh_err *e)
{
	unsigned fl, sl;
	uintptr_t b = 0, nb = 0;
	if (injected_fault())
		return 0;
	for (int i = 0; i < 2 && nb == 0; i++) {
		b = i == 0 ? bin_above(h, s, &fl, &sl) : own_head(h, s, &fl, &sl);
		if (b != 0 && !sound(h, b))
			return take(h, b, fl, sl, s, e); /* reports it */
		nb = b != 0 ? aligned_spot(b, s, align) : 0;
	}
	if (nb != 0) {
		b = take(h, b, fl, sl, nb - b + s, e);
	} else {
		b = find_fit(h, s + align + KH_GRANULE, &fl, &sl);
		b = b != 0 ? take(h, b, fl, sl, s + align + KH_GRANULE, e) : 0;
		nb = b != 0 ? aligned_spot(b, s, align) : 0;
	}
	if (b == 0)
		return 0;
	if (nb != b) {
		size_t gap = nb - b, bs = kh_size(b);
		kh_set(h, nb, bs - gap, KH_USED, 0);
		make_free(h, b, gap);
	}
	split_tail(h, nb, s, e);
	return nb;
}

static bool resize(struct kheap *h, uintptr_t b, size_t s, struct kh_err *e)
{
	size_t cur = kh_size(b);
	if (s <= cur) {
		split_tail(h, b, s, e);
		return e->kind == KHEAP_OK;
	}
	uintptr_t nx = b + cur;
	if (kh_used(nx) || cur + kh_size(nx) < s)
		return false;
	if (!kh_bin_remove(h, nx, e))
		return false;
	kh_poison_check(nx, e);
	size_t total = cur + kh_size(nx);
	kill(h, nx);
	kh_set(h, b, total, kh_flags(b), kh_alg(b));
	kh_set_flags(h, b + total, kh_flags(b + total) & ~KH_PREV_FREE);
	split_tail(h, b, s, e);
	return true;
}

/* The tag lives at the block's end, which resizing moves, and a shrink's
 * freed tail overwrites: carry it over, so that a block resized in place
 * keeps the tag of the allocation that made it (kheap.h, KHEAP_TAGS). */
bool kh_backend_resize(struct kheap *h, uintptr_t b, size_t s, struct kh_err *e)
{
	struct kh_tag t = kh_tag_get(b);
	bool ok = resize(h, b, s, e);
	kh_tag_put(b, t);
	return ok;
}

/* The head of the highest non-empty bin: find_fit serves any request up to
 * its size (from a bin above the request's, or as the head of its own). */
size_t kh_largest_free(const struct kheap *h)
{
	if (h->fl_map == 0)
		return 0;
	unsigned fl = kh_fls64(h->fl_map), sl = kh_fls64(h->sl_map[fl]);
	uintptr_t b = h->bins[fl][sl];
	size_t floor = kh_bin_floor(fl, sl);
	return sound(h, b) && kh_size(b) > floor ? kh_size(b) : floor;
}

void kh_region_seed(struct kheap *h, struct kh_region *r)
{
	kh_set(h, r->end, 0, KH_USED, 0);
	make_free(h, r->first, r->end - r->first);
}

/* The damaged header at b (in r) as a quarantined block, from b up to
 * where kh_resync picks the walk up again (a sound header closer than one
 * block cannot be a block boundary, so it is part of the damage). When the
 * block was free, the footer before that point still tells its extent:
 * then only its first KH_MIN_BLOCK bytes are quarantined and the rest is
 * left as an unbinned free block for the walk to bin. Returns the end of
 * the quarantined block. */
static uintptr_t quarantine(struct kheap *h, const struct kh_region *r, uintptr_t b)
{
	uintptr_t x = kh_resync(h, r, b);
	while (x - b < KH_MIN_BLOCK && x < r->end)
		x = kh_resync(h, r, x);
	uintptr_t q = x;
	if (kh_ok(h, x) && kh_prev_free(x)) {
		kh_word f = *(kh_word *)(x - KH_HDR);
		if ((size_t)(f & KH_SIZE_MASK) == x - b && kh_sealed(h, b, f) && !(f & KH_USED) &&
		    x - b >= 2 * KH_MIN_BLOCK)
			q = b + KH_MIN_BLOCK;
	}
	kh_set(h, b, q - b, KH_USED | KH_CACHED, KH_QUARANTINE_ALG);
	if (q != x)
		kh_set(h, q, x - q, 0, 0);
	return q;
}

/* Rebuild one region's bins from its headers: free blocks are merged into
 * maximal free runs and binned afresh, used blocks (the ones on per-CPU
 * lists and object caches included, the shared lists' not) are counted, damaged headers
 * quarantined. */
static void rebuild_region(struct kheap *h, const struct kh_region *r)
{
	uintptr_t run = 0, b = r->first;
	while (b < r->end) {
		kh_word w = *kh_hdr(b);
		if (!kh_block_sane(h, r, b, w)) {
			quarantine(h, r, b);
			w = *kh_hdr(b);
		}
		size_t s = (size_t)(w & KH_SIZE_MASK);
		bool avail = !(w & KH_USED);
		if (avail && run == 0) {
			run = b;
		} else if (avail) {
			kill(h, b);
		} else {
			if (run != 0)
				make_free(h, run, b - run);
			else if (w & KH_PREV_FREE)
				kh_set_flags(h, b, (w & KH_FLAGS) & ~KH_PREV_FREE);
			run = 0;
			/* Object-cache blocks all count as in use, wherever they are. */
			if (kh_token_cpu(h, b) != KH_SHARED || (w & KH_CACHED)) {
				h->n.in_use += s;
				h->n.used_blocks++;
			}
		}
		b += s;
	}
	if (run != 0)
		make_free(h, run, b - run);
	else
		kh_set_flags(h, b, KH_USED);
}

/* Rebuild every bin and class list from the headers alone, after a corrupt
 * link was found: forged or overwritten links are simply forgotten. Free
 * blocks are merged into maximal free runs and binned afresh; cached blocks
 * stay on their lists (a corrupt list is repaired on its own,
 * kh_slot_repair). The walk resyncs past a damaged header as kheap_check
 * does, so every sound block before and after it serves again; the damaged
 * span is quarantined (never handed out, named by kheap_check). The in-use
 * counters are recomputed.
 * O(blocks); runs only on the corruption path. */
void kh_rebuild(struct kheap *h)
{
	kh_batch_quiesce(h); /* the counters must see a claimed batch as in use */
	for (unsigned fl = 0; fl < KH_FL_COUNT; fl++) {
		h->sl_map[fl] = 0;
		for (unsigned sl = 0; sl < KH_SL_COUNT; sl++)
			h->bins[fl][sl] = 0;
	}
	h->fl_map = 0;
	h->n.free = h->n.free_blocks = 0;
	h->n.in_use = h->n.used_blocks = 0;
	for (unsigned i = 0; i < h->nregions; i++)
		rebuild_region(h, &h->regions[i]);
	if (h->n.in_use > h->n.peak)
		h->n.peak = h->n.in_use;
}
