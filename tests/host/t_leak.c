/*
 * t_leak.c: the leak scan (kheap.h, "Leak scan"). Graphs of blocks with a
 * known leaked set, rooted in static arrays (a stand-in for .data/.bss) and
 * in a local array (registers spilled to a stack); the scan must report
 * exactly that set, whatever the scratch size, and with tags the right sites
 * and sequence numbers. Every case zeroes its arena first, so no pointer left
 * in a block by an earlier case can keep anything alive. Freestanding: the
 * QEMU test kernel runs these cases too.
 */
#include "kt.h"

#define ARENA (256u << 10)
#define SCRATCH (64u << 10)
static _Alignas(16) unsigned char arena[ARENA];
static _Alignas(16) unsigned char arena2[64u << 10];
static _Alignas(16) unsigned char scratch[SCRATCH];

/* The roots: what a kernel's .data and .bss would hold. */
#define NROOT 64
static void *rootv[NROOT];

/* What a scan reported. */
#define LEAK_MAX 600
static struct found {
	unsigned n;
	struct {
		void *ptr;
		size_t size;
		const void *site;
		uint64_t seq;
	} b[LEAK_MAX];
} found;

static void record(void *ctx, void *ptr, size_t size, const void *site, uint64_t seq)
{
	struct found *f = ctx;
	if (f->n < LEAK_MAX) {
		f->b[f->n].ptr = ptr, f->b[f->n].size = size, f->b[f->n].site = site, f->b[f->n].seq = seq;
	}
	f->n++;
}

static struct kheap_leak_result res;

static void zero(void *p, size_t n)
{
	volatile unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		c[i] = 0;
}

static struct kheap *fresh(struct kt_rec *rec)
{
	zero(arena, ARENA);
	zero(rootv, sizeof rootv);
	return kt_heap(arena, ARENA, rec);
}

/* Scan with the roots array plus extra (may be NULL), scratch of size n. */
static int scan_n(struct kheap *h, const struct kheap_range *extra, size_t n)
{
	struct kheap_range r[2] = {{rootv, rootv + NROOT}, {0, 0}};
	if (extra != NULL)
		r[1] = *extra;
	found.n = 0;
	return kheap_leak_scan(h, r, 2, scratch, n, record, &found, &res);
}

static int scan(struct kheap *h) { return scan_n(h, NULL, SCRATCH); }

static int reported(const void *p)
{
	for (unsigned i = 0; i < found.n && i < LEAK_MAX; i++)
		if (found.b[i].ptr == p)
			return 1;
	return 0;
}

/* Was exactly the set want[0 .. n) reported, each once? */
static int exactly(void *const *want, unsigned n)
{
	if (found.n != n || res.leaks != n)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (!reported(want[i]))
			return 0;
	return 1;
}

struct node {
	struct node *next, *left, *right;
	uintptr_t payload[5];
};

static uint64_t arena_sum(void)
{
	uint64_t x = 0;
	for (size_t i = kheap_control_size(); i < ARENA; i++)
		x = (x ^ arena[i]) * 0x100000001b3u;
	return x;
}

static uint64_t allocs(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st.alloc_count;
}

static struct node *node(struct kheap *h) { return kheap_calloc(h, 1, sizeof(struct node)); }

KT_CASE(leak_list_from_a_root)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	struct node *n[10];
	for (unsigned i = 0; i < 10; i++) {
		n[i] = node(h);
		KT_REQUIRE(n[i] != NULL);
		if (i)
			n[i - 1]->next = n[i];
	}
	rootv[3] = n[0];
	/* The scan allocates nothing and writes nothing past the control block. */
	uint64_t sum0 = arena_sum(), allocs0 = allocs(h);
	KT_EQ(scan(h), 0);
	KT_EQ(arena_sum(), sum0);
	KT_EQ(allocs(h), allocs0);
	KT_CHECK(exactly(NULL, 0));
	KT_EQ(res.held, 10);
	KT_EQ(res.passes, 0);
	KT_EQ(res.root_bytes, sizeof rootv);
	/* The root now names the sixth node: the first five are lost. */
	rootv[3] = n[5];
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly((void **)n, 5));
	KT_EQ(res.leak_bytes, 5 * kheap_usable_size(h, n[0]));
	for (unsigned i = 0; i < found.n; i++)
		KT_EQ(found.b[i].size, kheap_usable_size(h, found.b[i].ptr));
	rootv[3] = NULL;
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly((void **)n, 10));
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

static struct node *tree(struct kheap *h, unsigned depth, struct node **all, unsigned *k)
{
	if (depth == 0)
		return NULL;
	struct node *t = node(h);
	if (t == NULL)
		return NULL;
	all[(*k)++] = t;
	t->left = tree(h, depth - 1, all, k);
	t->right = tree(h, depth - 1, all, k);
	return t;
}

/* Cutting a subtree loose leaks exactly its nodes. */
KT_CASE(leak_tree_subtree_cut)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	struct node *all[63];
	unsigned k = 0;
	struct node *t = tree(h, 6, all, &k);
	KT_REQUIRE(k == 63);
	rootv[0] = t;
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly(NULL, 0));
	/* Preorder: t->right's subtree is all[32 .. 63). */
	KT_REQUIRE(t->right == all[32]);
	t->right = NULL;
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly((void **)&all[32], 31));
	KT_EQ(rec.count, 0);
}

/* Cycles that nothing points to are leaks; a counted reference would keep
 * them forever, reachability does not. */
KT_CASE(leak_cycles_nothing_points_to)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	struct node *ring[5], *kept[4], *self = node(h);
	for (unsigned i = 0; i < 5; i++)
		ring[i] = node(h);
	for (unsigned i = 0; i < 4; i++)
		kept[i] = node(h);
	KT_REQUIRE(self && ring[4] && kept[3]);
	for (unsigned i = 0; i < 5; i++)
		ring[i]->next = ring[(i + 1) % 5];
	for (unsigned i = 0; i < 4; i++)
		kept[i]->next = kept[(i + 1) % 4];
	self->next = self;
	rootv[10] = kept[2];
	KT_EQ(scan(h), 0);
	void *want[6] = {ring[0], ring[1], ring[2], ring[3], ring[4], self};
	KT_CHECK(exactly(want, 6));
	KT_EQ(rec.count, 0);
}

/* A pointer anywhere into a block, from its header to its last byte, keeps
 * it; a pointer stored at an unaligned address is not seen. */
KT_CASE(leak_interior_pointers_count)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	char *a = kheap_alloc(h, 1000), *b = kheap_alloc(h, 1000), *c = kheap_alloc(h, 1000);
	char *d = kheap_alloc(h, 64), *e = kheap_alloc(h, 5000), *f = kheap_alloc(h, 100);
	KT_REQUIRE(a && b && c && d && e && f);
	zero(a, 1000), zero(b, 1000), zero(c, 1000), zero(e, 5000);
	rootv[0] = a + 500;
	rootv[1] = b + kheap_usable_size(h, b) - 1;
	rootv[2] = c - 8; /* its header */
	/* e holds an interior pointer to f, and the root one to e. */
	*(char **)(void *)(e + 4096) = f + 50;
	rootv[4] = e + 4000;
	/* d's address split over two words, at byte offset 4: not aligned. */
	unsigned char *u = (unsigned char *)&rootv[6] + 4;
	uintptr_t dv = (uintptr_t)d;
	for (unsigned i = 0; i < sizeof dv; i++)
		u[i] = (unsigned char)(dv >> (8 * i));
	KT_EQ(scan(h), 0);
	void *want[1] = {d};
	KT_CHECK(exactly(want, 1));
	KT_EQ(rec.count, 0);
}

/* A pointer stored only in a freed block, or in a block on a size-class or
 * per-CPU list, keeps nothing alive; such blocks are never reported. */
KT_CASE(leak_pointer_only_in_freed_block)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void **big = kheap_calloc(h, 1, 4000), **small = kheap_calloc(h, 1, 64);
	void *x = kheap_alloc(h, 48), *y = kheap_alloc(h, 48), *z = kheap_alloc(h, 48);
	KT_REQUIRE(big && small && x && y && z);
	big[0] = x, big[1] = x, big[100] = x;
	small[3] = y, small[5] = y; /* past the link and token words a cache writes */
	rootv[0] = big;
	rootv[1] = small;
	rootv[2] = z;
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly(NULL, 0));
	/* Freed, with the roots left dangling (as they often are): a freed
	 * block is not read even when a root still points into it. */
	kheap_free(h, big);   /* to the bins */
	kheap_free(h, small); /* to a size-class or per-CPU list */
	KT_EQ(scan(h), 0);
	void *want[2] = {x, y};
	KT_CHECK(exactly(want, 2));
	KT_EQ(res.held, 3);
	/* Freed small blocks with per-CPU caches on: held by no caller. */
	kt_percpu(1);
	void *s[8];
	for (unsigned i = 0; i < 8; i++)
		s[i] = kheap_alloc(h, 40);
	for (unsigned i = 0; i < 8; i++)
		kheap_free(h, s[i]);
	for (unsigned i = 0; i < 8; i++)
		rootv[20 + i] = s[i];
	kt_percpu(kt_percpu_default);
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly(want, 2));
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* Pointers held only in registers, spilled to a stack: the caller passes the
 * stack range as a root. Here a local array stands for that range. */
__attribute__((noinline)) static int scan_with_spills(struct kheap *h, void *p, void *q)
{
	void *volatile spill[6] = {0, p, 0, q, 0, 0};
	struct kheap_range stack = {(const void *)&spill[0], (const void *)&spill[6]};
	int rc = scan_n(h, &stack, SCRATCH);
	spill[1] = spill[3] = NULL;
	return rc;
}

KT_CASE(leak_pointers_only_in_a_stack_range)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	struct node *p = node(h), *q = node(h), *r = node(h), *child = node(h);
	KT_REQUIRE(p && q && r && child);
	q->left = child;
	KT_EQ(scan_with_spills(h, p, q), 0);
	void *want1[1] = {r};
	KT_CHECK(exactly(want1, 1));
	KT_EQ(scan(h), 0); /* without the stack range */
	void *want4[4] = {p, q, r, child};
	KT_CHECK(exactly(want4, 4));
	KT_EQ(rec.count, 0);
}

/* A fan-out block: n leaves, allocated before it (so at lower addresses). */
static void **fan(struct kheap *h, unsigned n)
{
	void *leaf[64];
	for (unsigned i = 0; i < n && i < 64; i++)
		leaf[i] = kheap_calloc(h, 1, 16);
	void **f = kheap_calloc(h, n + 1, sizeof(void *));
	for (unsigned i = 0; f != NULL && i < n && i < 64; i++)
		f[i] = leaf[i];
	return f;
}

/* A graph that needs a deep mark: a star of 300 blocks from one root, and a
 * list of 200 whose links all point backwards in memory (the worst case for
 * a pass in address order). The star's last block is a fan-out whose last
 * pointer is another fan-out at a lower address: with a short mark stack,
 * each one is found marked by a pass that has already gone past it. */
static void *star_and_list(struct kheap *h, void **leaked, unsigned *nleaked)
{
	void **star = kheap_calloc(h, 300, sizeof(void *));
	struct node *list[200];
	if (star == NULL)
		return NULL;
	for (unsigned i = 0; i < 299; i++)
		star[i] = kheap_calloc(h, 1, 16);
	for (unsigned i = 0; i < 200; i++)
		list[i] = node(h);
	void **low = fan(h, 60), **high = fan(h, 60);
	if (low == NULL || high == NULL)
		return NULL;
	high[60] = low;
	star[299] = high;
	for (unsigned i = 1; i < 200; i++)
		list[i]->next = list[i - 1];
	rootv[0] = star;
	rootv[1] = list[199];
	/* Leaks: every seventh star block, and the list's first half. */
	*nleaked = 0;
	for (unsigned i = 0; i < 300; i += 7) {
		leaked[(*nleaked)++] = star[i];
		star[i] = NULL;
	}
	list[100]->next = NULL;
	for (unsigned i = 0; i < 100; i++)
		leaked[(*nleaked)++] = list[i];
	return star;
}

/* Scratch below what one pass needs still gives the exact answer, in more
 * passes, and says so; below the minimum the scan refuses. */
KT_CASE(leak_small_scratch_is_still_exact)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void *leaked[200];
	unsigned n = 0;
	KT_REQUIRE(star_and_list(h, leaked, &n) != NULL);
	size_t min = 0, full = kheap_leak_scratch_size(h, &min);
	KT_CHECK(min > 0 && full > min && full <= SCRATCH);
	KT_EQ(scan_n(h, NULL, full), 0);
	KT_CHECK(exactly(leaked, n));
	KT_EQ(res.passes, 0);
	const size_t sizes[] = {min, min + 8, min + 100, (min + full) / 2, full - 8, SCRATCH};
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		KT_EQ(scan_n(h, NULL, sizes[i]), 0);
		KT_CHECK(exactly(leaked, n));
		KT_EQ(res.held, 300 + 200 + 1 + 2 * 60 + 1);
	}
	KT_EQ(scan_n(h, NULL, min), 0);
	KT_CHECK(res.passes >= 3);
	/* An unaligned scratch of the minimum size works too. */
	found.n = 0;
	struct kheap_range r = {rootv, rootv + NROOT};
	KT_EQ(kheap_leak_scan(h, &r, 1, scratch + 3, min, record, &found, &res), 0);
	KT_CHECK(exactly(leaked, n));
	/* Below the minimum: refused, not reported, nothing called. */
	found.n = 0;
	KT_EQ(scan_n(h, NULL, min - 1), -KHEAP_E_BAD_ARG);
	KT_EQ(found.n, 0);
	KT_EQ(res.leaks, 0);
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(h), 0);
}

/* A root range that covers the arena and the scratch (a kernel passing its
 * whole .bss) reads neither: stale pointers in freed memory and the scan's
 * own index would otherwise keep everything alive. */
static struct {
	void *roots[4];
	_Alignas(16) unsigned char arena[32u << 10];
	void *more_roots[4];
	unsigned char scratch[8u << 10];
	void *last_root;
} bss;

KT_CASE(leak_roots_skip_the_heap_and_the_scratch)
{
	struct kt_rec rec;
	zero(&bss, sizeof bss);
	struct kheap *h = kt_heap(bss.arena, sizeof bss.arena, &rec);
	KT_REQUIRE(h != NULL);
	void **a = kheap_calloc(h, 1, 2000);
	void *b = kheap_alloc(h, 100), *c = kheap_alloc(h, 100), *d = kheap_alloc(h, 100);
	void *e = kheap_alloc(h, 100), *f = kheap_alloc(h, 100);
	KT_REQUIRE(a && b && c && d && e && f);
	a[0] = a[1] = a[10] = b;
	kheap_free(h, a); /* b's only pointer is now in freed memory */
	bss.roots[1] = c;
	bss.more_roots[2] = d;
	bss.last_root = e;
	struct kheap_range all = {&bss, (const char *)&bss + sizeof bss};
	found.n = 0;
	KT_EQ(kheap_leak_scan(h, &all, 1, bss.scratch, sizeof bss.scratch, record, &found, &res), 0);
	void *want[2] = {b, f};
	KT_CHECK(exactly(want, 2));
	KT_EQ(res.root_bytes, sizeof bss - sizeof bss.arena - sizeof bss.scratch);
	/* A scratch inside the heap is refused. */
	void *in = kheap_alloc(h, 9000);
	KT_REQUIRE(in != NULL);
	KT_EQ(kheap_leak_scan(h, &all, 1, in, 9000, record, &found, &res), -KHEAP_E_BAD_ARG);
	KT_EQ(rec.count, 0);
}

/* Blocks in a second region: the index and the marks cover every region. */
static int in_arena2(const void *p)
{
	return (const unsigned char *)p >= arena2 && (const unsigned char *)p < arena2 + sizeof arena2;
}

KT_CASE(leak_across_regions)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	zero(arena2, sizeof arena2);
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	/* Leave 8 KiB in the first region: a few nodes come from it first. */
	void *fill = kheap_alloc(h, st.largest_free - KHEAP_BLOCK_OVERHEAD - 8192);
	KT_REQUIRE(fill != NULL);
	KT_EQ(kheap_add_region(h, arena2, sizeof arena2), 0);
	/* Nodes until the first one from the new region, then two more. */
	struct node *n[LEAK_MAX];
	unsigned k = 0, extra = 0;
	while (k < LEAK_MAX && extra < 3) {
		n[k] = node(h);
		KT_REQUIRE(n[k] != NULL);
		extra += in_arena2(n[k++]);
	}
	KT_REQUIRE(extra == 3 && k >= 4 && !in_arena2(n[0]));
	struct node *lone = node(h);
	KT_REQUIRE(lone != NULL && in_arena2(lone));
	for (unsigned i = 0; i + 1 < k; i++)
		n[i]->next = n[i + 1];
	rootv[0] = fill;
	rootv[1] = n[k - 2];
	KT_EQ(scan(h), 0);
	KT_EQ(found.n, k - 2 + 1);
	for (unsigned i = 0; i < k - 2; i++)
		KT_CHECK(reported(n[i]));
	KT_CHECK(reported(lone));
	/* The pointer into the new region keeps the old one's nodes. */
	n[k - 1]->next = n[0];
	KT_EQ(scan(h), 0);
	KT_EQ(found.n, 1);
	KT_CHECK(reported(lone));
	KT_EQ(rec.count, 0);
}

/* kheap_leak_ignore: a block reached only through, say, a device register is
 * not reported, and what it points to lives; the mark lapses with the
 * block. */
KT_CASE(leak_ignore_marks_a_block)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	struct node *dev = node(h), *ring = node(h), *lost = node(h);
	KT_REQUIRE(dev && ring && lost);
	dev->next = ring;
	KT_EQ(kheap_leak_ignore(h, dev), 0);
	KT_EQ(kheap_leak_ignore(h, dev), 0); /* twice is one entry */
	KT_EQ(scan(h), 0);
	void *want[1] = {lost};
	KT_CHECK(exactly(want, 1));
	KT_EQ(res.ignored, 1);
	/* Not a held block: reported and refused. */
	KT_EQ(kheap_leak_ignore(h, (char *)dev + 16), -KHEAP_E_BAD_ARG);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_EQ(kheap_leak_ignore(h, rootv), -KHEAP_E_BAD_ARG);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	/* Freed, the mark goes; ring is then a leak. */
	kheap_free(h, dev);
	KT_EQ(scan(h), 0);
	void *want2[2] = {ring, lost};
	KT_CHECK(exactly(want2, 2));
	KT_EQ(res.ignored, 0);
	/* The table holds KHEAP_LEAK_IGNORE_MAX held blocks, then refuses. */
	void *m[KHEAP_LEAK_IGNORE_MAX + 1];
	for (unsigned i = 0; i <= KHEAP_LEAK_IGNORE_MAX; i++)
		m[i] = kheap_alloc(h, 200);
	for (unsigned i = 0; i < KHEAP_LEAK_IGNORE_MAX; i++)
		KT_EQ(kheap_leak_ignore(h, m[i]), 0);
	KT_EQ(kheap_leak_ignore(h, m[KHEAP_LEAK_IGNORE_MAX]), -KHEAP_E_BAD_ARG);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	kheap_free(h, m[0]); /* frees an entry */
	KT_EQ(kheap_leak_ignore(h, m[KHEAP_LEAK_IGNORE_MAX]), 0);
	KT_EQ(scan(h), 0);
	KT_CHECK(exactly(want2, 2));
	KT_EQ(res.ignored, KHEAP_LEAK_IGNORE_MAX);
	KT_EQ(rec.count, 0);
}

/* Bad arguments and a corrupt header. */
KT_CASE(leak_refuses_bad_input)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	char *a = kheap_alloc(h, 100), *b = kheap_alloc(h, 100);
	KT_REQUIRE(a && b);
	struct kheap_range r = {rootv, rootv + NROOT};
	KT_EQ(kheap_leak_scan(h, NULL, 1, scratch, SCRATCH, record, &found, &res), -KHEAP_E_NULL);
	KT_EQ(kheap_leak_scan(h, &r, 1, NULL, SCRATCH, record, &found, &res), -KHEAP_E_NULL);
	KT_EQ(kheap_leak_scan(h, NULL, 0, scratch, SCRATCH, NULL, NULL, NULL), 0);
	KT_EQ(rec.count, 0);
	kt_panic_expected = 1;
	kt_panics = 0;
	KT_EQ(kheap_leak_scan(NULL, &r, 1, scratch, SCRATCH, record, &found, &res), -KHEAP_E_BAD_HEAP);
	KT_EQ(kheap_leak_ignore(NULL, a), -KHEAP_E_BAD_HEAP);
	KT_EQ(kt_panics, 2);
	kt_panic_expected = 0;
	size_t min = 1;
	KT_EQ(kheap_leak_scratch_size(NULL, &min), 0);
	KT_EQ(min, 0);
	uint64_t *hdr = (uint64_t *)(void *)(b - 8), saved = *hdr;
	*hdr ^= 0x40000;
	found.n = 0;
	KT_EQ(scan(h), -KHEAP_E_BAD_HEADER);
	KT_REPORTED(&rec, KHEAP_E_BAD_HEADER);
	KT_CHECK(rec.last.ptr == b);
	KT_EQ(found.n, 0);
	KT_EQ(res.held, 0);
	*hdr = saved;
	KT_EQ(scan(h), 0);
	KT_EQ(res.leaks, 2);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* ---- windows: what an interrupt handler may do between two slices ---- */

extern void (*kh_leak_window_hook)(struct kheap *h);
static unsigned windows, handler_runs;
static void *handler_block;
static struct node *handler_victim;

/* A handler that allocates a block and hangs it where the scan has already
 * looked (the first root), on its first window. */
static void alloc_handler(struct kheap *h)
{
	windows++;
	if (handler_runs++ == 0) {
		handler_block = kheap_alloc(h, 64);
		rootv[0] = handler_block;
	}
}

/* A handler that allocates in every window: the scan must give up slicing. */
static void busy_handler(struct kheap *h)
{
	windows++;
	kheap_free(h, kheap_alloc(h, 64));
}

/* A handler that frees a reachable block and unlinks it: its child, only
 * reachable through it, is then a leak, and the scan must not have marked
 * it alive on the old picture. */
static void free_handler(struct kheap *h)
{
	windows++;
	if (handler_runs++ == 0 && handler_victim != NULL) {
		rootv[2] = NULL;
		kheap_free(h, handler_victim);
	}
}

/* Resizing in place changes no count: the fingerprint must catch it. */
static void resize_handler(struct kheap *h)
{
	windows++;
	if (handler_runs++ == 0)
		KT_CHECK(kheap_realloc(h, handler_block, 32) == handler_block);
}

/* A graph bigger than one slice: a 64 KiB block of pointers. */
static void **window_graph(struct kheap *h, void **leak)
{
	void **big = kheap_calloc(h, 8192, sizeof(void *));
	if (big == NULL)
		return NULL;
	for (unsigned i = 0; i < 100; i++)
		big[i * 80] = kheap_calloc(h, 1, 32);
	*leak = kheap_alloc(h, 48);
	rootv[NROOT - 1] = big;
	return big;
}

KT_CASE(leak_window_alloc_is_not_reported)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void *leak;
	KT_REQUIRE(window_graph(h, &leak) != NULL);
	windows = handler_runs = 0;
	handler_block = NULL;
	kh_leak_window_hook = alloc_handler;
	int rc = scan(h);
	kh_leak_window_hook = NULL;
	KT_EQ(rc, 0);
	KT_CHECK(windows >= 2);
	KT_EQ(res.restarts, 1);
	void *want[1] = {leak};
	KT_CHECK(exactly(want, 1));
	KT_CHECK(handler_block != NULL && !reported(handler_block));
	KT_EQ(rec.count, 0);
}

KT_CASE(leak_window_busy_handler_finishes_unsliced)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void *leak;
	KT_REQUIRE(window_graph(h, &leak) != NULL);
	windows = 0;
	kh_leak_window_hook = busy_handler;
	int rc = scan(h);
	kh_leak_window_hook = NULL;
	KT_EQ(rc, 0);
	KT_EQ(res.restarts, KHEAP_LEAK_RETRIES);
	KT_EQ(windows, KHEAP_LEAK_RETRIES);
	void *want[1] = {leak};
	KT_CHECK(exactly(want, 1));
	KT_EQ(rec.count, 0);
}

KT_CASE(leak_window_free_and_resize_restart)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void *leak;
	KT_REQUIRE(window_graph(h, &leak) != NULL);
	struct node *victim = node(h), *child = node(h);
	KT_REQUIRE(victim && child);
	victim->left = child;
	rootv[2] = victim;
	windows = handler_runs = 0;
	handler_victim = victim;
	kh_leak_window_hook = free_handler;
	int rc = scan(h);
	kh_leak_window_hook = NULL;
	KT_EQ(rc, 0);
	KT_EQ(res.restarts, 1);
	void *want[2] = {leak, child};
	KT_CHECK(exactly(want, 2));
	/* An in-place shrink in a window. */
	handler_block = kheap_alloc(h, 2000);
	KT_REQUIRE(handler_block != NULL);
	rootv[5] = handler_block;
	windows = handler_runs = 0;
	kh_leak_window_hook = resize_handler;
	rc = scan(h);
	kh_leak_window_hook = NULL;
	KT_EQ(rc, 0);
	KT_EQ(res.restarts, 1);
	KT_CHECK(exactly(want, 2));
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* ---- the report ---- */

static struct {
	char buf[4096];
	unsigned n;
} out;

static void putc_buf(void *ctx, char c)
{
	(void)ctx;
	if (out.n < sizeof out.buf - 1)
		out.buf[out.n++] = c;
	out.buf[out.n] = 0;
}

static unsigned count(const char *s, const char *sub)
{
	unsigned n = 0;
	for (; *s; s++) {
		const char *a = s, *b = sub;
		while (*b && *a == *b)
			a++, b++;
		n += *b == 0;
	}
	return n;
}

static int has(const char *sub) { return count(out.buf, sub) > 0; }

/* v in base 10 or 16 at the end of buf[24] (for building expected lines). */
static const char *num(char *buf, uint64_t v, unsigned base)
{
	char *p = buf + 23;
	*p = 0;
	do
		*--p = "0123456789abcdef"[v % base];
	while ((v /= base) != 0);
	return p;
}
static const char *dec(char *buf, uint64_t v) { return num(buf, v, 10); }

/* Append strings to line[128]. */
static char line[128];
static void cat(const char *s)
{
	unsigned n = 0;
	while (line[n])
		n++;
	while (*s && n < sizeof line - 1)
		line[n++] = *s++;
	line[n] = 0;
}

KT_CASE(leak_report_lines)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void *a = kheap_alloc(h, 100), *b = kheap_alloc(h, 300), *c = kheap_alloc(h, 50);
	KT_REQUIRE(a && b && c);
	rootv[0] = b;
	struct kheap_range r = {rootv, rootv + NROOT};
	out.n = 0;
	KT_EQ(kheap_leak_report(h, &r, 1, scratch, SCRATCH, putc_buf, NULL), 0);
	KT_EQ(count(out.buf, "kheap leak ptr=0x"), 2);
	KT_EQ(count(out.buf, "\n"), 3);
	char s[24];
	line[0] = 0;
	cat("kheap leaks n=2 bytes=");
	cat(dec(s, kheap_usable_size(h, a) + kheap_usable_size(h, c)));
	cat(" held=3 ignored=0 roots=");
	cat(dec(s, sizeof rootv));
	cat(" passes=0 restarts=0\n");
	KT_CHECK(has(line));
	line[0] = 0;
	cat("kheap leak ptr=0x");
	cat(num(s, (uintptr_t)a, 16));
	cat(" size=");
	cat(dec(s, kheap_usable_size(h, a)));
	cat(KHEAP_TAGS ? " site=0x" : "\n");
	KT_CHECK(has(line));
	KT_EQ(count(out.buf, " site=0x"), KHEAP_TAGS ? 2 : 0);
	KT_EQ(count(out.buf, " age="), KHEAP_TAGS ? 2 : 0);
	out.n = 0;
	KT_EQ(kheap_leak_report(h, &r, 1, scratch, 64, putc_buf, NULL), -KHEAP_E_BAD_ARG);
	size_t min;
	kheap_leak_scratch_size(h, &min);
	KT_CHECK(has("kheap leaks failed error="));
	KT_CHECK(has(dec(s, KHEAP_E_BAD_ARG)));
	KT_CHECK(has(" need="));
	KT_CHECK(has(dec(s, min)));
	KT_EQ(rec.count, 0);
}

#if KHEAP_TAGS

static volatile uintptr_t sink_x, sink_y;

__attribute__((noinline)) static void *site_x(struct kheap *h, size_t n)
{
	void *p = kheap_alloc(h, n);
	sink_x = (uintptr_t)p;
	return p;
}

__attribute__((noinline)) static void *site_y(struct kheap *h, size_t n)
{
	void *p = kheap_calloc(h, 1, n);
	sink_y = (uintptr_t)p;
	return p;
}

static int from(const void *site, uintptr_t fn) { return (uintptr_t)site > fn && (uintptr_t)site < fn + 256; }

/* With tags, each leak comes with its allocating call and its sequence
 * number, and the report prints them with the age. */
KT_CASE(leak_tags_name_site_and_seq)
{
	struct kt_rec rec;
	struct kheap *h = fresh(&rec);
	void *keep = site_x(h, 40);
	void *x = site_x(h, 200);
	void *y = site_y(h, 3000);
	for (unsigned i = 0; i < 5; i++)
		rootv[i] = site_y(h, 16);
	KT_REQUIRE(keep && x && y);
	rootv[10] = keep;
	const void *sx, *sy;
	uint64_t qx, qy;
	KT_EQ(kheap_tag_of(h, x, &sx, &qx), 0);
	KT_EQ(kheap_tag_of(h, y, &sy, &qy), 0);
	KT_EQ(qx, 2);
	KT_EQ(qy, 3);
	KT_EQ(scan(h), 0);
	void *want[2] = {x, y};
	KT_REQUIRE(exactly(want, 2));
	KT_EQ(res.allocs, 8);
	for (unsigned i = 0; i < 2; i++) {
		int isx = found.b[i].ptr == x;
		KT_CHECK(found.b[i].site == (isx ? sx : sy));
		KT_CHECK(from(found.b[i].site, isx ? (uintptr_t)site_x : (uintptr_t)site_y));
		KT_EQ(found.b[i].seq, isx ? 2 : 3);
	}
	struct kheap_range r = {rootv, rootv + NROOT};
	out.n = 0;
	KT_EQ(kheap_leak_report(h, &r, 1, scratch, SCRATCH, putc_buf, NULL), 0);
	char s[24];
	line[0] = 0;
	cat(" site=0x");
	cat(num(s, (uintptr_t)sx, 16));
	cat(" seq=2 age=6\n");
	KT_CHECK(has(line));
	line[0] = 0;
	cat(" site=0x");
	cat(num(s, (uintptr_t)sy, 16));
	cat(" seq=3 age=5\n");
	KT_CHECK(has(line));
	KT_EQ(rec.count, 0);
}

#endif
