/*
 * demo.c: the `make run` kernel: a heap on the linker arena at work
 * (allocate, resize, free, stats, a kheap_walk listing, kheap_check), then
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

static unsigned listed, blocks;

static void show_block(void *ctx, void *ptr, size_t size, int used)
{
	(void)ctx;
	if (listed++ < 12) {
		con_puts("  ");
		con_putx((uint64_t)(uintptr_t)ptr);
		con_putu_w(size, 10);
		con_puts(used ? "  used\n" : "  free\n");
	}
	blocks++;
}

static void stats(struct kheap *h)
{
	struct kheap_stats s;
	kheap_get_stats(h, &s);
	con_puts("stats: in use ");
	con_putu(s.in_use_bytes);
	con_puts(" B in ");
	con_putu(s.used_blocks);
	con_puts(" blocks, free ");
	con_putu(s.free_bytes);
	con_puts(" B in ");
	con_putu(s.free_blocks);
	con_puts(", cached ");
	con_putu(s.cached_bytes);
	con_puts(" B in ");
	con_putu(s.cached_blocks);
	con_puts(", largest free ");
	con_putu(s.largest_free);
	con_puts(", peak ");
	con_putu(s.peak_in_use_bytes);
	con_puts(", allocs ");
	con_putu(s.alloc_count);
	con_puts(", frees ");
	con_putu(s.free_count);
	con_puts("\n");
}

void leak_demo(void); /* leak_demo.c: the leak report that ends the demo */

void kmain(void)
{
	size_t size = (size_t)(__heap_end - __heap_start);
	con_puts("kheap demo: arena ");
	con_putx((uint64_t)(uintptr_t)__heap_start);
	con_puts(" .. ");
	con_putx((uint64_t)(uintptr_t)__heap_end);
	con_puts(" (");
	con_putu(size >> 20);
	con_puts(" MiB, from the linker script)\n");
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
		con_puts("\n");
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
	con_puts("kheap_walk (first 12 blocks):\n  address                 size\n");
	kheap_walk(h, show_block, 0);
	con_puts("  ... ");
	con_putu(blocks);
	con_puts(" blocks in all\n");
	con_puts("kheap_check: ");
	con_putu((uint64_t)kheap_check(h));
	con_puts(" problems\n\n");
	bench_run();
	leak_demo();
	board_exit(0);
}
