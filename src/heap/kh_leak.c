/*
 * kh_leak.c: the conservative leak scan, kheap_leak_ignore's table and the
 * leak report (contract in kheap.h, "Leak scan").
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
#include "kh_internal.h"

/* Words read from roots and blocks, of whatever type was stored there. */
typedef uintptr_t __attribute__((may_alias)) kh_any_word;

#define LK_UNIT_LOG2 5
#define LK_PSHIFT_MIN 8u  /* finest index: at most 8 + 1 header steps */
#define LK_PSHIFT_MAX 12u /* coarsest: at most 128 + 1 */
#define LK_STACK_MIN 16u
#define LK_SKIP_MAX (KHEAP_MAX_REGIONS + 1u)

_Static_assert(KH_MIN_BLOCK == (size_t)1 << LK_UNIT_LOG2, "one mark bit per smallest block");
_Static_assert(KHEAP_LEAK_SLICE >= 1, "a slice does some work");

struct lk_region {
	const struct kh_region *r;
	uint64_t *mark, *done;
	uintptr_t *index;
};

enum lk_status { LK_RUN, LK_DONE, LK_TORN, LK_BAD };

struct scan {
	struct kheap *h;
	const struct kheap_range *roots;
	size_t nroots;
	uintptr_t skip_lo[LK_SKIP_MAX], skip_hi[LK_SKIP_MAX];
	unsigned nskip;
	struct lk_region rg[KHEAP_MAX_REGIONS];
	unsigned nrg, pshift;
	uintptr_t *stack;
	size_t cap, top;
	bool overflow, in_pass;
	size_t ri;          /* root being read */
	uintptr_t rpos;     /* where in it */
	uintptr_t wpos, wend; /* words being read now */
	unsigned pr;        /* pass cursor: region and block */
	uintptr_t pb;
	size_t budget;      /* words or headers left in this slice */
	enum lk_status st;
	uintptr_t bad;      /* a corrupt header the setup walk found */
	uint64_t ops;       /* allocs + frees at the setup */
	kh_word fp;         /* fingerprint of the headers at the setup */
	struct kheap_leak_result res;
};

#ifdef KH_FAULT_INJECT
/* Test builds: called in every window between two slices, with the lock
 * released and interrupts restored, as an interrupt handler would run. */
void (*kh_leak_window_hook)(struct kheap *h);
#endif

/* ---- scratch geometry ----------------------------------------------------- */

static size_t bits_words(const struct kh_region *r)
{
	size_t units = ((r->end - r->first) >> LK_UNIT_LOG2) + 1;
	return (units + 63) / 64;
}

static size_t index_words(const struct kh_region *r, unsigned pshift)
{
	return ((r->end - r->first - 1) >> pshift) + 1;
}

/* Bytes the marks and an index of 2^pshift-byte pages take for all regions. */
static size_t layout_bytes(const struct kheap *h, unsigned pshift)
{
	size_t n = 0;
	for (unsigned i = 0; i < h->nregions; i++)
		n += 2 * bits_words(&h->regions[i]) * sizeof(uint64_t) +
		     index_words(&h->regions[i], pshift) * sizeof(uintptr_t);
	return n;
}

static size_t scratch_min(const struct kheap *h)
{
	return layout_bytes(h, LK_PSHIFT_MAX) + LK_STACK_MIN * sizeof(uintptr_t) + sizeof(uintptr_t);
}

size_t kheap_leak_scratch_size(struct kheap *h, size_t *min)
{
	size_t full = 0, lo = 0;
	if (kh_live(h)) {
		uintptr_t irq = kh_enter(h);
		struct kheap_stats st;
		kh_stats_locked(h, &st);
		lo = scratch_min(h);
		full = layout_bytes(h, LK_PSHIFT_MIN) +
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
static bool carve(struct scan *s, void *scratch, size_t size)
{
	uintptr_t a = ((uintptr_t)scratch + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
	size_t have = size - (a - (uintptr_t)scratch), reserve = LK_STACK_MIN * sizeof(uintptr_t);
	if (size < scratch_min(s->h))
		return false;
	s->pshift = LK_PSHIFT_MIN;
	while (layout_bytes(s->h, s->pshift) + reserve > have)
		s->pshift++;
	s->nrg = s->h->nregions;
	for (unsigned i = 0; i < s->nrg; i++) {
		const struct kh_region *r = &s->h->regions[i];
		struct lk_region *g = &s->rg[i];
		g->r = r;
		g->mark = (uint64_t *)a;
		g->done = g->mark + bits_words(r);
		g->index = (uintptr_t *)(g->done + bits_words(r));
		a = (uintptr_t)(g->index + index_words(r, s->pshift));
	}
	s->stack = (uintptr_t *)a;
	s->cap = (size - (a - (uintptr_t)scratch)) / sizeof(uintptr_t);
	return true;
}

/* ---- bits ----------------------------------------------------------------- */

static size_t unit(const struct lk_region *g, uintptr_t b) { return (b - g->r->first) >> LK_UNIT_LOG2; }
static bool bit(const uint64_t *m, size_t u) { return (m[u / 64] >> (u % 64)) & 1u; }
static void set_bit(uint64_t *m, size_t u) { m[u / 64] |= (uint64_t)1 << (u % 64); }

static struct lk_region *region_for(struct scan *s, uintptr_t v)
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
static uintptr_t block_at(struct scan *s, const struct lk_region *g, uintptr_t v)
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
static void mark(struct scan *s, struct lk_region *g, uintptr_t b)
{
	set_bit(g->mark, unit(g, b));
	if (s->top < s->cap)
		s->stack[s->top++] = b;
	else
		s->overflow = true;
}

static void consider(struct scan *s, uintptr_t v)
{
	struct lk_region *g = region_for(s, v);
	if (g == NULL)
		return;
	uintptr_t b = block_at(s, g, v);
	if (b == 0 || bit(g->mark, unit(g, b)) || !kh_held_by_caller(s->h, b, *kh_hdr(b)))
		return;
	mark(s, g, b);
}

static void read_words(struct scan *s)
{
	while (s->wpos < s->wend && s->budget != 0 && s->st == LK_RUN) {
		uintptr_t v = *(const kh_any_word *)s->wpos;
		s->wpos += sizeof(uintptr_t);
		s->budget--;
		consider(s, v);
	}
}

/* Start reading marked block b's usable bytes, and call it done. */
static void open_block(struct scan *s, struct lk_region *g, uintptr_t b)
{
	set_bit(g->done, unit(g, b));
	s->wpos = (uintptr_t)kh_payload(b);
	s->wend = s->wpos + kh_usable(b);
}

static void pop(struct scan *s)
{
	uintptr_t b = s->stack[--s->top];
	open_block(s, region_for(s, b), b);
}

/* ---- roots ---------------------------------------------------------------- */

/* The next piece of the roots, with the heap's regions and the scratch cut
 * out, into [wpos, wend); false when none is left. The cut-out ranges are
 * word-aligned (skips), so every piece is a whole number of words. */
static bool next_root(struct scan *s)
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
static void pass_step(struct scan *s)
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
	if (bit(g->mark, unit(g, b)) && !bit(g->done, unit(g, b)))
		open_block(s, g, b);
}

/* Work until the slice's budget runs out or the mark is complete. */
static void mark_slice(struct scan *s)
{
	while (s->budget != 0 && s->st == LK_RUN) {
		if (s->wpos < s->wend)
			read_words(s);
		else if (s->top != 0)
			pop(s);
		else if (s->in_pass)
			pass_step(s);
		else if (next_root(s))
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

/* ---- the ignore table ------------------------------------------------------ */

static kh_word mark_body(kh_word w) { return w & (KH_SIZE_MASK | KH_ALG_MASK); }

/* The held block whose payload is p, or 0 (header and token only; never
 * reports). Lock held. */
static uintptr_t held_block(const struct kheap *h, const void *p)
{
	struct kh_err ignored = KH_ERR_INIT;
	return p != NULL ? kh_held(h, p, &ignored, KH_HELD_HEADER) : 0;
}

/* Does entry m still name the block it was made for, held? Lock held. */
static bool mark_live(const struct kheap *h, const struct kh_leak_mark *m)
{
	if (m->b == 0 || held_block(h, kh_payload(m->b)) == 0 || mark_body(*kh_hdr(m->b)) != m->body)
		return false;
#if KHEAP_TAGS
	return kh_tag_get(m->b).seq == m->seq;
#else
	return true;
#endif
}

static void mark_fill(struct kh_leak_mark *m, uintptr_t b)
{
	m->b = b;
	m->body = mark_body(*kh_hdr(b));
#if KHEAP_TAGS
	m->seq = kh_tag_get(b).seq;
#endif
}

/* Record held block b; false when every entry names another live block. */
static bool mark_add(struct kheap *h, uintptr_t b)
{
	struct kh_leak_mark *spare = NULL;
	for (unsigned i = 0; i < KHEAP_LEAK_IGNORE_MAX; i++) {
		struct kh_leak_mark *m = &h->leak_marks[i];
		bool live = mark_live(h, m);
		if (live && m->b == b)
			return true;
		if (!live && spare == NULL)
			spare = m;
	}
	if (spare != NULL)
		mark_fill(spare, b);
	return spare != NULL;
}

int kheap_leak_ignore(struct kheap *h, const void *p)
{
	const void *caller = __builtin_return_address(0);
	if (!kh_live(h)) {
		kh_report_global(KHEAP_E_BAD_HEAP, h, caller, "not a live heap handle");
		return -KHEAP_E_BAD_HEAP;
	}
	struct kh_err e = KH_ERR_INIT;
	uintptr_t irq = kh_enter(h);
	uintptr_t b = held_block(h, p);
	if (b == 0)
		kh_fail(&e, KHEAP_E_BAD_ARG, p, "kheap_leak_ignore: not a block the caller holds");
	else if (!mark_add(h, b))
		kh_fail(&e, KHEAP_E_BAD_ARG, p, "kheap_leak_ignore: table full (KHEAP_LEAK_IGNORE_MAX)");
	kh_exit(h, irq);
	if (e.kind == KHEAP_OK)
		return 0;
	kh_report(h, &e, caller);
	return -(int)e.kind;
}

/* ---- setup and report walks ------------------------------------------------ */

static kh_word fp_step(kh_word f, uintptr_t b, kh_word w)
{
	f = (f ^ w ^ (kh_word)b) * (kh_word)0x9e3779b97f4a7c15u;
	return f ^ (f >> 29);
}

static uint64_t op_count(const struct kheap *h)
{
	struct kheap_stats st;
	kh_stats_locked(h, &st);
	return st.alloc_count + st.free_count;
}

static void fill_index(struct scan *s, struct lk_region *g, uintptr_t b, size_t size)
{
	size_t p = ((b - g->r->first) + ((size_t)1 << s->pshift) - 1) >> s->pshift;
	for (; (p << s->pshift) < b + size - g->r->first; p++)
		g->index[p] = b;
}

/* Clear the bits, build the index, count the held blocks and take the
 * fingerprint; false, with s->bad, at a corrupt header. Lock held. */
static bool setup_region(struct scan *s, struct lk_region *g)
{
	for (size_t i = 0; i < 2 * bits_words(g->r); i++)
		g->mark[i] = 0; /* done follows mark */
	for (uintptr_t b = g->r->first; b < g->r->end;) {
		kh_word w = *kh_hdr(b);
		if (!kh_block_sane(s->h, g->r, b, w)) {
			s->bad = b;
			return false;
		}
		size_t size = (size_t)(w & KH_SIZE_MASK);
		fill_index(s, g, b, size);
		s->fp = fp_step(s->fp, b, w);
		s->res.held += kh_held_by_caller(s->h, b, w);
		b += size;
	}
	return true;
}

/* The ignored blocks are marked and queued like roots; stale entries go. */
static void setup_marks(struct scan *s)
{
	for (unsigned i = 0; i < KHEAP_LEAK_IGNORE_MAX; i++) {
		struct kh_leak_mark *m = &s->h->leak_marks[i];
		if (!mark_live(s->h, m)) {
			m->b = 0;
			continue;
		}
		struct lk_region *g = region_for(s, m->b);
		s->res.ignored++;
		if (!bit(g->mark, unit(g, m->b)))
			mark(s, g, m->b);
	}
}

static bool setup(struct scan *s)
{
	for (unsigned i = 0; i < s->nrg; i++)
		if (!setup_region(s, &s->rg[i]))
			return false;
	setup_marks(s);
	s->ops = op_count(s->h);
	return true;
}

/* Has anything changed since the setup? The counts catch every allocation
 * and free (per-CPU ones included); the fingerprint catches the rest
 * (resizes in place, merges by a trim). Lock held. O(blocks). */
static bool unchanged(struct scan *s)
{
	kh_word f = 0;
	if (s->h->nregions != s->nrg || op_count(s->h) != s->ops)
		return false;
	for (unsigned i = 0; i < s->nrg; i++) {
		const struct kh_region *r = s->rg[i].r;
		for (uintptr_t b = r->first; b < r->end;) {
			kh_word w = *kh_hdr(b);
			if (!kh_block_sane(s->h, r, b, w))
				return false;
			f = fp_step(f, b, w);
			b += (size_t)(w & KH_SIZE_MASK);
		}
	}
	return f == s->fp;
}

/* Call fn for every held block left unmarked. Lock held; the heap is as
 * the setup saw it. */
static void report(struct scan *s, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out)
{
	struct kheap_stats st;
	kh_stats_locked(s->h, &st);
	s->res.allocs = out->allocs = st.alloc_count;
	for (unsigned i = 0; i < s->nrg; i++) {
		struct lk_region *g = &s->rg[i];
		for (uintptr_t b = g->r->first; b < g->r->end; b = kh_next_blk(b)) {
			if (bit(g->mark, unit(g, b)) || !kh_held_by_caller(s->h, b, *kh_hdr(b)))
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
static bool skips(struct scan *s, const void *scratch, size_t size)
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
static void copy_result(struct kheap_leak_result *d, const struct kheap_leak_result *r)
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

static void clear_result(struct kheap_leak_result *d)
{
	d->leaks = d->leak_bytes = d->held = d->ignored = d->root_bytes = 0;
	d->passes = d->restarts = 0;
	d->allocs = 0;
}

static void restart_state(struct scan *s)
{
	s->top = 0;
	s->overflow = s->in_pass = false;
	s->ri = 0;
	s->rpos = 0;
	s->wpos = s->wend = 0;
	s->st = LK_RUN;
	s->fp = 0;
	unsigned restarts = s->res.restarts;
	clear_result(&s->res);
	s->res.restarts = restarts;
}

/* One attempt: setup, mark (in slices when sliced), check, report. Returns
 * LK_DONE, LK_TORN (a window changed the heap), LK_BAD or LK_SMALL. */
static int attempt(struct scan *s, void *scratch, size_t size, bool sliced, kheap_leak_fn fn, void *ctx,
		   struct kheap_leak_result *out)
{
	struct kheap *h = s->h;
	uintptr_t irq = kh_enter(h);
	restart_state(s);
	if (!skips(s, scratch, size) || !carve(s, scratch, size)) {
		kh_exit(h, irq);
		return LK_SMALL;
	}
	if (!setup(s)) {
		kh_exit(h, irq);
		return LK_BAD;
	}
	for (;;) {
		s->budget = sliced ? KHEAP_LEAK_SLICE : SIZE_MAX;
		mark_slice(s);
		if (s->st != LK_RUN)
			break;
		kh_exit(h, irq);
#ifdef KH_FAULT_INJECT
		if (kh_leak_window_hook != NULL)
			kh_leak_window_hook(h);
#endif
		irq = kh_enter(h);
		if (h->nregions != s->nrg || op_count(h) != s->ops)
			s->st = LK_TORN;
	}
	if (s->st == LK_DONE && !unchanged(s))
		s->st = LK_TORN;
	if (s->st == LK_DONE)
		report(s, fn, ctx, out);
	kh_exit(h, irq);
	return (int)s->st;
}

/* kheap_leak_scan with out always given, its allocs set before fn runs. */
static int leak_scan(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		     size_t size, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out, const void *caller)
{
	clear_result(out);
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
	while ((st = attempt(&s, scratch, size, s.res.restarts < KHEAP_LEAK_RETRIES, fn, ctx, out)) == LK_TORN &&
	       s.res.restarts <= KHEAP_LEAK_RETRIES)
		s.res.restarts++;
	if (st == LK_DONE) {
		copy_result(out, &s.res);
		return 0;
	}
	clear_result(out);
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
	int rc = leak_scan(h, roots, nroots, scratch, scratch_size, fn, ctx, &r, __builtin_return_address(0));
	if (out != NULL)
		copy_result(out, &r);
	return rc;
}

/* ---- the report ------------------------------------------------------------ */

struct printer {
	kheap_putc_fn putc;
	void *ctx;
	const struct kheap_leak_result *res; /* allocs is set before any leak line */
};

static void put(const struct printer *p, const char *s)
{
	while (*s)
		p->putc(p->ctx, *s++);
}

static void put_num(const struct printer *p, const char *key, uint64_t v, unsigned base)
{
	char buf[KH_FMT_LEN];
	put(p, key);
	put(p, base == 16 ? "0x" : "");
	put(p, kh_fmt(buf, v, base));
}

static void leak_line(void *ctx, void *ptr, size_t size, const void *site, uint64_t seq)
{
	const struct printer *p = ctx;
	put_num(p, "kheap leak ptr=", (uintptr_t)ptr, 16);
	put_num(p, " size=", size, 10);
	if (KHEAP_TAGS) {
		put_num(p, " site=", (uintptr_t)site, 16);
		put_num(p, " seq=", seq, 10);
		put_num(p, " age=", p->res->allocs - seq, 10);
	}
	put(p, "\n");
}

int kheap_leak_report(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		      size_t scratch_size, kheap_putc_fn putc, void *ctx)
{
	struct kheap_leak_result r;
	struct printer p = {putc, ctx, &r};
	int rc = leak_scan(h, roots, nroots, scratch, scratch_size, putc != NULL ? leak_line : NULL, &p, &r,
			   __builtin_return_address(0));
	if (putc == NULL)
		return rc;
	if (rc != 0) {
		size_t min = 0;
		kheap_leak_scratch_size(h, &min);
		put_num(&p, "kheap leaks failed error=", (uint64_t)-rc, 10);
		put_num(&p, " need=", min, 10);
		put(&p, "\n");
		return rc;
	}
	const struct {
		const char *key;
		uint64_t v;
	} f[] = {
		{"kheap leaks n=", r.leaks}, {" bytes=", r.leak_bytes},   {" held=", r.held},
		{" ignored=", r.ignored},    {" roots=", r.root_bytes},  {" passes=", r.passes},
		{" restarts=", r.restarts},
	};
	for (unsigned i = 0; i < sizeof f / sizeof f[0]; i++)
		put_num(&p, f[i].key, f[i].v, 10);
	put(&p, "\n");
	return rc;
}
