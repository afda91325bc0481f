/*
 * kh_leak.h: what the leak scan's files share (kh_leak.c: scratch layout,
 * marking, roots and passes; kh_leak_scan.c: the setup and report walks,
 * restarts and kheap_leak_scan; kh_leak_report.c: kheap_leak_ignore's table
 * and kheap_leak_report). The scratch layout is drawn in kh_leak.c.
 */
#ifndef KH_LEAK_H
#define KH_LEAK_H

#include "kh_internal.h"

/* Words read from roots and blocks, of whatever type was stored there. */
typedef uintptr_t __attribute__((may_alias)) kh_any_word;

#define LK_UNIT_LOG2 5
#define LK_PSHIFT_MIN 8u  /* finest index: at most 8 + 1 header steps */
#define LK_PSHIFT_MAX 12u /* coarsest: at most 128 + 1 */
#define LK_STACK_MIN 16u
#define LK_SKIP_MAX (KHEAP_MAX_REGIONS + 1u)

_Static_assert(KH_MIN_BLOCK == (size_t)1 << LK_UNIT_LOG2, "one mark bit per smallest block");
_Static_assert(KHEAP_LEAK_SLICE >= 1, "a slice does some work");

struct lk_region {
	const struct kh_region *r;
	uint64_t *mark, *done;
	uintptr_t *index;
};

enum lk_status { LK_RUN, LK_DONE, LK_TORN, LK_BAD };

struct scan {
	struct kheap *h;
	const struct kheap_range *roots;
	size_t nroots;
	uintptr_t skip_lo[LK_SKIP_MAX], skip_hi[LK_SKIP_MAX];
	unsigned nskip;
	struct lk_region rg[KHEAP_MAX_REGIONS];
	unsigned nrg, pshift;
	uintptr_t *stack;
	size_t cap, top;
	bool overflow, in_pass;
	size_t ri;          /* root being read */
	uintptr_t rpos;     /* where in it */
	uintptr_t wpos, wend; /* words being read now */
	unsigned pr;        /* pass cursor: region and block */
	uintptr_t pb;
	size_t budget;      /* words or headers left in this slice */
	enum lk_status st;
	uintptr_t bad;      /* a corrupt header the setup walk found */
	uint64_t ops;       /* allocs + frees at the setup */
	kh_word fp;         /* fingerprint of the headers at the setup */
	struct kheap_leak_result res;
};

#ifdef KH_FAULT_INJECT
/* Test builds: called in every window between two slices, with the lock
 * released and interrupts restored, as an interrupt handler would run. */
extern void (*kh_leak_window_hook)(struct kheap *h);
#endif

static inline size_t lk_unit(const struct lk_region *g, uintptr_t b) { return (b - g->r->first) >> LK_UNIT_LOG2; }
static inline bool lk_bit(const uint64_t *m, size_t u) { return (m[u / 64] >> (u % 64)) & 1u; }
static inline void lk_set_bit(uint64_t *m, size_t u) { m[u / 64] |= (uint64_t)1 << (u % 64); }

/* kh_leak.c */
size_t lk_bits_words(const struct kh_region *r);
bool lk_carve(struct scan *s, void *scratch, size_t size);
struct lk_region *lk_region_for(struct scan *s, uintptr_t v);
void lk_mark(struct scan *s, struct lk_region *g, uintptr_t b);
void lk_mark_slice(struct scan *s);

/* kh_leak_report.c: does ignore entry m still name the block it was made
 * for, held? Lock held. */
bool lk_mark_live(const struct kheap *h, const struct kh_leak_mark *m);

/* kh_leak_scan.c: the scan behind kheap_leak_scan and kheap_leak_report. */
int lk_leak_scan(struct kheap *h, const struct kheap_range *roots, size_t nroots, void *scratch,
		     size_t size, kheap_leak_fn fn, void *ctx, struct kheap_leak_result *out, const void *caller);

#endif /* KH_LEAK_H */
