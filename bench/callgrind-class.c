/*
 * callgrind-class.c: the small-block hot path, for instruction counting
 * under valgrind --tool=callgrind (tools/callgrind-class.sh). Linked with
 * whichever libkheap.a is given, so the same loop measures the assembly and
 * the C twins.
 *
 *   callgrind-class class N   N x (kh_size_class, kh_cpu_pop, kh_cpu_push)
 *                             on prepared class lists
 *   callgrind-class heap N    N x (kheap_alloc, kheap_free) on a warm heap
 *   callgrind-class big N     the same with 2-8 KiB blocks (the bins, not the caches)
 *
 * Sizes cycle through eight small requests covering both class formulas.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kh_class.h"
#include "kheap.h"

static const size_t small_sizes[8] = {16, 24, 40, 100, 200, 248, 500, 1000};
static const size_t big_sizes[8] = {2000, 3000, 4096, 5000, 6000, 7000, 8000, 2500};
static const size_t *sizes = small_sizes;

static _Alignas(16) unsigned char arena[1u << 20];
static _Alignas(16) unsigned char blocks[KH_NCLASSES][4][32]; /* a listed block's link and token */
static struct kh_class lists[KH_NCLASSES];

#define KEY ((uintptr_t)0x9e3779b97f4a7c10u)
#define TKEY ((uintptr_t)0x5a5a5a5a5a5a5a50u)

__attribute__((noinline)) static unsigned long class_loop(unsigned long n)
{
	unsigned long sum = 0;
	for (unsigned long i = 0; i < n; i++) {
		unsigned c = kh_size_class(sizes[i & 7]);
		void *p = kh_cpu_pop(&lists[c], KEY, TKEY);
		sum += kh_cpu_push(&lists[c], p, KEY, TKEY);
	}
	return sum;
}

__attribute__((noinline)) static unsigned long heap_loop(struct kheap *h, unsigned long n)
{
	unsigned long sum = 0;
	for (unsigned long i = 0; i < n; i++) {
		void *p = kheap_alloc(h, sizes[i & 7]);
		sum += p != NULL;
		kheap_free(h, p);
	}
	return sum;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	unsigned long n = strtoul(argv[2], NULL, 0), done;
	if (argv[1][0] == 'c') {
		for (unsigned c = 0; c < KH_NCLASSES; c++) {
			lists[c].limit = 4;
			for (unsigned k = 0; k < 4; k++)
				kh_cpu_push(&lists[c], blocks[c][k], KEY, TKEY);
		}
		done = class_loop(n);
	} else {
		if (argv[1][0] == 'b')
			sizes = big_sizes;
		struct kheap *h = kheap_init(arena, sizeof arena);
		if (!h)
			return 1;
		heap_loop(h, 64); /* warm: every class list holds a block */
		done = heap_loop(h, n);
		if (kheap_check(h) != 0)
			return 1;
	}
	printf("%lu\n", done);
	return done == n ? 0 : 1;
}
