/*
 * kh_leak.c: the conservative leak scan's engine: the scratch layout, the
 * mark bits and index, marking from roots and through marked blocks, and
 * the passes that finish a scan whose mark stack overflowed (contract in
 * kheap.h, "Leak scan"; the walks and restarts in kh_leak_scan.c, the
 * ignore table and the report in kh_leak_report.c).
 *
 * Scratch layout, carved from the caller's memory (8-aligned), per region r
 * of the heap in order:
 *
 *   | mark bits  | done bits  | index                          |  ... | stack ->
 *     1 per 32 B   1 per 32 B   one block address per 2^pshift B
 *
 * A block's bit is (b - first) >> 5: block starts are 8 mod 16 and at least
 * KH_MIN_BLOCK apart, so no two blocks share a 32-byte unit. "mark" means
 * reachable; "done" means its words were scanned. index[p] is the block
 * that holds the first byte of page p, so the block around any address is
 * at most 2^pshift / KH_MIN_BLOCK header steps away. The stack holds marked
 * blocks waiting to be scanned; a block marked while it is full is left for
 * a pass (a walk that scans every marked block not done).
 *
 * Nothing here writes to the heap's blocks. The only heap memory written is
 * the mark table at the end of struct kheap, under the lock.
 */
#include "kh_leak.h"

#ifdef KH_FAULT_INJECT
/* Test builds: called in every window between two slices, with the lock
 * released and interrupts restored, as an interrupt handler would run. */
void (*kh_leak_window_hook)(struct kheap *h);
#endif

/* ---- scratch geometry ----------------------------------------------------- */

size_t lk_bits_words(const struct kh_region *r)
{
	size_t units = ((r->end - r->first) >> LK_UNIT_LOG2) + 1;
	return (units + 63) / 64;
}

static size_t lk_index_words(const struct kh_region *r, unsigned pshift)
{
	return ((r->end - r->first - 1) >> pshift) + 1;
}

/* Bytes the marks and an index of 2^pshift-byte pages take for all regions. */
static size_t lk_layout_bytes(const struct kheap *h, unsigned pshift)
{
	size_t n = 0;
	for (unsigned i = 0; i < h->nregions; i++)
		n += 2 * lk_bits_words(&h->regions[i]) * sizeof(uint64_t) +
		     lk_index_words(&h->regions[i], pshift) * sizeof(uintptr_t);
	return n;
}

static size_t lk_scratch_min(const struct kheap *h)
{
	return lk_layout_bytes(h, LK_PSHIFT_MAX) + LK_STACK_MIN * sizeof(uintptr_t) + sizeof(uintptr_t);
}

size_t kheap_leak_scratch_size(struct kheap *h, size_t *min)
{
	size_t full = 0, lo = 0;
	if (kh_live(h)) {
		uintptr_t irq = kh_enter(h);
		struct kheap_stats st;
		kh_stats_locked(h, &st);
		lo = lk_scratch_min(h);
		full = lk_layout_bytes(h, LK_PSHIFT_MIN) +
		       (st.used_blocks + KHEAP_LEAK_IGNORE_MAX) * sizeof(uintptr_t) + sizeof(uintptr_t);
		kh_exit(h, irq);
	}
	if (min != NULL)
		*min = lo;
	return full;
}

/* Carve scratch for the heap as it is now: the finest index that leaves
 * LK_STACK_MIN stack entries, the rest for the stack. False when even the
 * coarsest does not fit. Lock held. */
bool lk_carve(struct scan *s, void *scratch, size_t size)
{
	uintptr_t a = ((uintptr_t)scratch + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
	size_t have = size - (a - (uintptr_t)scratch), reserve = LK_STACK_MIN * sizeof(uintptr_t);
	if (size < lk_scratch_min(s->h))
		return false;
	s->pshift = LK_PSHIFT_MIN;
	while (lk_layout_bytes(s->h, s->pshift) + reserve > have)
		s->pshift++;
	s->nrg = s->h->nregions;
	for (unsigned i = 0; i < s->nrg; i++) {
		const struct kh_region *r = &s->h->regions[i];
		struct lk_region *g = &s->rg[i];
		g->r = r;
		g->mark = (uint64_t *)a;
		g->done = g->mark + lk_bits_words(r);
		g->index = (uintptr_t *)(g->done + lk_bits_words(r));
		a = (uintptr_t)(g->index + lk_index_words(r, s->pshift));
	}
	s->stack = (uintptr_t *)a;
	s->cap = (size - (a - (uintptr_t)scratch)) / sizeof(uintptr_t);
	return true;
}

/* ---- bits ----------------------------------------------------------------- */


struct lk_region *lk_region_for(struct scan *s, uintptr_t v)
{
	for (unsigned i = 0; i < s->nrg; i++)
		if (v >= s->rg[i].r->first && v < s->rg[i].r->end)
			return &s->rg[i];
	return NULL;
}

/* ---- marking -------------------------------------------------------------- */

/* The block of region g whose bytes include v (first <= v < end), found from
 * the index in at most 2^pshift / KH_MIN_BLOCK + 1 steps; 0 when a header on
 * the way is not sound, which after the setup's check means a window changed
 * the heap. */
static uintptr_t lk_block_at(struct scan *s, const struct lk_region *g, uintptr_t v)
{
	uintptr_t b = g->index[(v - g->r->first) >> s->pshift];
	for (;;) {
		kh_word w = *kh_hdr(b);
		if (!kh_block_sane(s->h, g->r, b, w)) {
			s->st = LK_TORN;
			return 0;
		}
		if (v - b < (size_t)(w & KH_SIZE_MASK))
			return b;
		b += (size_t)(w & KH_SIZE_MASK);
	}
}

/* Mark held block b of g and queue it; or, with the stack full, leave it
 * for a pass. */
void lk_mark(struct scan *s, struct lk_region *g, uintptr_t b)
{
	lk_set_bit(g->mark, lk_unit(g, b));
	if (s->top < s->cap)
		s->stack[s->top++] = b;
	else
		s->overflow = true;
}

static void lk_consider(struct scan *s, uintptr_t v)
{
	struct lk_region *g = lk_region_for(s, v);
	if (g == NULL)
		return;
	uintptr_t b = lk_block_at(s, g, v);
	if (b == 0 || lk_bit(g->mark, lk_unit(g, b)) || !kh_held_by_caller(s->h, b, *kh_hdr(b)))
		return;
	lk_mark(s, g, b);
}

static void lk_read_words(struct scan *s)
{
	while (s->wpos < s->wend && s->budget != 0 && s->st == LK_RUN) {
		uintptr_t v = *(const kh_any_word *)s->wpos;
		s->wpos += sizeof(uintptr_t);
		s->budget--;
		lk_consider(s, v);
	}
}

/* Start reading marked block b's usable bytes, and call it done. */
static void lk_open_block(struct scan *s, struct lk_region *g, uintptr_t b)
{
	lk_set_bit(g->done, lk_unit(g, b));
	s->wpos = (uintptr_t)kh_payload(b);
	s->wend = s->wpos + kh_usable(b);
}

static void lk_pop(struct scan *s)
{
	uintptr_t b = s->stack[--s->top];
	lk_open_block(s, lk_region_for(s, b), b);
}

/* ---- roots ---------------------------------------------------------------- */

/* The next piece of the roots, with the heap's regions and the scratch cut
 * out, into [wpos, wend); false when none is left. The cut-out ranges are
 * word-aligned (skips), so every piece is a whole number of words. */
static bool lk_next_root(struct scan *s)
{
	const uintptr_t al = sizeof(uintptr_t) - 1;
	while (s->ri < s->nroots) {
		uintptr_t lo = ((uintptr_t)s->roots[s->ri].lo + al) & ~al;
		uintptr_t hi = (uintptr_t)s->roots[s->ri].hi & ~al;
		uintptr_t a = s->rpos > lo ? s->rpos : lo;
		for (unsigned k = 0; k < s->nskip; k++) /* leave any range a lies in */
			if (a >= s->skip_lo[k] && a < s->skip_hi[k]) {
				a = s->skip_hi[k];
				k = (unsigned)-1;
			}
		if (a >= hi) {
			s->ri++;
			s->rpos = 0;
			continue;
		}
		uintptr_t z = hi;
		for (unsigned k = 0; k < s->nskip; k++)
			if (s->skip_lo[k] > a && s->skip_lo[k] < z)
				z = s->skip_lo[k];
		s->wpos = a;
		s->wend = z;
		s->rpos = z;
		s->res.root_bytes += z - a;
		return true;
	}
	return false;
}

/* ---- passes --------------------------------------------------------------- */

/* One header of a pass: open the block if it is marked and not done. */
static void lk_pass_step(struct scan *s)
{
	s->budget--;
	if (s->pr == s->nrg) {
		s->in_pass = false;
		return;
	}
	struct lk_region *g = &s->rg[s->pr];
	uintptr_t b = s->pb;
	if (b >= g->r->end) {
		if (++s->pr < s->nrg)
			s->pb = s->rg[s->pr].r->first;
		return;
	}
	kh_word w = *kh_hdr(b);
	if (!kh_block_sane(s->h, g->r, b, w)) {
		s->st = LK_TORN;
		return;
	}
	s->pb = b + (size_t)(w & KH_SIZE_MASK);
	if (lk_bit(g->mark, lk_unit(g, b)) && !lk_bit(g->done, lk_unit(g, b)))
		lk_open_block(s, g, b);
}

/* Work until the slice's budget runs out or the mark is complete. */
void lk_mark_slice(struct scan *s)
{
	while (s->budget != 0 && s->st == LK_RUN) {
		if (s->wpos < s->wend)
			lk_read_words(s);
		else if (s->top != 0)
			lk_pop(s);
		else if (s->in_pass)
			lk_pass_step(s);
		else if (lk_next_root(s))
			continue;
		else if (s->overflow) {
			s->overflow = false;
			s->in_pass = true;
			s->pr = 0;
			s->pb = s->rg[0].r->first;
			s->res.passes++;
		} else
			s->st = LK_DONE;
	}
}

