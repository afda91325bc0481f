/*
 * smp_stress.c: BOARD_MAX_CPUS CPUs hammer one shared heap with random
 * alloc/free/realloc/aligned_alloc, at least STRESS_OPS operations each.
 * Every block is stamped with a per-block fill token on allocation and
 * verified before it is freed or resized, so a block handed out twice or
 * overwritten by a racing split shows up as a token mismatch. At the end
 * the boot CPU frees what is left and runs kheap_check, which must find no
 * problem, and the in-use counters must be back to zero.
 *
 * Prints one result line per CPU plus the final checks, then
 * "N passed, N failed", and exits with status 1 on any failure. The first
 * failure stops every CPU (the no-lock control wants a quick verdict).
 */
#include "board.h"
#include "console.h"
#include "kheap.h"

#ifndef STRESS_OPS
#define STRESS_OPS 1000000u
#endif
#define SLOTS 256u
#ifndef RECHECKS
#define RECHECKS 1u
#endif
#define ARENA_MAX ((size_t)64 << 20)

struct slot {
	unsigned char *p;
	size_t n;
	uint64_t token;
};

struct cpu_state {
	struct slot slot[SLOTS];
	uint64_t rng;
	uint64_t ops, allocs, frees, reallocs;
	volatile int done;
	int failed;
} __attribute__((aligned(64)));

static struct cpu_state cpus[BOARD_MAX_CPUS];
static struct kheap *heap;
static volatile int go, stop;
static volatile unsigned ready;

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void fail(unsigned cpu, const char *what, const void *p)
{
	if (cpu < BOARD_MAX_CPUS) /* BOARD_MAX_CPUS: a report hook, CPU unknown */
		cpus[cpu].failed = 1;
	stop = 1;
	con_lock();
	con_puts("  cpu ");
	con_putu(cpu);
	con_puts(": ");
	con_puts(what);
	con_puts(" at ");
	con_putx((uint64_t)(uintptr_t)p);
	con_puts("\n");
	con_unlock();
}

/* A misuse report means two CPUs disagreed about a block: always a failure. */
static void on_report(void *ctx, const struct kheap_report *r)
{
	(void)ctx;
	fail(BOARD_MAX_CPUS, r->msg ? r->msg : "kheap report", r->ptr);
}

void kheap_panic(const char *msg)
{
	fail(BOARD_MAX_CPUS, msg, 0);
}

/* Word i of a block with this token; blocks are 16-aligned, so whole words
 * are aligned even with the MMU off. The tail bytes take the low bytes. */
static inline uint64_t pattern(uint64_t token, size_t i) { return token ^ (uint64_t)i * 0x9e3779b97f4a7c15ull; }

static void stamp(unsigned char *p, size_t n, uint64_t token)
{
	uint64_t *w = (uint64_t *)(void *)p;
	size_t i;
	for (i = 0; i < n / 8; i++)
		w[i] = pattern(token, i);
	for (size_t b = i * 8; b < n; b++)
		p[b] = (unsigned char)(pattern(token, i) >> (8 * (b & 7u)));
}

static int intact(const unsigned char *p, size_t n, uint64_t token)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	size_t i;
	for (i = 0; i < n / 8; i++)
		if (w[i] != pattern(token, i))
			return 0;
	for (size_t b = i * 8; b < n; b++)
		if (p[b] != (unsigned char)(pattern(token, i) >> (8 * (b & 7u))))
			return 0;
	return 1;
}

/* Mostly size-class sizes (the cache fast path), some backend sizes, a few
 * large blocks that force splitting and coalescing. */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = rnd(s);
	switch (r & 15u) {
	case 0:
		return (size_t)(r >> 8) % 65536u;
	case 1:
	case 2:
	case 3:
		return 1024u + (size_t)(r >> 8) % 7168u;
	default:
		return (size_t)(r >> 8) % 1024u;
	}
}

static void one_op(unsigned cpu, struct cpu_state *c)
{
	uint64_t r = rnd(&c->rng);
	struct slot *s = &c->slot[r % SLOTS];
	uint64_t token = r ^ ((uint64_t)cpu << 56);
	if (s->p == 0) {
		size_t n = pick_size(&c->rng);
		unsigned char *p = (r >> 20) % 8u == 0
					   ? kheap_aligned_alloc(heap, (size_t)32 << (r >> 24) % 6u, n)
					   : kheap_alloc(heap, n);
		if (p == 0)
			return fail(cpu, "allocation failed with memory to spare", 0);
		stamp(p, n, token);
		*s = (struct slot){p, n, token};
		c->allocs++;
		return;
	}
	if (!intact(s->p, s->n, s->token))
		return fail(cpu, "fill token overwritten", s->p);
	if ((r >> 32) % 4u == 0) {
		size_t n = pick_size(&c->rng);
		unsigned char *p = kheap_realloc(heap, s->p, n);
		if (p == 0 && n != 0)
			return fail(cpu, "realloc failed with memory to spare", s->p);
		if (p && !intact(p, n < s->n ? n : s->n, s->token))
			return fail(cpu, "realloc lost the contents", p);
		if (p)
			stamp(p, n, token);
		*s = (struct slot){p, p ? n : 0, token};
		c->reallocs++;
		return;
	}
	kheap_free(heap, s->p);
	s->p = 0;
	c->frees++;
}

/* Work outside the lock, and useful: re-verify a few live blocks, which a
 * racing split or a block handed out twice would have overwritten. It also
 * keeps the lock's duty cycle low: with 4 vCPU threads on fewer host cores,
 * a fair ticket lock whose next waiter's thread is descheduled stalls
 * everyone for a host time slice, so contention must stay rare. */
static void recheck(unsigned cpu, struct cpu_state *c)
{
	for (unsigned k = 0; k < RECHECKS; k++) {
		struct slot *s = &c->slot[rnd(&c->rng) % SLOTS];
		if (s->p && !intact(s->p, s->n, s->token))
			return fail(cpu, "fill token overwritten (live block)", s->p);
	}
}

static void worker(unsigned cpu)
{
	struct cpu_state *c = &cpus[cpu];
	c->rng = 0x9e3779b97f4a7c15ull * (cpu + 1u);
	__atomic_add_fetch(&ready, 1u, __ATOMIC_SEQ_CST);
	while (!go)
		board_relax();
	for (c->ops = 0; c->ops < STRESS_OPS && !stop; c->ops++) {
		one_op(cpu, c);
		recheck(cpu, c);
	}
	c->done = 1;
	if (cpu != 0)
		for (;;)
			board_relax();
}

static unsigned checks_run;

static unsigned report(const char *what, int ok)
{
	checks_run++;
	con_puts(ok ? "ok   " : "FAIL ");
	con_puts(what);
	con_puts("\n");
	return ok ? 0u : 1u;
}

void kmain(void)
{
	size_t size = (size_t)(__heap_end - __heap_start);
	board_percpu = 1; /* small blocks through each CPU's own cache */
	heap = kheap_init(__heap_start, size < ARENA_MAX ? size : ARENA_MAX);
	if (heap == 0)
		board_exit(report("kheap_init on the linker arena", 0));
	kheap_set_report(heap, on_report, 0);
	con_puts("smp stress: ");
	con_putu(BOARD_MAX_CPUS);
	con_puts(" CPUs x ");
	con_putu(STRESS_OPS);
	con_puts(" ops on one heap\n");
	unsigned started = 1, failed = 0;
	for (unsigned cpu = 1; cpu < BOARD_MAX_CPUS; cpu++) {
		if (board_cpu_start(cpu, worker) != 0)
			break;
		for (unsigned spin = 0; ready < cpu && spin < 100000000u; spin++)
			board_relax();
		if (ready < cpu)
			break;
		started++;
	}
	failed += report("all CPUs started", started == BOARD_MAX_CPUS);
	go = 1;
	worker(0);
	/* A CPU lost in a corrupted heap never finishes: give up on it. */
	for (uint64_t spin = 0; spin < 2000000000u; spin++) {
		unsigned done = 0;
		for (unsigned cpu = 0; cpu < started; cpu++)
			done += (unsigned)cpus[cpu].done;
		if (done == started || (stop && spin > 50000000u))
			break;
		board_relax();
	}
	con_lock();
	for (unsigned cpu = 0; cpu < started; cpu++) {
		struct cpu_state *c = &cpus[cpu];
		con_puts(c->failed || !c->done || c->ops < STRESS_OPS ? "FAIL" : "ok  ");
		con_puts(" cpu ");
		con_putu(cpu);
		con_puts(": ");
		con_putu(c->ops);
		con_puts(" ops, ");
		con_putu(c->allocs);
		con_puts(" allocs, ");
		con_putu(c->reallocs);
		con_puts(" reallocs, ");
		con_putu(c->frees);
		con_puts(" frees\n");
		failed += c->failed || !c->done || c->ops < STRESS_OPS;
		checks_run++;
	}
	con_unlock();
	failed += report("no misuse reported", !stop);
	if (stop) /* the heap is suspect: checking it may crash or hang */
		goto out;
	for (unsigned cpu = 0; cpu < started; cpu++)
		for (unsigned i = 0; i < SLOTS; i++) {
			struct slot *s = &cpus[cpu].slot[i];
			if (s->p && !intact(s->p, s->n, s->token))
				fail(0, "fill token overwritten (final sweep)", s->p);
			kheap_free(heap, s->p);
		}
	failed += report("final sweep: every surviving block intact", !stop);
	failed += report("kheap_check finds no problem", kheap_check(heap) == 0);
	struct kheap_stats st;
	kheap_get_stats(heap, &st);
	failed += report("no block in use after freeing all", st.in_use_bytes == 0 && st.used_blocks == 0);
out:
	con_putu(checks_run - failed);
	con_puts(" passed, ");
	con_putu(failed);
	con_puts(" failed\n");
	board_exit(failed ? 1 : 0);
}
