/*
 * kt.h: kheap's test harness. Test bodies use only this header and kheap.h,
 * so the same source builds for the host runner (kt_host.c) and, freestanding,
 * for the QEMU test kernel (tests/qemu/). A platform supplies kt_out() and a
 * main that calls kt_run(); kt_core.c supplies everything else.
 *
 * A check that fails logs file:line and the expression and marks the current
 * case failed; the case carries on (a later check may crash on the state a
 * failed one left, which is still a reported failure). The run ends with the
 * line "N passed, N failed".
 */
#ifndef KT_H
#define KT_H

#include <stddef.h>
#include <stdint.h>

#include "kheap.h"

struct kt_case {
	const char *name;
	void (*fn)(void);
};

/* Cases live in the "kt_cases" section; the host linker provides its bounds,
 * the QEMU linker scripts define __start_kt_cases/__stop_kt_cases. */
#define KT_CASE(name)                                                                 \
	static void kt_fn_##name(void);                                               \
	static const struct kt_case kt_case_##name                                    \
		__attribute__((used, section("kt_cases"), aligned(sizeof(void *)))) = { \
			#name, kt_fn_##name};                                         \
	static void kt_fn_##name(void)

#define KT_CHECK(cond) kt_check(!!(cond), #cond, __FILE__, __LINE__)
#define KT_EQ(a, b) kt_check_eq((uint64_t)(a), (uint64_t)(b), #a " == " #b, __FILE__, __LINE__)
/* Fail the case and leave the test body. */
#define KT_REQUIRE(cond)                         \
	do {                                     \
		if (!KT_CHECK(cond))             \
			return;                  \
	} while (0)

int kt_check(int ok, const char *what, const char *file, int line);
int kt_check_eq(uint64_t a, uint64_t b, const char *what, const char *file, int line);

/* Output, without stdio: a platform provides kt_out. */
void kt_out(const char *s);
void kt_putu(uint64_t v);
void kt_putx(uint64_t v);
void kt_log(const char *s); /* one line, prefixed with the case name */

/* Run every case whose name contains filter (NULL: all). Prints one line per
 * case and "N passed, N failed"; returns the number failed. */
int kt_run(const char *filter);

/* Per-CPU caches for the heap calls that follow (kheap_cpu_id answers
 * KHEAP_NO_CPU while off). Each case starts with kt_percpu_default, which
 * the host's main takes from KT_PERCPU=1; a case about the locked path's
 * exact behaviour turns it off. Supplied by kt_host.c / kt_qemu.c. */
void kt_percpu(int on);
extern int kt_percpu_default;

/* Deterministic PRNG (xorshift64*), one state per caller. */
static inline uint64_t kt_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}
static inline uint64_t kt_below(uint64_t *s, uint64_t n) { return n ? kt_rand(s) % n : 0; }

/* Fill tokens: every byte of [p, p + n) is a function of (token, offset). */
void kt_fill(void *p, size_t n, uint64_t token);
int kt_verify(const void *p, size_t n, uint64_t token); /* 1 when intact */

/* A report hook that records instead of panicking. Install it on every heap
 * a test makes; kt_rec_expect checks (and clears) what was recorded. */
struct kt_rec {
	unsigned count;
	struct kheap_report last;
};
void kt_rec_hook(void *ctx, const struct kheap_report *r);
/* Checks exactly one report of kind was recorded since the last call. */
#define KT_REPORTED(rec, kind) kt_rec_expect((rec), (kind), __FILE__, __LINE__)
int kt_rec_expect(struct kt_rec *rec, enum kheap_error kind, const char *file, int line);

/* kheap_panic (the global report path, e.g. a NULL heap handle) is defined
 * by kt_core.c: while kt_panic_expected is set it counts into kt_panics,
 * otherwise it fails the current case. */
extern volatile int kt_panic_expected;
extern volatile unsigned kt_panics;
/* While kt_panic_expected is set, kheap_panic also calls this (when set)
 * with the message, e.g. to end a deadlock the report names. Cleared
 * before each case. */
extern void (*volatile kt_panic_action)(const char *msg);

/* kheap_check with each problem logged; returns the count. */
int kt_heap_check(struct kheap *h);

/* Heap on a caller-owned arena with the recording hook installed. */
struct kheap *kt_heap(void *arena, size_t size, struct kt_rec *rec);

/* kheap_alloc(h, n), then kheap_trim(h): a locked allocation of a class
 * size that finds its shared list empty carves a batch of its class
 * (KHEAP_CLASS_CARVE) and leaves the rest on that list, right after the
 * block; the trim gives them back, so that the next allocation is carved
 * right after this one. For cases that build a known layout of neighbours. */
void *kt_alloc_alone(struct kheap *h, size_t n);

#endif /* KT_H */
