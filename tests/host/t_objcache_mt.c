/*
 * t_objcache_mt.c: object caches under four threads, each a CPU with its
 * own lists (host_cpu.c). Objects of four caches and plain blocks pass
 * between threads through shared slots (so most frees land on another
 * CPU's list than the one the object came from), every object carries a
 * stamp that is verified before it is freed, the threads meet at a barrier
 * now and then and one runs kheap_check (a concurrent one would read the
 * token word of objects their holders are writing: a race TSan rightly
 * names; the checks the heap makes on its own are race-free), and reserves
 * are taken and used as an interrupt handler would. At the end every
 * object is back and the heap is one free block. Host only: pthreads.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "kt.h"

#define THREADS 4
#define OPS 200000u
#define SLOTS 512u
#define ARENA (8u << 20)

static _Alignas(64) unsigned char arena[ARENA];
static struct kheap *heap;
static struct kheap_cache *caches[4];
static const size_t sizes[4] = {64, 192, 512, 2048};
static void *_Atomic slot[SLOTS];
static pthread_barrier_t meet;

struct mt_worker {
	pthread_t tid;
	uint64_t seed;
	unsigned bad, failed, checks_bad;
};
static struct mt_worker mt_workers[THREADS];

/* Slot i holds objects of cache i % 4, or (i % 8 == 7) plain 300-byte blocks. */
static int plain(unsigned i) { return i % 8 == 7; }
static size_t slot_size(unsigned i) { return plain(i) ? 300 : sizes[i % 4]; }

static void stamp(void *p, size_t n, uint64_t token)
{
	*(uint64_t *)p = token;
	kt_fill((char *)p + 8, (n < 256 ? n : 256) - 8, token);
}

static int stamped(const void *p, size_t n)
{
	return kt_verify((const char *)p + 8, (n < 256 ? n : 256) - 8, *(const uint64_t *)p);
}

static void give(unsigned i, void *p)
{
	if (plain(i))
		kheap_free(heap, p);
	else
		kheap_cache_free(caches[i % 4], p);
}

static void *mt_work(void *arg)
{
	struct mt_worker *w = arg;
	for (unsigned op = 0; op < OPS; op++) {
		unsigned i = (unsigned)kt_below(&w->seed, SLOTS);
		void *p = atomic_exchange(&slot[i], NULL);
		if (p != NULL) {
			if (!stamped(p, slot_size(i)))
				w->bad++;
			give(i, p);
		} else {
			p = plain(i) ? kheap_alloc(heap, 300) : kheap_cache_alloc(caches[i % 4]);
			if (p == NULL) {
				w->failed++;
				continue;
			}
			stamp(p, slot_size(i), kt_rand(&w->seed));
			void *expect = NULL;
			if (!atomic_compare_exchange_strong(&slot[i], &expect, p))
				give(i, p);
		}
		if (op % 4096 == 0) {
			/* An interrupt handler's pattern: reserve, then allocate
			 * without failing, then give it all back. */
			struct kheap_cache *c = caches[op / 4096 % 4];
			void *r[8];
			if (kheap_cache_reserve(c, 8) != 0) {
				w->failed++;
			} else {
				for (unsigned j = 0; j < 8; j++)
					if ((r[j] = kheap_cache_alloc(c)) == NULL)
						w->failed++;
				for (unsigned j = 0; j < 8; j++)
					kheap_cache_free(c, r[j]);
			}
		}
		if (op % 20000 == 0) {
			pthread_barrier_wait(&meet);
			if (w == &mt_workers[0] && kheap_check(heap) != 0)
				w->checks_bad++;
			pthread_barrier_wait(&meet);
		}
	}
	kheap_trim(heap); /* this CPU's lists */
	return NULL;
}

KT_CASE(objcache_threads_share_caches)
{
	struct kt_rec rec;
	kt_percpu(1);
	heap = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(heap != NULL);
	static const char *const names[4] = {"obj64", "obj192", "obj512", "obj2048"};
	for (unsigned c = 0; c < 4; c++) {
		caches[c] = kheap_cache_create(heap, names[c], sizes[c], 0, 0);
		KT_REQUIRE(caches[c] != NULL);
	}
	for (unsigned i = 0; i < SLOTS; i++)
		atomic_store(&slot[i], NULL);
	KT_REQUIRE(pthread_barrier_init(&meet, NULL, THREADS) == 0);
	for (unsigned t = 0; t < THREADS; t++) {
		mt_workers[t] = (struct mt_worker){.seed = 0x9e3779b9u * (t + 1)};
		KT_REQUIRE(pthread_create(&mt_workers[t].tid, NULL, mt_work, &mt_workers[t]) == 0);
	}
	for (unsigned t = 0; t < THREADS; t++) {
		pthread_join(mt_workers[t].tid, NULL);
		KT_EQ(mt_workers[t].bad, 0);
		KT_EQ(mt_workers[t].failed, 0);
		KT_EQ(mt_workers[t].checks_bad, 0);
	}
	pthread_barrier_destroy(&meet);
	KT_EQ(rec.count, 0);
	KT_EQ(kt_heap_check(heap), 0);
	size_t held = 0;
	for (unsigned i = 0; i < SLOTS; i++) {
		void *p = atomic_exchange(&slot[i], NULL);
		if (p == NULL)
			continue;
		KT_CHECK(stamped(p, slot_size(i)));
		held += !plain(i);
		give(i, p);
	}
	size_t in_use = 0;
	uint64_t allocs = 0, frees = 0, hits = 0;
	for (unsigned c = 0; c < 4; c++) {
		struct kheap_cache_stats st;
		KT_EQ(kheap_cache_stats(caches[c], &st), 0);
		in_use += st.in_use;
		allocs += st.allocs;
		frees += st.frees;
		hits += st.hits;
		KT_EQ(st.objects, st.in_use + st.cached);
		KT_EQ(st.reserved, 0);
	}
	KT_EQ(in_use, 0);
	KT_EQ(allocs, frees);
	KT_CHECK(held > 0);
	/* With per-CPU lists (not in tags builds) most allocations hit them. */
	KT_CHECK(KHEAP_MAX_CPUS == 0 || KHEAP_TAGS || hits > allocs / 2);
	for (unsigned c = 0; c < 4; c++)
		KT_EQ(kheap_cache_destroy(caches[c]), 0);
	kheap_trim(heap);
	struct kheap_stats hs;
	kheap_get_stats(heap, &hs);
	KT_EQ(hs.in_use_bytes, 0);
	KT_EQ(hs.free_blocks, 1);
	KT_EQ(kt_heap_check(heap), 0);
	KT_EQ(rec.count, 0);
}

/* A CPU that reserved objects goes offline: kheap_cpu_dead gives its
 * list back, the reserve included (kheap.h, kheap_cache_reserve). */
struct reserver {
	struct kheap_cache *c;
	unsigned cpu;
	int rc;
};

static void *reserve_and_exit(void *arg)
{
	struct reserver *r = arg;
	r->rc = kheap_cache_reserve(r->c, 5);
	uintptr_t irq = kheap_irq_save();
	r->cpu = kheap_cpu_id();
	kheap_irq_restore(irq);
	return NULL;
}

KT_CASE(objcache_cpu_dead_frees_that_cpus_reserve)
{
	struct kt_rec rec;
	kt_percpu(1);
	heap = kt_heap(arena, ARENA, &rec);
	KT_REQUIRE(heap != NULL);
	struct kheap_cache *c = kheap_cache_create(heap, "dead", 100, 0, 0);
	KT_REQUIRE(c != NULL);
	struct reserver r = {c, KHEAP_NO_CPU, -1};
	pthread_t t;
	KT_REQUIRE(pthread_create(&t, NULL, reserve_and_exit, &r) == 0);
	pthread_join(t, NULL);
	KT_EQ(r.rc, 0);
	struct kheap_cache_stats st;
	KT_EQ(kheap_cache_stats(c, &st), 0);
	if (KHEAP_MAX_CPUS > 0 && !KHEAP_TAGS) { /* else the reserve is the depot's: no CPU to lose */
		KT_REQUIRE(r.cpu < KHEAP_MAX_CPUS);
		KT_EQ(st.reserved, 5);
		kheap_trim(heap); /* keeps reserves */
		KT_EQ(kheap_cache_stats(c, &st), 0);
		KT_EQ(st.reserved, 5);
		kheap_cpu_dead(heap, r.cpu);
		KT_EQ(kheap_cache_stats(c, &st), 0);
		KT_EQ(st.reserved, 0);
		KT_EQ(st.cached, 0);
	}
	KT_EQ(kt_heap_check(heap), 0);
	KT_EQ(kheap_cache_unreserve(c, 5), 0); /* the depot's, when that held it */
	KT_EQ(kheap_cache_destroy(c), 0);
	kheap_trim(heap);
	struct kheap_stats hs;
	kheap_get_stats(heap, &hs);
	KT_EQ(hs.in_use_bytes, 0);
	KT_EQ(hs.free_blocks, 1);
	KT_EQ(rec.count, 0);
}
