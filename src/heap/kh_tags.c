/*
 * kh_tags.c: reading the caller tags (contract in kheap.h, KHEAP_TAGS).
 *
 * The tags are written in one place, kh_count_grant (kh_stats.c), with the
 * caller every entry point puts in its struct kh_err; kh_backend_resize
 * carries a tag along when a block is resized in place. Here they are only
 * read. Built without KHEAP_TAGS, kh_tag_get yields site NULL and seq 0 and
 * these functions say so, as the header promises.
 */
#include "kh_internal.h"

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
