/*
 * kh_class.h: size classes and their per-class LIFO lists of freed small
 * blocks. These three functions are the allocator's hot path; each has an
 * assembly twin in src/heap/<arch>/kh_class.S with exactly this contract, and
 * kh_class.c is the portable C that GENERIC=1 builds and that the
 * differential test uses as the oracle.
 *
 * Classes are block sizes (payload + 8-byte header): 32 to 256 in steps of
 * 16 (classes 0..14), then four per power of two: 320, 384, 448, 512 (15..18)
 * and 640, 768, 896, 1024 (19..22). A request of n payload bytes maps to the
 * smallest class whose block holds n + 8 bytes.
 */
#ifndef KH_CLASS_H
#define KH_CLASS_H

#include <stddef.h>
#include <stdint.h>

#define KH_NCLASSES 23u
#define KH_CLASS_MAX_BLOCK ((size_t)1024)
#define KH_CLASS_MAX_PAYLOAD (KH_CLASS_MAX_BLOCK - 8)

/* One class list. Layout is shared with the assembly: head at offset 0,
 * count at 8, limit at 12 (on 64-bit targets). */
struct kh_class {
	uintptr_t head;  /* payload pointer of the newest block, 0 when empty */
	uint32_t count;  /* blocks on the list */
	uint32_t limit;  /* kh_class_push refuses beyond this many */
};

_Static_assert(offsetof(struct kh_class, head) == 0, "asm reads head at offset 0");
_Static_assert(offsetof(struct kh_class, count) == sizeof(uintptr_t), "asm reads count after head");
_Static_assert(offsetof(struct kh_class, limit) == sizeof(uintptr_t) + 4, "asm reads limit after count");

/* Returned by kh_class_pop when the head's link does not decode to an
 * aligned pointer: the list is corrupt and was left unchanged. */
#define KH_CLASS_BAD ((void *)(uintptr_t)1)

/* Class of a request of n payload bytes, or KH_NCLASSES when
 * n > KH_CLASS_MAX_PAYLOAD. Pure, O(1), any n. */
unsigned kh_size_class(size_t n);

/* Pop the newest block. Each block's first payload word holds the link to
 * the next one, stored as next ^ (uintptr_t)p ^ key, where p is the block's
 * payload pointer (the slot's own address).
 * Returns NULL when the list is empty; KH_CLASS_BAD when the decoded link is
 * not 16-aligned (list unchanged); else the head payload pointer, after
 * head = decoded link and count -= 1. Caller holds the heap lock. O(1). */
void *kh_class_pop(struct kh_class *c, uintptr_t key);

/* Push payload pointer p (16-aligned, not on any list). Returns 0 without
 * touching anything when count >= limit; else stores the encoded link in
 * p's first word, sets head = p, count += 1 and returns 1. Caller holds the
 * heap lock. O(1). */
int kh_class_push(struct kh_class *c, void *p, uintptr_t key);

/*
 * Per-CPU lists (struct kh_class too, one per class per CPU). Only the owning
 * CPU touches its lists, with interrupts masked, so there are no atomics and
 * no heap lock. A block on a per-CPU list keeps its header untouched (the
 * backend may rewrite its KH_PREV_FREE flag under the lock at any time); it
 * is marked instead by a token in its second payload word, p ^ tkey, where
 * tkey is the owning CPU's token key. The token is what tells a double free
 * on the fast path, and which CPU's list a block sits on.
 */

/* Pop the newest block of a per-CPU list. Returns NULL when empty;
 * KH_CLASS_BAD, leaving the list unchanged, when the head's token is not
 * head ^ tkey or its link does not decode to a 16-aligned pointer; else the
 * head payload pointer p, after head = decoded link, count -= 1 and p's
 * token word = 0. The caller checks that the new head lies in the heap
 * before the next pop reads it. Owner CPU only, interrupts masked. O(1). */
void *kh_cpu_pop(struct kh_class *c, uintptr_t key, uintptr_t tkey);

/* Push payload pointer p (16-aligned, a used block of this class). Returns 0
 * without touching anything when count >= limit; else writes p's link and
 * its token (p ^ tkey), sets head = p, count += 1 and returns 1. Owner CPU
 * only, interrupts masked. O(1). */
int kh_cpu_push(struct kh_class *c, void *p, uintptr_t key, uintptr_t tkey);

/* Block size of class c (c < KH_NCLASSES). */
static inline size_t kh_class_block_size(unsigned c)
{
	if (c < 15)
		return (size_t)(c + 2) << 4;
	unsigned e = (c - 15) >> 2, m = (c - 15) & 3u;
	return (size_t)(5 + m) << (e + 6);
}

#endif /* KH_CLASS_H */
