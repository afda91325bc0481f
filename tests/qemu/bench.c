/*
 * bench.c: instructions per heap operation, by path and size, as p50, p99
 * and max over SAMPLES timed calls each. Counts come from board_counter(),
 * which under QEMU -icount shift=0 advances once per guest instruction; the
 * cost of reading it is measured first and subtracted. The first line of
 * output shows the counter checked against a run of 100 NOPs.
 */
#include "bench.h"
#include "board.h"
#include "console.h"
#include "kh_internal.h" /* struct kh_cpu, for the fused calls alone */
#include "kheap.h"

#define SAMPLES 1000u
#define HEAP_BYTES ((size_t)48 << 20)

static struct kheap *h;
static uint64_t t[SAMPLES];
static uint64_t overhead;

static void sort(uint64_t *a, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		uint64_t v = a[i];
		unsigned j = i;
		for (; j && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

static void row(const char *op, const char *path, size_t size)
{
	sort(t, SAMPLES);
	con_puts("| ");
	con_puts(op);
	con_puts(" | ");
	con_puts(path);
	con_puts(" | ");
	con_putu_w(size, 7);
	con_puts(" | ");
	con_putu_w(t[SAMPLES / 2], 5);
	con_puts(" | ");
	con_putu_w(t[SAMPLES * 99 / 100], 5);
	con_puts(" | ");
	con_putu_w(t[SAMPLES - 1], 5);
	con_puts(" |\n");
}

static inline uint64_t since(uint64_t t0)
{
	uint64_t d = board_counter() - t0;
	return d > overhead ? d - overhead : 0;
}

/* Cache hit: free puts the block on a cache list, the next alloc of the
 * same size pops it. The shared class lists, or with board_percpu set the
 * lock-free per-CPU lists; the labels name the path. */
static void hit_path(size_t n, const char *alloc_path, const char *free_path)
{
	static uint64_t f[SAMPLES];
	void *p = kheap_alloc(h, n);
	kheap_free(h, p);
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		p = kheap_alloc(h, n);
		t[i] = since(t0);
		t0 = board_counter();
		kheap_free(h, p);
		f[i] = since(t0);
	}
	row("alloc", alloc_path, n);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("free ", free_path, n);
}

/* The fused per-CPU calls alone (kh_class.h: kh_cpu_alloc, kh_cpu_free),
 * without the entry point and the IRQ and CPU hooks around them: the
 * assembly's own cost on a hit. Interrupts masked, as kheap_alloc does. */
static void fused_path(size_t n)
{
	static uint64_t f[SAMPLES];
	kheap_free(h, kheap_alloc(h, n)); /* this CPU's list now holds one */
	uintptr_t irq = kheap_irq_save();
	struct kh_cpu *cpu = &h->cpus[kheap_cpu_id()];
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		void *p = kh_cpu_alloc(cpu, n);
		t[i] = since(t0);
		t0 = board_counter();
		int ok = kh_cpu_free(cpu, p) == 1;
		f[i] = since(t0);
		if (p == NULL || !ok)
			t[i] = f[i] = ~(uint64_t)0; /* a miss: shows as the max */
	}
	kheap_irq_restore(irq);
	row("alloc", "fused call alone (kh_cpu_alloc)", n);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("free ", "fused call alone (kh_cpu_free)", n);
}

/* Runs of SAMPLES allocations, then frees, of one class with per-CPU caches
 * on: the max is a refill (carving a batch) or a drain (half a list). */
static void percpu_batch(size_t n)
{
	static void *p[SAMPLES];
	static uint64_t f[SAMPLES];
	kheap_trim(h);
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		p[i] = kheap_alloc(h, n);
		t[i] = since(t0);
	}
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		kheap_free(h, p[i]);
		f[i] = since(t0);
	}
	row("alloc", "per-CPU, refills included", n);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("free ", "per-CPU, drains included", n);
}

/* Backend (TLSF bins): kheap_trim empties the caches first, so a class size
 * finds its shared list empty and carves a batch onto it (KHEAP_CLASS_CARVE),
 * the locked path's worst case for a small block; the free of a non-class
 * size coalesces. */
static void backend_path(size_t n)
{
	static uint64_t f[SAMPLES];
	for (unsigned i = 0; i < SAMPLES; i++) {
		kheap_trim(h);
		uint64_t t0 = board_counter();
		void *p = kheap_alloc(h, n);
		t[i] = since(t0);
		t0 = board_counter();
		kheap_free(h, p);
		f[i] = since(t0);
	}
	row("alloc", n < 1024 ? "shared list empty: carves a batch" : "backend", n);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("free ", n < 1024 ? "to class cache" : "backend, coalesce", n);
}

/* Worst case: free blocks in (nearly) every bin, then per sample an alloc
 * that splits a large free block and a free that merges with free blocks
 * on both sides. */
static void worst_case(void)
{
	static uint64_t f[SAMPLES];
	for (size_t n = 1024; n < ((size_t)256 << 10); n += n / 16) {
		void *p = kheap_alloc(h, n);
		kheap_alloc(h, 16); /* guard: keeps p from merging */
		kheap_free(h, p);
	}
	for (unsigned i = 0; i < SAMPLES; i++) {
		kheap_trim(h);
		uint64_t t0 = board_counter();
		void *a = kheap_alloc(h, 3000 + 16 * (i % 64));
		t[i] = since(t0);
		void *b = kheap_alloc(h, 5000);
		void *c = kheap_alloc(h, 7000);
		void *g = kheap_alloc(h, 16);
		kheap_free(h, a);
		kheap_free(h, c);
		t0 = board_counter();
		kheap_free(h, b);
		f[i] = since(t0);
		kheap_free(h, g);
	}
	row("alloc", "all bins populated, split", 3000);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("free ", "merge both neighbours", 5000);
}

/* Object caches (kheap_cache_*): a hit (free then alloc of one object), runs
 * of SAMPLES allocations then frees (refills and drains included), and
 * allocations from a reserve with interrupts off. On the depot under the
 * lock, or with board_percpu set on this CPU's lists; label says which. */
static void objcache_rows(size_t n, const char *label)
{
	static void *p[SAMPLES];
	static uint64_t f[SAMPLES];
	static char name[64];
	struct kheap_cache *c = kheap_cache_create(h, "bench", n, 0, 0);
	if (c == 0)
		return;
	kheap_cache_free(c, kheap_cache_alloc(c));
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		void *q = kheap_cache_alloc(c);
		t[i] = since(t0);
		t0 = board_counter();
		kheap_cache_free(c, q);
		f[i] = since(t0);
	}
	unsigned k = 0;
	for (const char *s = label; *s && k < sizeof name - 16; s++)
		name[k++] = *s;
	for (const char *s = ", hit"; *s; s++)
		name[k] = *s, k++;
	name[k] = 0;
	row("cache_alloc", name, n);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("cache_free ", name, n);
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		p[i] = kheap_cache_alloc(c);
		t[i] = since(t0);
	}
	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t t0 = board_counter();
		kheap_cache_free(c, p[i]);
		f[i] = since(t0);
	}
	row("cache_alloc", "runs, refills included", n);
	for (unsigned i = 0; i < SAMPLES; i++)
		t[i] = f[i];
	row("cache_free ", "runs, drains included", n);
	kheap_cache_shrink(c);
	enum { R = 64 };
	for (unsigned i = 0; i < SAMPLES; i += R) {
		kheap_cache_reserve(c, R);
		uintptr_t irq = kheap_irq_save();
		for (unsigned j = i; j < i + R && j < SAMPLES; j++) {
			uint64_t t0 = board_counter();
			p[j] = kheap_cache_alloc(c);
			t[j] = since(t0);
		}
		kheap_irq_restore(irq);
		for (unsigned j = i; j < i + R && j < SAMPLES; j++)
			kheap_cache_free(c, p[j]);
	}
	row("cache_alloc", "from a reserve, interrupts off", n);
	kheap_cache_destroy(c);
}

static uint64_t nop100(void)
{
	uint64_t best = ~(uint64_t)0;
	for (int i = 0; i < 16; i++) {
		uint64_t t0 = board_counter();
		__asm__ volatile(".rept 100\n\tnop\n\t.endr" ::: "memory");
		uint64_t d = since(t0);
		best = d < best ? d : best;
	}
	return best;
}

void bench_run(void)
{
	size_t size = (size_t)(__heap_end - __heap_start);
	h = kheap_init(__heap_start, size < HEAP_BYTES ? size : HEAP_BYTES);
	board_counter_init();
	overhead = ~(uint64_t)0;
	for (int i = 0; i < 64; i++) {
		uint64_t t0 = board_counter();
		uint64_t d = board_counter() - t0;
		overhead = d < overhead ? d : overhead;
	}
	con_puts("counter: ");
	con_puts(board_counter_name());
	con_puts("; read cost ");
	con_putu(overhead);
	con_puts(", subtracted; 100 NOPs measure ");
	con_putu(nop100());
	con_puts("\n\n| op    | path | size | p50 | p99 | max |\n|---|---|--:|--:|--:|--:|\n");
	static const size_t cls[] = {16, 64, 240, 500, 1000};
	for (unsigned i = 0; i < sizeof cls / sizeof cls[0]; i++)
		hit_path(cls[i], "class cache hit", "to class cache");
	for (unsigned i = 0; i < sizeof cls / sizeof cls[0]; i++)
		backend_path(cls[i]);
	backend_path(4096);
	backend_path((size_t)64 << 10);
	backend_path((size_t)1 << 20);
	worst_case();
	objcache_rows(192, "object cache, locked (depot)");
	board_percpu = 1;
	/* The per-CPU path turns on at a locked allocation by a CPU with a
	 * number (kh_percpu_on); until then a class hit is the shared one. */
	kheap_free(h, kheap_alloc(h, 4096));
	objcache_rows(192, "object cache, per-CPU");
	objcache_rows(2048, "object cache, per-CPU");
	for (unsigned i = 0; i < sizeof cls / sizeof cls[0]; i++)
		hit_path(cls[i], "per-CPU cache hit", "to per-CPU cache");
	/* A class above the assembly's tables: computed from the size. */
	hit_path(4096, "per-CPU cache hit", "to per-CPU cache");
	fused_path(16);
	fused_path(1000);
	fused_path(4096);
	percpu_batch(64);
	percpu_batch(1000);
	board_percpu = 0;
	con_puts("(instructions per call, ");
	con_putu(SAMPLES);
	con_puts(" samples per row)\n");
}
