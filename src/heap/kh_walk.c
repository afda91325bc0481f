/*
 * kh_walk.c: walking the blocks of every region in address order, for
 * kheap_walk, kheap_walk_tags and the repair paths, and the
 * resynchronisation past a damaged header that kheap_check, kheap_dump and
 * the repairs share. Every read stays inside a region: a header is checked
 * (kh_block_sane) before its size is followed.
 */
#include "kh_internal.h"

/* A sound header followed by another sealed one is unlikely to be stale
 * payload, so that is where the walk picks up again. */
uintptr_t kh_resync(const struct kheap *h, const struct kh_region *r, uintptr_t b)
{
	uintptr_t x = b + KH_GRANULE;
	for (; x < r->end; x += KH_GRANULE) {
		kh_word w = *kh_hdr(x);
		if (kh_block_sane(h, r, x, w) && kh_ok(h, x + (size_t)(w & KH_SIZE_MASK)))
			break;
	}
	return x;
}

void kh_walk_blocks(const struct kheap *h, kh_visit_fn visit, void *ctx, bool resync)
{
	for (unsigned i = 0; i < h->nregions; i++) {
		const struct kh_region *r = &h->regions[i];
		uintptr_t b = r->first;
		while (b < r->end) {
			kh_word w = *kh_hdr(b);
			if (!kh_block_sane(h, r, b, w)) {
				if (!resync)
					break;
				b = kh_resync(h, r, b);
				continue;
			}
			uintptr_t next = visit(ctx, b, w);
			b = next != 0 ? next : b + (size_t)(w & KH_SIZE_MASK);
		}
	}
}

/* The public walkers' entry: the handle reported when it is not a heap,
 * nothing done for a NULL callback, the walk made with the lock held. */
static void walk_locked(struct kheap *h, bool want, kh_visit_fn visit, void *ctx, bool resync,
			const void *caller)
{
	if (!kh_handle_ok(h, caller) || !want)
		return;
	uintptr_t irq = kh_enter(h);
	kh_walk_blocks(h, visit, ctx, resync);
	kh_exit(h, irq);
}

struct walk_ctx {
	kheap_walk_fn fn;
	kheap_tag_fn tag_fn;
	void *ctx;
	const struct kheap *h;
};

static uintptr_t visit_any(void *p, uintptr_t b, kh_word w)
{
	struct walk_ctx *c = p;
	c->fn(c->ctx, kh_payload(b), (size_t)(w & KH_SIZE_MASK) - KH_HDR, kh_held_by_caller(c->h, b, w));
	return 0;
}

void kheap_walk(struct kheap *h, kheap_walk_fn fn, void *ctx)
{
	struct walk_ctx c = {fn, NULL, ctx, h};
	walk_locked(h, fn != NULL, visit_any, &c, false, KH_CALLER());
}

static uintptr_t visit_held(void *p, uintptr_t b, kh_word w)
{
	struct walk_ctx *c = p;
	if (kh_held_by_caller(c->h, b, w)) {
		struct kh_tag t = kh_tag_get(b);
		c->tag_fn(c->ctx, kh_payload(b), kh_usable(b), t.site, t.seq);
	}
	return 0;
}

void kheap_walk_tags(struct kheap *h, kheap_tag_fn fn, void *ctx)
{
	struct walk_ctx c = {NULL, fn, ctx, h};
	walk_locked(h, fn != NULL, visit_held, &c, true, KH_CALLER());
}
