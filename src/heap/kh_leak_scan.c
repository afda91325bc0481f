/*
 * kh_leak_scan.c: the leak scan's setup and report walks (the index, the
 * ignore marks, the fingerprint that tells whether an interrupt window
 * changed the heap), its restarts, and kheap_leak_scan (contract in
 * kheap.h, "Leak scan"; marking in kh_leak.c).
 */
#include "kh_leak.h"

/* ---- setup and report walks ------------------------------------------------ */

static kh_word lk_fp_step(kh_word f, uintptr_t b, kh_word w)
{
	f = (f ^ w ^ (kh_word)b) * (kh_word)0x9e3779b97f4a7c15u;
	return f ^ (f >> 29);
}

static uint64_t lk_op_count(const struct kheap *h)
{
	struct kheap_stats st;
	kh_stats_locked(h, &st);
	return st.alloc_count + st.free_count;
}

static void lk_fill_index(struct scan *s, struct lk_region *g, uintptr_t b, size_t size)
{
	size_t p = ((b - g->r->first) + ((size_t)1 << s->pshift) - 1) >> s->pshift;
	for (; (p << s->pshift) < b + size - g->r->first; p++)
		g->index[p] = b;
}

/* Clear the bits, build the index, count the held blocks and take the
 * fingerprint; false, with s->bad, at a corrupt header. Lock held. */
static bool lk_setup_region(struct scan *s, struct lk_region *g)
{
	for (size_t i = 0; i < 2 * lk_bits_words(g->r); i++)
		g->mark[i] = 0; /* done follows mark */
	for (uintptr_t b = g->r->first; b < g->r->end;) {
		kh_word w = *kh_hdr(b);
		if (!kh_block_sane(s->h, g->r, b, w)) {
			s->bad = b;
			return false;
		}
		size_t size = (size_t)(w & KH_SIZE_MASK);
		lk_fill_index(s, g, b, size);
		s->fp = lk_fp_step(s->fp, b, w);
		s->res.held += kh_held_by_caller(s->h, b, w);
		b += size;
	}
	return true;
}

/* The ignored blocks are marked and queued like roots; stale entries go. */
static void lk_setup_marks(struct scan *s)
{
	for (unsigned i = 0; i < KHEAP_LEAK_IGNORE_MAX; i++) {
		struct kh_leak_mark *m = &s->h->leak_marks[i];
		if (!lk_mark_live(s->h, m)) {
			m->b = 0;
			continue;
		}
		struct lk_region *g = lk_region_for(s, m->b);
		s->res.ignored++;
		if (!lk_bit(g->mark, lk_unit(g, m->b)))
			lk_mark(s, g, m->b);
	}
}

static bool lk_setup(struct scan *s)
{
	for (unsigned i = 0; i < s->nrg; i++)
		if (!lk_setup_region(s, &s->rg[i]))
			return false;
	lk_setup_marks(s);
	s->ops = lk_op_count(s->h);
	return true;
}

/* Has anything changed since the setup? The counts catch every allocation
 * and free (per-CPU ones included); the fingerprint catches the rest
 * (resizes in place, merges by a trim). Lock held. O(blocks). */
static bool lk_unchanged(struct scan *s)
{
	kh_word f = 0;
	if (s->h->nregions != s->nrg || lk_op_count(s->h) != s->ops)
		return false;
	for (unsigned i = 0; i < s->nrg; i++) {
		const struct kh_region *r = s->rg[i].r;
		for (uintptr_t b = r->first; b < r->end;) {
			kh_word w = *kh_hdr(b);
			if (!kh_block_sane(s->h, r, b, w))
				return false;
			f = lk_fp_step(f, b, w);
			b += (size_t)(w & KH_SIZE_MASK);
		}
	}
	return f == s->fp;
}

/* Call fn for every held block left unmarked. Lock held; the heap is as
 * the setup saw it. */
static void lk_report(struct scan *s, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out)
{
	struct kheap_stats st;
	kh_stats_locked(s->h, &st);
	s->res.allocs = out->allocs = st.alloc_count;
	for (unsigned i = 0; i < s->nrg; i++) {
		struct lk_region *g = &s->rg[i];
		for (uintptr_t b = g->r->first; b < g->r->end; b = kh_next_blk(b)) {
			if (lk_bit(g->mark, lk_unit(g, b)) || !kh_held_by_caller(s->h, b, *kh_hdr(b)))
				continue;
			s->res.leaks++;
			s->res.leak_bytes += kh_usable(b);
			if (fn != NULL) {
				struct kh_tag t = kh_tag_get(b);
				fn(ctx, kh_payload(b), kh_usable(b), t.site, t.seq);
			}
		}
	}
}

/* ---- driver ---------------------------------------------------------------- */

enum { LK_SMALL = LK_BAD + 1 };

/* The ranges roots are clipped by: every region (control block included)
 * and the scratch. False when the scratch overlaps a region. Lock held. */
static bool lk_skips(struct scan *s, const void *scratch, size_t size)
{
	const uintptr_t al = sizeof(uintptr_t) - 1;
	uintptr_t lo = (uintptr_t)scratch & ~al, hi = ((uintptr_t)scratch + size + al) & ~al;
	s->nskip = 0;
	for (unsigned i = 0; i < s->h->nregions; i++) {
		s->skip_lo[s->nskip] = s->h->regions[i].lo & ~al;
		s->skip_hi[s->nskip++] = (s->h->regions[i].hi + al) & ~al;
		if (lo < s->h->regions[i].hi && s->h->regions[i].lo < hi)
			return false;
	}
	s->skip_lo[s->nskip] = lo;
	s->skip_hi[s->nskip++] = hi;
	return true;
}

/* Field by field: a struct copy would be a memcpy call on some targets,
 * and the library links against no C library. */
static void lk_copy_result(struct kheap_leak_result *d, const struct kheap_leak_result *r)
{
	d->leaks = r->leaks;
	d->leak_bytes = r->leak_bytes;
	d->held = r->held;
	d->ignored = r->ignored;
	d->root_bytes = r->root_bytes;
	d->passes = r->passes;
	d->restarts = r->restarts;
	d->allocs = r->allocs;
}

static void lk_clear_result(struct kheap_leak_result *d)
{
	d->leaks = d->leak_bytes = d->held = d->ignored = d->root_bytes = 0;
	d->passes = d->restarts = 0;
	d->allocs = 0;
}

static void lk_restart_state(struct scan *s)
{
	s->top = 0;
	s->overflow = s->in_pass = false;
	s->ri = 0;
	s->rpos = 0;
	s->wpos = s->wend = 0;
	s->st = LK_RUN;
	s->fp = 0;
	unsigned restarts = s->res.restarts;
	lk_clear_result(&s->res);
	s->res.restarts = restarts;
}

/* One attempt: setup, mark (in slices when sliced), check, report. Returns
 * LK_DONE, LK_TORN (a window changed the heap), LK_BAD or LK_SMALL. */
static int lk_attempt(struct scan *s, void *scratch, size_t size, bool sliced, kheap_leak_fn fn, void *ctx,
		   struct kheap_leak_result *out)
{
	struct kheap *h = s->h;
	uintptr_t irq = kh_enter(h);
	lk_restart_state(s);
	if (!lk_skips(s, scratch, size) || !lk_carve(s, scratch, size)) {
		kh_exit(h, irq);
		return LK_SMALL;
	}
	if (!lk_setup(s)) {
		kh_exit(h, irq);
		return LK_BAD;
	}
	for (;;) {
		s->budget = sliced ? KHEAP_LEAK_SLICE : SIZE_MAX;
		lk_mark_slice(s);
		if (s->st != LK_RUN)
			break;
		kh_exit(h, irq);
#ifdef KH_FAULT_INJECT
		if (kh_leak_window_hook != NULL)
			kh_leak_window_hook(h);
#endif
		irq = kh_enter(h);
		if (h->nregions != s->nrg || lk_op_count(h) != s->ops)
			s->st = LK_TORN;
	}
	if (s->st == LK_DONE && !lk_unchanged(s))
		s->st = LK_TORN;
	if (s->st == LK_DONE)
		lk_report(s, fn, ctx, out);
	kh_exit(h, irq);
	return (int)s->st;
}

/* kheap_leak_scan with out always given, its allocs set before fn runs. */
int lk_leak_scan(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		     size_t size, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out, const void *caller)
{
	lk_clear_result(out);
	if (!kh_live(h)) {
		kh_report_global(KHEAP_E_BAD_HEAP, h, caller, "not a live heap handle");
		return -KHEAP_E_BAD_HEAP;
	}
	if ((roots == NULL && nroots != 0) || scratch == NULL)
		return -KHEAP_E_NULL;
	struct scan s;
	s.h = h;
	s.roots = roots;
	s.nroots = nroots;
	s.res.restarts = 0;
	int st;
	while ((st = lk_attempt(&s, scratch, size, s.res.restarts < KHEAP_LEAK_RETRIES, fn, ctx, out)) == LK_TORN &&
	       s.res.restarts <= KHEAP_LEAK_RETRIES)
		s.res.restarts++;
	if (st == LK_DONE) {
		lk_copy_result(out, &s.res);
		return 0;
	}
	lk_clear_result(out);
	if (st == LK_SMALL)
		return -KHEAP_E_BAD_ARG;
	/* A corrupt header; or the heap changed while the last attempt held
	 * the lock throughout, which only a broken contract explains. */
	struct kh_err e = KH_ERR_INIT;
	kh_fail(&e, KHEAP_E_BAD_HEADER, st == LK_BAD ? kh_payload(s.bad) : NULL,
		st == LK_BAD ? "leak scan: block header corrupt" : "leak scan: heap changed under the lock");
	kh_report(h, &e, caller);
	return -KHEAP_E_BAD_HEADER;
}

int kheap_leak_scan(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		    size_t scratch_size, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out)
{
	struct kheap_leak_result r;
	int rc = lk_leak_scan(h, roots, nroots, scratch, scratch_size, fn, ctx, &r, __builtin_return_address(0));
	if (out != NULL)
		lk_copy_result(out, &r);
	return rc;
}

