/*
 * kheap_config.h: every build knob of kheap, with its default, range and
 * cost. Set them in one header of your own named by -DKHEAP_CONFIG_HEADER=
 * '"my_kheap_config.h"' (the idea is o1heap's O1HEAP_CONFIG_HEADER), or one
 * by one with -D, for the library AND for every file that includes kheap.h.
 *
 * KHEAP_HARDEN and KHEAP_TAGS change what kheap.h promises (the block
 * overhead), so kheap.h renames kheap_init after them: a kernel built with
 * other values than its library fails to link ("undefined reference to
 * kheap_init_h1_t0") instead of running with the wrong overhead.
 */
#ifndef KHEAP_CONFIG_H
#define KHEAP_CONFIG_H

#ifdef KHEAP_CONFIG_HEADER
#include KHEAP_CONFIG_HEADER
#endif

/* Hardening level, 0..3 (kheap.h says what each adds). Default 0. Cost: see
 * docs/hardening.md (make harden-cost measures it). */
#ifndef KHEAP_HARDEN
#define KHEAP_HARDEN 0
#endif

/* Caller tags, 0 or 1 (kheap.h). Default 0. Cost: 16 bytes per block, and
 * no per-CPU caches (the tag needs the allocation count at each grant). */
#ifndef KHEAP_TAGS
#define KHEAP_TAGS 0
#endif

/* Most regions one heap manages, 1..255. Default 8. Cost: 32 bytes of
 * control block each, and the ownership test of every free is
 * O(KHEAP_MAX_REGIONS). */
#ifndef KHEAP_MAX_REGIONS
#define KHEAP_MAX_REGIONS 8u
#endif

/* CPUs (or host threads) with a per-CPU cache, 0..4095; 0 builds without.
 * Default 8. Cost: 1 KiB of control block each. */
#ifndef KHEAP_MAX_CPUS
#define KHEAP_MAX_CPUS 8u
#endif

/* Level 1 and up: bytes of a freed block poisoned after its links, a
 * multiple of 8. Default 256. Cost: written on every free, read on every
 * hand-out of a freed block. */
#ifndef KHEAP_POISON_BYTES
#define KHEAP_POISON_BYTES 256u
#endif

/* Level 3: operations between two full checks, >= 1. Default 1024. Cost:
 * one O(blocks) kheap_check per KHEAP_CHECK_EVERY operations. */
#ifndef KHEAP_CHECK_EVERY
#define KHEAP_CHECK_EVERY 1024u
#endif

/* kheap_dump prints at most this many block lines, >= 1. Default 4096. */
#ifndef KHEAP_DUMP_MAX_BLOCKS
#define KHEAP_DUMP_MAX_BLOCKS 4096u
#endif

/* TLSF second-level subdivisions per power of two: 2^KHEAP_SL_LOG2, 2..5.
 * Default 4 (16 bins per power of two: at most 1/16 of a request wasted to
 * the bin rounding). Cost: 8 bytes of control block per bin. */
#ifndef KHEAP_SL_LOG2
#define KHEAP_SL_LOG2 4
#endif

/* Blocks are smaller than 2^KHEAP_MAX_BLOCK_LOG2 bytes, 17..40; a larger
 * region is clipped. Default 40. Lower it to shrink the control block on a
 * small target (one first-level row of bins per power of two). */
#ifndef KHEAP_MAX_BLOCK_LOG2
#define KHEAP_MAX_BLOCK_LOG2 40
#endif

/* Shared size-class lists hold at most KHEAP_CLASS_CACHE_MAX blocks per
 * class, and together at most 1/KHEAP_CACHE_SHARE of the managed bytes; all
 * CPUs' lists together as much again. Defaults 32 and 16. Cost: that much
 * memory held back from coalescing. */
#ifndef KHEAP_CLASS_CACHE_MAX
#define KHEAP_CLASS_CACHE_MAX 32u
#endif
#ifndef KHEAP_CACHE_SHARE
#define KHEAP_CACHE_SHARE 16u
#endif

/* Per-CPU lists: at most KHEAP_CPU_CACHE_MAX blocks and KHEAP_CPU_CACHE_BYTES
 * per class per CPU (defaults 512 and 16 KiB), or two blocks of a class
 * larger than half of it (up to 64 KiB); all of them together at most
 * 1/KHEAP_CACHE_SHARE of the managed bytes, as above. A refill or a drain moves
 * KHEAP_CPU_BATCH blocks (default 32), or half a list if that is fewer: the
 * batch bounds the time of one call (the worst per-CPU call moves one
 * batch), the limits only the memory held. */
#ifndef KHEAP_CPU_CACHE_MAX
#define KHEAP_CPU_CACHE_MAX 512u
#endif
#ifndef KHEAP_CPU_CACHE_BYTES
#define KHEAP_CPU_CACHE_BYTES 16384u
#endif
#ifndef KHEAP_CPU_BATCH
#define KHEAP_CPU_BATCH 32u
#endif
/* The largest class block the per-CPU lists keep, in bytes (default: no
 * bound, every size class, requests up to 64 KiB). A request of a larger
 * class is served by the locked path at its own size. A class above 1 KiB
 * rounds a request up by up to a quarter while it is held: 1040 trades that
 * back (W5 of make bench: footprint 1.09 instead of 1.19 of the live bytes)
 * for locked calls on every request above 1032 bytes (W4: about 1.4x the time). */
#ifndef KHEAP_CPU_MAX_BLOCK
#define KHEAP_CPU_MAX_BLOCK 0xffffffffu
#endif
/* A locked allocation of a class size whose shared list is empty carves up
 * to KHEAP_CLASS_CARVE blocks of the class onto that list from one backend
 * block, as a per-CPU refill does (default KHEAP_CPU_BATCH), so that the
 * class's blocks lie together instead of scattering among other sizes (W5
 * of make bench without CPU numbers: 1.160 with 1, 1.094 with 32). 1 takes
 * single blocks from the backend. */
#ifndef KHEAP_CLASS_CARVE
#define KHEAP_CLASS_CARVE KHEAP_CPU_BATCH
#endif
/* A refill carves its batch from the free block that best fits
 * KHEAP_CPU_CARVE_MIN blocks (default half a batch), cut to the batch. Fewer
 * reuse the small holes freed blocks leave before the untouched end of a
 * region (lower RSS for a program that frees while it grows: the preload
 * sets 1); more keep a batch's blocks together (lower footprint, W5 of make
 * bench: 1.146 with 1, 1.093 with 16). */
#ifndef KHEAP_CPU_CARVE_MIN
#define KHEAP_CPU_CARVE_MIN (KHEAP_CPU_BATCH / 2u)
#endif

/* Leak scan: words (or headers) one mark slice handles with interrupts
 * masked, >= 64 (default 4096: the longest stretch kheap_leak_scan masks
 * interrupts for); restarts after an interrupt window changed the heap
 * before the scan masks interrupts throughout (default 4); blocks
 * kheap_leak_ignore can mark per heap (default 16; a table in the control
 * block: 16 bytes per entry, 24 with KHEAP_TAGS). */
#ifndef KHEAP_LEAK_SLICE
#define KHEAP_LEAK_SLICE 4096u
#endif
#ifndef KHEAP_LEAK_RETRIES
#define KHEAP_LEAK_RETRIES 4u
#endif
#ifndef KHEAP_LEAK_IGNORE_MAX
#define KHEAP_LEAK_IGNORE_MAX 16u
#endif

/* Object caches (kheap_cache_create): at most KHEAP_MAX_CACHES per heap
 * (default 32, at most 62: the cache's number lives in the 6-bit alignment
 * field of its objects' headers; a pointer per cache in the control block);
 * objects of at most KHEAP_CACHE_MAX_SIZE bytes (default 64 KiB) and
 * alignment KHEAP_CACHE_MAX_ALIGN (default 4096); a CPU's reserve of one
 * cache at most KHEAP_CACHE_RESERVE_MAX objects (default 256). */
#ifndef KHEAP_MAX_CACHES
#define KHEAP_MAX_CACHES 32u
#endif
#ifndef KHEAP_CACHE_MAX_SIZE
#define KHEAP_CACHE_MAX_SIZE 65536u
#endif
#ifndef KHEAP_CACHE_MAX_ALIGN
#define KHEAP_CACHE_MAX_ALIGN 4096u
#endif
#ifndef KHEAP_CACHE_RESERVE_MAX
#define KHEAP_CACHE_RESERVE_MAX 256u
#endif

/* The link-time configuration check (above). */
#define KHEAP_ABI_NAME_(f, h, t) f##_h##h##_t##t
#define KHEAP_ABI_NAME(f, h, t) KHEAP_ABI_NAME_(f, h, t)

#endif /* KHEAP_CONFIG_H */
