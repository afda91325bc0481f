/*
 * fuzz_heap.c: libFuzzer target for kheap. The input is a script of heap
 * operations on small arenas; every result is checked against a shadow
 * model, and any disagreement traps so that libFuzzer keeps the input.
 *
 * Input: byte 0 may ask for a refused kheap_init first (low nibble 0) and
 * picks the mode (bit 7: per-CPU caches; bits 4-6: the CPU at kheap_init,
 * 6 and 7 meaning none); bytes 1-2 size the first arena (control block +
 * 256 bytes up to about 1 MiB). Then each operation is one opcode byte and
 * its arguments. Reads past the end give zeros and end the script. Only the
 * public API (kheap.h) is used.
 *
 * Per-CPU mode: this file defines kheap_cpu_id, returning a "current CPU"
 * (0-3, or KHEAP_NO_CPU) that the script switches between calls. One thread
 * that changes CPU between heap calls is a thread migrating between calls,
 * which kheap.h allows. Opcodes 0xf0-0xff switch CPU, trim the current one
 * (kheap_trim_cpu), take another one offline (kheap_cpu_dead), turn the
 * kheap_flush_others emulation on or off (an "IPI round": each other CPU in
 * turn calls kheap_trim_cpu), free a block twice from two CPUs, or drain
 * every cache. Outside per-CPU mode kheap_cpu_id always says KHEAP_NO_CPU,
 * and the switches do nothing. kheap_irq_save/restore are emulated too, to
 * check that kheap_cpu_id is only asked with interrupts masked and the hooks
 * run with them unmasked.
 *
 * After every operation: the statistics equal the model (block and byte
 * counts, alloc/free/OOM/error counters, peak, regions, in use + free +
 * cached == total), and no report was made unless the operation was a
 * deliberate misuse, which must draw exactly one report of the kind kheap.h
 * documents and leave kheap_check at 0. With per-CPU caches on, blocks move
 * between the free and cached counts as the caches fill and drain, so those
 * are held to invariant relations only, except that nothing may be cached
 * once every cache the script may have filled has been drained; and the
 * peak counts cached blocks as in use, so it is only a bound. Every 16
 * operations and at the end: kheap_check (in per-CPU mode also as another
 * CPU, which checks that CPU's lists), a kheap_walk that must list exactly
 * the model's live blocks, and every live block's contents.
 *
 * Object caches (opcodes 0xe0-0xef): up to NCACHE caches and NOBJ objects,
 * kept apart from the slots; create, destroy (refused while objects are
 * held), alloc, free, a reserve that must then serve its allocations, and
 * the misuses a cache adds (another cache's object, a plain block, an
 * object given to kheap_free, a double free), each drawing exactly its one
 * report. Descriptors and held objects are live blocks for the counters
 * and the walk; objects on a cache's lists count as cached. Regions are
 * carved from one static pool that AddressSanitizer keeps poisoned except
 * where a region was accepted, so a touch of a refused region or a foreign
 * pointer is caught too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kheap.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#endif
#endif
#ifndef POISON
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define POOL_SIZE ((size_t)4 << 20)
#define PAT_TOKENS ((size_t)1 << 16)
#define NSLOTS 64u
#define NSTALE 8u
#define MAX_OPS 4096u
#define DEEP_EVERY 16u
#define BIT(k) ((unsigned)1 << (k))
/* CPUs the script may name (each has a per-CPU cache below KHEAP_MAX_CPUS),
 * and the bit of struct model's `maybe` that stands for the shared lists. */
#define NCPU (KHEAP_MAX_CPUS < 4u ? KHEAP_MAX_CPUS : 4u)
#define SHARED_LISTS BIT(4)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Alignas(4096) uint8_t pool[POOL_SIZE];
static _Alignas(16) uint8_t alien[4096];     /* never part of any heap */
static _Alignas(16) uint8_t fake_heap[1024]; /* zeros: not a live heap */
/* Block contents: a block with token t holds pat[t .. t + usable). */
static uint8_t pat[POOL_SIZE + PAT_TOKENS];

static uint64_t g_ops, g_inputs;
static int g_trace; /* FUZZ_TRACE=1 in the environment: one line per operation */
static struct timespec g_start;

/* ---- input reader ------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n;
	int end;
};

static uint8_t u8(struct rd *r)
{
	if (r->n == 0) {
		r->end = 1;
		return 0;
	}
	r->n--;
	return *r->p++;
}

static unsigned u16(struct rd *r) { return (unsigned)u8(r) << 8 | u8(r); }

/* ---- the model ---------------------------------------------------------- */

struct blk {
	uint8_t *p; /* NULL: empty slot */
	size_t n, usable, align;
	size_t tok;
};

#define NCACHE 2u
#define NOBJ 32u

struct cachem {
	struct kheap_cache *c; /* NULL: none */
	size_t size, align, block;
	size_t desc; /* the descriptor's usable bytes (a plain block) */
	unsigned held;
};

struct model {
	struct kheap *h;
	struct blk slot[NSLOTS];
	struct cachem cache[NCACHE];
	struct blk obj[NOBJ];   /* held objects; usable = block - 8, n = size */
	unsigned objc[NOBJ];    /* obj[i]'s cache */
	int caches_used;        /* objects were cached: the peak is a bound */
	uint8_t *stale[NSTALE]; /* recently freed pointers, for double frees */
	unsigned nstale;
	unsigned live;
	size_t in_use, peak, total;
	uint64_t allocs, frees, ooms, errors;
	unsigned nreg;
	uintptr_t lo[KHEAP_MAX_REGIONS], hi[KHEAP_MAX_REGIONS];
	uint8_t *cursor;   /* pool bytes below it may belong to a region */
	size_t next_tok;
	unsigned reports;  /* through the report hook */
	enum kheap_error kind;
	const void *ptr;
	unsigned since_deep;
	/* Per-CPU mode (byte 0): the CPU may be switched. */
	int pcpu;
	int ipi;          /* kheap_flush_others drains the other CPUs */
	unsigned maybe;   /* caches that may hold blocks: bit k for CPU k,
			   * SHARED_LISTS for the shared size-class lists */
	size_t lib_peak;  /* the library's peak at the last check */
	unsigned rot;     /* the CPU the next deep check also runs on */
};

static unsigned g_panics; /* kheap_panic calls: reports about no heap */
static unsigned g_cpu = KHEAP_NO_CPU; /* what kheap_cpu_id says */
static uintptr_t g_masked;    /* emulated interrupt mask */
static struct model *g_model; /* for kheap_flush_others */

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_heap: MISMATCH: %s\n", why);
	__builtin_trap();
}

#define EXPECT(cond)                                                \
	do {                                                        \
		if (!(cond))                                        \
			fail(#cond " (" __FILE__ ":" XSTR(__LINE__) ")"); \
	} while (0)
#define XSTR(x) STR(x)
#define STR(x) #x

/* kheap.h, enum kheap_severity: the severity of each kind. */
static enum kheap_severity severity(enum kheap_error k)
{
	switch (k) {
	case KHEAP_E_OVERFLOW: case KHEAP_E_BAD_ALIGN: case KHEAP_E_REGION:
	case KHEAP_E_REGION_SMALL: case KHEAP_E_BAD_ARG:
		return KHEAP_SEV_REFUSED;
	case KHEAP_E_DOUBLE_FREE: case KHEAP_E_FOREIGN: case KHEAP_E_MISALIGNED:
	case KHEAP_E_BAD_HEAP: case KHEAP_E_NULL: case KHEAP_E_WRONG_CACHE: case KHEAP_E_BAD_CACHE:
		return KHEAP_SEV_MISUSE;
	default:
		return KHEAP_SEV_CORRUPT;
	}
}

/* kheap.h: reports come with the lock released, so with the caller's
 * interrupt state: unmasked, here; each carries its kind's severity. */
static void on_report(void *ctx, const struct kheap_report *r)
{
	struct model *m = ctx;
	EXPECT(!g_masked);
	EXPECT(r->severity == severity(r->kind));
	m->reports++;
	m->kind = r->kind;
	m->ptr = r->ptr;
}

/* Overrides the library's weak default (a trap): a bad handle or a NULL
 * argument is reported here, and the misuse cases expect exactly that. */
void kheap_panic(const char *msg)
{
	(void)msg;
	g_panics++;
}

/* Overrides the weak default: the CPU the script is on. kheap.h: asked
 * with interrupts masked, and the answer holds until they are restored,
 * which a switch between calls respects. */
unsigned kheap_cpu_id(void)
{
	EXPECT(g_masked);
	return g_cpu;
}

/* Interrupt masking for one CPU, nesting as kh_irq.h describes. */
uintptr_t kheap_irq_save(void)
{
	uintptr_t was = g_masked;
	g_masked = 1;
	return was;
}

void kheap_irq_restore(uintptr_t state)
{
	EXPECT(g_masked && state <= 1);
	g_masked = state;
}

/* Switch to CPU k (KHEAP_NO_CPU: none); in per-CPU mode only. */
static void set_cpu(const struct model *m, unsigned k)
{
	if (m->pcpu)
		g_cpu = k;
}

/* Calls about to be made on this CPU may fill its cache and the shared
 * lists, as far as the model knows. */
static void touch(struct model *m)
{
	m->maybe |= SHARED_LISTS | (g_cpu < NCPU ? BIT(g_cpu) : 0);
}

/* The IPI round, when the script has turned it on: every other CPU runs
 * kheap_trim_cpu, as its IPI handler would, and the caller waits for all.
 * kheap.h: called with the lock released and the caller's interrupt state
 * (unmasked: no call here comes from an interrupt handler), and only while
 * another CPU's cache holds blocks (so one the model has seen used). */
bool kheap_flush_others(struct kheap *h)
{
	struct model *m = g_model;
	unsigned me = g_cpu;
	EXPECT(!g_masked && m != NULL && h == m->h);
	EXPECT((m->maybe & ~SHARED_LISTS & ~(me < NCPU ? BIT(me) : 0)) != 0);
	if (!m->ipi)
		return false;
	for (unsigned k = 0; k < NCPU; k++) {
		if (k == me)
			continue;
		set_cpu(m, k);
		kheap_trim_cpu(h);
		g_ops++;
		m->maybe &= ~BIT(k);
	}
	set_cpu(m, me);
	return true;
}

/* Exactly `want` reports since the mark; with one, its kind must be in the
 * mask and, when ptr is not NULL, name ptr. */
static void expect_reports(struct model *m, unsigned mark, unsigned want, unsigned kinds,
			   const void *ptr)
{
	EXPECT(m->reports - mark == want);
	if (want == 1) {
		EXPECT(BIT(m->kind) & kinds);
		EXPECT(ptr == NULL || m->ptr == ptr);
	}
	m->errors += want;
}

/* ---- blocks: placement, contents ---------------------------------------- */

static void stamp(struct model *m, struct blk *b)
{
	b->tok = m->next_tok;
	m->next_tok = (m->next_tok + 4099u) % PAT_TOKENS;
	memcpy(b->p, pat + b->tok, b->usable);
}

static void verify(const struct blk *b)
{
	EXPECT(memcmp(b->p, pat + b->tok, b->usable) == 0);
}

static int all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Index of the region that holds [p - 8, p + u), or -1. The first region
 * starts with the control block, which no block may overlap. */
static int region_of(const struct model *m, const uint8_t *p, size_t u)
{
	uintptr_t lo = (uintptr_t)p - 8, hi = (uintptr_t)p + u;
	for (unsigned i = 0; i < m->nreg; i++) {
		uintptr_t from = m->lo[i] + (i == 0 ? kheap_control_size() : 0);
		if (lo >= from && hi <= m->hi[i])
			return (int)i;
	}
	return -1;
}

static int overlaps(const struct blk *a, const uint8_t *p, size_t u)
{
	return a->p != NULL && a->p - 8 < p + u && p - 8 < a->p + a->usable;
}

/* A block just handed out for slot s: aligned, big enough but not wasteful
 * (size classes round up by at most a quarter), inside one region, clear of
 * every other live block. */
static void place(const struct model *m, unsigned s, const uint8_t *p, size_t n, size_t align,
		  size_t u)
{
	size_t a = align > KHEAP_ALIGN ? align : KHEAP_ALIGN;
	EXPECT((uintptr_t)p % a == 0);
	EXPECT(u >= n && u <= n + n / 4 + 64);
	EXPECT(region_of(m, p, u) >= 0);
	for (unsigned i = 0; i < NSLOTS; i++)
		EXPECT(i == s || !overlaps(&m->slot[i], p, u));
}

static void grant(struct model *m, unsigned s, uint8_t *p, size_t n, size_t align)
{
	struct blk *b = &m->slot[s];
	size_t u = kheap_usable_size(m->h, p);
	g_ops++;
	place(m, s, p, n, align, u);
	*b = (struct blk){p, n, u, align, 0};
	stamp(m, b);
	m->live++;
	m->allocs++;
	m->in_use += u + 8;
	if (m->in_use > m->peak)
		m->peak = m->in_use;
}

static void remember_stale(struct model *m, uint8_t *p)
{
	m->stale[m->nstale++ % NSTALE] = p;
}

/* The slot's block is gone (freed by the heap): update the model. */
static void forget(struct model *m, unsigned s)
{
	struct blk *b = &m->slot[s];
	m->live--;
	m->frees++;
	m->in_use -= b->usable + 8;
	remember_stale(m, b->p);
	b->p = NULL;
}

static void release(struct model *m, unsigned s)
{
	unsigned mark = m->reports;
	verify(&m->slot[s]);
	kheap_free(m->h, m->slot[s].p);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	forget(m, s);
}

/* Block bytes a request of n needs (kheap.h, kheap_alloc), saturating. */
static size_t block_for(size_t n)
{
	if (n > SIZE_MAX - 64)
		return SIZE_MAX;
	size_t b = (n + KHEAP_BLOCK_OVERHEAD + 15) & ~(size_t)15;
	return b < 32 ? 32 : b;
}

/* Do block sizes a and b share a bin (kheap.h: one per 16 bytes below 256,
 * sixteen per power of two from there)? */
static int same_bin(size_t a, size_t b)
{
	if (a < 256 || b < 256)
		return a >> 4 == b >> 4;
	unsigned ta = 63u - (unsigned)__builtin_clzll(a), tb = 63u - (unsigned)__builtin_clzll(b);
	return ta == tb && a >> (ta - 4) == b >> (tb - 4);
}

/* Could a block aligned to align of s bytes go in the free block of B bytes
 * whose payload is at q (kheap.h, kheap_aligned_alloc)? */
static int aligned_fits(uintptr_t q, size_t B, size_t align, size_t s)
{
	uintptr_t p = (q + align - 1) & ~(uintptr_t)(align - 1);
	if (p != q && p - q < 32)
		p += align;
	return p - q <= B && s <= B - (p - q);
}

struct free_seen {
	size_t want; /* block size the failed request needed (with slack) */
	unsigned n, bad;
	uintptr_t q;
	size_t B;
};

/* Every unused block, with no cache holding any: each is free. */
static void free_fn(void *ctx, void *ptr, size_t size, int used)
{
	struct free_seen *f = ctx;
	if (used)
		return;
	f->n++;
	f->q = (uintptr_t)ptr;
	f->B = size + 8;
	if (f->B >= f->want && !same_bin(f->B, f->want))
		f->bad = 1;
}

/* An allocation of n bytes at alignment align returned NULL without a
 * report. kheap.h allows that only when (plain) no free block of its block
 * size s or more lies outside s's own bin, and s > largest_free; (aligned)
 * likewise for s + align + 16, and with a single free block, only when that
 * block cannot hold the aligned payload where it lies. The walk is exact
 * only while no cache holds blocks (the failed call flushed this CPU's and
 * the shared ones; other CPUs' may remain). */
static void null_ok(struct model *m, size_t n, size_t align)
{
	struct kheap_stats st;
	kheap_get_stats(m->h, &st);
	size_t s = block_for(n), pad = align > KHEAP_ALIGN ? align + KHEAP_ALIGN : 0;
	size_t want = s <= SIZE_MAX - pad ? s + pad : SIZE_MAX;
	if (want <= st.largest_free)
		fail("allocation returned NULL though largest_free promised it");
	if (st.cached_blocks == 0 && want != SIZE_MAX) {
		struct free_seen f = {want, 0, 0, 0, 0};
		kheap_walk(m->h, free_fn, &f);
		EXPECT(f.n == st.free_blocks);
		if (f.bad)
			fail("allocation returned NULL though a free block outside its bin was big enough");
		if (pad != 0 && f.n == 1 && aligned_fits(f.q, f.B, align, s))
			fail("aligned allocation returned NULL though the only free block could hold it");
	}
	m->ooms++;
}

/* ---- checks ----------------------------------------------------------------- */

/* Blocks on per-CPU lists count as cached, not in use, and their moves
 * keep the counters exact; but the peak counts them as in use (kheap.h),
 * so with per-CPU caches it is only bounded by what the caller held. */
static void check_stats(struct model *m)
{
	struct kheap_stats st;
	kheap_get_stats(m->h, &st);
	EXPECT(st.used_blocks == m->live);
	EXPECT(st.alloc_count == m->allocs && st.free_count == m->frees);
	EXPECT(st.alloc_count - st.free_count == m->live);
	EXPECT(st.in_use_bytes == m->in_use);
	if (m->pcpu || m->caches_used) {
		EXPECT(st.peak_in_use_bytes >= m->peak && st.peak_in_use_bytes >= m->lib_peak &&
		       st.peak_in_use_bytes <= st.total_bytes);
		m->lib_peak = st.peak_in_use_bytes;
	} else {
		EXPECT(st.peak_in_use_bytes == m->peak);
	}
	if (m->maybe == 0) /* every cache drained since it was last used */
		EXPECT(st.cached_bytes == 0 && st.cached_blocks == 0);
	EXPECT(st.oom_count == m->ooms && st.error_count == m->errors);
	EXPECT(st.regions == m->nreg && st.total_bytes == m->total);
	EXPECT(st.in_use_bytes + st.free_bytes + st.cached_bytes == st.total_bytes);
	EXPECT(st.largest_free <= st.free_bytes);
	EXPECT(st.free_blocks != 1 || st.largest_free == st.free_bytes); /* the one block, whole */
	EXPECT(st.free_bytes >= 32 * st.free_blocks && (st.free_bytes == 0) == (st.free_blocks == 0));
	EXPECT(st.cached_bytes >= 32 * st.cached_blocks &&
	       (st.cached_bytes == 0) == (st.cached_blocks == 0));
	EXPECT(g_panics == 0);
}

struct walker {
	const struct model *m;
	size_t bytes, used;
	int bad;
};

static void walk_fn(void *ctx, void *ptr, size_t size, int used)
{
	struct walker *w = ctx;
	w->bytes += size + 8;
	if (region_of(w->m, ptr, size) < 0)
		w->bad = 1;
	if (!used)
		return;
	w->used++;
	unsigned i = 0;
	while (i < NSLOTS && w->m->slot[i].p != ptr)
		i++;
	if (i < NSLOTS) {
		w->bad |= w->m->slot[i].usable != size;
		return;
	}
	for (i = 0; i < NOBJ; i++)
		if (w->m->obj[i].p == ptr) {
			w->bad |= w->m->obj[i].usable != size;
			return;
		}
	for (i = 0; i < NCACHE; i++)
		if ((void *)w->m->cache[i].c == ptr) {
			w->bad |= w->m->cache[i].desc != size;
			return;
		}
	w->bad = 1;
}

static void say_problem(void *ctx, const void *addr, const char *what)
{
	(void)ctx;
	fprintf(stderr, "fuzz_heap: kheap_check: %p %s\n", addr, what);
}

/* kheap_check, a walk that must list exactly the live blocks and tile the
 * managed bytes, and every live block's contents. */
static void deep_check(struct model *m)
{
	struct walker w = {m, 0, 0, 0};
	unsigned me = g_cpu, other = m->rot++ % 4u;
	EXPECT(kheap_check_verbose(m->h, say_problem, NULL) == 0);
	if (m->pcpu && other < NCPU && other != me) { /* I8 on that CPU's lists */
		set_cpu(m, other);
		EXPECT(kheap_check(m->h) == 0);
		set_cpu(m, me);
	}
	kheap_walk(m->h, walk_fn, &w);
	EXPECT(!w.bad && w.used == m->live && w.bytes == m->total);
	for (unsigned i = 0; i < NSLOTS; i++)
		if (m->slot[i].p)
			verify(&m->slot[i]);
	for (unsigned i = 0; i < NOBJ; i++)
		if (m->obj[i].p)
			verify(&m->obj[i]);
	m->since_deep = 0;
}

/* ---- argument decoding -------------------------------------------------- */

/* Request sizes: mostly size-class and small backend sizes, some large
 * ones, some right at the largest free block, some absurd. */
static size_t get_size(struct model *m, struct rd *r)
{
	unsigned k = u8(r), v = u16(r);
	struct kheap_stats st;
	switch (k >> 5) {
	case 0: case 1: return v & 1023u;
	case 2: return v & 127u;
	case 3: return v & 4095u;
	case 4: return v;
	case 5: return (size_t)v << (k & 3u);
	case 6:
		kheap_get_stats(m->h, &st);
		return st.largest_free > 40 + (v & 63u) ? st.largest_free - 40 + (v & 63u) : v & 63u;
	default:
		return (k & 1u) ? SIZE_MAX - (v & 255u) : (size_t)1 << (20 + v % 44u);
	}
}

static size_t get_align(struct rd *r) { return (size_t)1 << (u8(r) % 14u); }

static unsigned get_slot(struct rd *r) { return u8(r) % NSLOTS; }

static void clear_slot(struct model *m, unsigned s)
{
	if (m->slot[s].p)
		release(m, s);
}

/* ---- operations --------------------------------------------------------- */

/* alloc(0) is not held to the 24 usable bytes kheap.h names: a free block
 * too small to split is handed out whole, so it may get 40. */
static void op_alloc(struct model *m, struct rd *r)
{
	unsigned s = get_slot(r), mark;
	size_t n = get_size(m, r);
	clear_slot(m, s);
	mark = m->reports;
	uint8_t *p = kheap_alloc(m->h, n);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	if (p == NULL) {
		null_ok(m, n, 1);
		return;
	}
	grant(m, s, p, n, 1);
}

static void op_free(struct model *m, struct rd *r)
{
	unsigned s = get_slot(r), mark = m->reports;
	if (m->slot[s].p) {
		release(m, s);
		return;
	}
	kheap_free(m->h, NULL);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
}

static void op_aligned(struct model *m, struct rd *r)
{
	unsigned s = get_slot(r), mark;
	size_t align = get_align(r), n = get_size(m, r);
	clear_slot(m, s);
	mark = m->reports;
	uint8_t *p = kheap_aligned_alloc(m->h, align, n);
	g_ops++;
	if (n > SIZE_MAX - align) { /* documented: reported as an overflow */
		EXPECT(p == NULL);
		expect_reports(m, mark, 1, BIT(KHEAP_E_OVERFLOW), NULL);
		return;
	}
	expect_reports(m, mark, 0, 0, NULL);
	if (p == NULL)
		null_ok(m, n, align);
	else
		grant(m, s, p, n, align);
}

static void op_calloc(struct model *m, struct rd *r)
{
	unsigned s = get_slot(r), mark;
	size_t cnt = u8(r) & 15u, sz = get_size(m, r);
	clear_slot(m, s);
	mark = m->reports;
	uint8_t *p = kheap_calloc(m->h, cnt, sz);
	g_ops++;
	if (cnt != 0 && sz > SIZE_MAX / cnt) {
		EXPECT(p == NULL);
		expect_reports(m, mark, 1, BIT(KHEAP_E_OVERFLOW), NULL);
		return;
	}
	expect_reports(m, mark, 0, 0, NULL);
	if (p == NULL) {
		null_ok(m, cnt * sz, 1);
		return;
	}
	EXPECT(all_zero(p, cnt * sz));
	grant(m, s, p, cnt * sz, 1);
}

/* A realloc that returned NULL must not succeed when asked again at once
 * (kheap.h: a neighbour in a shared or this CPU's cache counts as free, so
 * the first call already had every block the second could take), as long
 * as no other CPU's cache may hold blocks that a flush would bring in. */
static void again_null(struct model *m, uint8_t *p, size_t n)
{
	unsigned me = g_cpu, mark = m->reports;
	if (m->pcpu && (m->maybe & ~SHARED_LISTS & ~(me < NCPU ? BIT(me) : 0u)) != 0)
		return;
	EXPECT(kheap_realloc(m->h, p, n) == NULL);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	m->ooms++;
}

/* realloc of a live block: contents kept up to the smaller size, the
 * alignment kept, the old block intact on failure. */
static void realloc_live(struct model *m, unsigned s, size_t n)
{
	struct blk old = m->slot[s];
	unsigned mark = m->reports;
	verify(&old);
	uint8_t *q = kheap_realloc(m->h, old.p, n);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	if (n == 0) { /* documented: frees and returns NULL */
		EXPECT(q == NULL);
		forget(m, s);
		return;
	}
	if (q == NULL) {
		verify(&old);
		EXPECT(kheap_usable_size(m->h, old.p) == old.usable);
		g_ops++;
		null_ok(m, n, old.align);
		again_null(m, old.p, n);
		return;
	}
	size_t keep = old.usable < n ? old.usable : n, u = kheap_usable_size(m->h, q);
	g_ops++;
	EXPECT(memcmp(q, pat + old.tok, keep) == 0);
	place(m, s, q, n, old.align, u);
	if (q != old.p) { /* moved: both blocks were held at once */
		if (m->in_use + u + 8 > m->peak)
			m->peak = m->in_use + u + 8;
		m->allocs++;
		m->frees++;
		remember_stale(m, old.p);
	}
	m->in_use = m->in_use - (old.usable + 8) + (u + 8);
	if (m->in_use > m->peak)
		m->peak = m->in_use;
	m->slot[s] = (struct blk){q, n, u, old.align, 0};
	stamp(m, &m->slot[s]);
}

static void op_realloc(struct model *m, struct rd *r)
{
	unsigned s = get_slot(r), mark = m->reports;
	size_t n = get_size(m, r);
	if (m->slot[s].p) {
		realloc_live(m, s, n);
		return;
	}
	uint8_t *p = kheap_realloc(m->h, NULL, n); /* documented: alloc(n) */
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	if (p == NULL)
		null_ok(m, n, 1);
	else
		grant(m, s, p, n, 1);
}

static void op_usable(struct model *m, struct rd *r)
{
	unsigned s = get_slot(r), mark = m->reports;
	size_t u = kheap_usable_size(m->h, m->slot[s].p);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	EXPECT(u == (m->slot[s].p ? m->slot[s].usable : 0));
}

/* The shared lists and this CPU's cache go back to the bins; the other
 * CPUs' too when the IPI round is on (kheap.h: once kheap_flush_others
 * returns true, every cache is in the bins). */
static void op_trim(struct model *m)
{
	unsigned mark = m->reports;
	kheap_trim(m->h);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	m->maybe &= ~(SHARED_LISTS | (g_cpu < NCPU ? BIT(g_cpu) : 0));
	if (m->ipi)
		m->maybe = 0;
}

/* Allocate one size into every empty slot until the heap runs dry. */
static void op_fill(struct model *m, struct rd *r)
{
	size_t n = get_size(m, r);
	for (unsigned s = 0; s < NSLOTS; s++) {
		if (m->slot[s].p)
			continue;
		unsigned mark = m->reports;
		uint8_t *p = kheap_alloc(m->h, n);
		g_ops++;
		expect_reports(m, mark, 0, 0, NULL);
		if (p == NULL) {
			null_ok(m, n, 1);
			return;
		}
		grant(m, s, p, n, 1);
	}
}

/* Free every k-th slot: all of them, or a comb that fragments the heap. */
static void op_drain(struct model *m, struct rd *r)
{
	unsigned k = (u8(r) & 3u) + 1;
	for (unsigned s = 0; s < NSLOTS; s += k)
		clear_slot(m, s);
}

/* ---- regions ------------------------------------------------------------ */

static uint8_t *align16(uint8_t *p)
{
	return pool + (((size_t)(p - pool) + 15) & ~(size_t)15);
}

static void attach(struct model *m, uint8_t *base, size_t size, size_t total_before)
{
	struct kheap_stats st;
	kheap_get_stats(m->h, &st);
	/* The region's managed bytes: all of it less the end marker and
	 * the alignment of its end. */
	EXPECT(st.total_bytes > total_before && st.total_bytes - total_before <= size &&
	       st.total_bytes - total_before + 48 >= size);
	m->total = st.total_bytes;
	m->lo[m->nreg] = (uintptr_t)base;
	m->hi[m->nreg] = (uintptr_t)base + size;
	m->nreg++;
	m->cursor = base + size;
}

/* A fresh region at the cursor: accepted unless KHEAP_MAX_REGIONS are in use. */
static void region_good(struct model *m, struct rd *r, unsigned k)
{
	unsigned g = u8(r);
	size_t size = KHEAP_MIN_REGION + ((size_t)u16(r) << (k >> 7));
	uint8_t *base = align16(m->cursor) + ((g & 3u) ? 16u * (g >> 2) : 0);
	if (base + size > pool + POOL_SIZE)
		return;
	int full = m->nreg == KHEAP_MAX_REGIONS;
	unsigned mark = m->reports;
	if (!full)
		UNPOISON(base, size);
	int rc = kheap_add_region(m->h, base, size);
	g_ops++;
	if (full) {
		EXPECT(rc == -KHEAP_E_REGION);
		expect_reports(m, mark, 1, BIT(KHEAP_E_REGION), base);
		return;
	}
	EXPECT(rc == 0);
	expect_reports(m, mark, 0, 0, NULL);
	attach(m, base, size, m->total);
}

/* A region kheap.h says must be refused: too small, misaligned, NULL,
 * wrapping, or overlapping an existing region (the first one's control
 * block included). Its memory stays poisoned: the heap must not touch it. */
static void region_bad(struct model *m, struct rd *r, unsigned k)
{
	unsigned v = u16(r), mark = m->reports, want = BIT(KHEAP_E_REGION);
	uintptr_t base = (uintptr_t)align16(m->cursor);
	size_t size = KHEAP_MIN_REGION + (v & 4095u);
	switch (k % 5u) {
	case 0: size = v % KHEAP_MIN_REGION; break;
	case 1: base += 1 + v % 15u; break;
	case 2: base = 0; break;
	case 3: base = (UINTPTR_MAX - 4095u) & ~(uintptr_t)15; size = 8192; break;
	default: {
		unsigned i = v % m->nreg;
		uintptr_t span = m->hi[i] - m->lo[i];
		base = (m->lo[i] + (u16(r) % span)) & ~(uintptr_t)15;
		if (v & 1u) { /* start below it, end inside it */
			base = m->lo[i] - 16 * (1 + (v >> 1 & 31u));
			size += m->lo[i] - base;
		}
	}
	}
	if (base + size > (uintptr_t)pool + POOL_SIZE && base >= (uintptr_t)pool)
		return;
	int rc = kheap_add_region(m->h, (void *)base, size);
	g_ops++;
	if (size < KHEAP_MIN_REGION) { /* too small: returned and reported, like every refusal */
		EXPECT(rc == -KHEAP_E_REGION_SMALL ||
		       (m->nreg == KHEAP_MAX_REGIONS && rc == -KHEAP_E_REGION));
		expect_reports(m, mark, 1, want | BIT(KHEAP_E_REGION_SMALL), (void *)base);
		return;
	}
	EXPECT(rc == -KHEAP_E_REGION);
	expect_reports(m, mark, 1, want, (void *)base);
}

static void op_region(struct model *m, struct rd *r)
{
	unsigned k = u8(r);
	if (k & 0x40u)
		region_good(m, r, k);
	else
		region_bad(m, r, k);
}

/* ---- deliberate misuse ---------------------------------------------------- */

/* A freed pointer that is no live block and lies in no live block, so that
 * freeing it again is a pure double free; NULL if none. */
static int clear_of_all(const struct model *m, const uint8_t *p, size_t u, int skip_obj);

/* A recently freed pointer that no held block (slot, object, cache
 * descriptor) has taken over since. */
static uint8_t *pick_stale(const struct model *m, unsigned v)
{
	unsigned n = m->nstale < NSTALE ? m->nstale : NSTALE;
	for (unsigned j = 0; j < n; j++) {
		uint8_t *p = m->stale[(v + j) % n];
		if (clear_of_all(m, p, 0, -1))
			return p;
	}
	return NULL;
}

/* A live slot (the first from v on), or NSLOTS. */
static unsigned pick_live(const struct model *m, unsigned v)
{
	for (unsigned j = 0; j < NSLOTS; j++)
		if (m->slot[(v + j) % NSLOTS].p)
			return (v + j) % NSLOTS;
	return NSLOTS;
}

/* Hand a bad pointer to free, realloc or usable_size (by how): each must
 * refuse it with one report of a kind in kinds, and change nothing. */
static void bad_pointer(struct model *m, uint8_t *p, unsigned how, unsigned kinds)
{
	unsigned mark = m->reports;
	if (how % 3u == 0) {
		kheap_free(m->h, p);
	} else if (how % 3u == 1) {
		EXPECT(kheap_realloc(m->h, p, 64) == NULL);
	} else {
		EXPECT(kheap_usable_size(m->h, p) == 0);
	}
	g_ops++;
	expect_reports(m, mark, 1, kinds, p);
}

/* A pointer that is in no region: poisoned pool beyond every region, a
 * separate array, or the control block at the start of the first region. */
static uint8_t *foreign(const struct model *m, unsigned v)
{
	switch (v % 3u) {
	case 0: return align16(m->cursor) + 4096 + 16 * (v >> 2 & 255u);
	case 1: return alien + 16 + 16 * (v >> 2 & 127u);
	default: return pool + 16 * (1 + (v >> 2) % (kheap_control_size() / 16 - 1));
	}
}

static void misuse_alloc(struct model *m, unsigned k, unsigned v)
{
	unsigned mark = m->reports;
	if (k == 5) {
		static const size_t bad[] = {0, 3, 24, 48, 100, 1000, 4097, SIZE_MAX};
		size_t a = bad[v % 8u];
		EXPECT(kheap_aligned_alloc(m->h, a, 16 + v % 512u) == NULL);
		g_ops++;
		expect_reports(m, mark, 1, BIT(KHEAP_E_BAD_ALIGN), (void *)a);
	} else if (k == 6) {
		size_t sz = 2 + (v >> 8), n = SIZE_MAX / sz + 1 + (v & 255u);
		EXPECT(kheap_calloc(m->h, n, sz) == NULL);
		g_ops++;
		expect_reports(m, mark, 1, BIT(KHEAP_E_OVERFLOW), NULL);
	} else if (k == 7) { /* no heap at all: reported through kheap_panic */
		EXPECT(kheap_alloc((struct kheap *)(void *)fake_heap, 16) == NULL);
		g_ops++;
		EXPECT(g_panics == 1 && m->reports == mark);
		g_panics = 0;
	} else {
		kheap_get_stats(m->h, NULL);
		EXPECT(g_panics == 1 && m->reports == mark);
		g_panics = 0;
	}
}

static void op_misuse(struct model *m, struct rd *r)
{
	unsigned k = u8(r) % 9u, v = u16(r), s = pick_live(m, v);
	/* A stale pointer may now be an object's payload: WRONG_CACHE. */
	const unsigned header = BIT(KHEAP_E_BAD_HEADER) | BIT(KHEAP_E_DOUBLE_FREE) | BIT(KHEAP_E_WRONG_CACHE);
	uint8_t *p;
	if (k == 0 && (p = pick_stale(m, v)) != NULL) {
		bad_pointer(m, p, v >> 8, header);
	} else if (k == 1 && s < NSLOTS && m->slot[s].usable > 16) {
		size_t off = 16 * (1 + (v >> 8) % (m->slot[s].usable / 16));
		if (off < m->slot[s].usable)
			bad_pointer(m, m->slot[s].p + off, v, header);
	} else if (k == 2 && s < NSLOTS) {
		bad_pointer(m, m->slot[s].p + 1 + (v >> 8) % 15u, v >> 2, BIT(KHEAP_E_MISALIGNED));
	} else if (k == 3 || k == 4) {
		bad_pointer(m, foreign(m, v), v >> 12, BIT(KHEAP_E_FOREIGN));
	} else if (k >= 5) {
		misuse_alloc(m, k, v);
	}
	if (s < NSLOTS && m->slot[s].p)
		verify(&m->slot[s]);
	EXPECT(kheap_check(m->h) == 0);
}

/* ---- per-CPU caches ------------------------------------------------------ */

/* CPU v % 5, 4 meaning none (and so does a CPU beyond NCPU). */
static unsigned pick_cpu(unsigned v) { return v % 5u < NCPU ? v % 5u : KHEAP_NO_CPU; }

static void op_trim_cpu(struct model *m)
{
	unsigned mark = m->reports;
	kheap_trim_cpu(m->h);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	if (g_cpu < NCPU)
		m->maybe &= ~BIT(g_cpu);
}

/* CPU k goes offline: legal for any CPU but the current one, which in this
 * single-threaded world runs no kheap call meanwhile (the script may switch
 * back to it later: brought back). A number from KHEAP_MAX_CPUS up is
 * refused with exactly one KHEAP_E_BAD_ARG that names it. */
static void op_cpu_dead(struct model *m, struct rd *r)
{
	static const unsigned bad[] = {KHEAP_MAX_CPUS, KHEAP_MAX_CPUS + 1, KHEAP_NO_CPU, 1u << 31};
	unsigned v = u8(r), k = v & 7u, mark = m->reports;
	if (v & 0x80u)
		k = bad[v % 4u] + ((v & 3u) == 1 ? (v >> 2 & 15u) : 0);
	else if (k >= KHEAP_MAX_CPUS || k == g_cpu)
		return;
	kheap_cpu_dead(m->h, k);
	g_ops++;
	if (k >= KHEAP_MAX_CPUS) {
		expect_reports(m, mark, 1, BIT(KHEAP_E_BAD_ARG), (void *)(uintptr_t)k);
		EXPECT(kheap_check(m->h) == 0);
		return;
	}
	expect_reports(m, mark, 0, 0, NULL);
	if (k < NCPU)
		m->maybe &= ~BIT(k);
}

/* Free a live block, move to another CPU (or stay) and hand the same
 * pointer back: the block sits on the first CPU's list, in the shared
 * lists or in the bins, whole or absorbed, and each of those must read as
 * exactly one KHEAP_E_DOUBLE_FREE (kheap.h; on a per-CPU list it is the
 * token that tells). */
static void op_free_twice(struct model *m, struct rd *r)
{
	unsigned s = pick_live(m, u8(r)), w = u8(r);
	if (s == NSLOTS)
		return;
	uint8_t *p = m->slot[s].p;
	release(m, s);
	set_cpu(m, pick_cpu(w));
	touch(m);
	bad_pointer(m, p, w >> 3, BIT(KHEAP_E_DOUBLE_FREE));
	EXPECT(kheap_check(m->h) == 0);
}

/* kheap.h (the per-CPU bullet, kheap_trim, kheap_flush_others): a CPU the
 * IPI round did not reach drains its cache at its next allocation or free.
 * After a kheap_trim, each other CPU makes one call that adds nothing to a
 * per-CPU cache (a large allocation, then its free); then nothing may be
 * cached. */
static void visit_all(struct model *m)
{
	unsigned me = g_cpu, mark = m->reports;
	kheap_trim(m->h);
	g_ops++;
	for (unsigned k = 0; k < NCPU; k++) {
		if (k == me)
			continue;
		set_cpu(m, k);
		uint8_t *p = kheap_alloc(m->h, 2000);
		g_ops++;
		if (p == NULL) {
			null_ok(m, 2000, 1);
			continue;
		}
		size_t u = kheap_usable_size(m->h, p);
		if (m->in_use + u + 8 > m->peak)
			m->peak = m->in_use + u + 8;
		kheap_free(m->h, p);
		g_ops += 2;
		m->allocs++;
		m->frees++;
	}
	set_cpu(m, me);
	expect_reports(m, mark, 0, 0, NULL);
	m->maybe = 0;
	check_stats(m);
}

/* Every cache back to the bins: each CPU trims its own, then a kheap_trim
 * flushes the shared lists; nothing may be cached after that. */
static void quiesce(struct model *m)
{
	unsigned me = g_cpu, mark = m->reports;
	struct kheap_stats st;
	if (m->pcpu && !m->ipi)
		visit_all(m);
	for (unsigned k = 0; m->pcpu && k < NCPU; k++) {
		set_cpu(m, k);
		kheap_trim_cpu(m->h);
		g_ops++;
	}
	set_cpu(m, me);
	kheap_trim(m->h);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	m->maybe = 0;
	kheap_get_stats(m->h, &st);
	EXPECT(st.cached_blocks == 0 && st.cached_bytes == 0);
}

/* ---- object caches --------------------------------------------------------- */

/* Held blocks: slots, objects, descriptors (for placement checks). */
static int clear_of_all(const struct model *m, const uint8_t *p, size_t u, int skip_obj)
{
	for (unsigned i = 0; i < NSLOTS; i++)
		if (overlaps(&m->slot[i], p, u))
			return 0;
	for (unsigned i = 0; i < NOBJ; i++)
		if ((int)i != skip_obj && overlaps(&m->obj[i], p, u))
			return 0;
	for (unsigned i = 0; i < NCACHE; i++) {
		const struct blk d = {(uint8_t *)m->cache[i].c, 0, m->cache[i].desc, 0, 0};
		if (m->cache[i].c && overlaps(&d, p, u))
			return 0;
	}
	return 1;
}

static void grew(struct model *m, size_t bytes)
{
	m->live++;
	m->allocs++;
	m->in_use += bytes;
	if (m->in_use > m->peak)
		m->peak = m->in_use;
}

static void shrank(struct model *m, size_t bytes)
{
	m->live--;
	m->frees++;
	m->in_use -= bytes;
}

static void cache_create(struct model *m, unsigned k, unsigned v)
{
	static const size_t sizes[] = {1, 24, 56, 100, 200, 500, 1000, 3000};
	struct cachem *cm = &m->cache[k];
	size_t size = sizes[v % 8u], align = v & 8u ? (size_t)16 << (v >> 4 & 3u) : 0;
	unsigned mark = m->reports;
	struct kheap_cache *c = kheap_cache_create(m->h, "fuzz", size, align, v & 64u ? KHEAP_CACHE_ZERO : 0);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	if (c == NULL) { /* the descriptor did not fit */
		null_ok(m, kheap_cache_size(), 64);
		return;
	}
	struct kheap_cache_stats st;
	EXPECT(kheap_cache_stats(c, &st) == 0);
	EXPECT(st.objects == 0 && st.obj_size == size && st.obj_block >= size + 8 &&
	       st.obj_block % (align > 16 ? align : 16) == 0);
	size_t u = kheap_usable_size(m->h, c);
	EXPECT((uintptr_t)c % 64 == 0 && u >= kheap_cache_size() && clear_of_all(m, (uint8_t *)c, u, -1));
	*cm = (struct cachem){c, size, align > 16 ? align : 16, st.obj_block, u, 0};
	m->caches_used = 1; /* carved objects count as in use for the peak */
	grew(m, u + 8);
}

static void cache_destroy(struct model *m, unsigned k)
{
	struct cachem *cm = &m->cache[k];
	unsigned mark = m->reports;
	if (cm->held > 0) {
		EXPECT(kheap_cache_destroy(cm->c) == -KHEAP_E_BAD_ARG);
		g_ops++;
		expect_reports(m, mark, 1, BIT(KHEAP_E_BAD_ARG), cm->c);
		return;
	}
	EXPECT(kheap_cache_destroy(cm->c) == 0);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	shrank(m, cm->desc + 8);
	cm->c = NULL;
}

/* An object of cache k for obj[i]: placed, aligned, zeroed when asked. */
static int obj_alloc(struct model *m, unsigned k, unsigned i)
{
	struct cachem *cm = &m->cache[k];
	unsigned mark = m->reports;
	uint8_t *p = kheap_cache_alloc(cm->c);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	if (p == NULL) {
		struct kheap_stats st;
		kheap_get_stats(m->h, &st);
		EXPECT(st.largest_free < 2 * cm->block + 64);
		m->ooms++;
		return 0;
	}
	EXPECT((uintptr_t)p % cm->align == 0 && region_of(m, p, cm->block - 8) >= 0);
	EXPECT(clear_of_all(m, p, cm->block - 8, -1));
	struct kheap_cache_stats cs;
	EXPECT(kheap_cache_stats(cm->c, &cs) == 0 && cs.in_use == cm->held + 1 && cs.objects >= cs.in_use);
	m->obj[i] = (struct blk){p, cm->size, cm->block - 8, cm->align, 0};
	m->objc[i] = k;
	stamp(m, &m->obj[i]);
	cm->held++;
	m->caches_used = 1;
	grew(m, cm->block);
	return 1;
}

static void obj_free(struct model *m, unsigned i, int twice)
{
	struct cachem *cm = &m->cache[m->objc[i]];
	uint8_t *p = m->obj[i].p;
	unsigned mark = m->reports;
	verify(&m->obj[i]);
	kheap_cache_free(cm->c, p);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	cm->held--;
	shrank(m, cm->block);
	m->obj[i].p = NULL;
	if (twice) { /* right after the free it is on a list: a double free */
		kheap_cache_free(cm->c, p);
		g_ops++;
		expect_reports(m, mark, 1, BIT(KHEAP_E_DOUBLE_FREE), p);
	}
}

/* Misuse with object i: each call refused with one report, nothing changed. */
static void obj_misuse(struct model *m, unsigned i, unsigned v)
{
	struct cachem *cm = &m->cache[m->objc[i]];
	uint8_t *p = m->obj[i].p;
	unsigned mark = m->reports, other = m->objc[i] ^ 1u, s = pick_live(m, v);
	switch (v % 4u) {
	case 0:
		kheap_free(m->h, p);
		break;
	case 1:
		if (m->cache[other].c == NULL)
			return;
		kheap_cache_free(m->cache[other].c, p);
		break;
	case 2:
		if (s >= NSLOTS)
			return;
		kheap_cache_free(cm->c, m->slot[s].p);
		p = m->slot[s].p;
		break;
	default:
		kheap_cache_free(cm->c, p + 16 * (1 + (v >> 2) % 4u) < m->obj[i].p + m->obj[i].usable
						? p + 16 * (1 + (v >> 2) % 4u) : p + 8);
		g_ops++;
		expect_reports(m, mark, 1, BIT(KHEAP_E_BAD_HEADER) | BIT(KHEAP_E_MISALIGNED), NULL);
		verify(&m->obj[i]);
		return;
	}
	g_ops++;
	expect_reports(m, mark, 1, BIT(KHEAP_E_WRONG_CACHE), p);
	verify(&m->obj[i]);
	if (s < NSLOTS && m->slot[s].p)
		verify(&m->slot[s]);
	EXPECT(kheap_check(m->h) == 0);
}

/* Reserve n on this CPU, then n allocations that must all succeed. */
static void obj_reserve(struct model *m, unsigned k, unsigned n)
{
	unsigned mark = m->reports;
	int rc = kheap_cache_reserve(m->cache[k].c, n);
	g_ops++;
	expect_reports(m, mark, 0, 0, NULL);
	EXPECT(rc == 0 || rc == -1);
	if (rc != 0)
		return;
	for (unsigned j = 0; j < n; j++) {
		unsigned i = 0;
		while (i < NOBJ && m->obj[i].p)
			i++;
		if (i == NOBJ) {
			EXPECT(kheap_cache_unreserve(m->cache[k].c, n - j) == 0);
			return;
		}
		EXPECT(obj_alloc(m, k, i));
	}
	EXPECT(kheap_cache_unreserve(m->cache[k].c, 1000) == 0);
}

/* Opcodes 0xe0-0xef: object caches (the low nibble picks the operation). */
static void op_cache(struct model *m, struct rd *r, unsigned op)
{
	unsigned v = u16(r), k = v % NCACHE, i = (v >> 1) % NOBJ;
	struct cachem *cm = &m->cache[k];
	if (g_trace)
		fprintf(stderr, "cache op %u v %u on cpu %d, %u live\n", op, v, (int)g_cpu, m->live);
	if (cm->c == NULL) {
		cache_create(m, k, v >> 2);
		return;
	}
	if (op < 6) {
		if (m->obj[i].p == NULL)
			obj_alloc(m, k, i);
		else
			obj_free(m, i, 0);
	} else if (op < 8) {
		if (m->obj[i].p)
			obj_free(m, i, op == 7);
		else
			obj_alloc(m, k, i);
	} else if (op < 11) {
		if (m->obj[i].p)
			obj_misuse(m, i, v >> 6);
	} else if (op < 13) {
		obj_reserve(m, k, 1 + (v >> 6) % 6u);
	} else if (op == 13) {
		unsigned mark = m->reports;
		kheap_cache_shrink(cm->c);
		g_ops++;
		expect_reports(m, mark, 0, 0, NULL);
	} else {
		cache_destroy(m, k);
	}
}

/* Opcodes 0xf0-0xff: switch CPU (0-7: CPU op % 5, 4 = none), trim this
 * CPU, take another offline, turn the IPI round on or off, free twice
 * across CPUs, drain every cache. */
static void step_cpu(struct model *m, struct rd *r, unsigned op)
{
	if (g_trace)
		fprintf(stderr, "cpu op %u on cpu %d, %u live\n", op, (int)g_cpu, m->live);
	if (op < 8)
		set_cpu(m, pick_cpu(op));
	else if (op < 10)
		op_trim_cpu(m);
	else if (op < 12)
		op_cpu_dead(m, r);
	else if (op == 12)
		m->ipi = !m->ipi;
	else if (op < 15)
		op_free_twice(m, r);
	else
		quiesce(m);
}

/* ---- one input ---------------------------------------------------------- */

/* Refused kheap_init calls: too small, misaligned, NULL, wrapping. The pool
 * is poisoned, so a refused init must not write to it either. */
static void bad_init(unsigned v, unsigned w)
{
	size_t ctl = kheap_control_size();
	switch (v % 5u) {
	case 0: EXPECT(kheap_init(pool, ctl + KHEAP_MIN_REGION - 1 - w) == NULL); break;
	case 1: EXPECT(kheap_init(pool, w) == NULL); break;
	case 2: EXPECT(kheap_init(pool + 8, 65536) == NULL); break;
	case 3: EXPECT(kheap_init(NULL, 65536) == NULL); break;
	default: EXPECT(kheap_init((void *)((UINTPTR_MAX - 4095u) & ~(uintptr_t)15), 8192) == NULL);
	}
	g_ops++;
}

static int start(struct model *m, struct rd *r)
{
	unsigned a = u8(r), b = u8(r), c = u8(r);
	size_t ctl = kheap_control_size();
	size_t size = ctl + KHEAP_MIN_REGION + ((size_t)c << (b % 13u)) + (b >> 4);
	memset(m, 0, sizeof *m);
	/* Per-CPU mode: kheap_init turns the caches on when it is asked on a
	 * CPU; else the first locked allocation made on one does. */
	m->pcpu = (a & 0x80u) && NCPU > 0;
	g_cpu = KHEAP_NO_CPU;
	set_cpu(m, (a >> 4 & 7u) < 6 ? pick_cpu(a >> 4 & 3u) : KHEAP_NO_CPU);
	if ((a & 15u) == 0)
		bad_init(a >> 4, c);
	UNPOISON(pool, size);
	m->h = kheap_init(pool, size);
	g_ops++;
	EXPECT(m->h == (struct kheap *)(void *)pool);
	g_model = m;
	kheap_set_report(m->h, on_report, m);
	m->nreg = 1;
	m->lo[0] = (uintptr_t)pool;
	m->hi[0] = (uintptr_t)pool + size;
	m->cursor = pool + size;
	struct kheap_stats st;
	kheap_get_stats(m->h, &st);
	EXPECT(st.total_bytes <= size - ctl && st.total_bytes + 48 >= size - ctl);
	EXPECT(st.free_blocks == 1 && st.free_bytes == st.total_bytes && st.largest_free > 0);
	m->total = st.total_bytes;
	m->lib_peak = st.peak_in_use_bytes;
	return 1;
}

/* Everything back: the heap must return to one free block per region. */
static void finish(struct model *m)
{
	struct kheap_stats st;
	deep_check(m);
	touch(m);
	for (unsigned s = 0; s < NSLOTS; s++)
		clear_slot(m, s);
	for (unsigned i = 0; i < NOBJ; i++)
		if (m->obj[i].p)
			obj_free(m, i, 0);
	for (unsigned k = 0; k < NCACHE; k++)
		if (m->cache[k].c)
			cache_destroy(m, k);
	quiesce(m);
	check_stats(m);
	kheap_get_stats(m->h, &st);
	EXPECT(st.in_use_bytes == 0 && st.cached_bytes == 0);
	EXPECT(st.free_blocks == m->nreg && st.free_bytes == st.total_bytes);
	EXPECT(kheap_check(m->h) == 0);
	EXPECT(m->reports == m->errors);
	POISON(pool, (size_t)(m->cursor - pool));
}

static void step(struct model *m, struct rd *r)
{
	static void (*const ops[])(struct model *, struct rd *) = {
		op_alloc, op_free, op_realloc, op_aligned, op_calloc, op_usable,
		op_region, op_fill, op_drain, op_misuse,
	};
	/* Weights out of 64 (of the low 6 bits): alloc 18, free 14,
	 * realloc 10, aligned 5, calloc 4, usable 3, region 3, fill 1,
	 * drain 1, misuse 3, trim 1, deep check 1. Opcodes from 0xf0 up are
	 * step_cpu's. */
	static const uint8_t weight[] = {18, 14, 10, 5, 4, 3, 3, 1, 1, 3};
	unsigned op = u8(r), x = op & 63u, i = 0;
	touch(m);
	if (op >= 0xf0u) {
		step_cpu(m, r, op & 15u);
		return;
	}
	if (op >= 0xe0u) {
		op_cache(m, r, op & 15u);
		return;
	}
	while (i < sizeof weight && x >= weight[i])
		x -= weight[i++];
	if (g_trace)
		fprintf(stderr, "op %u (x %u), %u live\n", i, x, m->live);
	if (i < sizeof weight)
		ops[i](m, r);
	else if (x == 0)
		op_trim(m);
	else
		deep_check(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model m;
	struct rd r = {data, size, 0};
	g_inputs++;
	if (!start(&m, &r))
		return 0;
	for (unsigned i = 0; i < MAX_OPS && !r.end; i++) {
		step(&m, &r);
		check_stats(&m);
		if (++m.since_deep >= DEEP_EVERY)
			deep_check(&m);
	}
	finish(&m);
	g_model = NULL;
	return 0;
}

/* ---- set-up and the totals line ------------------------------------------- */

static void totals(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double s = (double)(now.tv_sec - g_start.tv_sec) + (double)(now.tv_nsec - g_start.tv_nsec) / 1e9;
	printf("fuzz_heap: %llu heap operations in %llu inputs, %.1f s, %.0f ops/s, %.0f inputs/s\n",
	       (unsigned long long)g_ops, (unsigned long long)g_inputs, s, s > 0 ? (double)g_ops / s : 0.0,
	       s > 0 ? (double)g_inputs / s : 0.0);
	fflush(stdout);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	uint64_t x = 0x6b68656170f022u;
	for (size_t i = 0; i < sizeof pat; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		pat[i] = (uint8_t)(x >> 24);
	}
	g_trace = getenv("FUZZ_TRACE") != NULL;
	POISON(pool, sizeof pool);
	POISON(alien, sizeof alien);
	clock_gettime(CLOCK_MONOTONIC, &g_start);
	atexit(totals);
	return 0;
}
