/*
 * kh_region.c: regions. A region is a run of blocks from first to an end
 * marker (invariant I1 in kh_internal.h); the first region also holds the
 * control block. Adding one seeds it as one free block, grows the counters
 * and rescales the cache limits, which depend on the managed bytes. Lock
 * held, or the heap not yet shared (kheap_init).
 */
#include "kh_internal.h"

/* Block geometry of [lo, hi): first block 8 mod 16, end marker 8 mod 16,
 * span clipped to KH_MAX_BLOCK. Returns false when no block fits. */
bool kh_region_geometry(struct kh_region *r, uintptr_t lo, uintptr_t hi, uintptr_t from)
{
	r->lo = lo;
	r->hi = hi;
	r->first = ((from + KH_HDR + KH_GRANULE - 1) & ~(uintptr_t)(KH_GRANULE - 1)) - KH_HDR;
	r->end = ((hi - 2 * KH_HDR) & ~(uintptr_t)(KH_GRANULE - 1)) + KH_HDR;
	if (hi - from < KHEAP_MIN_REGION || r->end < r->first + KH_MIN_BLOCK)
		return false;
	if (r->end - r->first > KH_MAX_BLOCK)
		r->end = r->first + KH_MAX_BLOCK;
	return true;
}

void kh_region_attach(struct kheap *h, const struct kh_region *r)
{
	KH_ASSERT(h->nregions < KHEAP_MAX_REGIONS && r->first < r->end);
	struct kh_region *slot = &h->regions[h->nregions++];
	*slot = *r;
	kh_region_seed(h, slot);
	h->n.total += slot->end - slot->first;
	kh_cache_limits(h);
	kh_cpu_limits(h);
	kh_cpu_sync(h, &h->cpus[KH_SHARED]); /* the lock holder's snapshot */
}

/* Attach [base, base + size) as a further region, or record in *e why not
 * (kheap.h lists the cases). Lock held. */
void kh_region_add(struct kheap *h, void *base, size_t size, struct kh_err *e)
{
	uintptr_t lo = (uintptr_t)base;
	struct kh_region r;
	if (base == NULL)
		kh_fail(e, KHEAP_E_REGION, base, "region base is NULL");
	else if (lo & (KHEAP_ALIGN - 1))
		kh_fail(e, KHEAP_E_REGION, base, "region base is not 16-byte aligned");
	else if (size > UINTPTR_MAX - lo)
		kh_fail(e, KHEAP_E_REGION, base, "region wraps around the address space");
	else if (!kh_region_geometry(&r, lo, lo + size, lo))
		kh_fail(e, KHEAP_E_REGION_SMALL, base, "region too small for one block");
	else if (h->nregions == KHEAP_MAX_REGIONS)
		kh_fail(e, KHEAP_E_REGION, base, "KHEAP_MAX_REGIONS regions already in use");
	for (unsigned i = 0; e->kind == KHEAP_OK && i < h->nregions; i++)
		if (lo < h->regions[i].hi && h->regions[i].lo < lo + size)
			kh_fail(e, KHEAP_E_REGION, base, "region overlaps a region of this heap");
	if (e->kind == KHEAP_OK)
		kh_region_attach(h, &r);
}
