/*
 * kh_harden.c: every check that decides whether a pointer may be given back,
 * and the hardening hooks on hand-out and release (levels in kheap.h,
 * named predicates KH_POISONS ... KH_PERIODIC_CHECK in kh_internal.h).
 *
 * One predicate, kh_held, decides "the caller holds this block" for every
 * path that takes a block back or reads it: the locked free (the block's
 * own header, canary and token), realloc and usable_size (with the lock:
 * neighbours too), the per-CPU free in C (without the lock: the block's own
 * header, canary and token only, since the backend may be rewriting a
 * neighbour meanwhile), and the readers that must see a block damaged past
 * its end (kheap_tag_of, the leak scan's ignore table: header and token
 * only). The fused assembly free (kh_cpu_free) performs the level-0 subset
 * of the lock-free form and leaves anything else to it. A block's
 * neighbours are checked where it merges with them, by kh_backend_free
 * (kh_tlsf.c), on every path into the bins: a free, a drain, a flush; so a
 * block that went to a size-class list unchecked is checked when it leaves
 * it, and a free that merges reads each neighbour once.
 */
#include "kh_internal.h"

/* The previous block's boundary tag at b - 8, when b's header says it is
 * free: a sealed free header of a plausible size that the tag copies. */
static bool prev_tag_ok(const struct kheap *h, const struct kh_region *r, uintptr_t b)
{
	kh_word tag = *(kh_word *)(b - KH_HDR);
	size_t ps = (size_t)(tag & KH_SIZE_MASK);
	return b != r->first && ps >= KH_MIN_BLOCK && ps <= b - r->first && *kh_hdr(b - ps) == tag &&
	       kh_sealed(h, b - ps, tag) && !(tag & KH_USED);
}

/* Used block b (header w, in region r) and its neighbours agree: the next
 * header is sealed and knows b is used, and a free predecessor's boundary
 * tag is sound. Lock held (the backend rewrites neighbours under it). */
static bool neighbours_ok(const struct kheap *h, const struct kh_region *r, uintptr_t b, kh_word w,
			  struct kh_err *e)
{
	const void *p = kh_payload(b);
	uintptr_t nx = b + (size_t)(w & KH_SIZE_MASK);
	if (!kh_ok(h, nx) || kh_prev_free(nx))
		return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "next block's header is corrupt or disagrees");
	if ((w & KH_PREV_FREE) && !prev_tag_ok(h, r, b))
		return kh_fail(e, KHEAP_E_NEIGHBOUR, p, "previous block's boundary tag is corrupt");
	return true;
}

bool kh_merge_ok(const struct kheap *h, uintptr_t b, struct kh_err *e)
{
	const struct kh_region *r = kh_region_of(h, b);
	return r != NULL && neighbours_ok(h, r, b, *kh_hdr(b), e);
}

/* What kind of block the caller passes: a plain one (kheap_free and the
 * rest), an object of cache number i < KHEAP_MAX_CACHES, or either. */
#define KH_KIND_PLAIN KHEAP_MAX_CACHES
#define KH_KIND_ANY (KHEAP_MAX_CACHES + 1)

/* Checks in this order, each O(1) but the region lookup, which is
 * O(KHEAP_MAX_REGIONS): alignment, ownership, header cookie, state, kind
 * (plain block or which cache's object), size, then (KH_HELD_LOCKED) both
 * neighbours' agreement, then the list token, then (not KH_HELD_HEADER)
 * the canary. */
static __attribute__((noinline)) uintptr_t held_checks(const struct kheap *h, const void *p, struct kh_err *e,
							enum kh_held_check how, unsigned kind)
{
	uintptr_t b = kh_block_of(p);
	if ((uintptr_t)p & (KHEAP_ALIGN - 1))
		return kh_fail(e, KHEAP_E_MISALIGNED, p, "pointer is not 16-byte aligned"), 0;
	const struct kh_region *r = kh_region_of(h, b);
	if (r == NULL)
		return kh_fail(e, KHEAP_E_FOREIGN, p, "pointer is outside every region"), 0;
	kh_word w = __atomic_load_n(kh_hdr(b), __ATOMIC_RELAXED);
	if (!kh_sealed(h, b, w))
		return kh_fail(e, KHEAP_E_BAD_HEADER, p, "header cookie mismatch: interior pointer or overwritten header"), 0;
	if (kh_quarantined(w))
		return kh_fail(e, KHEAP_E_BAD_HEADER, p, "block quarantined: its header was found damaged"), 0;
	if (!(w & KH_USED))
		return kh_fail(e, KHEAP_E_DOUBLE_FREE, p, "block is already free"), 0;
	if (kind == KH_KIND_PLAIN && kh_is_obj(w))
		return kh_fail(e, KHEAP_E_WRONG_CACHE, p, "object of an object cache: give it back with kheap_cache_free"), 0;
	if (kind < KHEAP_MAX_CACHES && !kh_is_obj(w))
		return kh_fail(e, KHEAP_E_WRONG_CACHE, p, "block of kheap_alloc, not an object of this cache"), 0;
	if (kind < KHEAP_MAX_CACHES && kh_obj_cache(w) != kind)
		return kh_fail(e, KHEAP_E_WRONG_CACHE, p, "object of another object cache"), 0;
	size_t s = (size_t)(w & KH_SIZE_MASK);
	if (s < KH_MIN_BLOCK || s > r->end - b)
		return kh_fail(e, KHEAP_E_BAD_HEADER, p, "block size runs past its region"), 0;
	if (how == KH_HELD_LOCKED && !neighbours_ok(h, r, b, w, e))
		return 0;
	/* The token before the canary: a listed block's link and token may lie
	 * where its canary was (usable sizes below 16). */
	if (kh_on_list(h, b))
		return kh_fail(e, KHEAP_E_DOUBLE_FREE, p, "block is already free (in a size-class or object cache)"), 0;
	if (KH_CANARIES && how != KH_HELD_HEADER && *kh_canary_slot(b) != kh_canary(h, b))
		return kh_fail(e, KHEAP_E_CANARY, p, "canary after the usable size overwritten (overflow)"), 0;
	return b;
}

/* held_checks' checks but the neighbours, for a plain block, as one
 * conjunction that a block the caller holds passes straight through; any
 * failure (and a cache object, which KH_HELD_HEADER takes too) goes to
 * held_checks, which names the first check that fails. The two list the
 * same checks: the misuse catalogue reaches each one through here. */
uintptr_t kh_held(const struct kheap *h, const void *p, struct kh_err *e, enum kh_held_check how)
{
	uintptr_t b = kh_block_of(p);
	const struct kh_region *r;
	if (how != KH_HELD_LOCKED && !((uintptr_t)p & (KHEAP_ALIGN - 1)) && (r = kh_region_of(h, b)) != NULL) {
		kh_word w = __atomic_load_n(kh_hdr(b), __ATOMIC_RELAXED);
		size_t s = (size_t)(w & KH_SIZE_MASK);
		if (kh_sealed(h, b, w) && (w & (KH_USED | KH_CACHED)) == KH_USED && s >= KH_MIN_BLOCK &&
		    s <= r->end - b && !kh_on_list(h, b) &&
		    (!KH_CANARIES || how == KH_HELD_HEADER || *(kh_word *)(b + s - KH_TAIL) == kh_canary(h, b)))
			return b;
	}
	return held_checks(h, p, e, how, how == KH_HELD_HEADER ? KH_KIND_ANY : KH_KIND_PLAIN);
}

uintptr_t kh_held_obj(const struct kheap *h, const void *p, struct kh_err *e, enum kh_held_check how, unsigned i)
{
	KH_ASSERT(i < KHEAP_MAX_CACHES);
	return held_checks(h, p, e, how, i);
}

bool kh_next_ok(const struct kheap *h, uintptr_t b)
{
	uintptr_t nx = b + kh_size(b);
	kh_word w = __atomic_load_n(kh_hdr(nx), __ATOMIC_RELAXED);
	return kh_sealed(h, nx, w) && !(w & KH_PREV_FREE);
}

void kh_poison(uintptr_t b) { kh_poison_inline(b); }
bool kh_poison_ok(uintptr_t b) { return kh_poison_ok_inline(b); }

void kh_poison_check(uintptr_t b, struct kh_err *e)
{
	if (KH_POISONS && !kh_poison_ok_inline(b)) /* reported; the block is still sound */
		kh_fail(e, KHEAP_E_USE_AFTER_FREE, kh_payload(b), "freed memory was written after free");
}

bool kh_free_block_ok(const struct kheap *h, uintptr_t b)
{
	if (!KH_GRANT_NEIGHBOURS)
		return true;
	uintptr_t nx = b + kh_size(b);
	return *kh_footer(b) == *kh_hdr(b) && kh_ok(h, nx) && kh_prev_free(nx) && kh_used(nx);
}

void kh_grant_checks(struct kheap *h, uintptr_t b, struct kh_err *e)
{
	kh_poison_check(b, e);
	kh_arm_canary(h, b);
}

void kh_release_hook(uintptr_t b)
{
	if (KH_POISONS)
		kh_poison_inline(b);
}

static void first_problem(void *ctx, const void *addr, const char *what)
{
	struct kh_err *e = ctx;
	kh_fail(e, KHEAP_E_CORRUPT, addr, what);
}

void kh_full_check(struct kheap *h, struct kh_err *e)
{
	kh_check_locked(h, first_problem, e);
}
