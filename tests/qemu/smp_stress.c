/*
 * smp_stress.c: BOARD_MAX_CPUS CPUs hammer one shared heap with random
 * alloc/free/realloc/aligned_alloc, at least STRESS_OPS operations each.
 * Every block is stamped with a per-block fill token on allocation and
 * verified before it is freed or resized, so a block handed out twice or
 * overwritten by a racing split shows up as a token mismatch. At the end
 * the boot CPU frees what is left and runs kheap_check, which must find no
 * problem, and the in-use counters must be back to zero. A quarter of the
 * blocks are objects of three object caches (kheap_cache_alloc), mixed
 * with the plain ones; at the end every cache must hold no object in use
 * and be destroyed.
 *
 * Interrupts run on every CPU meanwhile: a timer at TICK_HZ whose handler
 * allocates, stamps, checks and frees blocks (plain and aligned) on the same
 * heap, over whatever the main loop is doing. Every TRIM_EVERY operations a
 * CPU trims the heap, whose kheap_flush_others here sends real IPIs; after
 * the stress, the other CPUs fill their caches and the boot CPU allocates
 * until it runs out, which must flush them through IPIs too; then the last
 * CPU stops and the boot CPU drains its cache with kheap_cpu_dead.
 *
 * Built with -DCONTROL_NOMASK it is the control for the lock's re-entry
 * report: the kernel's kheap_irq_save masks nothing, so a tick lands on a
 * CPU inside the heap and allocates; the lock must name that through
 * kheap_panic, which prints how long it took in timer ticks.
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
#ifndef TICK_HZ
#define TICK_HZ 1000u
#endif
#define TRIM_EVERY 8192u
/* Smallest block a tick allocates. The no-mask control raises it past the
 * per-CPU caches' classes (65544 bytes), so that its ticks only take the locked path
 * and the first thing to go wrong is the lock re-entry it exists to show,
 * not a per-CPU list that a tick changed under the code it interrupted. */
#ifndef TICK_MIN_SIZE
#define TICK_MIN_SIZE 1u
#endif

struct slot {
	unsigned char *p;
	size_t n;
	uint64_t token;
	unsigned cache; /* 0: a plain block; k + 1: an object of caches[k] */
};

#define NCACHES 3u
static struct kheap_cache *caches[NCACHES];
static const size_t cache_size[NCACHES] = {48, 200, 1500}, cache_align[NCACHES] = {0, 64, 0};

struct cpu_state {
	struct slot slot[SLOTS];
	uint64_t rng;
	uint64_t ops, allocs, frees, reallocs;
	uint64_t irq_rng, ticks, tick_pairs, ipis, trims;
	volatile unsigned flush_ack;
	volatile int done, offline;
	int failed;
} __attribute__((aligned(64)));

static struct cpu_state cpus[BOARD_MAX_CPUS];
static struct kheap *heap;
static volatile int go, stop;
static volatile unsigned ready, flush_req, started_cpus;
static volatile uint64_t flush_calls, flush_ok;

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
	if (cpu < BOARD_MAX_CPUS) {
		con_puts("  cpu ");
		con_putu(cpu);
	} else {
		con_puts("  kheap");
	}
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

/* A report from the lock (re-entry, a wait past its bound) comes from a
 * CPU that will never get the lock: say when, and end the run here. */
void kheap_panic(const char *msg)
{
	unsigned cpu = board_cpu();
	fail(BOARD_MAX_CPUS, msg, 0);
	con_lock();
	con_puts("  kheap_panic on cpu ");
	con_putu(cpu);
	con_puts(" after ");
	con_putu(cpus[cpu].ticks);
	con_puts(" timer ticks of this CPU (");
	con_putu(cpus[cpu].ticks * 1000u / TICK_HZ);
	con_puts(" ms at ");
	con_putu(TICK_HZ);
	con_puts(" Hz)\n");
	con_unlock();
	board_exit(1);
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
	if (s->p == 0 && (r >> 40) % 4u == 0) {
		unsigned k = (unsigned)(r >> 44) % NCACHES;
		unsigned char *p = kheap_cache_alloc(caches[k]);
		if (p == 0)
			return fail(cpu, "object-cache allocation failed with memory to spare", 0);
		if (cache_align[k] && (uintptr_t)p % cache_align[k])
			return fail(cpu, "object not aligned as its cache asks", p);
		stamp(p, cache_size[k], token);
		*s = (struct slot){p, cache_size[k], token, k + 1};
		c->allocs++;
		return;
	}
	if (s->p == 0) {
		size_t n = pick_size(&c->rng);
		unsigned char *p = (r >> 20) % 8u == 0
					   ? kheap_aligned_alloc(heap, (size_t)32 << (r >> 24) % 6u, n)
					   : kheap_alloc(heap, n);
		if (p == 0)
			return fail(cpu, "allocation failed with memory to spare", 0);
		stamp(p, n, token);
		*s = (struct slot){p, n, token, 0};
		c->allocs++;
		return;
	}
	if (!intact(s->p, s->n, s->token))
		return fail(cpu, "fill token overwritten", s->p);
	if (s->cache) {
		kheap_cache_free(caches[s->cache - 1], s->p);
		s->p = 0;
		c->frees++;
		return;
	}
	if ((r >> 32) % 4u == 0) {
		size_t n = pick_size(&c->rng);
		unsigned char *p = kheap_realloc(heap, s->p, n);
		if (p == 0 && n != 0)
			return fail(cpu, "realloc failed with memory to spare", s->p);
		if (p && !intact(p, n < s->n ? n : s->n, s->token))
			return fail(cpu, "realloc lost the contents", p);
		if (p)
			stamp(p, n, token);
		*s = (struct slot){p, p ? n : 0, token, 0};
		c->reallocs++;
		return;
	}
	kheap_free(heap, s->p);
	s->p = 0;
	c->frees++;
}

/* The timer handler: allocate a plain and an aligned block, stamp both,
 * check both, free both, on top of whatever this CPU was doing. */
static void tick(unsigned cpu)
{
	struct cpu_state *c = &cpus[cpu];
	c->ticks++;
	if (stop)
		return;
	uint64_t r = rnd(&c->irq_rng);
	size_t n = TICK_MIN_SIZE + (size_t)(r >> 8) % 600u, m = TICK_MIN_SIZE + (size_t)(r >> 24) % 3000u;
	unsigned char *p = kheap_alloc(heap, n);
	unsigned char *q = kheap_aligned_alloc(heap, (size_t)64 << (r % 4u), m);
	if (p == 0 || q == 0)
		return fail(cpu, "allocation in an interrupt handler failed", 0);
	stamp(p, n, r);
	stamp(q, m, ~r);
	if (!intact(p, n, r) || !intact(q, m, ~r))
		return fail(cpu, "block allocated in an interrupt handler overwritten", p);
	kheap_free(heap, q);
	kheap_free(heap, p);
#ifndef CONTROL_NOMASK /* the control's ticks stay on the locked path (above) */
	struct kheap_cache *k = caches[r % NCACHES];
	unsigned char *o = kheap_cache_alloc(k);
	if (o == 0)
		return fail(cpu, "object-cache allocation in an interrupt handler failed", 0);
	stamp(o, cache_size[r % NCACHES], r);
	if (!intact(o, cache_size[r % NCACHES], r))
		return fail(cpu, "object allocated in an interrupt handler overwritten", o);
	kheap_cache_free(k, o);
#endif
	c->tick_pairs++;
}

/* The IPI behind kheap_flush_others: drain this CPU's cache, then say so. */
static void on_ipi(unsigned cpu)
{
	cpus[cpu].ipis++;
	kheap_trim_cpu(heap);
	__atomic_store_n(&cpus[cpu].flush_ack, flush_req, __ATOMIC_RELEASE);
}

/* IPI every other started, online CPU and wait for each to answer. With
 * interrupts masked (called from a handler, or inside kheap_irq_save) this
 * CPU could not answer a concurrent flush of another CPU that waits for it,
 * so it declines; otherwise it keeps answering IPIs while it waits. */
bool kheap_flush_others(struct kheap *h)
{
	(void)h;
	__atomic_add_fetch(&flush_calls, 1u, __ATOMIC_RELAXED);
	if (board_irq_masked())
		return false;
	unsigned me = board_cpu();
	unsigned req = __atomic_add_fetch(&flush_req, 1u, __ATOMIC_ACQ_REL);
	for (unsigned cpu = 0; cpu < started_cpus; cpu++)
		if (cpu != me && !cpus[cpu].offline)
			board_ipi(cpu);
	for (unsigned cpu = 0; cpu < started_cpus; cpu++)
		for (uint64_t spin = 0; cpu != me && !cpus[cpu].offline &&
					(int)(__atomic_load_n(&cpus[cpu].flush_ack, __ATOMIC_ACQUIRE) - req) < 0;
		     spin++) {
			if (spin > 400000000u)
				return false;
			board_relax();
		}
	__atomic_add_fetch(&flush_ok, 1u, __ATOMIC_RELAXED);
	return true;
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

/* Phases after the stress, driven by the boot CPU through `phase`. */
static volatile unsigned phase, filled;
#define FILL 64u

/* A secondary CPU: fill its per-CPU cache (phase 1), keep answering IPIs;
 * the last CPU stops for good at phase 2, as a hot-unplugged one would. */
static void after_stress(unsigned cpu, struct cpu_state *c)
{
	while (phase < 1)
		board_relax();
	void *p[FILL];
	for (unsigned i = 0; i < FILL; i++)
		p[i] = kheap_alloc(heap, 16u + 16u * (i % 8u));
	for (unsigned i = 0; i < FILL; i++)
		kheap_free(heap, p[i]);
	__atomic_add_fetch(&filled, 1u, __ATOMIC_SEQ_CST);
	while (phase < 2)
		board_relax();
	if (cpu == BOARD_MAX_CPUS - 1) {
		board_irq_off();
		c->offline = 1;
		for (;;)
			__asm__ volatile("" ::: "memory");
	}
	for (;;)
		board_relax();
}

static void worker(unsigned cpu)
{
	struct cpu_state *c = &cpus[cpu];
	c->rng = 0x9e3779b97f4a7c15ull * (cpu + 1u);
	c->irq_rng = 0x2545f4914f6cdd1dull * (cpu + 1u);
	board_irq_setup(cpu);
	__atomic_add_fetch(&ready, 1u, __ATOMIC_SEQ_CST);
	while (!go)
		board_relax();
	board_timer_start(TICK_HZ);
	board_irq_on();
	for (c->ops = 0; c->ops < STRESS_OPS && !stop; c->ops++) {
		one_op(cpu, c);
		recheck(cpu, c);
		if (c->ops % TRIM_EVERY == TRIM_EVERY - 1) {
			kheap_trim(heap);
			c->trims++;
		}
	}
	board_timer_stop();
	c->done = 1;
	if (cpu != 0)
		after_stress(cpu, c);
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

/* The boot CPU, after the stress: an allocation that runs out while the
 * other CPUs' caches hold blocks must ask them to drain (IPIs). */
static unsigned oom_flush(void)
{
	static void *big[256];
	unsigned n = 0, failed = 0;
	phase = 1;
	for (uint64_t spin = 0; filled < started_cpus - 1 && spin < 400000000u; spin++)
		board_relax();
	failed += report("other CPUs filled their caches", filled == started_cpus - 1);
	uint64_t calls = flush_calls, ok = flush_ok;
	while (n < 256 && (big[n] = kheap_alloc(heap, (size_t)1 << 20)) != 0)
		n++;
	failed += report("running out asked the other CPUs to drain, through IPIs",
			 flush_calls > calls && flush_ok > ok);
	for (unsigned i = 0; i < n; i++)
		kheap_free(heap, big[i]);
	return failed;
}

/* The last CPU stops; its cache goes back with kheap_cpu_dead. */
static unsigned cpu_dead(void)
{
	unsigned last = BOARD_MAX_CPUS - 1;
	if (started_cpus != BOARD_MAX_CPUS)
		return report("last CPU started, to stop it", 0);
	phase = 2;
	for (uint64_t spin = 0; !cpus[last].offline && spin < 400000000u; spin++)
		board_relax();
	kheap_cpu_dead(heap, last);
	return report("a stopped CPU's cache drained by kheap_cpu_dead", cpus[last].offline != 0);
}

void kmain(void)
{
	size_t size = (size_t)(__heap_end - __heap_start);
	board_percpu = 1; /* small blocks through each CPU's own cache */
	heap = kheap_init(__heap_start, size < ARENA_MAX ? size : ARENA_MAX);
	if (heap == 0)
		board_exit(report("kheap_init on the linker arena", 0));
	kheap_set_report(heap, on_report, 0);
	for (unsigned k = 0; k < NCACHES; k++)
		if ((caches[k] = kheap_cache_create(heap, "stress", cache_size[k], cache_align[k], 0)) == 0)
			board_exit(report("kheap_cache_create", 0));
	con_puts("smp stress: ");
	con_putu(BOARD_MAX_CPUS);
	con_puts(" CPUs x ");
	con_putu(STRESS_OPS);
	con_puts(" ops on one heap, a ");
	con_putu(TICK_HZ);
	con_puts(" Hz timer interrupt on every CPU that allocates\n");
	con_puts(board_memory());
	con_puts("\n");
#ifdef CONTROL_NOMASK
	board_mask_irqs = 0;
	con_puts("control: interrupts NOT masked around kheap calls: the lock must report re-entry\n");
#endif
	board_on_tick = tick;
	board_on_ipi = on_ipi;
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
	started_cpus = started;
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
		con_puts(" frees; ");
		con_putu(c->ticks);
		con_puts(" ticks, ");
		con_putu(c->tick_pairs);
		con_puts(" alloc+free pairs in them; ");
		con_putu(c->trims);
		con_puts(" trims, ");
		con_putu(c->ipis);
		con_puts(" IPIs answered\n");
		failed += c->failed || !c->done || c->ops < STRESS_OPS;
		checks_run++;
	}
	con_unlock();
	failed += report("no misuse reported", !stop);
	if (stop) /* the heap is suspect: checking it may crash or hang */
		goto out;
	unsigned ticked = 0, answered = 0;
	for (unsigned cpu = 0; cpu < started; cpu++) {
		ticked += cpus[cpu].tick_pairs > 0;
		answered += cpus[cpu].ipis > 0;
	}
	failed += report("every CPU allocated in its timer interrupts", ticked == started);
	failed += report("every CPU answered flush IPIs during the stress", answered == started);
	failed += oom_flush();
	failed += cpu_dead();
	for (unsigned cpu = 0; cpu < started; cpu++)
		for (unsigned i = 0; i < SLOTS; i++) {
			struct slot *s = &cpus[cpu].slot[i];
			if (s->p && !intact(s->p, s->n, s->token))
				fail(0, "fill token overwritten (final sweep)", s->p);
			if (s->cache)
				kheap_cache_free(caches[s->cache - 1], s->p);
			else
				kheap_free(heap, s->p);
		}
	failed += report("final sweep: every surviving block intact", !stop);
	/* Every CPU's timer is stopped: no call on a cache is in flight. */
	int caches_ok = 1;
	for (unsigned k = 0; k < NCACHES; k++) {
		struct kheap_cache_stats cs;
		caches_ok &= kheap_cache_stats(caches[k], &cs) == 0 && cs.in_use == 0 && cs.allocs == cs.frees &&
			     cs.allocs > 0 && kheap_cache_destroy(caches[k]) == 0;
	}
	failed += report("object caches: every object back, each cache destroyed", caches_ok);
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
