/*
 * kh_internal.h: block layout, control block and accessors shared by the
 * heap's translation units. Nothing here is part of the public contract.
 *
 * Block layout. A region is a run of blocks ended by an 8-byte end marker.
 * Block addresses are 8 mod 16 so that payloads are 16-aligned, and block
 * sizes are multiples of 16, at least KH_MIN_BLOCK.
 *
 *   used block                         free block (in a bin)
 *   +-------------------------+        +-------------------------+
 *   | header (8)              |        | header (8)              |
 *   +-------------------------+ <- p   +-------------------------+
 *   | payload                 |        | next link (8, encoded)  |
 *   |  size - 8 bytes         |        | prev link (8, encoded)  |
 *   |                         |        | ...                     |
 *   |                         |        | footer (8) = header     |
 *   +-------------------------+        +-------------------------+
 *   | next block's header     |        | next block's header     |
 *
 * The footer (boundary tag) exists only while a block is free; the next
 * block's KH_PREV_FREE flag says when it is valid. A used block therefore
 * costs 8 bytes of overhead, plus its tail when the build has one. A cached
 * block (on a size-class list, shared or per-CPU) is used as far as the bins
 * are concerned and keeps its used header; its first payload word holds the
 * encoded link and its second the token of the slot whose list it is on.
 *
 * Tail of a used block (KH_TAIL bytes, valid only while the caller holds
 * it; a free or cached block reuses the space):
 *
 *   | usable bytes ... | canary (8) | site (8) | seq (8) | next header
 *                       HARDEN >= 1  KHEAP_TAGS only
 *
 * The canary comes first so that an overflow hits it before anything else.
 *
 * Header word: kh_layout.h draws it, with every number the assembly uses.
 *
 *   U  KH_USED       held by the caller or cached (not in a bin)
 *   P  KH_PREV_FREE  the previous block is in a bin; its footer precedes us
 *   C  KH_CACHED     reserved, 0 (cached blocks carry a token instead) but
 *                    in a quarantined block (kh_quarantined)
 *   alg              log2 of the alignment an aligned block was asked for
 *                    (0: KHEAP_ALIGN), kept so realloc can keep it
 *   cookie           hash of the other 46 bits, the block address and the
 *                    heap secret: a header that fails it was overwritten or
 *                    was never a header (interior or stray pointer)
 *
 * Invariants (checked by kheap_check):
 *  I1 blocks tile each region exactly, from region->first to region->end;
 *  I2 every header's cookie is valid; the end marker is a used block of size 0;
 *  I3 no two adjacent blocks are free (immediate coalescing);
 *  I4 a block's KH_PREV_FREE equals !USED of its predecessor, and a free
 *     block's footer equals its header;
 *  I5 bin (fl, sl) holds exactly the free blocks that map to it, doubly
 *     linked, and its bitmap bits are set iff it is non-empty;
 *  I6 the shared slot's list c holds exactly the used blocks of class c
 *     whose token names KH_SHARED, at most its limit (a quarantined block,
 *     kh_quarantined, is on none), and its batch marks name blocks on it
 *     (struct kh_batches); a batch taken off it and not yet claimed is the
 *     one exception, so whoever reads tokens as owners waits for it
 *     (kh_batch_quiesce);
 *  I7 the counters equal what a walk adds up.
 *
 * Slots: per-CPU caches and the shared lists. Each CPU owns a struct
 * kh_cpu: one list per class (kh_class.h: kh_cpu_alloc/kh_cpu_free on the
 * fast path, kh_cpu_pop/push elsewhere), touched only by that CPU with
 * interrupts masked, without the lock on the fast path and with it for
 * refills and drains. One more struct kh_cpu, cpus[KH_SHARED], holds the
 * shared size-class lists in the same format; its owner is whoever holds
 * the lock, and its blocks count in neither in_use nor free (I6).
 *
 * The one exception to "only the owner" is a CPU that is offline:
 * kheap_cpu_dead drains its lists from another CPU under the lock, and its
 * caller guarantees that the dead CPU's last list writes happen before the
 * call and that the CPU stays out until it returns. So another CPU never
 * takes a live CPU's blocks: kheap_trim and the OOM path make each CPU
 * drain its own (kheap_flush_others, an IPI whose handler calls
 * kheap_trim_cpu), or set its drain flag for its next allocation or free.
 *
 * A block on slot k's list keeps its used header (the backend may rewrite
 * its KH_PREV_FREE flag under the lock at any moment, so the owner never
 * writes the header); its first payload word is the encoded link and its
 * second the token p ^ kh_tkey(h, k), which no held block carries. For the
 * counters in struct kh_counts a block on a CPU's list is in use: blocks
 * change hands between a CPU's lists and the rest of the heap only in
 * batches counted under the lock (refill, drain; the CPU's own pops and
 * pushes for a batch run just before or after the lock, on blocks that are
 * in use and on no list meanwhile), and the CPU's own list counts say how
 * many of the in-use ones are really cached; kheap_get_stats subtracts them.
 *  I8 CPU k's list c holds exactly the used blocks of class c whose token
 *     names k, at most its limit (kheap_check verifies the calling CPU's).
 *  I9 object cache i's depot and CPU k's list of it hold exactly the
 *     objects of i whose token names KH_SHARED or k, within their limits
 *     and above their reserves, and its object count equals the blocks that
 *     name i (kh_objcache.h; kheap_check verifies the calling CPU's list).
 *
 * Locking: every function here expects h->lock held, except the kh_*_init
 * helpers used before the heap is shared, and the per-CPU fast path. The
 * kernel's kheap_flush_others is called with it released, since the CPUs it
 * interrupts take it in kheap_trim_cpu.
 */
#ifndef KH_INTERNAL_H
#define KH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kheap.h"
#include "kh_bits.h"
#include "kh_class.h"
#include "kh_lock.h"

/* Private-access macro: a white-box test build defines KH_PRIVATE empty so
 * that file-local helpers become reachable. */
#ifndef KH_PRIVATE
#define KH_PRIVATE static
#endif

/* Check tiers (../shared/STYLE.md): always-on checks report through the
 * heap's hook (kh_fail, kh_report); full validation is kheap_check; and
 * KH_ASSERT states internal preconditions, compiled in test builds
 * (KH_FAULT_INJECT) or with -DKHEAP_DEBUG, where a failure goes to
 * kheap_panic with the condition, file and line. */
#if defined(KH_FAULT_INJECT) || defined(KHEAP_DEBUG)
#define KH_ASSERT(c) ((c) ? (void)0 : kh_assert_fail(#c, __FILE__, __LINE__))
#else
#define KH_ASSERT(c) ((void)0)
#endif

/* The build knobs are in kheap_config.h (through kheap.h). */

/* ---- derived constants -------------------------------------------------- */

#define KH_GRANULE ((size_t)1 << KH_GRANULE_LOG2)
#define KH_HDR ((size_t)KH_HDR_BYTES)
#define KH_MIN_BLOCK ((size_t)KH_MIN_BLOCK_BYTES)
#define KH_MAX_BLOCK (((size_t)1 << KHEAP_MAX_BLOCK_LOG2) - KH_GRANULE)

#define KH_SL_COUNT ((unsigned)1 << KHEAP_SL_LOG2)
#define KH_FL_SHIFT (KHEAP_SL_LOG2 + KH_GRANULE_LOG2)
#define KH_FL_COUNT (KHEAP_MAX_BLOCK_LOG2 - KH_FL_SHIFT + 1)

/* Header fields (kh_layout.h draws the word). */
#define KH_USED ((kh_word)1 << KH_USED_BIT)
#define KH_PREV_FREE ((kh_word)1 << KH_PREV_FREE_BIT)
#define KH_CACHED ((kh_word)1 << KH_CACHED_BIT)
#define KH_FLAGS (KH_USED | KH_PREV_FREE | KH_CACHED)
#define KH_ZERO ((kh_word)1 << KH_ZERO_BIT)
#define KH_SIZE_MASK ((((kh_word)1 << KH_SIZE_BITS) - 1) & ~(kh_word)(KH_GRANULE - 1))
#define KH_ALG_MASK ((((kh_word)1 << KH_ALG_BITS) - 1) << KH_ALG_SHIFT)
#define KH_BODY_MASK (((kh_word)1 << KH_COOKIE_SHIFT) - 1)

/* "kh" in the top 16 bits: one MOVZ on arm64 for the handle check that
 * every call makes (a 40-bit constant took three instructions). */
#define KH_MAGIC ((uintptr_t)0x6b68u << 48)

_Static_assert(sizeof(void *) <= sizeof(kh_word), "a link must fit in a header-sized word");
_Static_assert(KH_GRANULE == KHEAP_ALIGN, "payload alignment is the granule");
_Static_assert(KH_HDR + 2 * sizeof(kh_word) + sizeof(kh_word) <= KH_MIN_BLOCK,
	       "a free block holds header, two links and a footer");
_Static_assert(KH_MIN_BLOCK % KH_GRANULE == 0, "block sizes are whole granules");
_Static_assert(KHEAP_MAX_BLOCK_LOG2 >= 17 && KHEAP_MAX_BLOCK_LOG2 <= KH_SIZE_BITS,
	       "the header's size field is 40 bits");
_Static_assert(KHEAP_SL_LOG2 >= 2 && KHEAP_SL_LOG2 <= 5, "sl_map entries are 32 bits");
_Static_assert(KH_FL_COUNT < 64, "fl_map is one 64-bit word, shifted by up to fl + 1");
_Static_assert(KH_FL_COUNT >= 2, "at least one level above the linear one");
_Static_assert((KH_FLAGS & KH_SIZE_MASK) == 0 && (KH_ALG_MASK & KH_SIZE_MASK) == 0,
	       "header fields do not overlap");
_Static_assert(KH_CLASS_MAX_BLOCK <= KH_MAX_BLOCK, "every class block is a possible block");
_Static_assert(KHEAP_CPU_BATCH >= 1 && KHEAP_CPU_CACHE_MAX < (1u << 31), "per-CPU batch and limit");
_Static_assert(KHEAP_CPU_CARVE_MIN >= 1, "a refill's backend block holds at least one block");
_Static_assert(KHEAP_CLASS_CARVE >= 1, "a shared-list miss takes at least one block");

/* ---- control block ------------------------------------------------------ */

/* Tags need the allocation count at each grant: the locked path only. */
#define KH_PERCPU (KHEAP_MAX_CPUS > 0 && !KHEAP_TAGS)
/* The fused routines (kh_cpu_alloc/free) serve kheap_alloc and kheap_free,
 * per-CPU or shared: they neither tag nor poison nor arm canaries, nor check
 * neighbours. At level 1 kheap.c does the poison and the canary around them
 * (fused_granted, fused_kept); tags and levels 2 and 3 take the C paths. */
#define KH_FUSED (KHEAP_HARDEN <= 1 && !KHEAP_TAGS)
#define KH_NCPU (KHEAP_MAX_CPUS > 0 ? KHEAP_MAX_CPUS : 1u)

/* Does id name a CPU with a per-CPU cache? Compares with KH_NCPU, which is
 * never 0, so that KHEAP_MAX_CPUS = 0 builds under -Wtype-limits. */
static inline int kh_cpu_named(uintptr_t id) { return KH_PERCPU && id < KH_NCPU; }

/* Slots: one struct kh_cpu per CPU (with per-CPU caches), then the shared
 * size-class lists, owned by the lock holder, in the same format. */
#define KH_SHARED (KH_PERCPU ? KH_NCPU : 0u)
#define KH_NSLOTS (KH_SHARED + 1u)
/* The shared lists hold the classes up to KH_SHARED_MAX_BLOCK bytes, the
 * ones the assembly's tables cover (1 KiB of payload): a freed larger
 * class block merges at once (kh_cache_limits gives its list no room), and
 * the locked path serves a larger request at its own size, not rounded up
 * to a class that no list would keep. The per-CPU lists hold every class
 * up to KHEAP_CPU_MAX_BLOCK. */
#define KH_SHARED_MAX_BLOCK ((size_t)KH_CLASS_TABLE_BLOCK)
#define KH_SHARED_MAX_PAYLOAD (KH_SHARED_MAX_BLOCK - KH_HDR)
_Static_assert(KH_NSLOTS <= KH_TOKEN_CPUS, "every slot's token names it below KH_TOKEN_CPUS");

_Static_assert(KH_TOKEN_CPUS <= 4096, "a token's CPU number must not look like an address");
_Static_assert(KH_MIN_BLOCK - KH_HDR >= 2 * sizeof(uintptr_t),
	       "a cached block's payload holds a link and a token");

/* One CPU's cache is struct kh_cpu (kh_class.h, shared with the assembly).
 * Written only by its CPU, except the drain flag and, while that CPU is
 * offline, by kheap_cpu_dead; other CPUs read the counts and op counters
 * for the statistics. Its span [lo, hi) and region
 * count are the owner's snapshot of the heap's, taken under the lock
 * (cpu_sync): a region added since is served by the locked path until the
 * owner's next locked stretch. With one region, or several laid end to end
 * (each region's lo the previous one's hi), the span is their blocks; with
 * gaps between them it is empty, because the gaps are not the heap's to
 * read: the fused calls then serve no block whose neighbour on the list or
 * whose header they would have to read, and the C path asks kh_region_of. */
_Static_assert(KHEAP_MAX_CPUS <= KH_TOKEN_CPUS, "kh_cpu_free's token bound covers every CPU");

struct kh_region {
	uintptr_t lo, hi; /* the caller's range, for overlap tests */
	uintptr_t first;  /* first block */
	uintptr_t end;    /* end marker (a used block of size 0) */
};

/* Counters the walk can recompute; kheap_stats adds the rest (what the
 * slots hold and count). Blocks on the shared lists are in neither in_use
 * nor free; blocks on per-CPU lists are in in_use (they move in batches). */
struct kh_counts {
	size_t total, in_use, peak, free;
	size_t used_blocks, free_blocks;
	uint64_t allocs, frees, ooms, errors;
};

/* One kheap_leak_ignore mark (kh_leak.c): the block's address, its size
 * and alignment bits (not the flags: KH_PREV_FREE changes with the
 * neighbour) and, with tags, its sequence number. b == 0: an empty entry. */
struct kh_leak_mark {
	uintptr_t b;
	kh_word body;
#if KHEAP_TAGS
	uint64_t seq;
#endif
};
_Static_assert(KHEAP_LEAK_IGNORE_MAX >= 1, "kheap_leak_ignore's table has at least one entry");

/* Batch marks on the shared list of one class (kh_cache.c): mark i says
 * that the block rest[i] is on the list with depth[i] blocks from it to the
 * list's end, so the blocks above it are a batch a drain gave, which a
 * refill takes whole under the lock by setting head = rest[i], and claims
 * (token, link, poison) after it (kh_batch_claim). Marks are oldest first,
 * depth[i] <= count; a pop that reaches a mark's block drops the mark. Up to
 * KH_BATCH_MARKS per class (a full stack forgets its oldest), and only for
 * the classes the shared lists keep. The idea is the magazine depot's
 * (Bonwick and Adams, 2001), on the lists the per-CPU caches already use. */
#define KH_BATCH_MARKS (KH_PERCPU ? 4u : 1u)
#define KH_BATCH_CLASSES (KH_PERCPU ? KH_CLASS_TABLE_CLASSES : 1u)
struct kh_batches {
	uint32_t n;
	uint32_t depth[KH_BATCH_MARKS];
	uintptr_t rest[KH_BATCH_MARKS];
};

struct kheap {
	uintptr_t magic; /* KH_MAGIC ^ address: a live heap */
	kh_word secret;
	struct kh_lock lock;
	kheap_report_fn report;
	void *report_ctx;
	kheap_oom_fn oom;
	void *oom_ctx;
	uint64_t ops; /* counts operations for KHEAP_CHECK_EVERY */
	uint64_t fl_map;
	uint32_t sl_map[KH_FL_COUNT];
	uintptr_t bins[KH_FL_COUNT][KH_SL_COUNT]; /* block addresses, 0 = empty */
	struct kh_region regions[KHEAP_MAX_REGIONS];
	unsigned nregions;
	struct kh_counts n;
	uint32_t cpu_limit[KH_NCLASSES]; /* per-CPU list limits; owners copy them */
	uint32_t percpu; /* some CPU has had a number: try the per-CPU path first */
	struct kh_cpu cpus[KH_NSLOTS]; /* per-CPU caches, then the shared one (KH_SHARED) */
	/* kheap_leak_ignore's table (kh_leak.c). Last, so that no offset the
	 * assembly reads moves. */
	struct kh_leak_mark leak_marks[KHEAP_LEAK_IGNORE_MAX];
	/* Object caches by number (kh_objcache.c); NULL: a free number. */
	struct kheap_cache *caches[KHEAP_MAX_CACHES];
	/* The shared lists as stacks of drained batches (kh_cache.c). */
	struct kh_batches batches[KH_BATCH_CLASSES];
	uint64_t batches_pops; /* the shared slot's fused pops when the marks were last known good */
	uint32_t batches_out;  /* batches taken whose blocks a CPU has not yet claimed (atomic) */
};

/* What an operation found wrong, reported once the lock is released; and
 * the size of an allocation that ran out of memory, for the OOM hook. */
struct kh_err {
	enum kheap_error kind;
	const void *ptr;
	const char *msg;
	bool oom;        /* memory ran out: call the OOM hook */
	bool retry;      /* memory ran out while other CPUs' caches held blocks:
			  * flush them (kheap_flush_others) and ask again */
	bool retried;    /* this is that second request: running out is an OOM */
	uint8_t oom_alg; /* with retry: log2 of the alignment asked for */
	size_t oom_size; /* with oom or retry: the size asked for */
#if KHEAP_TAGS
	/* The return address of the kheap_* call, for the tag. Only in tags
	 * builds: zeroing one more word costs every call 1 instruction. */
	const void *caller;
#endif
};

#if KHEAP_TAGS
#define KH_ERR_AT(caller) {KHEAP_OK, NULL, NULL, false, false, false, 0, 0, (caller)}
#else
#define KH_ERR_AT(caller) {KHEAP_OK, NULL, NULL, false, false, false, 0, 0}
#endif
#define KH_ERR_INIT KH_ERR_AT(NULL)

/* The caller an entry point recorded in e; NULL without KHEAP_TAGS. */
static inline const void *kh_err_caller(const struct kh_err *e)
{
#if KHEAP_TAGS
	return e->caller;
#else
	(void)e;
	return NULL;
#endif
}

void kh_report_global(enum kheap_error kind, const void *ptr, const void *caller, const char *msg);

/* The hooks on the hot path: the kernel's weak-overridable functions
 * (kheap_port.h), or, when the library is built with -DKHEAP_PORT_HEADER=
 * '"file.h"', that header's static inline kheap_port_irq_save,
 * kheap_port_irq_restore and kheap_port_cpu_id, with the same contracts,
 * so that the fast path makes no call but kh_cpu_alloc/kh_cpu_free. */
#ifdef KHEAP_PORT_HEADER
#include KHEAP_PORT_HEADER
static inline uintptr_t kh_irq_save(void) { return kheap_port_irq_save(); }
static inline void kh_irq_restore(uintptr_t irq) { kheap_port_irq_restore(irq); }
static inline unsigned kh_cpu_id(void) { return kheap_port_cpu_id(); }
/* The lock's holder tag from the inline hook, not from a call in the
 * lock routine (kh_lock.h). */
#define kh_lock_acquire(l) kh_lock_acquire_as((l), kh_cpu_id() + 1u)
#else
static inline uintptr_t kh_irq_save(void) { return kheap_irq_save(); }
static inline void kh_irq_restore(uintptr_t irq) { kheap_irq_restore(irq); }
static inline unsigned kh_cpu_id(void) { return kheap_cpu_id(); }
#endif

/* Is h a heap kheap_init made (and nothing has overwritten)? */
static inline bool kh_live(const struct kheap *h)
{
	return h != NULL && ((uintptr_t)h & (KHEAP_ALIGN - 1)) == 0 && h->magic == (KH_MAGIC ^ (uintptr_t)h);
}

/* Take the heap lock with interrupts masked; give both back. Every entry
 * point that reads or changes the heap brackets its work with these. */
static inline uintptr_t kh_enter(struct kheap *h)
{
	uintptr_t irq = kh_irq_save();
	kh_lock_acquire(&h->lock);
	return irq;
}

static inline void kh_exit(struct kheap *h, uintptr_t irq)
{
	kh_lock_release(&h->lock);
	kh_irq_restore(irq);
}

#define KH_CALLER() __builtin_return_address(0)

/* An entry point's handle check: a handle that is not a live heap is
 * reported to kheap_panic's default path (there is no heap to report to). */
static inline bool kh_handle_ok(const struct kheap *h, const void *caller)
{
	if (kh_live(h))
		return true;
	kh_report_global(KHEAP_E_BAD_HEAP, h, caller, "not a live heap handle");
	return false;
}

/* Has any CPU had a number for this heap? Until one has, alloc, calloc and
 * free take the locked path without asking (kh_alloc_locked asks). */
static inline bool kh_percpu_on(const struct kheap *h) { return __atomic_load_n(&h->percpu, __ATOMIC_RELAXED) != 0; }

/* The calling CPU's cache, or NULL. Interrupts must be masked. */
static inline struct kh_cpu *kh_this_cpu(struct kheap *h)
{
	unsigned id = kh_cpu_id();
	return kh_cpu_named(id) ? &h->cpus[id] : NULL;
}

/* ---- header accessors --------------------------------------------------- */

static inline kh_word *kh_hdr(uintptr_t b) { return (kh_word *)b; }

static inline kh_word kh_cookie(const struct kheap *h, uintptr_t b, kh_word body)
{
	/* One multiply: every input bit reaches the top 18 bits through the
	 * carries (the white-box test flips each header bit in turn). */
	return ((body ^ (kh_word)b ^ h->secret) * (kh_word)KH_COOKIE_MUL) >> KH_COOKIE_SHIFT;
}

/* Write b's header: size, flags and alignment log2, sealed with the cookie. */
static inline void kh_set(const struct kheap *h, uintptr_t b, size_t size, kh_word flags,
			  unsigned alg)
{
	kh_word body = ((kh_word)size & KH_SIZE_MASK) | (flags & KH_FLAGS) |
		       ((kh_word)alg << KH_ALG_SHIFT);
	/* Relaxed: the per-CPU fast path reads headers without the lock. */
	__atomic_store_n(kh_hdr(b), body | (kh_cookie(h, b, body) << KH_COOKIE_SHIFT), __ATOMIC_RELAXED);
}

static inline bool kh_sealed(const struct kheap *h, uintptr_t b, kh_word w)
{
	kh_word body = w & KH_BODY_MASK;
	return (w >> KH_COOKIE_SHIFT) == kh_cookie(h, b, body) && (body & KH_ZERO) == 0;
}

static inline bool kh_ok(const struct kheap *h, uintptr_t b) { return kh_sealed(h, b, *kh_hdr(b)); }
static inline size_t kh_size(uintptr_t b) { return (size_t)(*kh_hdr(b) & KH_SIZE_MASK); }
static inline kh_word kh_flags(uintptr_t b) { return *kh_hdr(b) & KH_FLAGS; }
static inline unsigned kh_alg(uintptr_t b) { return (unsigned)((*kh_hdr(b) & KH_ALG_MASK) >> KH_ALG_SHIFT); }
static inline bool kh_used(uintptr_t b) { return (*kh_hdr(b) & KH_USED) != 0; }
static inline bool kh_prev_free(uintptr_t b) { return (*kh_hdr(b) & KH_PREV_FREE) != 0; }

/* A quarantined span: a damaged header that a repair (kh_rebuild) stepped
 * over, sealed as a used, cached block of alignment log2 63, which no real
 * block has, so that nothing frees, merges or hands it out, and
 * kheap_check names it. */
#define KH_QUARANTINE_ALG 63u
static inline bool kh_quarantined(kh_word w)
{
	return (w & (KH_USED | KH_CACHED | KH_ALG_MASK)) == (KH_USED | KH_CACHED | KH_ALG_MASK);
}

/* An object of object cache i (kh_objcache.c): a used block with KH_CACHED
 * set and i in the alignment field (i < KHEAP_MAX_CACHES <= 62, so never
 * the quarantine's 63). It is as any used block to the backend; the cache's
 * own lists hold it as the size-class lists hold theirs (link and token in
 * its first two payload words), and its cache alone takes it back. */
_Static_assert(KHEAP_MAX_CACHES >= 1 && KHEAP_MAX_CACHES < KH_QUARANTINE_ALG,
	       "a cache number fits the alignment field and is never the quarantine mark");
#define KH_OBJ_BITS(i) (KH_USED | KH_CACHED | ((kh_word)(i) << KH_ALG_SHIFT))
static inline bool kh_is_obj(kh_word w)
{
	return (w & (KH_USED | KH_CACHED)) == (KH_USED | KH_CACHED) && !kh_quarantined(w);
}
static inline unsigned kh_obj_cache(kh_word w) { return (unsigned)((w & KH_ALG_MASK) >> KH_ALG_SHIFT); }

/* Change only the flags of a block, keeping size and alignment. */
static inline void kh_set_flags(const struct kheap *h, uintptr_t b, kh_word flags)
{
	kh_set(h, b, kh_size(b), flags, kh_alg(b));
}

static inline uintptr_t kh_next_blk(uintptr_t b) { return b + kh_size(b); }
static inline kh_word *kh_footer(uintptr_t b) { return (kh_word *)(b + kh_size(b) - KH_HDR); }
/* Valid only when kh_prev_free(b): the predecessor's footer precedes b. */
static inline uintptr_t kh_prev_blk(uintptr_t b) { return b - (size_t)(*(kh_word *)(b - KH_HDR) & KH_SIZE_MASK); }

static inline void *kh_payload(uintptr_t b) { return (void *)(b + KH_HDR); }

/* Zero n bytes (a multiple of 8) at 8-aligned p with a bounded word loop:
 * the library calls no memset of the kernel's. */
static inline void kh_zero_words(void *p, size_t n)
{
	uint64_t *w = p;
	for (size_t i = 0; i < n / 8; i++)
		w[i] = 0;
}
static inline uintptr_t kh_block_of(const void *p) { return (uintptr_t)p - KH_HDR; }

/* Free-list link encoding: a link is stored xor the heap secret and the
 * address of the slot that holds it, so a stray write or a forged value
 * decodes to garbage that the range and cookie checks catch. */
static inline uintptr_t kh_key(const struct kheap *h) { return (uintptr_t)h->secret; }
static inline uintptr_t kh_enc(const struct kheap *h, const void *slot, uintptr_t v)
{
	return v ^ (uintptr_t)slot ^ kh_key(h);
}

/* Per-CPU token key of CPU k: a payload p on k's lists has p ^ kh_tkey(h, k)
 * in its second word, so that word ^ p ^ ~key gives k back. */
static inline uintptr_t kh_tkey(const struct kheap *h, unsigned k) { return ~kh_key(h) ^ (uintptr_t)k; }

/* The CPU whose list holds used block b, going by its token; KHEAP_MAX_CPUS
 * or above when it is on none. */
static inline uintptr_t kh_token_cpu(const struct kheap *h, uintptr_t b)
{
	const uintptr_t *w = (const uintptr_t *)(b + KH_HDR);
	return __atomic_load_n(&w[1], __ATOMIC_RELAXED) ^ (b + KH_HDR) ^ ~kh_key(h);
}

/* Is used block b on a slot's list, shared or per-CPU (so cached, for the
 * walk, the dump, the tags and the double-free check)? */
static inline bool kh_on_list(const struct kheap *h, uintptr_t b)
{
	return kh_token_cpu(h, b) < KH_NSLOTS;
}

/* Does block b, whose header word is w, belong to the caller: used, a
 * plain block or a cache object, and on no list? (The walk, the tags and
 * the leak scan.) */
static inline bool kh_held_by_caller(const struct kheap *h, uintptr_t b, kh_word w)
{
	return (w & KH_USED) && !kh_quarantined(w) && !kh_on_list(h, b);
}

/* ---- hardening (KHEAP_HARDEN in kheap.h) ------------------------------------ */

/* Bytes the tail (canary, then tag) takes from each used block's payload. */
#define KH_CANARY_BYTES ((size_t)(KH_CANARIES ? 8 : 0))
#define KH_TAG_BYTES ((size_t)(KHEAP_TAGS ? 16 : 0))
#define KH_TAIL (KH_CANARY_BYTES + KH_TAG_BYTES)
#define KH_POISON ((kh_word)0xa5a5a5a5a5a5a5a5u)

/* The hardening levels (kheap.h) as named predicates: code asks these, not
 * KHEAP_HARDEN, and kh_harden.c holds the checks they switch on. */
#define KH_POISONS (KHEAP_HARDEN >= 1)          /* freed blocks poisoned, checked on hand-out */
#define KH_CANARIES (KHEAP_HARDEN >= 1)         /* a canary word after the usable size */
#define KH_GRANT_NEIGHBOURS (KHEAP_HARDEN >= 2) /* neighbours checked on hand-out too */
#define KH_PERIODIC_CHECK (KHEAP_HARDEN >= 3)   /* kheap_check every KHEAP_CHECK_EVERY operations */

_Static_assert(KHEAP_HARDEN >= 0 && KHEAP_HARDEN <= 3, "hardening levels are 0 to 3");
_Static_assert(KHEAP_TAGS == 0 || KHEAP_TAGS == 1, "tags are off (0) or on (1)");
_Static_assert(KHEAP_POISON_BYTES % 8 == 0, "poison is written in words");
_Static_assert(KH_TAIL % sizeof(kh_word) == 0,
	       "tail words are aligned: blocks start at 8 mod 16 and sizes are whole granules");
_Static_assert(KH_HDR + KH_TAIL <= KH_MIN_BLOCK, "the smallest block holds a header and a tail (alloc(0))");
_Static_assert(KHEAP_BLOCK_OVERHEAD == KH_HDR + KH_TAIL, "the public overhead is the header and the tail");
_Static_assert(sizeof(const void *) <= sizeof(kh_word), "a site fits in a tail word");

/* Usable bytes of used block b: payload less the tail. */
static inline size_t kh_usable(uintptr_t b) { return kh_size(b) - KH_HDR - KH_TAIL; }

/* A request of n bytes plus the tail, saturating. */
static inline size_t kh_want(size_t n) { return n > SIZE_MAX - KH_TAIL ? SIZE_MAX : n + KH_TAIL; }

/* The canary word sits right after a used block's usable bytes, at the
 * start of its tail; its value binds the heap secret and the block address. */
static inline kh_word *kh_canary_slot(uintptr_t b) { return (kh_word *)(b + kh_size(b) - KH_TAIL); }
static inline kh_word kh_canary(const struct kheap *h, uintptr_t b)
{
	return ((kh_word)b ^ h->secret) * (kh_word)0xd6e8feb86659fd93u;
}

/* Arm used block b's canary once its size is final (level 1 and up). */
static inline void kh_arm_canary(const struct kheap *h, uintptr_t b)
{
	if (KH_CANARIES)
		*kh_canary_slot(b) = kh_canary(h, b);
}

/* ---- caller tags (KHEAP_TAGS in kheap.h) --------------------------------- */

/* A used block's tag: the last two words of the block, so it moves with the
 * block's end. No-ops, and site NULL, without KHEAP_TAGS. */
struct kh_tag {
	const void *site;
	uint64_t seq;
};

static inline kh_word *kh_tag_slot(uintptr_t b) { return (kh_word *)(b + kh_size(b) - KH_TAG_BYTES); }

static inline struct kh_tag kh_tag_get(uintptr_t b)
{
	struct kh_tag t = {NULL, 0};
	if (KHEAP_TAGS) {
		t.site = (const void *)(uintptr_t)kh_tag_slot(b)[0];
		t.seq = kh_tag_slot(b)[1];
	}
	return t;
}

static inline void kh_tag_put(uintptr_t b, struct kh_tag t)
{
	if (KHEAP_TAGS) {
		kh_tag_slot(b)[0] = (kh_word)(uintptr_t)t.site;
		kh_tag_slot(b)[1] = t.seq;
	}
}

/* ---- size arithmetic ---------------------------------------------------- */

/* Block size for a payload of n bytes, or 0 when n cannot fit any block. */
static inline size_t kh_block_for(size_t n)
{
	if (n > KH_MAX_BLOCK - KH_HDR)
		return 0;
	size_t s = (n + KH_HDR + KH_GRANULE - 1) & ~(KH_GRANULE - 1);
	return s < KH_MIN_BLOCK ? KH_MIN_BLOCK : s;
}

/* Bin of a block of size s (s >= KH_MIN_BLOCK, s <= KH_MAX_BLOCK). */
static inline void kh_mapping(size_t s, unsigned *fl, unsigned *sl)
{
	if (s < ((size_t)1 << KH_FL_SHIFT)) {
		*fl = 0;
		*sl = (unsigned)(s >> KH_GRANULE_LOG2);
		return;
	}
	unsigned top = kh_fls_size(s);
	*fl = top - KH_FL_SHIFT + 1;
	*sl = (unsigned)(s >> (top - KHEAP_SL_LOG2)) ^ KH_SL_COUNT;
}

/* Smallest size of bin (fl, sl): every block in it is at least this big. */
static inline size_t kh_bin_floor(unsigned fl, unsigned sl)
{
	if (fl == 0)
		return (size_t)sl << KH_GRANULE_LOG2;
	return (size_t)(KH_SL_COUNT | sl) << (fl + KH_FL_SHIFT - 1 - KHEAP_SL_LOG2);
}

/* ---- cross-file internals ----------------------------------------------- */

/* kh_tlsf.c: the coalescing backend (two-level segregated fit). */
void kh_bin_insert(struct kheap *h, uintptr_t b);
bool kh_bin_remove(struct kheap *h, uintptr_t b, struct kh_err *e);
uintptr_t kh_backend_alloc(struct kheap *h, size_t s, struct kh_err *e);
uintptr_t kh_backend_alloc_upto(struct kheap *h, size_t s, size_t most, struct kh_err *e);
/* Merge used block b into the bins; its neighbours are checked first, and
 * a finding leaves b used and returns 0. Returns the merged block. */
uintptr_t kh_backend_free(struct kheap *h, uintptr_t b, struct kh_err *e);
void kh_rebuild(struct kheap *h);
uintptr_t kh_backend_aligned(struct kheap *h, size_t s, size_t align, struct kh_err *e);
bool kh_backend_resize(struct kheap *h, uintptr_t b, size_t s, struct kh_err *e);
size_t kh_largest_free(const struct kheap *h);
void kh_region_seed(struct kheap *h, struct kh_region *r);

/* Level 1: write the poison into free block b / test it (kh_harden.c). */
/* The poisoned span of a free block (level 1 and up): from past its two
 * links, up to KHEAP_POISON_BYTES, and never into its footer. Bounded, so
 * free stays O(1). Inline for the fused paths of kheap.c (level 1); the
 * rest call kh_poison, kh_poison_ok and kh_release_hook (kh_harden.c). */
static inline kh_word *kh_poison_lo(uintptr_t b) { return (kh_word *)(b + KH_HDR + 16); }
static inline kh_word *kh_poison_hi(uintptr_t b)
{
	uintptr_t end = b + kh_size(b) - KH_HDR, cap = b + KH_HDR + 16 + KHEAP_POISON_BYTES;
	return (kh_word *)(end < cap ? end : cap);
}

/* Both loops take the bound once (a store through w may alias the header)
 * and go four words a step, then two, then one: the span is whole
 * granules, but KHEAP_POISON_BYTES may cap it at an odd number of words. */
static inline void kh_poison_inline(uintptr_t b)
{
	kh_word *w = kh_poison_lo(b), *end = kh_poison_hi(b);
	for (; w + 4 <= end; w += 4)
		w[0] = w[1] = w[2] = w[3] = KH_POISON;
	for (; w < end; w++)
		*w = KH_POISON;
}

static inline bool kh_poison_ok_inline(uintptr_t b)
{
	const kh_word *w = kh_poison_lo(b), *end = kh_poison_hi(b);
	for (; w + 4 <= end; w += 4)
		if (w[0] != KH_POISON || w[1] != KH_POISON || w[2] != KH_POISON || w[3] != KH_POISON)
			return false;
	for (; w < end; w++)
		if (*w != KH_POISON)
			return false;
	return true;
}
void kh_poison(uintptr_t b);
bool kh_poison_ok(uintptr_t b);

#ifdef KH_FAULT_INJECT
/* Test builds: when non-zero, counts down on every backend allocation, and
 * the one that brings it to zero fails as if memory had run out. */
extern unsigned long kh_fault_countdown;
#endif

/* The region whose blocks include address b, or NULL. O(KHEAP_MAX_REGIONS),
 * inline because free and the class caches ask on every call. */
static inline const struct kh_region *kh_region_of(const struct kheap *h, uintptr_t b)
{
	for (unsigned i = 0; i < h->nregions; i++)
		if (b >= h->regions[i].first && b < h->regions[i].end)
			return &h->regions[i];
	return NULL;
}

/* May the lock holder read a block header at b: does b lie in the span of
 * blocks it has synced (kh_cpu_sync: one range compare when the regions lie
 * end to end, so the few bytes between one's end marker and the next one's
 * first block count too), or, when they do not, in a region? Lock held. */
static inline bool kh_in_span(const struct kheap *h, uintptr_t b)
{
	const struct kh_cpu *sh = &h->cpus[KH_SHARED];
	return b - sh->lo < sh->hi - sh->lo || (sh->lo == sh->hi && kh_region_of(h, b) != NULL);
}

/* Does header word w, read at b in region r, describe a block that can be
 * stepped over: sealed, at least KH_MIN_BLOCK, ending inside the region? */
static inline bool kh_block_sane(const struct kheap *h, const struct kh_region *r, uintptr_t b, kh_word w)
{
	size_t s = (size_t)(w & KH_SIZE_MASK);
	return kh_sealed(h, b, w) && s >= KH_MIN_BLOCK && s <= r->end - b;
}

/* kh_check.c */
int kh_check_locked(struct kheap *h, kheap_problem_fn fn, void *ctx);
/* One list of a slot (a size class's or an object cache's) as kheap_check
 * walks it: every block lies in the heap, is sealed, has `bits` under
 * `mask` in its header and `size` bytes, and its token names `slot`; its
 * poison is intact (level 1); the count is right, within the limit and at
 * least `reserve`. Problems go to bad_at with the messages given (stray:
 * a block that does not belong; miscount: the counts). The walk stops
 * after count + 1 steps, so a cycle is a finding. Returns the blocks
 * found. */
typedef void (*kh_bad_fn)(void *ctx, uintptr_t addr, const char *what);
struct kh_list_want {
	kh_word mask, bits;
	size_t size;
	unsigned slot;
	uint32_t reserve;
	const char *stray, *miscount;
};
size_t kh_check_list(const struct kheap *h, const struct kh_class *l, const struct kh_list_want *want,
		     kh_bad_fn bad_at, void *ctx);
/* After a corrupt header at b in r: the next address whose header is sane
 * and is followed by another sealed header, or r->end. Reads stay in r. */
uintptr_t kh_resync(const struct kheap *h, const struct kh_region *r, uintptr_t b);

/* kh_walk.c: visit every sane block of every region in address order;
 * visit returns where to go on (0: the next block; a merge may have moved
 * it). After a damaged header the walk resyncs (kh_resync) or, with resync
 * false, leaves that region. Lock held. O(blocks). */
typedef uintptr_t (*kh_visit_fn)(void *ctx, uintptr_t b, kh_word w);
void kh_walk_blocks(const struct kheap *h, kh_visit_fn visit, void *ctx, bool resync);

/* kh_stats.c. kh_stats_locked: the counters as kheap_get_stats returns
 * them; lock held, or, for kheap_dump, a torn read accepted. */
/* Hand used block b to the caller: its canary, the counters, and its tag. */
void kh_count_grant(struct kheap *h, uintptr_t b, const struct kh_err *e);
void kh_stats_locked(const struct kheap *h, struct kheap_stats *out);

/* kh_harden.c. kh_held: is p the payload of a block the caller holds?
 * Returns the block, or 0 with *e set. how says how far to look (the
 * neighbours only with the lock held). */
enum kh_held_check {
	KH_HELD_HEADER, /* the block's header and list token: no lock needed */
	KH_HELD_OWN,    /* and its canary: what a free reads (the backend reads the
			 * neighbours as it merges; a lock-free free may not) */
	KH_HELD_LOCKED, /* and both neighbours: lock held */
};
uintptr_t kh_held(const struct kheap *h, const void *p, struct kh_err *e, enum kh_held_check how);
/* kh_held for an object of cache number i: a plain block or another
 * cache's object is KHEAP_E_WRONG_CACHE. (kh_held itself refuses cache
 * objects the same way, but with KH_HELD_HEADER, where it takes both.) */
uintptr_t kh_held_obj(const struct kheap *h, const void *p, struct kh_err *e, enum kh_held_check how, unsigned i);

/* The level-0 subset of kh_held_obj(KH_HELD_OWN) for the per-CPU object
 * free, as kh_cpu_free is for plain blocks: p 16-aligned, its block in the
 * CPU's span, the header sealed and exactly an object of cache i of s
 * bytes (PREV_FREE aside), its token naming no slot. False whenever
 * kh_held_obj must decide (and say what is wrong); always false where the
 * hardening levels add checks (a canary). */
static inline bool kh_obj_plainly_held(const struct kheap *h, const struct kh_cpu *cpu, const void *p, unsigned i,
				       size_t s)
{
	uintptr_t b = kh_block_of(p);
	if (KH_CANARIES || ((uintptr_t)p & (KHEAP_ALIGN - 1)) || b < cpu->lo || b >= cpu->hi)
		return false;
	kh_word w = __atomic_load_n(kh_hdr(b), __ATOMIC_RELAXED);
	return (w & KH_BODY_MASK & ~KH_PREV_FREE) == (KH_OBJ_BITS(i) | (kh_word)s) && kh_sealed(h, b, w) &&
	       kh_token_cpu(h, b) >= KH_NSLOTS;
}
/* Cached block b may merge into the bins: its neighbours agree with it
 * (the check kh_held's KH_HELD_LOCKED makes). kh_backend_free makes it as
 * it merges, for every block, so only a caller that must know before it
 * rewrites b's header asks first: an object on its way back to the backend
 * (kh_objcache_pool.c). A finding goes to *e. Lock held. */
bool kh_merge_ok(const struct kheap *h, uintptr_t b, struct kh_err *e);
/* Used block b's right neighbour is sealed and knows b is used. */
bool kh_next_ok(const struct kheap *h, uintptr_t b);
/* On hand-out of a block that was free or cached: its poison is intact
 * (KH_POISONS; a finding goes to *e, the block is still handed out), and
 * its canary is armed. */
void kh_grant_checks(struct kheap *h, uintptr_t b, struct kh_err *e);
/* A free or cached block leaving its bin or list: its poison is intact
 * (KH_POISONS); a finding goes to *e, the block is still sound. */
void kh_poison_check(uintptr_t b, struct kh_err *e);
/* Level 2 (KH_GRANT_NEIGHBOURS): free block b, about to be handed out, and
 * its neighbours agree (footer, the next header's PREV_FREE); true below. */
bool kh_free_block_ok(const struct kheap *h, uintptr_t b);
/* On release of a block to a list or a bin: poison it (KH_POISONS). */
void kh_release_hook(uintptr_t b);
/* Full validation, the first problem into *e as KHEAP_E_CORRUPT. Lock held. */
void kh_full_check(struct kheap *h, struct kh_err *e);

/* kh_cache.c: the shared size-class lists (I6). Lock held. */
uintptr_t kh_cache_take(struct kheap *h, unsigned c, struct kh_err *e);
bool kh_cache_put(struct kheap *h, uintptr_t b);
void kh_cache_flush(struct kheap *h, struct kh_err *e);
void kh_cache_limits(struct kheap *h);
uintptr_t kh_cache_carve(struct kheap *h, unsigned c, struct kh_err *e);
uint32_t kh_carve_class(struct kheap *h, struct kh_cpu *slot, unsigned c, uint32_t n, struct kh_err *e);
/* Batches (struct kh_batches). kh_batch_mark: a drain is about to push a
 * batch on class c's shared list. kh_batch_take: the top batch of class c
 * when it has 2 to most blocks: its head (payload pointer), *k blocks and
 * the block below it in *rest (0: none), off the list and counted out; the
 * caller claims it with kh_batch_claim after the unlock. 0 else. Lock held. */
void kh_batch_mark(struct kheap *h, unsigned c);
uintptr_t kh_batch_take(struct kheap *h, unsigned c, uint32_t most, uint32_t *k, uintptr_t *rest);
/* Claim a taken batch (head, k, rest): pop its blocks as kh_cpu_pop does,
 * each with the shared token, the last link leading to rest, into out[]
 * (poison checked into *e). Returns the blocks claimed; fewer than k, or
 * a last link that leads elsewhere, is a corrupt list: the caller repairs
 * the shared slot's class list under the lock (kh_slot_repair). Interrupts
 * masked, lock not held; ends the batch's flight (h->batches_out). */
uint32_t kh_batch_claim(struct kheap *h, uintptr_t head, uint32_t k, uintptr_t rest, uintptr_t *out, bool *bad,
			struct kh_err *e);
/* Wait until no batch is in flight: a walk that reads tokens as owners
 * (kheap_check, kh_rebuild, a repair of the shared slot) must not see a
 * claimed batch half re-tokened. Bounded: a claim is at most KHEAP_CPU_BATCH
 * pops with interrupts masked. Lock held. */
void kh_batch_quiesce(const struct kheap *h);

/* Drains with no refill between after which a per-CPU list counts as a
 * consumer's and keeps less (kh_percpu.c, drained_limit). */
#define KH_CONSUMER_DRAINS 8u

/* kh_percpu.c: the per-CPU caches (I8). kh_percpu_alloc and kh_percpu_free
 * run without the lock, with interrupts masked inside; the rest under it. */
void *kh_percpu_alloc(struct kheap *h, size_t n, const void *caller);
bool kh_percpu_free(struct kheap *h, void *ptr, const void *caller);
void kh_cpu_span(const struct kheap *h, unsigned n, uintptr_t *lo, uintptr_t *hi);
void kh_cpu_sync(const struct kheap *h, struct kh_cpu *cpu);
/* Has another CPU asked CPU cpu to drain its lists (kh_flush_cpus)? */
static inline bool kh_drain_asked(const struct kh_cpu *cpu) { return __atomic_load_n(&cpu->drain, __ATOMIC_RELAXED) != 0; }
/* Open a locked stretch of a per-CPU path (size classes or object caches)
 * for the calling CPU cpu: take the lock, refresh the CPU's span snapshot,
 * honour a drain request. Interrupts masked. */
void kh_cpu_slow_begin(struct kheap *h, struct kh_cpu *cpu, struct kh_err *e);
/* The per-CPU list limits (h->cpu_limit): KHEAP_CPU_CACHE_BYTES of a class,
 * or two blocks of a larger one, none above KHEAP_CPU_MAX_BLOCK, and all
 * CPUs' lists together at most 1/KHEAP_CACHE_SHARE of the managed bytes, in
 * equal bytes per class kept. After a region is added. */
void kh_cpu_limits(struct kheap *h);
/* Carve used backend block b into up to n blocks of s bytes with header
 * bits and alignment field alg (a class's: KH_USED, 0; an object cache's:
 * KH_OBJ_BITS(i), i), each poisoned and pushed on list l with token key
 * tkey. A block is carved where what is left is exactly one or one and a
 * whole block; the rest goes back to the backend. Returns how many; the
 * caller counts them (in use on a CPU's list or as objects, not on the
 * shared lists). Lock held. */
uint32_t kh_carve_list(struct kheap *h, uintptr_t b, size_t s, uint32_t n, kh_word bits, unsigned alg,
		       struct kh_class *l, uintptr_t tkey, struct kh_err *e);
void kh_drain_cpu(struct kheap *h, struct kh_cpu *cpu, bool dead, struct kh_err *e);
void kh_drain_class(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct kh_err *e);
void kh_drain_if_asked(struct kheap *h, struct kh_err *e);
void kh_flush_cpus(struct kheap *h, struct kh_err *e);
size_t kh_cached_elsewhere(struct kheap *h);
/* Slot cpu's class-c list was found corrupt: empty it, and give every block
 * whose token still names the slot back to the bins (a linear walk, only on
 * this error); reported as KHEAP_E_FREELIST. Lock held. */
void kh_slot_repair(struct kheap *h, struct kh_cpu *cpu, unsigned c, struct kh_err *e);

/* kh_objcache.c: the object caches. Lock held. kh_obj_drain_cpu: CPU
 * cpu's lists of every cache back to the backend, down to their reserves
 * (all of them when dead); kh_obj_flush: every depot and the calling CPU's
 * lists likewise (kheap_trim, OOM); kh_obj_cached_elsewhere: bytes on other
 * CPUs' lists (relaxed reads). kh_obj_stats adds the caches' listed objects
 * and lock-free operations to the heap's figures. */
void kh_obj_drain_cpu(struct kheap *h, unsigned cpu, bool dead, struct kh_err *e);
void kh_obj_flush(struct kheap *h, struct kh_err *e);
size_t kh_obj_cached_elsewhere(struct kheap *h);
void kh_obj_stats(const struct kheap *h, size_t *bytes, size_t *blocks, uint64_t *allocs, uint64_t *frees);
/* Cache number i's figures (kheap_cache_stats), false when there is none
 * or its descriptor does not look sound. Lock held, or (kheap_dump) a torn
 * read accepted: it checks the descriptor lies in the heap before reading. */
bool kh_obj_figures(const struct kheap *h, unsigned i, struct kheap_cache_stats *out);
/* kheap_check's part: cache i's lists and counts against what the region
 * walk found (objs: blocks naming i; depot: those on its depot; mine: on
 * the calling CPU's list of it). Reports through bad. */
void kh_obj_check(const struct kheap *h, unsigned i, size_t objs, size_t depot, size_t mine, unsigned cpu,
		  kh_bad_fn bad, void *ctx);

/* kh_alloc.c: the locked allocation and release policy. Lock held. */
void kh_flush_all(struct kheap *h, struct kh_err *e);
uintptr_t kh_alloc_locked(struct kheap *h, size_t n, struct kh_err *e);
uintptr_t kh_aligned_locked(struct kheap *h, size_t align, size_t n, struct kh_err *e);
void kh_free_locked(struct kheap *h, uintptr_t b, struct kh_err *e);
uintptr_t kh_retry_alloc(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller);

/* kh_region.c. Lock held, or the heap not yet shared. */
bool kh_region_geometry(struct kh_region *r, uintptr_t lo, uintptr_t hi, uintptr_t from);
void kh_region_attach(struct kheap *h, const struct kh_region *r);
void kh_region_add(struct kheap *h, void *base, size_t size, struct kh_err *e);

/* kh_report.c */
void kh_report(struct kheap *h, const struct kh_err *e, const void *caller);
/* Report what a stretch without the lock found: counted (error_count)
 * under the lock, as every report is, then passed to the hook with it
 * released (kh_leave). Takes the lock: not with it held. */
void kh_report_counted(struct kheap *h, struct kh_err *e, const void *caller);
/* After a locked stretch that recorded a problem: count it, and rebuild the
 * free lists from the headers after a corrupt link. Lock held. */
void kh_settle(struct kheap *h, struct kh_err *e);
/* kh_leave when something went wrong: settle, unlock, then report and call
 * the OOM hook, both with the lock released. */
void kh_leave_slow(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller);
/* A failed internal assertion (KH_ASSERT): "kheap: internal assertion
 * failed: <condition> at <file>:<line>" to kheap_panic. If that returns (a
 * test's override), execution goes on past the assertion. */
void kh_assert_fail(const char *what, const char *file, int line);
/* v in base 16 or 10, NUL-terminated, at the end of buf[KH_FMT_LEN];
 * returns where it starts. */
#define KH_FMT_LEN 24
const char *kh_fmt(char *buf, uint64_t v, unsigned base);

/* Record a failed check in *e (the first one wins) and return false. */
static inline bool kh_fail(struct kh_err *e, enum kheap_error kind, const void *ptr, const char *msg)
{
	if (e->kind == KHEAP_OK) {
		e->kind = kind;
		e->ptr = ptr;
		e->msg = msg;
	}
	return false;
}

/* Level 3: is this operation a KHEAP_CHECK_EVERY-th one, counting every
 * path of every CPU together (the per-CPU path counts without the lock)? */
static inline bool kh_check_due(struct kheap *h)
{
	return __atomic_add_fetch(&h->ops, 1, __ATOMIC_RELAXED) % KHEAP_CHECK_EVERY == 0;
}

/* Blocks join or leave the in-use counters: handed to the caller or to a
 * per-CPU list, or given back (kh_stats.c has the rest). Lock held. */
static inline void kh_count_out(struct kheap *h, size_t bytes, size_t blocks)
{
	h->n.in_use += bytes;
	h->n.used_blocks += blocks;
	if (h->n.in_use > h->n.peak)
		h->n.peak = h->n.in_use;
}

static inline void kh_count_back(struct kheap *h, size_t bytes, size_t blocks)
{
	KH_ASSERT(h->n.in_use >= bytes && h->n.used_blocks >= blocks);
	h->n.in_use -= bytes;
	h->n.used_blocks -= blocks;
}

/* Close an entry point's locked stretch: the periodic check (level 3),
 * then unlock and restore interrupts; reports and the OOM hook come after
 * the unlock (kh_leave_slow). */
static inline void kh_leave(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller)
{
	if (KH_PERIODIC_CHECK && kh_check_due(h))
		kh_full_check(h, e);
	if (__builtin_expect(e->kind != KHEAP_OK || e->oom, 0)) {
		kh_leave_slow(h, irq, e, caller);
		return;
	}
	kh_exit(h, irq);
}

/* kh_leave for an allocating entry point whose locked stretch handed out b
 * (or 0): when it ran short while other CPUs' caches held blocks, the slow
 * half (kh_retry_alloc, kh_alloc.c) asks them back and tries once more. */
static inline uintptr_t kh_leave_alloc(struct kheap *h, uintptr_t irq, uintptr_t b, struct kh_err *e,
				       const void *caller)
{
	if (__builtin_expect(e->retry, 0))
		return kh_retry_alloc(h, irq, e, caller);
	kh_leave(h, irq, e, caller);
	return b;
}

#endif /* KH_INTERNAL_H */
