/*
 * kh_class.h: size classes and their per-class LIFO lists of freed small
 * blocks, in slots (struct kh_cpu): one per CPU and one shared, which the
 * lock holder owns. These functions are the allocator's hot path; each has
 * an assembly twin in src/heap/<arch>/kh_class.S with exactly this
 * contract, and kh_class.c is the portable C that GENERIC=1 builds and that
 * the differential test uses as the oracle.
 *
 * Classes are block sizes (payload + 8-byte header): 32 to 272 in steps of
 * 16 (classes 0..15), then four per power of two, each one granule more:
 * 336, 400, 464, 528 (16..19), 656, 784, 912, 1040 (20..23), and so on up to
 * 40976, 49168, 57360, 65552 (44..47), so that a power-of-two request and
 * its header fit a class. A request of n payload bytes maps to the smallest
 * class whose block holds n + 8 bytes: at most a quarter of a block above
 * 272 bytes is rounding (bounded waste, as TLSF's second level bounds it).
 */
#ifndef KH_CLASS_H
#define KH_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "kh_bits.h"
#include "kh_layout.h"

/* One class list. Layout is shared with the assembly (kh_layout.h). */
struct kh_class {
	uintptr_t head;  /* payload pointer of the newest block, 0 when empty */
	uint32_t count;  /* blocks on the list */
	uint32_t limit;  /* kh_cpu_push refuses beyond this many */
};

_Static_assert(offsetof(struct kh_class, head) == KH_CLASS_HEAD && offsetof(struct kh_class, count) == KH_CLASS_COUNT &&
		       offsetof(struct kh_class, limit) == KH_CLASS_LIMIT,
	       "asm reads struct kh_class at the offsets kh_layout.h names");
_Static_assert(sizeof(struct kh_class) == (size_t)1 << KH_CLASS_SIZE_LOG2, "asm indexes cls[] by a shift");

/* Returned by kh_cpu_pop when the head's token is wrong or its link does not
 * decode to an aligned pointer: the list is corrupt and was left unchanged. */
#define KH_CLASS_BAD ((void *)(uintptr_t)KH_CLASS_BAD_VALUE)

/* Class of a request of n payload bytes, or KH_NCLASSES when
 * n > KH_CLASS_MAX_PAYLOAD. Pure, O(1), any n. */
unsigned kh_size_class(size_t n);

/*
 * Lists (struct kh_class, one per class per slot). Only the slot's owner
 * touches its lists: a CPU with interrupts masked and no lock, or, for the
 * shared slot, the lock holder. A listed block keeps its header untouched
 * (the backend may rewrite its KH_PREV_FREE flag under the lock at any
 * time); it is marked instead by a token in its second payload word,
 * p ^ tkey, where tkey is the slot's token key. The token is what tells a
 * double free on the fast path, and which slot's list a block sits on.
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

/*
 * The fused fast path: one call per kheap_alloc or kheap_free of a small
 * block, on the CPU that owns the cache, with interrupts masked. It does the
 * class lookup, the checks and the list operation in one routine; anything
 * it does not handle it leaves untouched for the C slow path to sort out.
 *
 * struct kh_cpu is one CPU's cache. The first 64 bytes are what the fast path
 * reads besides the list; the layout is shared with the assembly (offsets
 * in kh_layout.h, asserted below). kh_internal.h says how the rest of the heap uses it (I8).
 */
struct kh_cpu {
	uintptr_t key;    /* the heap's secret: link encoding, header cookies */
	uintptr_t tkey;   /* this CPU's token key, kh_tkey(h, CPU number) */
	uintptr_t lo, hi; /* blocks the fused calls take lie in [lo, hi) */
	uint64_t allocs;  /* operations served without the lock */
	uint64_t frees;
	uint32_t drain;   /* another CPU asks for everything back */
	uint32_t regions; /* the heap's region count when lo, hi were copied */
	uint64_t pad1_;
	struct kh_class cls[KH_NCLASSES];
	uint8_t drains[KH_NCLASSES]; /* list c's drains since its last refill, up to 255 (C path only) */
	uint64_t pad2_[(KH_CPU_SIZE - KH_CPU_CLS - KH_NCLASSES * sizeof(struct kh_class) - KH_NCLASSES) / 8];
};

_Static_assert(offsetof(struct kh_cpu, key) == KH_CPU_KEY && offsetof(struct kh_cpu, tkey) == KH_CPU_TKEY &&
		       offsetof(struct kh_cpu, lo) == KH_CPU_LO && offsetof(struct kh_cpu, hi) == KH_CPU_HI &&
		       offsetof(struct kh_cpu, allocs) == KH_CPU_ALLOCS &&
		       offsetof(struct kh_cpu, frees) == KH_CPU_FREES &&
		       offsetof(struct kh_cpu, drain) == KH_CPU_DRAIN && offsetof(struct kh_cpu, cls) == KH_CPU_CLS,
	       "asm reads struct kh_cpu at the offsets kh_layout.h names");
_Static_assert(sizeof(struct kh_cpu) == KH_CPU_SIZE, "per-CPU caches share no cache line, and &cpus[k] is a shift");

/* kh_cpu_free reads a block header as kh_layout.h draws it; kh_internal.h
 * asserts that its accessors agree. */

/* Allocate from cpu's list for n payload bytes (n includes the block's
 * tail, if any). Returns the payload pointer p of the head of the list of
 * class kh_size_class(n), after head = decoded link, count -= 1, p's token
 * word = 0 and allocs += 1. Returns NULL, changing nothing, when n is above
 * KH_CLASS_MAX_PAYLOAD, cpu->drain is set, the list is empty, the head's
 * token is not head ^ tkey, or its link does not decode to 0 or to a
 * 16-aligned payload whose block lies in [lo, hi): the caller then takes
 * the slow path, which tells these apart. Owner CPU only, interrupts
 * masked. O(1). */
void *kh_cpu_alloc(struct kh_cpu *cpu, size_t n);

/* Free payload p to cpu's list if it is plainly a held block of a class
 * size: p 16-aligned, its block in [lo, hi), the header sealed (cookie and
 * zero bit) with USED set and CACHED and alignment clear, the size a class
 * block size, and its token word naming no CPU. Then, when cpu->drain is
 * clear and the class list is below its limit, writes p's link and token,
 * sets head = p, count += 1, frees += 1 and returns 1. Returns 2, having
 * written nothing, when p is such a block but drain is set or the list is
 * full (the slow path drains, then pushes); 0, having written nothing,
 * when p is not such a block (the slow path frees it under the lock or
 * reports what is wrong with it). Reads only p's header and token word,
 * and only after the range check. Owner CPU only, interrupts masked. O(1). */
int kh_cpu_free(struct kh_cpu *cpu, void *p);

/* kh_cpu_alloc and kh_cpu_free as kheap_alloc and kheap_free call them
 * when the port's hooks are inline: an arch header (included by kh_bits.h)
 * may make the call telling the compiler only the registers its assembly
 * writes (tests/host/t_diff.c checks that the rest survive); without one,
 * plain calls. */
#ifndef kh_call_cpu_alloc
static inline void *kh_call_cpu_alloc(struct kh_cpu *cpu, size_t n) { return kh_cpu_alloc(cpu, n); }
#endif
#ifndef kh_call_cpu_free
static inline int kh_call_cpu_free(struct kh_cpu *cpu, void *ptr) { return kh_cpu_free(cpu, ptr); }
#endif

/* Block size of class c (c < KH_NCLASSES), from the one class table. */
static inline size_t kh_class_block_size(unsigned c)
{
	static const uint16_t granules[KH_NCLASSES] = {KH_CLASS_GRANULES};
	return (size_t)granules[c] << KH_GRANULE_LOG2;
}

/* How many classes have blocks of at most s bytes, at least 1 (a divisor). */
static inline unsigned kh_classes_upto(size_t s)
{
	unsigned n = 0;
	while (n < KH_NCLASSES && kh_class_block_size(n) <= s)
		n++;
	return n > 0 ? n : 1u;
}

#endif /* KH_CLASS_H */
