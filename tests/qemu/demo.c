/*
 * demo.c: the `make run` kernel: a heap on the linker arena at work
 * (allocate, resize, free, stats, a block listing, kheap_check), then
 * the instruction-count table, then a leak report (leak_demo.c). The kernel's kheap_panic prints the report
 * and exits with status 2.
 */
#include "bench.h"
#include "board.h"
#include "console.h"
#include "kheap.h"

void kheap_panic(const char *msg)
{
	con_puts("kheap_panic: ");
	con_puts(msg);
	con_puts("\n");
	board_exit(2);
}

/* The block listing comes from kheap_dump, whose block lines name each
 * block's state (kheap_walk only tells held from not held) and give its
 * size in block bytes, the unit of kheap_stats. Lines are gathered here and
 * the "kheap block" ones printed as a table. */
#define LISTED 12u

struct listing {
	char line[160];
	unsigned len, blocks;
};

/* The value after key in line, up to the next space ("" when absent). */
static const char *field(char *line, const char *key, char **end)
{
	for (char *s = line; *s; s++) {
		unsigned i = 0;
		while (key[i] && s[i] == key[i])
			i++;
		if (key[i])
			continue;
		char *e = s + i;
		while (*e && *e != ' ')
			e++;
		*end = e;
		return s + i;
	}
	*end = line;
	return "";
}

static void pad(const char *s, unsigned width, int right)
{
	unsigned n = 0;
	while (s[n])
		n++;
	if (!right)
		con_puts(s);
	for (; n < width; n++)
		con_puts(" ");
	if (right)
		con_puts(s);
}

static void block_line(struct listing *l)
{
	static const char prefix[] = "kheap block ";
	for (unsigned i = 0; i + 1 < sizeof prefix; i++)
		if (l->line[i] != prefix[i])
			return;
	if (l->blocks++ >= LISTED)
		return;
	char *e1, *e2, *e3;
	const char *ptr = field(l->line, "ptr=", &e1);
	const char *bytes = field(l->line, "bytes=", &e2);
	const char *state = field(l->line, "state=", &e3);
	*e1 = *e2 = *e3 = 0; /* after all three lookups: they scan the whole line */
	con_puts("  ");
	pad(ptr, 20, 0);
	pad(bytes, 12, 1);
	con_puts("  ");
	con_puts(state);
	con_puts("\n");
}

static void gather(void *ctx, char c)
{
	struct listing *l = ctx;
	if (c != '\n') {
		if (l->len + 1 < sizeof l->line)
			l->line[l->len++] = c;
		return;
	}
	l->line[l->len] = 0;
	block_line(l);
	l->len = 0;
}

static void stats(struct kheap *h)
{
	struct kheap_stats s;
	kheap_get_stats(h, &s);
	con_puts("stats (block bytes: usable bytes + ");
	con_putu(KHEAP_BLOCK_OVERHEAD);
	con_puts(" of header):\n  in use ");
	con_putu(s.in_use_bytes);
	con_puts(" B in ");
	con_putu(s.used_blocks);
	con_puts(" blocks, free ");
	con_putu(s.free_bytes);
	con_puts(" B in ");
	con_putu(s.free_blocks);
	con_puts(" blocks, cached ");
	con_putu(s.cached_bytes);
	con_puts(" B in ");
	con_putu(s.cached_blocks);
	con_puts(" blocks; peak in use ");
	con_putu(s.peak_in_use_bytes);
	con_puts(" B\n  largest allocation sure to succeed: ");
	con_putu(s.largest_free - KHEAP_BLOCK_OVERHEAD);
	con_puts(" B\n  (below the largest free block: for an O(1) search a request is rounded\n"
		 "  up to a bin in which every block fits it; kheap_stats.largest_free)\n  ");
	con_putu(s.alloc_count);
	con_puts(" allocs, ");
	con_putu(s.free_count);
	con_puts(" frees\n");
}

/* An object cache as a kernel uses one: objects of one type, a reserve
 * filled before a section with interrupts off, allocations inside it that
 * can neither fail nor take the lock, and the cache's figures. */
static void objcache_demo(struct kheap *h)
{
	struct kheap_cache *c = kheap_cache_create(h, "task_struct", 320, 64, 0);
	if (c == 0)
		board_exit(1);
	enum { N = 16 };
	void *obj[N];
	int ok = kheap_cache_reserve(c, N) == 0;
	uintptr_t irq = kheap_irq_save(); /* as an interrupt handler runs */
	unsigned got = 0;
	for (unsigned i = 0; i < N; i++)
		got += (obj[i] = kheap_cache_alloc(c)) != 0;
	kheap_irq_restore(irq);
	con_puts("object cache \"task_struct\" (320 B, 64-aligned): reserved ");
	con_putu(N);
	con_puts(ok ? " (ok)" : " (FAILED)");
	con_puts(", then with interrupts off allocated ");
	con_putu(got);
	con_puts(", first at ");
	con_putx((uint64_t)(uintptr_t)obj[0]);
	con_puts("\n");
	for (unsigned i = 0; i < N / 2; i++)
		kheap_cache_free(c, obj[i]);
	struct kheap_cache_stats st;
	kheap_cache_stats(c, &st);
	con_puts("  freed 8; kheap_cache_stats: block ");
	con_putu(st.obj_block);
	con_puts(" B, in use ");
	con_putu(st.in_use);
	con_puts(", cached ");
	con_putu(st.cached);
	con_puts(", reserved ");
	con_putu(st.reserved);
	con_puts(", slabs ");
	con_putu(st.slabs);
	con_puts(", allocs ");
	con_putu(st.allocs);
	con_puts(" (");
	con_putu(st.hits);
	con_puts(" without the lock), refills ");
	con_putu(st.misses);
	con_puts(", reserve fills ");
	con_putu(st.reserve_fills);
	con_puts("\n");
	for (unsigned i = N / 2; i < N; i++)
		kheap_cache_free(c, obj[i]);
	con_puts("  kheap_cache_destroy: ");
	con_putu((uint64_t)-kheap_cache_destroy(c));
	con_puts(" (0: every object back), kheap_check: ");
	con_putu((uint64_t)kheap_check(h));
	con_puts(" problems\n\n");
}

void leak_demo(void); /* leak_demo.c: the leak report that ends the demo */

void kmain(void)
{
	if (KHEAP_TAGS) { /* make run's last boot: the leak report with sites and ages */
		leak_demo();
		board_exit(0);
	}
	size_t size = (size_t)(__heap_end - __heap_start);
	con_puts("kheap demo: arena ");
	con_putx((uint64_t)(uintptr_t)__heap_start);
	con_puts(" .. ");
	con_putx((uint64_t)(uintptr_t)__heap_end);
	con_puts(" (");
	con_putu(size >> 20);
	con_puts(" MiB, from the linker script)\n");
	con_puts(board_memory());
	con_puts("\n");
	struct kheap *h = kheap_init(__heap_start, size);
	if (h == 0)
		board_exit(1);

	void *p[8];
	static const size_t sizes[8] = {24, 100, 1000, 5000, 64, 300, 70000, 16};
	for (unsigned i = 0; i < 8; i++) {
		p[i] = kheap_alloc(h, sizes[i]);
		con_puts("alloc ");
		con_putu_w(sizes[i], 6);
		con_puts(" -> ");
		con_putx((uint64_t)(uintptr_t)p[i]);
		con_puts(" usable ");
		con_putu(kheap_usable_size(h, p[i]));
		con_puts(" B\n");
	}
	void *a = kheap_aligned_alloc(h, 4096, 200);
	con_puts("aligned_alloc(4096, 200) -> ");
	con_putx((uint64_t)(uintptr_t)a);
	con_puts("\n");
	p[1] = kheap_realloc(h, p[1], 2000);
	con_puts("realloc(100 -> 2000) -> ");
	con_putx((uint64_t)(uintptr_t)p[1]);
	con_puts("\nfree the 1000, 64 and 70000-byte blocks\n");
	kheap_free(h, p[2]);
	kheap_free(h, p[4]);
	kheap_free(h, p[6]);
	stats(h);
	con_puts("blocks (kheap_dump, first 12; cached: freed, kept for reuse by a size-class cache):\n"
		 "  address              block bytes  state\n");
	static struct listing l;
	kheap_dump(h, gather, &l);
	con_puts("  ... ");
	con_putu(l.blocks);
	con_puts(" blocks in all\n");
	con_puts("kheap_check: ");
	con_putu((uint64_t)kheap_check(h));
	con_puts(" problems\n\n");
	board_percpu = 1; /* this CPU gets a per-CPU cache: the lock-free path */
	objcache_demo(h);
	board_percpu = 0;
	bench_run();
	leak_demo();
	board_exit(0);
}
