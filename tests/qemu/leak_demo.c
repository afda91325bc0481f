/*
 * leak_demo.c: the end of the `make run` demo: a heap holding a small
 * "driver" state, one request buffer leaked on purpose by leaky_request(),
 * and the leak report over the kernel's own roots (leak_roots.c), with the
 * instructions the scan took. The report names the leak by site and age when
 * the library has caller tags (make run's last boot, TAGS=1, runs this part
 * alone); without, by address and size.
 */
#include "board.h"
#include "console.h"
#include "kheap.h"
#include "leak_roots.h"

struct request {
	struct request *next;
	unsigned id;
	char data[116];
};

static struct request *queue; /* the driver's pending requests: a root in .bss */

__attribute__((noinline)) static void queue_request(struct kheap *h, unsigned id)
{
	struct request *r = kheap_calloc(h, 1, sizeof *r);
	if (r == 0)
		return;
	r->id = id;
	r->next = queue;
	queue = r;
}

/* The bug: the buffer is made, used and forgotten. */
__attribute__((noinline)) static void leaky_request(struct kheap *h)
{
	struct request *r = kheap_calloc(h, 1, sizeof *r);
	if (r != 0)
		r->id = 99;
}

static void con_putc(void *ctx, char c)
{
	(void)ctx;
	board_putc(c);
}

void leak_demo(void)
{
	/* The scratch is the top 1/32 of the arena, kept out of the heap. */
	size_t size = (size_t)(__heap_end - __heap_start), spare = (size / 32) & ~(size_t)15;
	struct kheap *h = kheap_init(__heap_start, size - spare);
	if (h == 0)
		board_exit(1);
	for (unsigned i = 0; i < 40; i++)
		queue_request(h, i);
	leaky_request(h);
	for (unsigned i = 0; i < 200; i++) /* traffic after the leak: its age grows */
		kheap_free(h, kheap_alloc(h, 64 + i));
	size_t min, full = kheap_leak_scratch_size(h, &min);
	con_puts("\nleak scan: heap ");
	con_putu((size - spare) >> 20);
	con_puts(" MiB, scratch ");
	con_putu(spare >> 10);
	con_puts(" KiB (it needs ");
	con_putu(min >> 10);
	con_puts(" KiB, ");
	con_putu(full >> 10);
	con_puts(" KiB for the fastest scan), roots .data+.bss and this stack\n");
	board_counter_init();
	uint64_t t0 = board_counter();
	int rc = kernel_leak_report(h, __heap_end - spare, spare, con_putc, 0);
	uint64_t t1 = board_counter();
	con_puts("leak scan: rc ");
	con_putu((uint64_t)(rc < 0 ? -rc : rc));
	con_puts(", ");
	con_putu(t1 - t0);
	con_puts(" ");
	con_puts(board_counter_name());
	con_puts(KHEAP_TAGS ? "\n" : " (make run's last boot, with TAGS=1, names each leak's site and age)\n");
}
