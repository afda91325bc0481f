/*
 * kh_tags.c: reading the caller tags (contract in kheap.h, KHEAP_TAGS).
 *
 * The tags are written in one place, count_grant() in kheap.c, with the
 * caller every entry point puts in its struct kh_err; kh_backend_resize
 * carries a tag along when a block is resized in place. Here they are only
 * read. Built without KHEAP_TAGS, kh_tag_get yields site NULL and seq 0 and
 * these functions say so, as the header promises.
 */
#include "kh_internal.h"

void kheap_walk_tags(struct kheap *h, kheap_tag_fn fn, void *ctx)
{
	if (!kh_live(h)) {
		kh_report_global(KHEAP_E_BAD_HEAP, h, __builtin_return_address(0), "not a live heap handle");
		return;
	}
	if (fn == NULL)
		return;
	uintptr_t irq = kh_enter(h);
	for (unsigned i = 0; i < h->nregions; i++) {
		const struct kh_region *r = &h->regions[i];
		uintptr_t b = r->first;
		while (b < r->end) {
			kh_word w = *kh_hdr(b);
			if (!kh_block_sane(h, r, b, w)) {
				b = kh_resync(h, r, b);
				continue;
			}
			if (kh_held_by_caller(h, b, w)) {
				struct kh_tag t = kh_tag_get(b);
				fn(ctx, kh_payload(b), kh_usable(b), t.site, t.seq);
			}
			b += (size_t)(w & KH_SIZE_MASK);
		}
	}
	kh_exit(h, irq);
}

/* The block whose payload is ptr, if the caller holds it, or 0: the header
 * and token only (not the canary or the neighbours), so that the tag of a
 * block damaged past its end can still be read. Never reports. */
static uintptr_t tagged(const struct kheap *h, const void *ptr)
{
	struct kh_err ignored = KH_ERR_INIT;
	return ptr != NULL ? kh_held(h, ptr, &ignored, KH_HELD_HEADER) : 0;
}

int kheap_tag_of(struct kheap *h, const void *ptr, const void **site, uint64_t *seq)
{
	struct kh_tag t = {NULL, 0};
	int rc = -1;
	if (KHEAP_TAGS && kh_live(h)) {
		uintptr_t irq = kh_enter(h);
		uintptr_t b = tagged(h, ptr);
		if (b != 0) {
			t = kh_tag_get(b);
			rc = 0;
		}
		kh_exit(h, irq);
	}
	if (site != NULL)
		*site = t.site;
	if (seq != NULL)
		*seq = t.seq;
	return rc;
}
