/*
 * leak.c: what the leak scan costs (make leak-bench). Hosted, single
 * thread, the library at -O2. Three heaps on a 64 MiB arena isolate the
 * three terms of the cost in kheap.h:
 *   empty   one free block: the per-MiB setup (clearing the marks, the index);
 *   blocks  N small blocks in one list from a root: the per-block cost
 *           (a header step, a lookup and a mark per block);
 *   bytes   16 blocks of 2 MiB of non-pointer data: the per-MiB cost of
 *           reading held bytes.
 * Each figure is the median of 9 scans, with the scratch that
 * kheap_leak_scratch_size asks for (one pass, finest index).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kheap.h"

#define ARENA ((size_t)64 << 20)
#define RUNS 9

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void *root;

/* Median ns of one scan of h; *leaks gets the count. */
static double scan_ns(struct kheap *h, size_t *leaks)
{
	static void *scratch;
	static size_t have;
	size_t min, need = kheap_leak_scratch_size(h, &min);
	if (need > have) {
		free(scratch);
		scratch = malloc(need);
		have = need;
	}
	struct kheap_range r = {&root, &root + 1};
	struct kheap_leak_result res;
	double t[RUNS];
	for (int i = 0; i < RUNS; i++) {
		double t0 = now();
		if (kheap_leak_scan(h, &r, 1, scratch, need, NULL, NULL, &res) != 0)
			abort();
		t[i] = now() - t0;
	}
	qsort(t, RUNS, sizeof t[0], cmp);
	*leaks = res.leaks;
	return t[RUNS / 2];
}

int main(int argc, char **argv)
{
	size_t nblocks = argc > 1 ? strtoul(argv[1], NULL, 0) : 200000;
	void *arena = aligned_alloc(4096, ARENA);
	size_t leaks;

	struct kheap *h = kheap_init(arena, ARENA);
	double empty = scan_ns(h, &leaks);
	printf("empty  64 MiB heap, 0 blocks:        %8.0f us  = %6.1f us per MiB of heap\n", empty / 1e3,
	       empty / 1e3 / 64);

	h = kheap_init(arena, ARENA);
	void **prev = (void **)&root;
	for (size_t i = 0; i < nblocks; i++) {
		void **b = kheap_alloc(h, 48);
		memset(b, 0, 48);
		*prev = b;
		prev = b;
	}
	double blocks = scan_ns(h, &leaks);
	printf("blocks 64 MiB heap, %zu x 48 B:  %8.0f us  = %6.1f ns per block (after the empty-heap cost)%s\n",
	       nblocks, blocks / 1e3, (blocks - empty) / (double)nblocks, leaks ? " LEAKS?" : "");

	h = kheap_init(arena, ARENA);
	prev = (void **)&root;
	for (int i = 0; i < 16; i++) {
		uint64_t *b = kheap_alloc(h, (size_t)2 << 20);
		for (size_t k = 1; k < ((size_t)2 << 20) / 8; k++)
			b[k] = k * 0x9e3779b97f4a7c15u | 1u; /* odd: never a pointer */
		*prev = b;
		prev = (void **)b;
		b[0] = 0;
	}
	double bytes = scan_ns(h, &leaks);
	printf("bytes  64 MiB heap, 16 x 2 MiB held:  %8.0f us  = %6.1f us per MiB of held bytes read%s\n",
	       bytes / 1e3, (bytes - empty) / 1e3 / 32, leaks ? " LEAKS?" : "");
	return 0;
}
