/*
 * demo.c: the heap at work, on the host. Two "RAM banks" (static arrays),
 * a mixed workload, the statistics, a walk of the first blocks, a caught
 * double free, and the validator's verdict. `make host-demo` runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kheap.h"

static _Alignas(16) unsigned char bank0[2u << 20];
static _Alignas(16) unsigned char bank1[1u << 20];

static void print_stats(struct kheap *h, const char *when)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	printf("\n-- stats %s --\n", when);
	printf("  regions %u, managed %zu bytes\n", st.regions, st.total_bytes);
	printf("  in use  %8zu bytes in %zu blocks (peak %zu)\n", st.in_use_bytes, st.used_blocks,
	       st.peak_in_use_bytes);
	printf("  free    %8zu bytes in %zu blocks, largest sure allocation %zu bytes\n", st.free_bytes,
	       st.free_blocks, st.largest_free ? st.largest_free - 8 : 0);
	printf("  cached  %8zu bytes in %zu blocks (size-class lists)\n", st.cached_bytes, st.cached_blocks);
	printf("  allocs %llu, frees %llu, out-of-memory %llu, reported errors %llu\n",
	       (unsigned long long)st.alloc_count, (unsigned long long)st.free_count,
	       (unsigned long long)st.oom_count, (unsigned long long)st.error_count);
}

struct walk {
	unsigned shown, blocks;
};

static void show_block(void *ctx, void *ptr, size_t size, int used)
{
	struct walk *w = ctx;
	if (w->shown < 12) {
		printf("  %p %8zu bytes %s\n", ptr, size, used ? "used" : "free");
		w->shown++;
	}
	w->blocks++;
}

static void on_report(void *ctx, const struct kheap_report *r)
{
	(void)ctx;
	printf("  report: kind %d, %s (ptr %p, caller %p)\n", (int)r->kind, r->msg, r->ptr, r->caller);
}

struct node {
	struct node *next;
	char name[40];
};

int main(void)
{
	struct kheap *h = kheap_init(bank0, sizeof bank0);
	if (h == NULL || kheap_add_region(h, bank1, sizeof bank1) != 0)
		return 1;
	printf("kheap demo: heap on bank0 %p (+%zu), bank1 %p (+%zu); control block %zu bytes\n",
	       (void *)bank0, sizeof bank0, (void *)bank1, sizeof bank1, kheap_control_size());

	struct node *list = NULL;
	for (int i = 0; i < 1000; i++) { /* a linked list of small nodes */
		struct node *n = kheap_alloc(h, sizeof *n);
		snprintf(n->name, sizeof n->name, "node-%d", i);
		n->next = list;
		list = n;
	}
	void *pages[8];
	for (int i = 0; i < 8; i++) /* page-aligned buffers */
		pages[i] = kheap_aligned_alloc(h, 4096, 4096);
	char *log = NULL;
	size_t len = 0;
	for (int i = 0; i < 200; i++) { /* a growing log, realloc'd */
		char line[64];
		int n = snprintf(line, sizeof line, "event %d\n", i);
		log = kheap_realloc(h, log, len + (size_t)n + 1);
		memcpy(log + len, line, (size_t)n + 1);
		len += (size_t)n;
	}
	int *table = kheap_calloc(h, 10000, sizeof *table);
	print_stats(h, "after the workload");

	for (struct node *n = list, *next; n; n = next) { /* free every other node */
		next = n->next;
		if (n->name[5] % 2 == 0)
			kheap_free(h, n);
	}
	for (int i = 0; i < 8; i += 2)
		kheap_free(h, pages[i]);
	print_stats(h, "after freeing half");

	struct walk w = {0, 0};
	printf("\n-- first blocks of the walk --\n");
	kheap_walk(h, show_block, &w);
	printf("  ... %u blocks in all\n", w.blocks);

	printf("\n-- misuse is caught, refused and reported --\n");
	kheap_set_report(h, on_report, NULL);
	kheap_free(h, pages[0]);        /* double free */
	kheap_free(h, log + 16);        /* interior pointer */
	kheap_free(h, (void *)&w);      /* not from this heap */
	printf("  kheap_check: %d problems\n", kheap_check(h));
	kheap_free(h, table);
	kheap_free(h, log);
	print_stats(h, "at the end");
	printf("\nkheap_check: %d problems\n", kheap_check(h));
	return kheap_check(h) != 0;
}
