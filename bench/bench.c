/*
 * bench.c: kheap against general-purpose allocators on workloads W1-W9. One
 * process runs one workload, so peak-RSS figures start clean;
 * tools/bench.sh runs every workload x allocator several times.
 *
 *   bench ALLOC WORKLOAD [-q] [-t THREADS] [-o FILE]
 *
 *   ALLOC     kheap    kheap_alloc/kheap_free/kheap_aligned_alloc on one heap
 *                      over a 1 GiB mmap'd arena, shared by all threads, each
 *                      thread a CPU with its own per-CPU cache
 *             kheap-locked  the same with no CPU numbers: every call takes
 *                      the heap lock (a kernel without kheap_cpu_id)
 *             system   malloc/free/aligned_alloc: glibc, or whichever
 *                      allocator LD_PRELOAD puts in front of it
 *   WORKLOAD  W1..W8; W9a (W1 on THREADS threads), W9b (W3 on THREADS threads);
 *             W10 (objects of 64, 192, 512 and 2048 bytes, 4 types in random
 *             interleavings, with ALLOC's alloc/free); W10c (the same through
 *             one kheap_cache per type; the kheap modes only)
 *   -q        quick: every workload 1/50 of its length (a smoke test)
 *   -s DIV    every workload 1/DIV of its length (-q is -s 50)
 *   -o FILE   W6 only: write the latency quantiles there, for the plot
 *
 * Prints "key value" lines (W1 ns per pair, W8 M ops/s, ...), plus
 * "malloc-from PATH" naming the object that supplies malloc, so the driver
 * can tell that LD_PRELOAD took. Exits non-zero, naming the failure, when an
 * allocation fails, a block's tag does not survive until its free, an aligned
 * block is misaligned, or kheap_check finds the heap inconsistent afterwards.
 *
 * Every workload draws from a fixed-seed PRNG and the operation sequence
 * depends only on it and on which slots are full, so it is identical for
 * every allocator. Blocks are stamped with a tag (a hash of the pointer and
 * the slot) in their first and last 8 bytes and checked before free, except
 * in W8, the lean loop.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host_cpu.h"
#include "kheap.h"

/* ---- the allocator table ------------------------------------------------- */

struct allocator {
	void *(*alloc)(size_t n);
	void (*free)(void *p);
	void *(*aligned)(size_t align, size_t n);
};

static struct kheap *heap;
static uintptr_t arena_lo;
#define ARENA_SIZE ((size_t)1 << 30)

/* Calls made by the main thread, printed at the end ("calls.alloc N"), so
 * that tools/bench-check.sh can divide a function's instructions by its
 * calls (its workloads run on the main thread). Thread-local: one shared
 * counter written on every call by every W9 thread made kheap's W9 rows
 * measure that cache line bouncing between cores (2 threads: 1.05x one
 * thread's rate; 1.9x with the counters per thread). */
static __thread uint64_t n_alloc, n_free;
static void *heap_alloc(size_t n) { return n_alloc++, kheap_alloc(heap, n); }
static void heap_free(void *p) { n_free++, kheap_free(heap, p); }
static void *heap_aligned(size_t a, size_t n) { return kheap_aligned_alloc(heap, a, n); }
static void *sys_alloc(size_t n) { return malloc(n); }
static void sys_free(void *p) { free(p); }
static void *sys_aligned(size_t a, size_t n) { return aligned_alloc(a, n); }

static const struct allocator kheap_table = {heap_alloc, heap_free, heap_aligned};
static const struct allocator sys_table = {sys_alloc, sys_free, sys_aligned};
static const struct allocator *A;

/* More threads than cores in W9: let a waiter give up its slice. */
void kheap_spin_yield(void)
{
	sched_yield();
}

/* ---- failure, time, PRNG, tags ------------------------------------------- */

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(3);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Cycle counter for W6. lfence on both sides keeps the call inside the
 * window on x86_64; elsewhere nanoseconds stand in for cycles. */
static inline uint64_t ticks(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
#else
	return (uint64_t)now_ns();
#endif
}

/* splitmix64: one add and a finaliser per draw; enough for choosing slots. */
static inline uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) for n < 2^32 (multiply-shift; bias below 2^-32). */
static inline uint32_t below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(((next(s) >> 32) * n) >> 32);
}

static inline uint64_t tag_of(const void *p, uint64_t slot)
{
	uint64_t t = (uintptr_t)p ^ (slot * 0xd6e8feb86659fd93u);
	return t ^ (t >> 29);
}

static inline void stamp(void *p, size_t n, uint64_t slot)
{
	uint64_t t = tag_of(p, slot);
	memcpy(p, &t, 8);
	if (n >= 16)
		memcpy((char *)p + n - 8, &t, 8);
}

static inline void check(const void *p, size_t n, uint64_t slot)
{
	uint64_t t = tag_of(p, slot), head, tail = t;
	memcpy(&head, p, 8);
	if (n >= 16)
		memcpy(&tail, (const char *)p + n - 8, 8);
	if (head != t || tail != t)
		die("tag of %zu-byte block %p (slot %llu) overwritten before its free", n, p,
		    (unsigned long long)slot);
}

static inline void *get(size_t n)
{
	void *p = A->alloc(n);
	if (p == NULL)
		die("allocation of %zu bytes failed", n);
	return p;
}

/* ---- sizes ------------------------------------------------------------------- */

enum sizes { SMALL, LOGU }; /* W3: 8-256 uniform; W4: 16 B-64 KiB log-uniform */

/* LOGU: a power of two 2^4..2^15 uniformly, then uniform within it, so the
 * density is flat in log(size) over [16, 65536) up to the staircase. */
static inline size_t draw(uint64_t *s, enum sizes kind)
{
	if (kind == SMALL)
		return 8 + below(s, 249);
	unsigned e = 4 + below(s, 12);
	return ((size_t)1 << e) + below(s, (uint32_t)1 << e);
}

/* ---- W1, W2, W8 ------------------------------------------------------------ */

static double w1(uint64_t n)
{
	double t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		void *p = get(32);
		stamp(p, 32, i);
		check(p, 32, i);
		A->free(p);
	}
	return (now_ns() - t0) / (double)n;
}

#define W2_BLOCKS 1000

static double w2(uint64_t rounds)
{
	static void *blk[W2_BLOCKS];
	static uint32_t len[W2_BLOCKS];
	uint64_t s = 2;
	double t0 = now_ns();
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < W2_BLOCKS; i++) {
			len[i] = 16 + below(&s, 49);
			blk[i] = get(len[i]);
			stamp(blk[i], len[i], i);
		}
		for (unsigned i = 0; i < W2_BLOCKS; i++) {
			check(blk[i], len[i], i);
			A->free(blk[i]);
		}
	}
	return (now_ns() - t0) / (double)(rounds * 2 * W2_BLOCKS);
}

/* Lean: no tags, no checks, a ring of 64 live blocks; M ops/s (alloc and
 * free each count as one op). */
static double w8(uint64_t n)
{
	static const size_t sz[8] = {16, 24, 32, 48, 64, 96, 128, 256};
	void *ring[64] = {0};
	void *(*al)(size_t) = A->alloc;
	void (*fr)(void *) = A->free;
	double t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		fr(ring[i & 63]);
		ring[i & 63] = al(sz[i & 7]);
	}
	double dt = now_ns() - t0;
	for (unsigned j = 0; j < 64; j++)
		fr(ring[j]);
	return 2.0 * (double)n / dt * 1e3;
}

/* ---- W3, W4 and friends: random slots ------------------------------------------ */

struct slot {
	void *p;
	size_t n;
};

#define NSLOTS 10000

struct churn {
	struct slot *sl;
	uint64_t seed;
	enum sizes kind;
	size_t live, peak_live; /* requested bytes, W5 */
	uintptr_t hi;           /* highest block end seen, W5 */
	uint32_t *lat_a, *lat_f;
	size_t na, nf;          /* W6 samples */
};

static void churn_init(struct churn *c, uint64_t seed, enum sizes kind)
{
	memset(c, 0, sizeof *c);
	c->sl = calloc(NSLOTS, sizeof *c->sl);
	if (c->sl == NULL)
		die("out of memory for slots");
	c->seed = seed;
	c->kind = kind;
}

static void churn_drain(struct churn *c)
{
	for (unsigned i = 0; i < NSLOTS; i++) {
		if (c->sl[i].p != NULL) {
			check(c->sl[i].p, c->sl[i].n, i);
			A->free(c->sl[i].p);
		}
	}
	free(c->sl);
}

/* The timed loop of W3, W4 and W9b: ns per step. */
static double churn_time(struct churn *c, uint64_t steps)
{
	double t0 = now_ns();
	for (uint64_t k = 0; k < steps; k++) {
		uint32_t i = below(&c->seed, NSLOTS);
		struct slot *s = &c->sl[i];
		if (s->p != NULL) {
			check(s->p, s->n, i);
			A->free(s->p);
			s->p = NULL;
		} else {
			s->n = draw(&c->seed, c->kind);
			s->p = get(s->n);
			stamp(s->p, s->n, i);
		}
	}
	return (now_ns() - t0) / (double)steps;
}

/* W5: the same sequence, untimed. Each block gets a write in every 4 KiB so
 * that the whole payload is resident and RSS sees it, as a user's would. */
static void touch(void *p, size_t n)
{
	for (size_t o = 4096; o < n; o += 4096)
		((volatile char *)p)[o] = 1;
}

static void churn_peak(struct churn *c, uint64_t steps)
{
	for (uint64_t k = 0; k < steps; k++) {
		uint32_t i = below(&c->seed, NSLOTS);
		struct slot *s = &c->sl[i];
		if (s->p != NULL) {
			check(s->p, s->n, i);
			A->free(s->p);
			c->live -= s->n;
			s->p = NULL;
			continue;
		}
		s->n = draw(&c->seed, c->kind);
		s->p = get(s->n);
		touch(s->p, s->n);
		stamp(s->p, s->n, i);
		c->live += s->n;
		c->peak_live = c->live > c->peak_live ? c->live : c->peak_live;
		c->hi = (uintptr_t)s->p + s->n > c->hi ? (uintptr_t)s->p + s->n : c->hi;
	}
}

/* W6: the same sequence, each alloc and free call alone between two reads
 * of the cycle counter. */
static void churn_lat(struct churn *c, uint64_t steps)
{
	for (uint64_t k = 0; k < steps; k++) {
		uint32_t i = below(&c->seed, NSLOTS);
		struct slot *s = &c->sl[i];
		uint64_t t0, t1;
		if (s->p != NULL) {
			check(s->p, s->n, i);
			t0 = ticks();
			A->free(s->p);
			t1 = ticks();
			c->lat_f[c->nf++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
			s->p = NULL;
			continue;
		}
		s->n = draw(&c->seed, c->kind);
		t0 = ticks();
		s->p = A->alloc(s->n);
		t1 = ticks();
		if (s->p == NULL)
			die("allocation of %zu bytes failed", s->n);
		c->lat_a[c->na++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
		stamp(s->p, s->n, i);
	}
}

/* ---- W5: footprint ------------------------------------------------------------- */

/* A "Vm...:" line of /proc/self/status, in bytes. */
static size_t vm_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t kb = 0, k = strlen(key);
	if (f == NULL)
		die("cannot read /proc/self/status");
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, k) == 0)
			kb = strtoull(line + k + 1, NULL, 10);
	fclose(f);
	return kb * 1024;
}

/* Reset VmHWM to the current RSS (Linux >= 4.0). */
static void reset_hwm(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	if (f == NULL || fputs("5", f) < 0 || fclose(f) != 0)
		die("cannot reset VmHWM through /proc/self/clear_refs");
}

static void w5(uint64_t steps)
{
	struct churn c;
	churn_init(&c, 4, LOGU);
	A->free(get(64)); /* the allocator's own start-up is not the workload's */
	size_t base = vm_bytes("VmRSS:");
	reset_hwm();
	churn_peak(&c, steps);
	size_t hwm = vm_bytes("VmHWM:");
	printf("W5rss %.4f\n", (double)(hwm - base) / (double)c.peak_live);
	if (A == &kheap_table)
		printf("W5 %.4f\n", (double)(c.hi - arena_lo) / (double)c.peak_live);
	else
		printf("W5 %.4f\n", (double)(hwm - base) / (double)c.peak_live);
	printf("W5.peak_live_MiB %.2f\n", (double)c.peak_live / 1048576.0);
	churn_drain(&c);
}

/* ---- W6: latency quantiles ------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static uint32_t quantile(const uint32_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* Sort the samples, print p50/p99.99/max, and append "op cycles tail" rows
 * (tail = fraction of calls slower) from the median to the maximum. */
static void report_lat(const char *op, uint32_t *v, size_t n, FILE *out)
{
	if (n == 0)
		die("W6: no %s samples", op);
	qsort(v, n, sizeof *v, cmp_u32);
	printf("W6.%s.p50 %u\n", op, quantile(v, n, 0.5));
	printf("W6.%s.p9999 %u\n", op, quantile(v, n, 0.9999));
	printf("W6.%s.max %u\n", op, v[n - 1]);
	if (out == NULL)
		return;
	for (double tail = 0.5; tail * (double)n >= 1.0; tail /= 1.25)
		fprintf(out, "%s %u %.3g\n", op, quantile(v, n, 1.0 - tail), tail);
	fprintf(out, "%s %u %.3g\n", op, v[n - 1], 1.0 / (double)n);
}

static void w6(uint64_t steps, const char *path)
{
	struct churn c;
	churn_init(&c, 4, LOGU);
	c.lat_a = malloc(steps * sizeof *c.lat_a);
	c.lat_f = malloc(steps * sizeof *c.lat_f);
	if (c.lat_a == NULL || c.lat_f == NULL)
		die("out of memory for W6 samples");
	uint64_t t0 = ticks(), t1 = ticks(); /* the window's own cost, for the record */
	churn_lat(&c, steps);
	churn_drain(&c);
	FILE *out = path != NULL ? fopen(path, "w") : NULL;
	if (path != NULL && out == NULL)
		die("cannot write %s", path);
	printf("W6.window %llu\n", (unsigned long long)(t1 - t0));
	report_lat("alloc", c.lat_a, c.na, out);
	report_lat("free", c.lat_f, c.nf, out);
	if (out != NULL)
		fclose(out);
	free(c.lat_a);
	free(c.lat_f);
}

/* ---- W7: aligned ------------------------------------------------------------------ */

#define W7_SLOTS 1000

static double w7(uint64_t steps)
{
	static struct slot sl[W7_SLOTS];
	uint64_t s = 7;
	double t0 = now_ns();
	for (uint64_t k = 0; k < steps; k++) {
		uint32_t i = below(&s, W7_SLOTS);
		if (sl[i].p != NULL) {
			check(sl[i].p, sl[i].n, i);
			A->free(sl[i].p);
			sl[i].p = NULL;
			continue;
		}
		size_t align = below(&s, 2) ? 4096 : 64;
		sl[i].n = 100 + below(&s, 7901);
		sl[i].p = A->aligned(align, sl[i].n);
		if (sl[i].p == NULL || ((uintptr_t)sl[i].p & (align - 1)) != 0)
			die("aligned_alloc(%zu, %zu) gave %p", align, sl[i].n, sl[i].p);
		stamp(sl[i].p, sl[i].n, i);
	}
	double ns = (now_ns() - t0) / (double)steps;
	for (unsigned i = 0; i < W7_SLOTS; i++)
		A->free(sl[i].p);
	return ns;
}

/* ---- W10: object types ------------------------------------------------------ */

/* A kernel's object mix: 4 types, slot i holds type i % 4, a random slot
 * is filled or emptied each step (about 512 live objects). With caches,
 * each type is a kheap_cache; else the sizes go to ALLOC's alloc. */
#define W10_SLOTS 1024
static const size_t w10_size[4] = {64, 192, 512, 2048};
static struct kheap_cache *w10_cache[4];

static double w10(uint64_t steps, int caches)
{
	static void *sl[W10_SLOTS];
	if (caches)
		for (unsigned t = 0; t < 4; t++)
			if ((w10_cache[t] = kheap_cache_create(heap, "w10", w10_size[t], 0, 0)) == NULL)
				die("kheap_cache_create failed");
	uint64_t s = 10;
	double t0 = now_ns();
	for (uint64_t k = 0; k < steps; k++) {
		uint32_t i = below(&s, W10_SLOTS);
		size_t n = w10_size[i % 4];
		if (sl[i] != NULL) {
			check(sl[i], n, i);
			if (caches)
				n_free++, kheap_cache_free(w10_cache[i % 4], sl[i]);
			else
				A->free(sl[i]);
			sl[i] = NULL;
		} else {
			void *p = caches ? (n_alloc++, kheap_cache_alloc(w10_cache[i % 4])) : A->alloc(n);
			if (p == NULL)
				die("W10: allocation of %zu bytes failed", n);
			stamp(p, n, i);
			sl[i] = p;
		}
	}
	double ns = (now_ns() - t0) / (double)steps;
	for (unsigned i = 0; i < W10_SLOTS; i++)
		if (sl[i] != NULL) {
			if (caches)
				kheap_cache_free(w10_cache[i % 4], sl[i]);
			else
				A->free(sl[i]);
			sl[i] = NULL;
		}
	for (unsigned t = 0; caches && t < 4; t++)
		if (kheap_cache_destroy(w10_cache[t]) != 0)
			die("kheap_cache_destroy failed");
	return ns;
}

/* ---- W9: threads -------------------------------------------------------------- */

/* A thread stops after n operations or W9_DEADLINE_NS, whichever comes
 * first: a convoy on a lock can slow a run by orders of magnitude, and a
 * rate over a couple of seconds measures it as well as a full run would. */
#define W9_DEADLINE_NS 3e9
#define W9_CHUNK 1024

struct worker {
	pthread_t id;
	pthread_barrier_t *go;
	int kind; /* 'a': W1, 'b': W3 */
	unsigned index;
	uint64_t n, done;
	double start, end;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct churn c;
	kheap_cpu_id(); /* this thread's CPU number (bench/port_host.h) */
	if (w->kind == 'b')
		churn_init(&c, 100 + w->index, SMALL);
	pthread_barrier_wait(w->go);
	w->start = now_ns();
	for (w->done = 0; w->done < w->n && now_ns() - w->start < W9_DEADLINE_NS; w->done += W9_CHUNK) {
		if (w->kind == 'a')
			w1(W9_CHUNK);
		else
			churn_time(&c, W9_CHUNK);
	}
	w->end = now_ns();
	if (w->kind == 'b')
		churn_drain(&c);
	return NULL;
}

/* Every thread does up to n operations; the result is the total rate in
 * M ops/s from the first thread's start to the last one's end. */
static double w9(int kind, unsigned threads, uint64_t n)
{
	struct worker w[64];
	pthread_barrier_t go;
	if (threads == 0 || threads > 64)
		die("threads must be 1..64");
	pthread_barrier_init(&go, NULL, threads);
	for (unsigned t = 0; t < threads; t++) {
		w[t] = (struct worker){.go = &go, .kind = kind, .index = t, .n = n};
		if (pthread_create(&w[t].id, NULL, work, &w[t]) != 0)
			die("pthread_create failed");
	}
	double first = 1e300, last = 0, ops = 0;
	for (unsigned t = 0; t < threads; t++) {
		pthread_join(w[t].id, NULL);
		first = w[t].start < first ? w[t].start : first;
		last = w[t].end > last ? w[t].end : last;
		ops += (double)w[t].done;
	}
	pthread_barrier_destroy(&go);
	return ops / (last - first) * 1e3;
}

/* ---- main ------------------------------------------------------------------------ */

static void use_kheap(void)
{
	void *m = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		die("cannot map the kheap arena");
	arena_lo = (uintptr_t)m;
	kheap_cpu_id(); /* the main thread's CPU number (bench/port_host.h) */
	heap = kheap_init(m, ARENA_SIZE);
	if (heap == NULL)
		die("kheap_init refused the arena");
	A = &kheap_table;
}

static void say_malloc_origin(void)
{
	Dl_info info;
	void *(*m)(size_t) = malloc;
	if (dladdr((void *)m, &info) != 0 && info.dli_fname != NULL)
		printf("malloc-from %s\n", info.dli_fname);
}

static void run(const char *w, uint64_t q, unsigned threads, const char *out)
{
	struct churn c;
	if (strcmp(w, "W1") == 0)
		printf("W1 %.3f\n", w1(10000000 / q));
	else if (strcmp(w, "W2") == 0)
		printf("W2 %.3f\n", w2(10000 / q));
	else if (strcmp(w, "W3") == 0 || strcmp(w, "W4") == 0) {
		churn_init(&c, 3, w[1] == '3' ? SMALL : LOGU);
		printf("%s %.3f\n", w, churn_time(&c, (w[1] == '3' ? 20000000 : 5000000) / q));
		churn_drain(&c);
	} else if (strcmp(w, "W5") == 0)
		w5(5000000 / q);
	else if (strcmp(w, "W6") == 0)
		w6(5000000 / q, out);
	else if (strcmp(w, "W7") == 0)
		printf("W7 %.3f\n", w7(2000000 / q));
	else if (strcmp(w, "W8") == 0)
		printf("W8 %.2f\n", w8(20000000 / q));
	else if (strcmp(w, "W10") == 0)
		printf("W10 %.3f\n", w10(20000000 / q, 0));
	else if (strcmp(w, "W10c") == 0) {
		if (heap == NULL)
			die("W10c is for the kheap modes");
		printf("W10c %.3f\n", w10(20000000 / q, 1));
	} else if (strcmp(w, "W9a") == 0 || strcmp(w, "W9b") == 0)
		printf("%s.t%u %.3f\n", w, threads, w9(w[2], threads, 5000000 / q));
	else
		die("unknown workload %s", w);
}

int main(int argc, char **argv)
{
	uint64_t q = 1;
	unsigned threads = 1;
	const char *out = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "qs:t:o:")) != -1) {
		if (opt == 'q')
			q = 50;
		else if (opt == 's')
			q = strtoull(optarg, NULL, 10);
		else if (opt == 't')
			threads = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'o')
			out = optarg;
		else
			return 2;
	}
	if (argc - optind != 2 || q == 0) {
		fprintf(stderr, "usage: bench kheap|kheap-locked|system W1..W8|W9a|W9b|W10|W10c [-q | -s DIV] [-t N] [-o FILE]\n");
		return 2;
	}
	if (strcmp(argv[optind], "kheap") == 0) {
		use_kheap();
	} else if (strcmp(argv[optind], "kheap-locked") == 0) {
		host_cpu_enabled = 0; /* no CPU numbers: every call takes the lock */
		use_kheap();
	}
	else if (strcmp(argv[optind], "system") == 0)
		A = &sys_table;
	else
		die("unknown allocator %s", argv[optind]);
	say_malloc_origin();
	run(argv[optind + 1], q, threads, out);
	if (heap != NULL)
		printf("calls.alloc %llu\ncalls.free %llu\n", (unsigned long long)n_alloc,
		       (unsigned long long)n_free);
	if (heap != NULL && kheap_check(heap) != 0)
		die("kheap_check found the heap inconsistent after %s", argv[optind + 1]);
	return 0;
}
