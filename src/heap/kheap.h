/*
 * kheap.h: the public contract of kheap, a freestanding O(1) heap for kernels
 * and bare-metal firmware.
 *
 * Guarantees that hold for every function below unless it says otherwise:
 *  - Time: bounded by a constant that does not depend on the number of blocks
 *    or on the arena size (two-level segregated fit with bitmaps). The few
 *    loops are bounded by compile-time constants: KHEAP_MAX_REGIONS for the
 *    pointer-ownership test, KHEAP_CLASS_CARVE for the batch a locked
 *    allocation carves when its class's shared list is empty, and the total
 *    size-class cache capacity for the
 *    cache flush that runs at most once per allocation, only on exhaustion,
 *    and for the one a realloc runs when a cached right neighbour would let
 *    the block grow in place.
 *    An allocation that is still short after that flush while other CPUs'
 *    per-CPU caches hold blocks also waits for kheap_flush_others and tries
 *    once more. kheap_check, kheap_walk, kheap_walk_tags, kheap_dump and
 *    kheap_trim are the exceptions (linear).
 *  - Alignment: every returned pointer is aligned to KHEAP_ALIGN (16) bytes,
 *    or to the requested alignment when larger.
 *  - Overhead: 8 bytes per allocated block on 64-bit targets
 *    (KHEAP_BLOCK_OVERHEAD: more with KHEAP_HARDEN >= 1 or KHEAP_TAGS).
 *  - Locking: every function masks interrupts through kheap_irq_save()/
 *    kheap_irq_restore() and takes the heap's spinlock, so it may be called
 *    from any CPU, thread or interrupt handler, but not from an NMI that may
 *    have interrupted the same heap: the lock is not recursive. A CPU that
 *    re-enters it (an unmasked interrupt or an NMI, a hook calling back) is
 *    reported through kheap_panic, not left to hang. The report
 *    and OOM hooks and kheap_flush_others run with the lock released; the
 *    kheap_walk, kheap_walk_tags and kheap_check_verbose callbacks run with
 *    it held.
 *  - Per-CPU caches: when kheap_cpu_id() names a CPU, kheap_alloc,
 *    kheap_calloc and kheap_free of size-class blocks (requests up to
 *    64 KiB, bounded by KHEAP_CPU_MAX_BLOCK) are
 *    served from that CPU's own lists with interrupts masked but without the
 *    lock; the lists are refilled and drained in batches under the lock.
 *    Interrupts stay masked from the CPU lookup to the end of the list
 *    operation, so a handler that allocates on the same CPU cannot
 *    interleave, and no other CPU touches those lists while their CPU may
 *    run kheap: another CPU only asks for them to be drained (kheap_trim,
 *    an allocation that runs out), through kheap_flush_others, which makes
 *    each CPU call kheap_trim_cpu, or else at that CPU's next allocation
 *    or free (of any size).
 *    kheap_cpu_dead drains the cache of a CPU that is offline. A double
 *    free that races with the first free of the same block on another CPU
 *    is not guaranteed to be caught.
 *    Until kheap_cpu_id() has named a CPU once (kheap_init, and each
 *    allocation that the shared size-class lists cannot serve, ask it),
 *    kheap_alloc, kheap_calloc and kheap_free do not ask it and take the
 *    locked path at once. A small block on the locked path is served by
 *    the same fused routine from the shared lists, under the lock.
 *  - Misuse: a bad pointer, a corrupted header or any other misuse is
 *    reported through the heap's report hook (kheap_set_report) and the
 *    operation is refused; the heap stays consistent and keeps serving.
 *    Every report has a severity (enum kheap_severity): a refused request
 *    (an impossible size, alignment, region or argument) only returns NULL
 *    or an error and is counted; pointer misuse and heap damage also go to
 *    kheap_panic unless the kernel installs its own hook.
 *  - Allocation: no memory is ever obtained from anywhere but the regions
 *    handed to kheap_init/kheap_add_region.
 */
#ifndef KHEAP_H
#define KHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Alignment of every returned pointer. */
#define KHEAP_ALIGN 16u

/* Build knobs (KHEAP_MAX_REGIONS, KHEAP_MAX_CPUS, KHEAP_HARDEN, KHEAP_TAGS,
 * ...), each with its default, range and cost: kheap_config.h. */
#include "kheap_config.h"

/* Per-CPU caches: CPUs (or, on a host, threads) numbered below
 * KHEAP_MAX_CPUS get a lock-free cache of size-class blocks each (kheap_cpu_id). */
/* What kheap_cpu_id returns for "no per-CPU cache: take the locked path". */
#define KHEAP_NO_CPU (~0u)

/*
 * Hardening level, fixed when the library is built (-DKHEAP_HARDEN=n); the
 * docs/hardening.md gives each level's measured cost. Every level keeps the checks of
 * the levels below it.
 *  0  always-on checks: header cookie, double free, foreign, interior and
 *     misaligned pointers, encoded links, and neighbour consistency
 *     before a block merges into the bins (at its free, or, for a class
 *     block that went to a size-class list, when it leaves the list);
 *  1  + freed blocks are poisoned (their first KHEAP_POISON_BYTES after the
 *     links) and the poison is checked when the block is handed out again;
 *     + a canary word after the usable size, checked on free, realloc and
 *     usable_size (8 more bytes per block);
 *     + kheap_check verifies the poison of every free block and of every
 *     block in a shared or the calling CPU's size-class cache, and the
 *     canary of every used block;
 *  2  + the neighbours of every block handed out are checked too;
 *  3  + a full kheap_check every KHEAP_CHECK_EVERY operations, counted over
 *     all CPUs and entry points, so damage that no operation touches is
 *     reported (KHEAP_E_CORRUPT) within that many operations (damage in
 *     another CPU's per-CPU cache: when that CPU runs the check).
 */

/*
 * Caller tags, fixed when the library is built (-DKHEAP_TAGS=1; default 0).
 * With tags, every block handed out records, in 16 bytes at the end of the
 * block, the allocation site (the return address of the kheap_* call that
 * allocated it) and its sequence number (the alloc_count of kheap_stats just
 * after that allocation: the first block a heap hands out has seq 1). A
 * realloc that moves makes a new block, tagged with the realloc's site; one
 * that resizes in place keeps the block's tag. kheap_walk_tags and
 * kheap_tag_of read the tags; kheap_dump prints them. The tag is not
 * checked: at KHEAP_HARDEN 0 an overflow of up to 16 bytes past the usable
 * size lands in it unnoticed (and garbles it); from level 1 the canary sits
 * before it and catches that. Code that includes this header must see the
 * same KHEAP_TAGS and KHEAP_HARDEN as the library; a mismatch fails to link
 * (kheap_config.h).
 */

/* Bytes a block costs beyond its usable size: the header, the canary when
 * KHEAP_HARDEN >= 1, and the tag when KHEAP_TAGS. */
#define KHEAP_BLOCK_OVERHEAD (8u + (KHEAP_HARDEN >= 1 ? 8u : 0u) + (KHEAP_TAGS ? 16u : 0u))

/* The smallest region kheap_add_region accepts, after aligning its ends. The
 * first region must also hold the control block (kheap_control_size()). */
#define KHEAP_MIN_REGION 256u

struct kheap; /* opaque handle; lives at the start of the first region */

/* What a report is about. Values are stable: tests and kernels match them. */
enum kheap_error {
	KHEAP_OK = 0,
	KHEAP_E_DOUBLE_FREE,  /* block already free, cached, or absorbed by a neighbour */
	KHEAP_E_FOREIGN,      /* pointer outside every region of this heap */
	KHEAP_E_MISALIGNED,   /* pointer not KHEAP_ALIGN-aligned */
	KHEAP_E_BAD_HEADER,   /* header cookie wrong: interior pointer or overwritten header */
	KHEAP_E_NEIGHBOUR,    /* a neighbour's header or boundary tag disagrees with this block */
	KHEAP_E_FREELIST,     /* a free-list link is corrupt (forged or overwritten) */
	KHEAP_E_OVERFLOW,     /* size arithmetic overflows (calloc n*size, alignment padding) */
	KHEAP_E_BAD_ALIGN,    /* alignment is not a power of two */
	KHEAP_E_REGION,       /* region overlaps, wraps, is misaligned, or too many regions */
	KHEAP_E_REGION_SMALL, /* region too small to hold one block */
	KHEAP_E_BAD_HEAP,     /* the heap handle is NULL or not a live kheap */
	KHEAP_E_NULL,         /* NULL where the function does not accept it */
	KHEAP_E_USE_AFTER_FREE, /* freed memory was written (KHEAP_HARDEN >= 1) */
	KHEAP_E_CANARY,       /* the word past the usable size was overwritten (KHEAP_HARDEN >= 1) */
	KHEAP_E_CORRUPT,      /* the periodic full check found a problem (KHEAP_HARDEN >= 3) */
	KHEAP_E_BAD_ARG,      /* an argument outside its documented range (kheap_cpu_dead's cpu) */
	KHEAP_E_WRONG_CACHE,  /* an object cache's object freed to another cache or with
			       * kheap_free, or a plain block freed to a cache */
	KHEAP_E_BAD_CACHE,    /* the cache handle is NULL, destroyed, or not of this heap */
	KHEAP_E_COUNT_
};

/*
 * Severity of a report, fixed per kind:
 *
 *   severity            kinds                          the call        default hook
 *   KHEAP_SEV_REFUSED   OVERFLOW, BAD_ALIGN, REGION,   NULL / -kind,   counted only
 *                       REGION_SMALL, BAD_ARG          heap unchanged  (error_count)
 *   KHEAP_SEV_MISUSE    DOUBLE_FREE, FOREIGN,          refused, heap   kheap_panic
 *                       MISALIGNED, BAD_HEAP, NULL,    unchanged
 *                       WRONG_CACHE, BAD_CACHE
 *   KHEAP_SEV_CORRUPT   BAD_HEADER, NEIGHBOUR,         refused or      kheap_panic
 *                       FREELIST, USE_AFTER_FREE,      served; damage
 *                       CANARY, CORRUPT                left or fenced
 *
 * A refused request is what a kernel may pass on from a user (a count, a
 * size, an alignment): like kcalloc it just gets NULL. Misuse is a pointer
 * or handle that is not what the API takes. Corruption is heap memory
 * found damaged (BAD_HEADER also covers an interior pointer, which a
 * header alone cannot tell from an overwritten one): free-list damage is
 * repaired from the headers, a damaged header is quarantined (kheap_check).
 */
enum kheap_severity {
	KHEAP_SEV_REFUSED = 1,
	KHEAP_SEV_MISUSE = 2,
	KHEAP_SEV_CORRUPT = 3
};

/* One report. msg is a static string naming the failed check. */
struct kheap_report {
	enum kheap_error kind;
	const void *ptr;    /* the pointer or region base that failed the check */
	const void *caller; /* return address of the kheap_* call, or NULL */
	const char *msg;
	enum kheap_severity severity; /* fixed by kind (table above) */
};

/* Called once per report, with the heap lock released, after the operation
 * was refused. It must not allocate from the same heap. It may return: the
 * heap then carries on, with the refused operation undone. */
typedef void (*kheap_report_fn)(void *ctx, const struct kheap_report *r);

/* Counters kept in O(1) on every operation. Byte counts are block bytes
 * (usable bytes plus KHEAP_BLOCK_OVERHEAD), so in_use + free + cached add up
 * to the managed bytes. The per-CPU caches keep their own counters, which
 * kheap_get_stats adds in; the sums are exact whenever no CPU is inside a
 * kheap call (while one is, a snapshot may be one operation out per CPU). */
struct kheap_stats {
	size_t total_bytes;    /* bytes under management in all regions */
	size_t in_use_bytes;   /* bytes in blocks the caller holds */
	size_t peak_in_use_bytes; /* highest in_use_bytes, where blocks in the
				   * per-CPU caches count as in use (they move
				   * there in batches, under the lock) */
	size_t free_bytes;     /* bytes in free blocks (bins) */
	size_t cached_bytes;   /* bytes in freed class blocks held by size-class
				* caches, the per-CPU ones included */
	size_t largest_free;   /* a free block any allocation up to it is sure to
				* get: up to largest_free - KHEAP_BLOCK_OVERHEAD
				* bytes succeeds (kheap_alloc). It is the
				* largest free block when one block is free,
				* else within 1/16 of it. 0 when none is free */
	size_t used_blocks;    /* blocks the caller holds */
	size_t free_blocks;    /* blocks in bins */
	size_t cached_blocks;  /* blocks in size-class caches */
	uint64_t alloc_count;  /* successful allocations (realloc that moves counts one) */
	uint64_t free_count;   /* successful frees (realloc that moves counts one) */
	uint64_t oom_count;    /* allocations that returned NULL for lack of memory */
	uint64_t error_count;  /* reports sent to the report hook */
	unsigned regions;      /* regions under management */
};

/* Set up a heap on [base, base + size). The control block is placed at the
 * start of the region. base must be KHEAP_ALIGN-aligned; the end is rounded
 * down. Returns NULL iff base is NULL or misaligned, the range wraps, or the
 * region cannot hold the control block and one block. Not thread-safe: call
 * once before the heap is shared. O(1). */
#define kheap_init KHEAP_ABI_NAME(kheap_init, KHEAP_HARDEN, KHEAP_TAGS)
struct kheap *kheap_init(void *base, size_t size);

/* Size of the control block kheap_init places at the start of the first
 * region. A first region needs at least this plus KHEAP_MIN_REGION bytes. */
size_t kheap_control_size(void);

/* Add a further region (another RAM bank, say). base must be
 * KHEAP_ALIGN-aligned. Returns 0, or a negative enum kheap_error, which is
 * also reported (KHEAP_SEV_REFUSED but for BAD_HEAP, a misuse):
 *  -KHEAP_E_REGION_SMALL  size below KHEAP_MIN_REGION;
 *  -KHEAP_E_REGION        NULL or misaligned base, a range that wraps, one that
 *                         overlaps a region or the control block, or
 *                         KHEAP_MAX_REGIONS already in use;
 *  -KHEAP_E_BAD_HEAP      h is not a heap (reported to kheap_panic).
 * A region's span above 2^40 bytes is not used. O(KHEAP_MAX_REGIONS). */
int kheap_add_region(struct kheap *h, void *base, size_t size);

/* Allocate size bytes. Returns a KHEAP_ALIGN-aligned pointer to at least size
 * bytes, or NULL when memory is short (counted as an OOM, never reported);
 * never a smaller block. alloc(0) returns a unique minimal block (usually 24
 * usable bytes, 16 when KHEAP_HARDEN >= 1; more when the free block it takes
 * is too small to split) that must be freed. O(1).
 * When it returns NULL: the request needs a block of s = size +
 * KHEAP_BLOCK_OVERHEAD bytes rounded up to 16 (at least 32). A request with
 * s <= largest_free (kheap_stats) always succeeds; in particular, when one
 * block of B bytes is free, every request with s <= B does. With several
 * free blocks the search stays O(1) by looking at bins, not blocks: a bin
 * holds the sizes from 2^k + j * 2^(k-4) up to the next such step (with
 * the default KHEAP_SL_LOG2 of 4: 16 bins per power of two from 256 bytes;
 * one per 16 bytes below, where the rule is exact), and the request takes
 * any block of a bin above its own, or
 * else the first block of its own bin if that one is big enough. So NULL
 * comes back while a block of s bytes or more is free only when every such
 * block lies in s's own bin, less than 1/16 above s, behind a smaller
 * first block. Before giving up, the shared size-class caches and the
 * calling CPU's are returned to the bins, and those of other CPUs as
 * kheap_flush_others allows (kheap_trim). */
void *kheap_alloc(struct kheap *h, size_t size);

/* Free a block from kheap_alloc/calloc/realloc/aligned_alloc. free(NULL) does
 * nothing. A pointer that is foreign, misaligned or already free is
 * reported (KHEAP_SEV_MISUSE) and not freed; one that is interior, or whose
 * header, canary or neighbours are damaged, likewise (KHEAP_SEV_CORRUPT).
 * O(1). */
void kheap_free(struct kheap *h, void *ptr);

/* Allocate n * size zeroed bytes. Returns NULL iff n * size overflows size_t
 * (reported as KHEAP_E_OVERFLOW, KHEAP_SEV_REFUSED: no panic by default, so a
 * count from a user is safe to pass) or the allocation fails (as
 * kheap_alloc). O(1) plus the zeroing, which is linear in the size. */
void *kheap_calloc(struct kheap *h, size_t n, size_t size);

/* Resize a block, keeping its contents up to the smaller size and the
 * alignment it was allocated with. realloc(NULL, n) is alloc(n);
 * realloc(p, 0) frees p and returns NULL. Shrinks in place; grows in place
 * when the blocks right of it make room, counting as free a block that
 * sits in a shared size-class cache or in the calling CPU's per-CPU cache
 * (those lists are then returned to the bins first); else moves, as
 * kheap_alloc (or kheap_aligned_alloc) allocates. Returns NULL, leaving the
 * old block untouched and valid, iff memory is short (an OOM) or ptr is
 * invalid (reported as kheap_free reports it: KHEAP_SEV_MISUSE or
 * KHEAP_SEV_CORRUPT). O(1) plus the copy when the block moves, plus
 * O(cache capacity) when a cached neighbour is taken back. */
void *kheap_realloc(struct kheap *h, void *ptr, size_t size);

/* Allocate size bytes aligned to align, a power of two. Alignments up to
 * KHEAP_ALIGN are plain allocations. Returns NULL iff align is not a power of
 * two (reported as KHEAP_E_BAD_ALIGN), size + align overflows (reported as
 * KHEAP_E_OVERFLOW; both KHEAP_SEV_REFUSED), or memory is short (an OOM).
 * With s as in kheap_alloc: an aligned block placed in a free block whose
 * payload is at address q starts at the first multiple p of align from q
 * on with p - q either 0 or at least 32 (the gap before it becomes a free
 * block), and needs p - q + s bytes. The request succeeds when
 * largest_free >= s + align + 16, and otherwise whenever one of the two
 * blocks a plain request of s would look at (kheap_alloc) has room at such
 * a p; in particular, when one block is free, exactly when it has. O(1). */
void *kheap_aligned_alloc(struct kheap *h, size_t align, size_t size);

/* Bytes usable at ptr: at least what was asked for. 0 for NULL, and for an
 * invalid pointer, which is also reported (as kheap_free). O(1). */
size_t kheap_usable_size(struct kheap *h, const void *ptr);

/* Copy the counters into *out. out NULL is reported as KHEAP_E_NULL
 * (KHEAP_SEV_MISUSE). O(KHEAP_MAX_CPUS), with the lock held. */
void kheap_get_stats(struct kheap *h, struct kheap_stats *out);

/* Install the report hook (NULL restores the default, which counts a
 * KHEAP_SEV_REFUSED report and nothing more, and for any other formats a
 * message and calls kheap_panic). Returns the previous hook. Every report
 * is counted in error_count whatever the hook. A handle that is not a live
 * heap (KHEAP_E_BAD_HEAP) and kheap_get_stats' NULL out go to the default
 * hook, since no heap's hook can be trusted. */
kheap_report_fn kheap_set_report(struct kheap *h, kheap_report_fn fn, void *ctx);

/* Called once per allocation that returns NULL for lack of memory (not for
 * misuse), with the heap lock released, with the size asked for. It may
 * free memory into this heap; the failed call still returns NULL. */
typedef void (*kheap_oom_fn)(void *ctx, size_t size);

/* Install the out-of-memory hook (NULL: none, the default). Returns the
 * previous hook. */
kheap_oom_fn kheap_set_oom(struct kheap *h, kheap_oom_fn fn, void *ctx);

/* Validate the whole heap without allocating: a linear walk of every region
 * (header cookies, sizes, flags, boundary tags, no two adjacent free blocks)
 * cross-checked against the bins, bitmaps, size-class caches and counters;
 * from KHEAP_HARDEN 1 also the poison of every free block and of every
 * block in the shared or the calling CPU's caches, and the canary of every
 * used block. A damaged header is stepped over to the next sound one and
 * counted as one problem; so is each block that a repair quarantined after
 * finding its header damaged (it is never handed out again, and freeing it
 * is reported as KHEAP_E_BAD_HEADER). Returns 0 when consistent, else the
 * number of problems found. Never reports and never modifies the heap.
 * O(blocks), lock held throughout; with per-CPU caches it first waits until
 * no other CPU is claiming a batch it took from the shared lists (bounded:
 * one batch of pops, which that CPU runs with interrupts masked). */
int kheap_check(struct kheap *h);

/* As kheap_check, also calling fn(ctx, addr, what) for each problem; addr is
 * the block (header) address for a problem with one block. fn runs with
 * the lock held: it must not call into this heap. */
typedef void (*kheap_problem_fn)(void *ctx, const void *addr, const char *what);
int kheap_check_verbose(struct kheap *h, kheap_problem_fn fn, void *ctx);

/* Call fn for every block of every region, in address order: ptr is the
 * payload pointer, size the usable bytes, used is 1 for a block the caller
 * holds and 0 for a free, cached or quarantined one (kheap_check). fn runs
 * with the lock held: it must not call into this heap. Stops at the first
 * corrupt header. O(blocks). */
typedef void (*kheap_walk_fn)(void *ctx, void *ptr, size_t size, int used);
void kheap_walk(struct kheap *h, kheap_walk_fn fn, void *ctx);

/* Call fn for every block the caller holds (used, not free or cached), in
 * address order: ptr is the payload pointer, size its usable bytes (what
 * kheap_usable_size says), site and seq its tag (kheap.h, KHEAP_TAGS). Built
 * without KHEAP_TAGS, fn still sees every held block, with site NULL and seq
 * 0. This is the leak report: after the code under test has freed what it
 * should, the blocks still held are its leaks, and their sites name the
 * allocating calls. A corrupt header is stepped over to the next sound
 * header (the resynchronisation kheap_check uses); the damaged span is not
 * reported. fn runs with the lock held: it must not call into this heap. A
 * handle that is not a live heap is reported (KHEAP_E_BAD_HEAP). O(blocks). */
typedef void (*kheap_tag_fn)(void *ctx, void *ptr, size_t size, const void *site, uint64_t seq);
void kheap_walk_tags(struct kheap *h, kheap_tag_fn fn, void *ctx);

/* The tag of one block: stores its allocation site in *site and its
 * sequence number in *seq and returns 0; or stores NULL and 0 (where those
 * pointers are not NULL) and returns -1 iff the library was built without
 * KHEAP_TAGS, h is not a live heap, or ptr is not the payload of a block the
 * caller holds (NULL, misaligned, foreign, interior, free, cached, corrupt
 * header). Only the header is checked, not the canary or the neighbours, so
 * a report hook can ask who allocated a block whose canary was overwritten.
 * Never reports. Takes the lock: callable from the report hook, not from a
 * walk callback. O(KHEAP_MAX_REGIONS). */
int kheap_tag_of(struct kheap *h, const void *ptr, const void **site, uint64_t *seq);

/* Print the heap, one line at a time, through putc (called once per
 * character, newline included; ctx is passed back). Nothing is allocated
 * and nothing is written to the heap, so a panic handler may call it:
 *  - the lock is tried a bounded number of times without taking a ticket;
 *    if it stays busy (held by another CPU, or by this one when the panic
 *    came from inside the heap) the heap is printed anyway, unlocked, and
 *    the "kheap lock" line says so: the snapshot may then be torn;
 *  - interrupts are masked through kheap_irq_save/restore while it runs;
 *  - headers are validated before they are followed, and a corrupt one is
 *    printed as a "kheap bad" line and stepped over (as kheap_check does),
 *    so no read leaves a region;
 *  - at most KHEAP_DUMP_MAX_BLOCKS block and bad lines are printed; the
 *    rest are counted in one "kheap elided" line.
 * putc runs with the lock held when it was taken: it must not call into
 * this heap. A handle that is not a live heap gets one line, and no report.
 * Lines
 * (numbers decimal, addresses 0x-hex; ptr is a payload pointer, bytes a
 * block size, header included, as in kheap_stats):
 *   kheap dump heap=0x.. harden=N tags=0|1
 *   kheap lock taken | kheap lock busy: unlocked snapshot, may be torn
 *   kheap stats total=N in_use=N peak=N free=N cached=N largest_free=N
 *         used_blocks=N free_blocks=N cached_blocks=N allocs=N frees=N
 *         ooms=N errors=N regions=N             (one line)
 *   kheap cache i=N name=S size=N align=N block=N objects=N in_use=N
 *         cached=N reserved=N slabs=N allocs=N frees=N hits=N misses=N
 *         fills=N shrinks=N failures=N          (one line per object cache)
 *   kheap region i=N lo=0x.. hi=0x.. first=0x.. end=0x..
 *   kheap block ptr=0x.. bytes=N state=used|free|cached [site=0x.. seq=N]
 *   kheap bad ptr=0x.. region=N why="..." resume=0x..|end
 *   kheap elided lines=N used=N free=N cached=N bad=N
 *   kheap end blocks=N bad=N
 * site and seq appear on used blocks with KHEAP_TAGS. O(blocks). */
typedef void (*kheap_putc_fn)(void *ctx, char c);
void kheap_dump(struct kheap *h, kheap_putc_fn putc, void *ctx);

/*
 * ---- Leak scan --------------------------------------------------------------
 *
 * A conservative reachability scan, as a kernel leak detector does it: every
 * aligned pointer-sized word of the caller's root ranges whose value points
 * into a block the caller holds (anywhere from its header to its end:
 * interior pointers count) marks that block, and so, transitively, does
 * every such word in the usable bytes of a marked block. A held block left
 * unmarked is a leak. Free blocks, blocks in the size-class and per-CPU
 * caches are never reported and never scanned, so a pointer stored only in
 * freed memory keeps nothing alive. Nothing is written to the heap and
 * nothing is allocated from it. Like kheap_check, this is linear, an
 * exception to the constant-time guarantee at the top of this file.
 *
 * Roots are what the kernel can see: its .data and .bss (linker symbols),
 * the stacks it knows (from the saved stack pointer to the top, with the
 * callee-saved registers spilled first), and any other memory it owns.
 * Wherever a root range overlaps a region of this heap (the control block
 * included) or the scratch memory, that part is skipped, so an arena that is
 * a static array in .bss may be passed as part of .bss.
 *
 * Mark state lives in the caller's scratch memory, never in the block
 * headers (which are not written): 2 bits per 32 bytes of every region (the
 * marks), 8 bytes per 256 to 4096 bytes of every region (the index that
 * finds the block around an interior pointer in at most 9 to 129 header
 * steps: the more scratch, the finer), and a mark stack of 8 bytes per entry
 * in the rest. kheap_leak_scratch_size says how much the heap needs:
 *  - min bytes: the marks, the coarsest index and a 16-entry stack; below
 *    that the scan refuses (KHEAP_E_BAD_ARG) and changes nothing;
 *  - the returned size: the finest index and a stack entry for every held
 *    block, which makes the mark one pass.
 * Between the two the scan is still exact: when the stack fills, a block is
 * marked without being queued, and once the stack runs dry the scan walks
 * the heap again (a "pass") and scans the marked blocks not yet scanned,
 * until a pass leaves none. Each pass costs one walk over the headers; each
 * block's words are scanned once in all. The result counts the passes.
 *
 * Cost: O(root words + usable words of the held blocks + blocks + passes *
 * blocks + region bytes / 128), each word read once, and at most 129
 * header steps for each word whose value lies inside a region.
 *
 * Concurrency. The caller guarantees that no other CPU calls into this heap
 * (lock-free per-CPU paths included) or changes the roots or the held blocks
 * while the scan runs: the scan cannot see pointers move behind it. Run it
 * from a debug shell with the other CPUs parked, before they start, or at the
 * end of a test. Interrupts on this CPU are allowed in windows: the scan
 * holds the lock with interrupts masked for its setup walk (O(blocks)), for
 * each slice of the mark (at most KHEAP_LEAK_SLICE words or headers), and for
 * its report walk (O(blocks), calling fn); between slices it releases both.
 * An interrupt handler that runs in such a window may allocate and free from
 * this heap (on this CPU's per-CPU cache or under the lock): the scan notices
 * the change (allocation and free counts, and a fingerprint of every header
 * taken at the setup and again at the report) and starts again, so a block
 * allocated or freed in a window is never reported. After KHEAP_LEAK_RETRIES
 * such restarts the last attempt runs in one stretch with interrupts masked
 * throughout, so the scan always finishes. A handler must not move a
 * pointer to a held block from one place to another (one list to another,
 * say) without allocating or freeing in the same window: that is invisible.
 */

/* Knobs KHEAP_LEAK_SLICE, KHEAP_LEAK_RETRIES, KHEAP_LEAK_IGNORE_MAX: kheap_config.h. */

/* A root range [lo, hi): lo is rounded up and hi down to pointer
 * alignment; hi <= lo is an empty range. */
struct kheap_range {
	const void *lo;
	const void *hi;
};

/* What one scan found. Counts of blocks; byte counts are usable bytes. */
struct kheap_leak_result {
	size_t leaks;       /* held blocks reported (fn called for each) */
	size_t leak_bytes;  /* their usable bytes */
	size_t held;        /* held blocks at the scan */
	size_t ignored;     /* held blocks marked with kheap_leak_ignore */
	size_t root_bytes;  /* root bytes scanned, after the clipping above */
	unsigned passes;    /* extra walks after the mark stack filled: 0 when
			     * the scratch held the whole mark */
	unsigned restarts;  /* starts over after a window changed the heap */
	uint64_t allocs;    /* alloc_count at the scan: a leak's age is
			     * allocs - seq (KHEAP_TAGS) */
};

/* Called once per leak, in address order, with the lock held (it must not
 * call into this heap): ptr is the payload pointer, size its usable bytes,
 * site and seq its tag (NULL and 0 without KHEAP_TAGS). */
typedef void (*kheap_leak_fn)(void *ctx, void *ptr, size_t size, const void *site, uint64_t seq);

/* Scratch for kheap_leak_scan on h as it is now: returns the size that makes
 * the mark one pass with the finest index, and stores the smallest size the
 * scan accepts in *min (when min is not NULL). Both grow with the regions
 * (about 1/100 of them for min) and the returned one with the held blocks
 * (8 bytes each). 0 (and *min 0) iff h is not a live heap, which is not
 * reported. Takes the lock. O(KHEAP_MAX_REGIONS + KHEAP_MAX_CPUS). */
size_t kheap_leak_scratch_size(struct kheap *h, size_t *min);

/* Scan h for leaks from roots[0 .. nroots) (see above), calling fn (may be
 * NULL) for each, and fill *out (may be NULL). scratch is any memory outside
 * this heap's regions, of scratch_size bytes, any alignment; its contents
 * are overwritten. Returns 0, or a negative enum kheap_error:
 *  -KHEAP_E_BAD_HEAP  h is not a live heap (reported to kheap_panic);
 *  -KHEAP_E_NULL      roots NULL with nroots > 0, or scratch NULL (not
 *                     reported);
 *  -KHEAP_E_BAD_ARG   scratch_size below kheap_leak_scratch_size's min, or
 *                     scratch overlapping a region of h (not reported);
 *  -KHEAP_E_BAD_HEADER a block header is corrupt (reported, as kheap_free
 *                     would): the scan stops, since a leak behind the
 *                     damage could not be told from a block kept alive by
 *                     it. kheap_dump and kheap_check locate the damage.
 * On failure fn was not called and *out is zeroed. Cost and locking above. */
int kheap_leak_scan(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		    size_t scratch_size, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out);

/* kheap_leak_scan printed through putc (as kheap_dump prints), one line per
 * leak and a summary; returns what the scan returned. putc runs with the lock
 * held for the leak lines, released for the summary. Lines (numbers
 * decimal, addresses 0x-hex):
 *   kheap leak ptr=0x.. size=N [site=0x.. seq=N age=N]
 *   kheap leaks n=N bytes=N held=N ignored=N roots=N passes=N restarts=N
 *   kheap leaks failed error=N need=N              (instead, on failure)
 * site, seq and age appear with KHEAP_TAGS: site is the return address of the
 * allocating call (addr2line -e kernel.elf -f -i <site - 1> names the call),
 * age the allocations made since (alloc_count - seq). need is the minimum
 * scratch (kheap_leak_scratch_size). Same cost and concurrency as the scan. */
int kheap_leak_report(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		      size_t scratch_size, kheap_putc_fn putc, void *ctx);

/* Never report held block p as a leak, and scan it like a root (the
 * blocks it points to are kept alive too): for a block the kernel reaches
 * only through a physical address or a device register. The mark lives in
 * a table of KHEAP_LEAK_IGNORE_MAX entries in the control block, keyed by
 * the block's address and header (and sequence number with KHEAP_TAGS); it
 * lapses when the block is freed (with KHEAP_TAGS; without, a block of the
 * same size handed out again at the same address inherits it). Marking a
 * block twice is one entry. Returns 0, or a negative enum kheap_error,
 * reported:
 *  -KHEAP_E_BAD_HEAP  h is not a live heap (reported to kheap_panic);
 *  -KHEAP_E_BAD_ARG   p is not the payload of a block the caller holds, or
 *                     the table is full of blocks still held.
 * Takes the lock. O(KHEAP_LEAK_IGNORE_MAX + KHEAP_MAX_REGIONS). */
int kheap_leak_ignore(struct kheap *h, const void *p);
/* ---- end of leak scan ------------------------------------------------------ */

/* Return every block held by the shared size-class caches and by the calling
 * CPU's per-CPU cache to the coalescing bins, under the lock; mark every
 * other CPU's cache to be drained at that CPU's next allocation or free (a CPU
 * cannot reach into another's lists without atomics on the fast path).
 * Then, with the lock released and when another CPU's cache holds blocks,
 * call kheap_flush_others: once it returns true, every cache is in the
 * bins. With the default hook (false) the other CPUs' caches stay where
 * they are until their next allocation or free. An allocation that runs out of memory
 * does the same before it gives up (it also calls kheap_flush_others, and
 * tries again when that returns true). O(cached blocks), which is bounded
 * by a compile-time constant, plus the hook. */
void kheap_trim(struct kheap *h);

/* Return the calling CPU's per-CPU cache to the coalescing bins. Masks
 * interrupts and takes the lock inside: meant for the IPI handler behind
 * kheap_flush_others, which an ordinary (maskable) interrupt delivers
 * safely, since kheap masks interrupts wherever it holds the lock or
 * touches this CPU's lists; not from an NMI (see Locking). Does nothing
 * when kheap_cpu_id names no CPU or the build has no per-CPU caches.
 * Reports nothing unless it finds a list corrupt. O(KHEAP_CPU_CACHE_MAX
 * blocks per class). */
void kheap_trim_cpu(struct kheap *h);

/* CPU cpu is offline (hot-unplugged; on a host, its thread exited): drain
 * its per-CPU cache to the coalescing bins now, from the calling CPU, under
 * the lock. The caller guarantees that cpu runs no kheap call until this
 * returns and it is brought back (e.g. from a CPU-hotplug "dead" callback,
 * which runs after the CPU has stopped). cpu >= KHEAP_MAX_CPUS is reported
 * as KHEAP_E_BAD_ARG (KHEAP_SEV_REFUSED); in a build without per-CPU caches
 * a valid number is a no-op. O(KHEAP_CPU_CACHE_MAX blocks per class). */
void kheap_cpu_dead(struct kheap *h, unsigned cpu);

/*
 * Object caches (after Bonwick's slab allocator and Linux's kmem_cache):
 * a named pool of fixed-size objects of one size and alignment, carved from
 * this heap's regions, for what a kernel allocates by the thousand (task
 * structs, inodes, buffers). An object is an ordinary heap block whose
 * header names its cache, so it costs KHEAP_BLOCK_OVERHEAD bytes, as a
 * kheap_alloc block does (plus the rounding of its block to a multiple of
 * align when align > KHEAP_ALIGN), and kheap_check sees every one.
 *
 * Each CPU keeps its own list of free objects per cache (the per-CPU
 * machinery of kheap_alloc: no lock, interrupts masked for a few
 * instructions, refilled and drained in batches of up to KHEAP_CPU_BATCH
 * under the lock); behind them is one shared list per cache (the depot),
 * then the coalescing backend. At most KHEAP_MAX_CACHES caches live at once
 * per heap. In a build without per-CPU caches (KHEAP_MAX_CPUS 0, or
 * KHEAP_TAGS), or on a CPU that kheap_cpu_id does not number, every cache
 * call takes the lock and uses the depot.
 *
 * Hardening applies as to kheap_alloc blocks: at level 1 a free object is
 * poisoned and checked when handed out again, and a held one has a canary;
 * kheap_check validates every cache (every object is held, on a list, or in
 * a reserve, and the counts agree).
 */
struct kheap_cache; /* opaque */

/* kheap_cache_create's flags. */
#define KHEAP_CACHE_ZERO 1u /* kheap_cache_alloc returns zeroed objects */

/* Create a cache of objects of size bytes (1 <= size <= KHEAP_CACHE_MAX_SIZE)
 * aligned to align (0 means KHEAP_ALIGN; else a power of two up to
 * KHEAP_CACHE_MAX_ALIGN). name is kept (not copied) for kheap_dump and must
 * outlive the cache. The descriptor is allocated from h itself
 * (kheap_cache_size() bytes); no object is carved until the first
 * allocation or reservation. Returns NULL when h is not a live heap
 * (KHEAP_E_BAD_HEAP), name is NULL (KHEAP_E_NULL), size, align or flags
 * are out of range (KHEAP_E_BAD_ARG, KHEAP_E_BAD_ALIGN; KHEAP_SEV_REFUSED),
 * KHEAP_MAX_CACHES caches exist (KHEAP_E_BAD_ARG), or memory is short for
 * the descriptor (an OOM). Takes the lock; not from an interrupt handler
 * that may interrupt a kheap call on the same CPU. O(KHEAP_MAX_CACHES). */
struct kheap_cache *kheap_cache_create(struct kheap *h, const char *name, size_t size, size_t align,
				       unsigned flags);

/* Bytes of the descriptor kheap_cache_create allocates from the heap. */
size_t kheap_cache_size(void);

/* Destroy cache c: every object on its lists (every CPU's, the depot) goes
 * back to the coalescing backend, and the descriptor is freed. The caller
 * guarantees that no CPU is inside a call on c, and none makes one after.
 * Returns 0; -KHEAP_E_BAD_CACHE when c is not a live cache, and
 * -KHEAP_E_BAD_ARG, destroying nothing, when objects of c are still held
 * (both reported, KHEAP_SEV_MISUSE and KHEAP_SEV_REFUSED: a leak the
 * kernel should see). c NULL is a no-op returning 0. Takes the lock.
 * O(KHEAP_MAX_CPUS * objects cached per CPU). */
int kheap_cache_destroy(struct kheap_cache *c);

/* Allocate one object of c. Returns a pointer aligned as c asks, with at
 * least c's size usable bytes (zeroed with KHEAP_CACHE_ZERO), or NULL when
 * memory is short (an OOM, counted and passed to the OOM hook, after the
 * shared size-class lists, every cache's depot and the calling CPU's lists
 * went back to the backend and the other CPUs were asked to drain at their
 * next call, as kheap_trim does short of kheap_flush_others) or c is not a live cache
 * (KHEAP_E_BAD_CACHE). Never NULL while the calling CPU has a reserve of c
 * (kheap_cache_reserve). A hit on the calling CPU's list takes no lock and
 * masks interrupts for its O(1) list pop; a miss refills a batch under the
 * lock (O(KHEAP_CPU_BATCH)). Safe in interrupt handlers, as kheap_alloc. */
void *kheap_cache_alloc(struct kheap_cache *c);

/* Free object p of c. NULL does nothing. Refused and reported, the heap
 * unchanged: c not a live cache (KHEAP_E_BAD_CACHE); p a block of
 * kheap_alloc or an object of another cache (KHEAP_E_WRONG_CACHE); p
 * already free or on a cache list (KHEAP_E_DOUBLE_FREE); foreign, misaligned
 * or interior pointers and damaged headers or canaries as kheap_free
 * reports them. O(1) on the calling CPU's list without the lock; a full
 * list drains a batch under the lock. Safe in interrupt handlers. */
void kheap_cache_free(struct kheap_cache *c, void *p);

/* Reserve: after this returns 0, the next n kheap_cache_alloc(c) calls on
 * the calling CPU succeed without the lock (on a CPU without a per-CPU
 * cache: succeed, taking the lock), so a kernel can reserve before a
 * critical section (an interrupt handler's work, a lock it holds) and
 * allocate inside it. Reserves add up: each kheap_cache_alloc on this CPU
 * uses one, until kheap_cache_unreserve gives the rest back. The reserve
 * is the CPU's, not the caller's: call with preemption (or interrupts)
 * off across reserve and use, and count what interrupt handlers on this
 * CPU take from the same cache. Drains, trims and OOM flushes keep reserved
 * objects; kheap_cpu_dead frees them. Returns 0; -KHEAP_E_BAD_CACHE for a
 * cache that is not live; -KHEAP_E_BAD_ARG (KHEAP_SEV_REFUSED) when the
 * CPU's reserve would pass KHEAP_CACHE_RESERVE_MAX objects; -1 when memory
 * is short (an OOM; the reserve is then unchanged). Takes the lock.
 * O(n + KHEAP_CPU_BATCH). */
int kheap_cache_reserve(struct kheap_cache *c, unsigned n);

/* Give back up to n objects of the calling CPU's reserve of c (they stay
 * cached, on its list as far as the list's limit allows, else in the
 * depot). Returns the reserve left. Takes the lock. O(n). c not live:
 * reported, returns 0. */
unsigned kheap_cache_unreserve(struct kheap_cache *c, unsigned n);

/* Return c's cached objects, but reserved ones, to the coalescing backend:
 * the depot's and the calling CPU's list now, the other CPUs' at their next
 * kheap call (their drain flag, as kheap_trim). Returns the objects freed
 * now. Takes the lock. O(objects cached). kheap_trim, and an allocation
 * that runs out of memory, shrink every cache this way. */
size_t kheap_cache_shrink(struct kheap_cache *c);

/* A cache's figures. Objects are blocks of obj_block bytes. Exact when no
 * CPU is inside a call on c (the per-CPU counts change without the lock). */
struct kheap_cache_stats {
	const char *name;
	size_t obj_size;   /* the size asked for */
	size_t obj_align;  /* the alignment objects have */
	size_t obj_block;  /* block bytes per object, overhead included */
	size_t objects;    /* objects carved and not given back: in_use + cached */
	size_t in_use;     /* objects the callers hold */
	size_t cached;     /* objects on the per-CPU lists and the depot */
	size_t reserved;   /* of cached: in the CPUs' reserves */
	size_t slabs;      /* backend blocks carved into objects so far */
	uint64_t allocs;   /* successful kheap_cache_alloc calls */
	uint64_t frees;    /* successful kheap_cache_free calls */
	uint64_t hits;     /* allocations served from a per-CPU list without the lock */
	uint64_t misses;   /* refills of a per-CPU list or the depot (locked) */
	uint64_t reserve_fills; /* successful kheap_cache_reserve calls */
	uint64_t shrinks;  /* objects given back to the backend by shrinking */
	uint64_t failures; /* allocations and reserves that failed for lack of memory */
};

/* Copy c's figures into *out. Returns 0; -KHEAP_E_BAD_CACHE or -KHEAP_E_NULL
 * (reported) when c is not live or out is NULL. Takes the lock.
 * O(KHEAP_MAX_CPUS). */
int kheap_cache_stats(struct kheap_cache *c, struct kheap_cache_stats *out);

/* Call fn once per live cache of h, in creation slots' order, with the lock
 * released between calls (fn may call kheap_cache_stats, not create or
 * destroy). A handle that is not a live heap is reported (KHEAP_E_BAD_HEAP).
 * O(KHEAP_MAX_CACHES). */
typedef void (*kheap_cache_fn)(void *ctx, struct kheap_cache *c);
void kheap_cache_walk(struct kheap *h, kheap_cache_fn fn, void *ctx);

/* The hooks a kernel provides (kheap_panic, kheap_irq_save/restore,
 * kheap_cpu_id, kheap_flush_others, kheap_spin_yield, kheap_entropy), with
 * the context each is called in and its default: kheap_port.h. */
#include "kheap_port.h"

#ifdef __cplusplus
}
#endif

#endif /* KHEAP_H */
