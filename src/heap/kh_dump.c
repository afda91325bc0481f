/*
 * kh_dump.c: kheap_dump, the heap printed through a putc callback (contract
 * and line format in kheap.h).
 *
 * Written for a panic handler, which may run while this CPU or another one
 * holds the heap lock, on a heap that may be corrupt: nothing here allocates
 * or writes to the heap, the lock is only ever tried (a ticket taken could
 * never be given back), and every block step is validated first
 * (kh_block_sane) or resynchronised (kh_resync), so no read leaves a region
 * the control block names. Unlocked, headers are read once each, through a
 * volatile load, so a block is judged and stepped over on one value.
 */
#include "kh_internal.h"

/* Lock attempts before printing unlocked: enough to ride out any ordinary
 * operation on another CPU, short (milliseconds) when the lock is held for
 * good, e.g. by this CPU, interrupted inside the heap. */
#define KH_DUMP_TRIES 100000u

struct dump {
	const struct kheap *h;
	kheap_putc_fn putc;
	void *ctx;
	size_t lines;  /* block and bad lines printed, up to KHEAP_DUMP_MAX_BLOCKS */
	size_t blocks; /* sound blocks seen */
	size_t bad;    /* corrupt spans seen */
	size_t elided[4]; /* lines not printed, by kind: used, free, cached, bad */
};

enum { USED, FREE, CACHED, BAD };
static const char *const kind_name[] = {"used", "free", "cached", "bad"};

static void put(struct dump *d, const char *s)
{
	while (*s)
		d->putc(d->ctx, *s++);
}

static void put_num(struct dump *d, const char *key, uint64_t v, unsigned base)
{
	char buf[KH_FMT_LEN];
	put(d, key);
	put(d, base == 16 ? "0x" : "");
	put(d, kh_fmt(buf, v, base));
}

static void put_u(struct dump *d, const char *key, uint64_t v) { put_num(d, key, v, 10); }
static void put_x(struct dump *d, const char *key, uintptr_t v) { put_num(d, key, v, 16); }

static kh_word read_once(uintptr_t b) { return *(const volatile kh_word *)b; }

/* Room for one more block or bad line? If not, count it as elided. */
static bool room(struct dump *d, unsigned kind)
{
	if (d->lines < KHEAP_DUMP_MAX_BLOCKS) {
		d->lines++;
		return true;
	}
	d->elided[kind]++;
	return false;
}

static void block_line(struct dump *d, uintptr_t b, kh_word w)
{
	unsigned kind = !(w & KH_USED) ? FREE : kh_on_list(d->h, b) ? CACHED : USED;
	d->blocks++;
	if (!room(d, kind))
		return;
	put_x(d, "kheap block ptr=", (uintptr_t)kh_payload(b));
	put_u(d, " bytes=", (size_t)(w & KH_SIZE_MASK));
	put(d, " state=");
	put(d, kind_name[kind]);
	if (KHEAP_TAGS && kind == USED) {
		struct kh_tag t = kh_tag_get(b);
		put_x(d, " site=", (uintptr_t)t.site);
		put_u(d, " seq=", t.seq);
	}
	put(d, "\n");
}

/* A corrupt span from b; the walk goes on at resume (r->end: at the end). */
static void bad_line(struct dump *d, unsigned region, uintptr_t b, const char *why, uintptr_t resume,
		     const struct kh_region *r)
{
	d->bad++;
	if (!room(d, BAD))
		return;
	put_x(d, "kheap bad ptr=", (uintptr_t)kh_payload(b));
	put_u(d, " region=", region);
	put(d, " why=\"");
	put(d, why);
	put(d, "\"");
	if (resume < r->end)
		put_x(d, " resume=", (uintptr_t)kh_payload(resume));
	else
		put(d, " resume=end");
	put(d, "\n");
}

/* Is region record r plausible enough to read blocks from? */
static bool region_sane(const struct kh_region *r)
{
	return r->lo <= r->first && r->first < r->end && r->end <= r->hi - KH_HDR &&
	       (r->first & (KH_GRANULE - 1)) == KH_HDR && (r->end & (KH_GRANULE - 1)) == KH_HDR;
}

static void dump_region(struct dump *d, const struct kheap *h, unsigned i)
{
	const struct kh_region *r = &h->regions[i];
	put_u(d, "kheap region i=", i);
	put_x(d, " lo=", r->lo);
	put_x(d, " hi=", r->hi);
	put_x(d, " first=", r->first);
	put_x(d, " end=", r->end);
	put(d, "\n");
	if (!region_sane(r)) {
		bad_line(d, i, r->first, "region record corrupt", r->end, r);
		return;
	}
	uintptr_t b = r->first;
	while (b < r->end) {
		kh_word w = read_once(b);
		if (!kh_block_sane(h, r, b, w)) {
			uintptr_t x = kh_resync(h, r, b);
			bad_line(d, i, b, "block header corrupt (cookie or size)", x, r);
			b = x;
			continue;
		}
		block_line(d, b, w);
		b += (size_t)(w & KH_SIZE_MASK);
	}
	kh_word w = read_once(r->end);
	if (!kh_sealed(h, r->end, w) || (w & KH_SIZE_MASK) != 0 || !(w & KH_USED))
		bad_line(d, i, r->end, "end marker corrupt", r->end, r);
}

static void dump_stats(struct dump *d, const struct kheap *h)
{
	struct kheap_stats st;
	kh_stats_locked(h, &st);
	const struct {
		const char *key;
		uint64_t v;
	} f[] = {
		{"kheap stats total=", st.total_bytes}, {" in_use=", st.in_use_bytes},
		{" peak=", st.peak_in_use_bytes},       {" free=", st.free_bytes},
		{" cached=", st.cached_bytes},          {" largest_free=", st.largest_free},
		{" used_blocks=", st.used_blocks},      {" free_blocks=", st.free_blocks},
		{" cached_blocks=", st.cached_blocks},  {" allocs=", st.alloc_count},
		{" frees=", st.free_count},             {" ooms=", st.oom_count},
		{" errors=", st.error_count},           {" regions=", st.regions},
	};
	for (unsigned i = 0; i < sizeof f / sizeof f[0]; i++)
		put_u(d, f[i].key, f[i].v);
	put(d, "\n");
}

/* One line per object cache (kheap_cache_stats' figures). */
static void dump_caches(struct dump *d, const struct kheap *h)
{
	for (unsigned i = 0; i < KHEAP_MAX_CACHES; i++) {
		struct kheap_cache_stats st;
		if (!kh_obj_figures(h, i, &st))
			continue;
		put_u(d, "kheap cache i=", i);
		put(d, " name=");
		put(d, st.name != NULL ? st.name : "?");
		const struct {
			const char *key;
			uint64_t v;
		} f[] = {
			{" size=", st.obj_size},      {" align=", st.obj_align},   {" block=", st.obj_block},
			{" objects=", st.objects},    {" in_use=", st.in_use},     {" cached=", st.cached},
			{" reserved=", st.reserved},  {" slabs=", st.slabs},       {" allocs=", st.allocs},
			{" frees=", st.frees},        {" hits=", st.hits},         {" misses=", st.misses},
			{" fills=", st.reserve_fills}, {" shrinks=", st.shrinks},  {" failures=", st.failures},
		};
		for (unsigned j = 0; j < sizeof f / sizeof f[0]; j++)
			put_u(d, f[j].key, f[j].v);
		put(d, "\n");
	}
}

static void dump_tail(struct dump *d)
{
	size_t n = d->elided[USED] + d->elided[FREE] + d->elided[CACHED] + d->elided[BAD];
	if (n != 0) {
		put_u(d, "kheap elided lines=", n);
		for (unsigned k = USED; k <= BAD; k++) {
			put(d, " ");
			put(d, kind_name[k]);
			put_u(d, "=", d->elided[k]);
		}
		put(d, "\n");
	}
	put_u(d, "kheap end blocks=", d->blocks);
	put_u(d, " bad=", d->bad);
	put(d, "\n");
}

static bool try_lock(struct kh_lock *l)
{
	for (unsigned i = 0; i < KH_DUMP_TRIES; i++) {
		if (kh_lock_try(l))
			return true;
		kh_cpu_relax();
	}
	return false;
}

void kheap_dump(struct kheap *h, kheap_putc_fn putc, void *ctx)
{
	struct dump d = {h, putc, ctx, 0, 0, 0, {0, 0, 0, 0}};
	if (putc == NULL)
		return;
	put_x(&d, "kheap dump heap=", (uintptr_t)h);
	if (!kh_live(h)) {
		put(&d, " not a live heap\n");
		return;
	}
	put_u(&d, " harden=", KHEAP_HARDEN);
	put_u(&d, " tags=", KHEAP_TAGS);
	put(&d, "\n");
	uintptr_t irq = kh_irq_save();
	bool locked = try_lock(&h->lock);
	put(&d, locked ? "kheap lock taken\n" : "kheap lock busy: unlocked snapshot, may be torn\n");
	dump_stats(&d, h);
	dump_caches(&d, h);
	unsigned n = h->nregions;
	if (n > KHEAP_MAX_REGIONS)
		n = KHEAP_MAX_REGIONS;
	for (unsigned i = 0; i < n; i++)
		dump_region(&d, h, i);
	dump_tail(&d);
	if (locked)
		kh_lock_release(&h->lock);
	kh_irq_restore(irq);
}
