/*
 * t_threads.c: four threads share one heap. Each owns its own slots, stamps
 * every block on alloc and verifies it on free, so a race inside the heap
 * (two threads handed overlapping blocks, a lost free-list update) shows up
 * as a broken stamp, a failed kheap_check, or counters that do not add up.
 * Host only: it uses pthreads.
 */
#include <pthread.h>

#include "kt.h"

#define THREADS 4
#define OPS 200000u
#define TSLOTS 256u
#define ARENA (16u << 20)

static _Alignas(16) unsigned char arena[ARENA];
static struct kheap *shared;

struct worker {
	pthread_t tid;
	uint64_t seed;
	unsigned bad, live;
	struct {
		unsigned char *p;
		size_t n;
		uint64_t token;
	} slot[TSLOTS];
};
static struct worker workers[THREADS];

static void *work(void *arg)
{
	struct worker *w = arg;
	for (unsigned op = 0; op < OPS; op++) {
		unsigned i = (unsigned)kt_below(&w->seed, TSLOTS);
		if (w->slot[i].p == NULL) {
			size_t n = kt_below(&w->seed, 4) ? 8 + kt_below(&w->seed, 600) : 600 + kt_below(&w->seed, 20000);
			unsigned char *p = kt_below(&w->seed, 8) ? kheap_alloc(shared, n)
								  : kheap_aligned_alloc(shared, 64, n);
			if (p == NULL)
				continue;
			w->slot[i].p = p, w->slot[i].n = n, w->slot[i].token = kt_rand(&w->seed);
			kt_fill(p, n < 256 ? n : 256, w->slot[i].token);
			w->live++;
		} else {
			size_t n = w->slot[i].n;
			if (!kt_verify(w->slot[i].p, n < 256 ? n : 256, w->slot[i].token))
				w->bad++;
			kheap_free(shared, w->slot[i].p);
			w->slot[i].p = NULL;
			w->live--;
		}
	}
	kheap_trim(shared); /* this thread's per-CPU cache, if it has one */
	return NULL;
}

KT_CASE(threads_four_share_one_heap)
{
	struct kt_rec rec;
	shared = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(shared != NULL);
	for (unsigned t = 0; t < THREADS; t++) {
		workers[t].seed = 0x1234567u + t;
		KT_REQUIRE(pthread_create(&workers[t].tid, NULL, work, &workers[t]) == 0);
	}
	unsigned bad = 0, live = 0;
	for (unsigned t = 0; t < THREADS; t++) {
		pthread_join(workers[t].tid, NULL);
		bad += workers[t].bad;
		live += workers[t].live;
	}
	KT_EQ(bad, 0);
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(shared), 0);
	struct kheap_stats st;
	kheap_get_stats(shared, &st);
	KT_EQ(st.used_blocks, live);
	KT_EQ(st.alloc_count - st.free_count, live);
	for (unsigned t = 0; t < THREADS; t++)
		for (unsigned i = 0; i < TSLOTS; i++)
			if (workers[t].slot[i].p)
				kheap_free(shared, workers[t].slot[i].p);
	kheap_trim(shared);
	kheap_get_stats(shared, &st);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(kt_heap_check(shared), 0);
}
