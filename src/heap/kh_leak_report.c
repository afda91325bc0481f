/*
 * kh_leak_report.c: kheap_leak_ignore's table (in the control block, under
 * the lock) and kheap_leak_report, the greppable lines over kheap_leak_scan
 * (contract in kheap.h, "Leak scan").
 */
#include "kh_leak.h"

/* ---- the ignore table ------------------------------------------------------ */

static kh_word lk_mark_body(kh_word w) { return w & (KH_SIZE_MASK | KH_ALG_MASK); }

/* The held block whose payload is p, or 0 (header and token only; never
 * reports). Lock held. */
static uintptr_t lk_held_block(const struct kheap *h, const void *p)
{
	struct kh_err ignored = KH_ERR_INIT;
	return p != NULL ? kh_held(h, p, &ignored, KH_HELD_HEADER) : 0;
}

/* Does entry m still name the block it was made for, held? Lock held. */
bool lk_mark_live(const struct kheap *h, const struct kh_leak_mark *m)
{
	if (m->b == 0 || lk_held_block(h, kh_payload(m->b)) == 0 || lk_mark_body(*kh_hdr(m->b)) != m->body)
		return false;
#if KHEAP_TAGS
	return kh_tag_get(m->b).seq == m->seq;
#else
	return true;
#endif
}

static void lk_mark_fill(struct kh_leak_mark *m, uintptr_t b)
{
	m->b = b;
	m->body = lk_mark_body(*kh_hdr(b));
#if KHEAP_TAGS
	m->seq = kh_tag_get(b).seq;
#endif
}

/* Record held block b; false when every entry names another live block. */
static bool lk_mark_add(struct kheap *h, uintptr_t b)
{
	struct kh_leak_mark *spare = NULL;
	for (unsigned i = 0; i < KHEAP_LEAK_IGNORE_MAX; i++) {
		struct kh_leak_mark *m = &h->leak_marks[i];
		bool live = lk_mark_live(h, m);
		if (live && m->b == b)
			return true;
		if (!live && spare == NULL)
			spare = m;
	}
	if (spare != NULL)
		lk_mark_fill(spare, b);
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
	uintptr_t b = lk_held_block(h, p);
	if (b == 0)
		kh_fail(&e, KHEAP_E_BAD_ARG, p, "kheap_leak_ignore: not a block the caller holds");
	else if (!lk_mark_add(h, b))
		kh_fail(&e, KHEAP_E_BAD_ARG, p, "kheap_leak_ignore: table full (KHEAP_LEAK_IGNORE_MAX)");
	kh_exit(h, irq);
	if (e.kind == KHEAP_OK)
		return 0;
	kh_report(h, &e, caller);
	return -(int)e.kind;
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
	int rc = lk_leak_scan(h, roots, nroots, scratch, scratch_size, putc != NULL ? leak_line : NULL, &p, &r,
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

