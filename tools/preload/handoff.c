/*
 * handoff.c: every block is freed by another thread than the one that
 * allocated it (the shape of xmalloc-test): P producer threads each
 * allocate batches of B small blocks of mixed sizes and hand each batch to
 * their consumer thread, which checks and frees it. Per-thread caches then
 * fill on one side and run dry on the other, so the cost of moving blocks
 * between a thread's cache and the shared heap decides the speed.
 * The output is the same for every allocator.
 * Usage: handoff [pairs [rounds]]   (defaults 4, 20000; B is 256)
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { B = 256, PAIRS_MAX = 64 };

struct pair {
	_Atomic(uintptr_t *) slot; /* one batch in flight */
	unsigned long bad;
};

static struct pair pairs[PAIRS_MAX];
static long rounds = 20000;

static size_t size_of(int i) { return 16 + (size_t)(i % 8) * 24; }

static void *produce(void *arg)
{
	struct pair *q = arg;
	for (long r = 0; r < rounds; r++) {
		uintptr_t *v = malloc(B * sizeof *v);
		if (v == NULL)
			abort();
		for (int i = 0; i < B; i++) {
			unsigned char *p = malloc(size_of(i));
			if (p == NULL)
				abort();
			p[0] = p[size_of(i) - 1] = (unsigned char)i;
			v[i] = (uintptr_t)p;
		}
		while (atomic_load(&q->slot) != NULL)
			sched_yield();
		atomic_store(&q->slot, v);
	}
	return NULL;
}

static void *consume(void *arg)
{
	struct pair *q = arg;
	for (long r = 0; r < rounds; r++) {
		uintptr_t *v;
		while ((v = atomic_exchange(&q->slot, NULL)) == NULL)
			sched_yield();
		for (int i = 0; i < B; i++) {
			unsigned char *p = (unsigned char *)v[i];
			q->bad += p[0] != (unsigned char)i || p[size_of(i) - 1] != (unsigned char)i;
			free(p);
		}
		free(v);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	if (argc > 2)
		rounds = atol(argv[2]);
	if (n < 1 || n > PAIRS_MAX || rounds < 1)
		return 2;
	pthread_t t[2 * PAIRS_MAX];
	for (int k = 0; k < n; k++)
		if (pthread_create(&t[2 * k], NULL, produce, &pairs[k]) != 0 ||
		    pthread_create(&t[2 * k + 1], NULL, consume, &pairs[k]) != 0)
			return 2;
	unsigned long bad = 0;
	for (int k = 0; k < n; k++) {
		pthread_join(t[2 * k], NULL);
		pthread_join(t[2 * k + 1], NULL);
		bad += pairs[k].bad;
	}
	printf("handoff: %d pairs x %ld batches of %d blocks, %lu damaged\n", n, rounds, B, bad);
	return bad != 0;
}
