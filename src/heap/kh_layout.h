/*
 * kh_layout.h: every number that fixes the in-memory format, in one place,
 * for the C and for the assembly (the .S files in src/heap/<arch>/ include it too).
 * Only plain integer macros live outside the __ASSEMBLER__ guard, so the
 * assembler can evaluate them; the C below checks each one against the
 * structures and accessors that use it. Changing a number here changes the
 * format everywhere at once; the _Static_asserts catch a C structure that
 * no longer agrees.
 *
 * Header word of a block (64 bits on every target; kh_internal.h has the
 * accessors and the block diagram):
 *
 *   63          46 45    40 39                    4  3   2   1   0
 *   +-------------+--------+-----------------------+---+---+---+---+
 *   | cookie (18) | alg(6) | size bits 4..39       | 0 | C | P | U |
 *   +-------------+--------+-----------------------+---+---+---+---+
 *
 *   cookie = top 18 bits of ((bits 0..45) ^ block address ^ key) * KH_COOKIE_MUL
 *
 * Size classes (block sizes, header included): 32 to 272 in steps of 16,
 * then four per power of two plus one granule, up to 64 KiB + 16: a block of
 * g granules above 17 is a class when u = g - 1 is 2^e, 1.25 * 2^e, 1.5 * 2^e
 * or 1.75 * 2^e. The extra granule holds the 8-byte header, so a request of
 * a power of two (256 B, 4 KiB, 64 KiB) fits a class with 8 bytes to spare;
 * any request wastes at most a quarter (the bound TLSF's second level gives
 * with four bins). KH_CLASS_GRANULES lists each class's block size in
 * granules; the C (kh_class_block_size) is generated from it, and so are the
 * assembly's class tables, which cover the classes up to
 * KH_CLASS_TABLE_BLOCK: above it the assembly computes the class from the
 * highest bit of u - 1, as the C does everywhere above the steps of 16.
 */
#ifndef KH_LAYOUT_H
#define KH_LAYOUT_H

/* ---- blocks ------------------------------------------------------------- */
#define KH_GRANULE_LOG2 4   /* payloads are 16-aligned, sizes whole granules */
#define KH_HDR_BYTES 8      /* the header word before every payload */
#define KH_MIN_BLOCK_BYTES 32

/* Header bits. */
#define KH_USED_BIT 0       /* held by the caller or cached (not in a bin) */
#define KH_PREV_FREE_BIT 1  /* the previous block is in a bin */
#define KH_CACHED_BIT 2     /* on a shared size-class list */
#define KH_ZERO_BIT 3       /* always 0 in a sealed header */
#define KH_SIZE_SHIFT 4     /* size bits 4..39: the size itself, low bits 0 */
#define KH_SIZE_BITS 40
#define KH_ALG_SHIFT 40     /* log2 of an aligned block's alignment, 0..63 */
#define KH_ALG_BITS 6
#define KH_COOKIE_SHIFT 46  /* the seal: top 18 bits */
#define KH_COOKIE_MUL 0x9e3779b97f4a7c15

/* ---- size classes ------------------------------------------------------- */
#define KH_NCLASSES 48
#define KH_CLASS_MAX_BLOCK 65552
#define KH_CLASS_MAX_PAYLOAD (KH_CLASS_MAX_BLOCK - KH_HDR_BYTES)
#define KH_CLASS_STEP_GRANULES 17 /* classes 0..15: 2..17 granules */
#define KH_CLASS_GRANULES_TABLE 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, \
	21, 25, 29, 33, 41, 49, 57, 65
#define KH_CLASS_TABLE_CLASSES 24
#define KH_CLASS_TABLE_BLOCK 1040
#define KH_CLASS_TABLE_PAYLOAD (KH_CLASS_TABLE_BLOCK - KH_HDR_BYTES)
#define KH_CLASS_GRANULES_LARGE 81, 97, 113, 129, 161, 193, 225, 257, 321, 385, 449, 513, \
	641, 769, 897, 1025, 1281, 1537, 1793, 2049, 2561, 3073, 3585, 4097
#define KH_CLASS_GRANULES KH_CLASS_GRANULES_TABLE, KH_CLASS_GRANULES_LARGE
/* Above the steps of 16, the class of a block of g granules, when it is
 * one, and the smallest class for a request needing g: with u = g - 1 and
 * e the highest bit of u - 1, 4 * e - KH_CLASS_BIAS + ((u - 1) >> (e - 2)). */
#define KH_CLASS_BIAS 4

/* A request of n <= KH_CLASS_MAX_PAYLOAD bytes needs t + 1 granules of
 * block, t = (n + KH_T_BIAS) >> KH_GRANULE_LOG2 (the header included). */
#define KH_T_BIAS (KH_HDR_BYTES - 1)
#define KH_GRANULE_MASK ((1 << KH_GRANULE_LOG2) - 1)

/* A block on a list: its first payload word is the encoded link, its
 * second (per-CPU lists only) the token p ^ tkey. */
#define KH_LINK_OFF 0
#define KH_TOKEN_OFF 8

/* kh_class_pop/kh_cpu_pop's answer for a corrupt list (a pointer value no
 * payload can have). */
#define KH_CLASS_BAD_VALUE 1

/* ---- struct kh_class: one LIFO list ------------------------------------ */
#define KH_CLASS_HEAD 0
#define KH_CLASS_COUNT 8
#define KH_CLASS_LIMIT 12
#define KH_CLASS_SIZE_LOG2 4 /* sizeof(struct kh_class) == 16 */

/* ---- struct kh_cpu: one CPU's cache ------------------------------------ */
#define KH_CPU_KEY 0
#define KH_CPU_TKEY 8
#define KH_CPU_LO 16
#define KH_CPU_HI 24
#define KH_CPU_ALLOCS 32
#define KH_CPU_FREES 40
#define KH_CPU_DRAIN 48
#define KH_CPU_CLS 64
#define KH_CPU_SIZE 1024

/* A token word w of the block at payload p names CPU k when
 * w ^ p ^ ~key == k < KH_TOKEN_CPUS (a bound on KHEAP_MAX_CPUS that no
 * plausible stale payload word meets). */
#define KH_TOKEN_CPUS 4096

/* ---- struct kh_lock: the heap's ticket lock (kh_lock.h) ---------------- */
/* The spin loop calls kheap_spin_yield() once every KH_SPIN_YIELD spins,
 * and reports a wait of KH_SPIN_STUCK such rounds (unless the lock's
 * patience field sets another bound). Also read by the assembly twins. */
#define KH_SPIN_YIELD 256
#define KH_SPIN_STUCK 0x100000

/* kh_lock_stuck's why: the calling CPU holds the lock already; or the
 * wait has passed its bound. */
#define KH_LOCK_REENTERED 1
#define KH_LOCK_WAITED 2

/* Byte offsets of struct kh_lock's fields (kh_lock.h asserts them); waiting
 * is a bitmask of the CPU numbers below KH_LOCK_WAITING_BITS. */
#define KH_LOCK_NEXT_OFF 0
#define KH_LOCK_SERVING_OFF 4
#define KH_LOCK_HOLDER_OFF 8
#define KH_LOCK_PATIENCE_OFF 12
#define KH_LOCK_WAITING_OFF 16
#define KH_LOCK_WAITING_BITS 64

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

typedef uint64_t kh_word;

_Static_assert(sizeof(void *) == 8, "the format and the assembly are for 64-bit targets");
_Static_assert(KH_SIZE_SHIFT == KH_GRANULE_LOG2, "the size field's low bits are the granule's zeros");
_Static_assert(KH_ZERO_BIT + 1 == KH_SIZE_SHIFT && KH_SIZE_BITS == KH_ALG_SHIFT &&
		       KH_ALG_SHIFT + KH_ALG_BITS == KH_COOKIE_SHIFT,
	       "header fields tile the word without gaps or overlaps");
_Static_assert(KH_MIN_BLOCK_BYTES % (1 << KH_GRANULE_LOG2) == 0 &&
		       KH_CLASS_MAX_BLOCK % (1 << KH_GRANULE_LOG2) == 0,
	       "block sizes are whole granules");
_Static_assert(KH_CLASS_TABLE_BLOCK >> KH_GRANULE_LOG2 < 128,
	       "the assembly's class tables index by granule count and store bytes");
_Static_assert(sizeof((const unsigned short[]){KH_CLASS_GRANULES}) == KH_NCLASSES * sizeof(unsigned short) &&
		       sizeof((const unsigned char[]){KH_CLASS_GRANULES_TABLE}) == KH_CLASS_TABLE_CLASSES,
	       "KH_CLASS_GRANULES lists one block size per class, the tables' first");
_Static_assert(KH_CLASS_TABLE_CLASSES * 4 < 128, "the x86_64 class tables store 4 * class in a signed byte");
#define KH_U_(b) (((b) >> KH_GRANULE_LOG2) - 1) /* u of a block size */
_Static_assert((KH_U_(KH_CLASS_TABLE_BLOCK) & (KH_U_(KH_CLASS_TABLE_BLOCK) - 1)) == 0 &&
		       (KH_U_(KH_CLASS_MAX_BLOCK) & (KH_U_(KH_CLASS_MAX_BLOCK) - 1)) == 0 &&
		       KH_U_(KH_CLASS_TABLE_BLOCK) > KH_CLASS_STEP_GRANULES,
	       "the tables end, and the classes end, where u is a power of two, above the steps of 16");
_Static_assert(KH_CLASS_TABLE_CLASSES + 4 * 6 == KH_NCLASSES && KH_U_(KH_CLASS_MAX_BLOCK) == KH_U_(KH_CLASS_TABLE_BLOCK) << 6,
	       "four computed classes per power of two from the tables' end to KH_CLASS_MAX_BLOCK");
_Static_assert(4 * 4 - KH_CLASS_BIAS + 4 == KH_CLASS_STEP_GRANULES - 1,
	       "the first class above the steps of 16 follows the last step");
#endif

#endif /* KH_LAYOUT_H */
