/*
 * churn.c: a bounded multi-threaded malloc workload, the shape that makes a
 * lock-bound allocator collapse. T threads (more than the cores) each run
 * a fixed number of operations on their own table of blocks: allocate a
 * block of a mixed size (mostly small, some up to 256 KiB) into an empty
 * slot, or free the one there; one block in eight is instead passed through
 * a shared mailbox, so that another thread frees it (cross-thread frees).
 * Every block carries its size and a stamp at both ends, checked before it
 * is freed. With several waves, each wave's threads exit before the next
 * wave's start (an allocator with per-thread caches must hand them on).
 * The output is the same for every allocator.
 * Usage: churn [threads [ops-per-thread [waves]]]   (defaults 8, 200000, 1)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 512
#define MAILBOX 1024

static _Atomic(unsigned char *) mailbox[MAILBOX];
static atomic_ulong bad;
static unsigned long ops_per_thread = 200000;

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Mostly small sizes, as real programs ask for. */
static size_t pick_size(uint64_t *s)
{
	unsigned r = (unsigned)(next(s) % 1000);
	if (r < 800)
		return 16 + next(s) % 240;
	if (r < 950)
		return 256 + next(s) % 768;
	if (r < 998)
		return 1024 + next(s) % (31u << 10);
	return (64u << 10) + next(s) % (192u << 10);
}

static unsigned char *make(size_t n, uint64_t stamp)
{
	unsigned char *p = malloc(n);
	if (p == NULL)
		return NULL;
	memcpy(p, &n, sizeof n);
	p[sizeof n] = (unsigned char)stamp;
	p[n - 1] = (unsigned char)(stamp ^ 0x5a);
	return p;
}

static void drop(unsigned char *p)
{
	if (p == NULL)
		return;
	size_t n;
	memcpy(&n, p, sizeof n);
	if (n < 16 || n > (256u << 10) || (unsigned char)(p[sizeof n] ^ 0x5a) != p[n - 1])
		atomic_fetch_add(&bad, 1);
	free(p);
}

static void *worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15u * ((uintptr_t)arg + 1);
	unsigned char *slot[SLOTS] = {0};
	for (unsigned long i = 0; i < ops_per_thread; i++) {
		unsigned k = (unsigned)(next(&s) % SLOTS);
		if (slot[k] == NULL) {
			slot[k] = make(pick_size(&s), next(&s));
		} else if (next(&s) % 8 == 0) {
			drop(atomic_exchange(&mailbox[next(&s) % MAILBOX], slot[k]));
			slot[k] = NULL;
		} else {
			drop(slot[k]);
			slot[k] = NULL;
		}
	}
	for (unsigned k = 0; k < SLOTS; k++)
		drop(slot[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 8;
	if (argc > 2)
		ops_per_thread = strtoul(argv[2], NULL, 10);
	unsigned waves = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
	if (threads < 1 || threads > 1024 || ops_per_thread < 1 || waves < 1) {
		fprintf(stderr, "usage: churn [threads 1..1024 [ops-per-thread [waves]]]\n");
		return 2;
	}
	pthread_t *t = calloc(threads, sizeof *t);
	for (unsigned w = 0; w < waves; w++) {
		for (unsigned i = 0; i < threads; i++)
			if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(w * threads + i)) != 0) {
				perror("pthread_create");
				return 1;
			}
		for (unsigned i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
	}
	for (unsigned i = 0; i < MAILBOX; i++)
		drop(atomic_exchange(&mailbox[i], NULL));
	free(t);
	printf("churn: %u waves of %u threads x %lu ops, %lu bad blocks\n", waves, threads, ops_per_thread,
	       atomic_load(&bad));
	return atomic_load(&bad) != 0;
}
