/*
 * t_percpu.c: the per-CPU caches (kh_internal.h). Every case turns them on
 * for its own thread, whatever KT_PERCPU says, and checks what only they
 * do: exact statistics with blocks in per-CPU lists, double frees caught
 * without the lock (also across CPUs), corrupt lists repaired, kheap_trim's
 * drain requests, the OOM drain, and injected refill failures. Host only:
 * a second CPU is a second thread. The last cases make the other CPUs
 * drain through kheap_flush_others, which host_ipi.c implements with
 * signals (off unless a case turns it on, around the calls it tests).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "host_cpu.h"
#include "host_ipi.h"
#include "kh_internal.h"
#include "kt.h"

#if KH_PERCPU /* not in builds without them (KHEAP_MAX_CPUS=0, KHEAP_TAGS) */

#define ARENA (2u << 20)
static _Alignas(16) unsigned char arena[ARENA];

static struct kheap_stats stats(struct kheap *h)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	return st;
}

static int balanced(struct kheap *h)
{
	struct kheap_stats st = stats(h);
	return KT_EQ(st.in_use_bytes + st.free_bytes + st.cached_bytes, st.total_bytes);
}

static size_t block_bytes(struct kheap *h, void *p) { return kheap_usable_size(h, p) + KHEAP_BLOCK_OVERHEAD; }

/* Everything freed and trimmed on this (the only) CPU: one free block. */
static void all_back(struct kheap *h)
{
	kheap_trim(h);
	struct kheap_stats st = stats(h);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(kt_heap_check(h), 0);
}

/* A heap on the arena with per-CPU caches on for this thread. */
static struct kheap *percpu_heap(struct kt_rec *rec)
{
	kt_percpu(1);
	return kt_heap(arena, ARENA, rec);
}

KT_CASE(percpu_stats_are_exact)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	void *a = kheap_alloc(h, 100), *b = kheap_alloc(h, 5000), *c = kheap_alloc(h, 24);
	size_t ba = block_bytes(h, a), bb = block_bytes(h, b), bc = block_bytes(h, c);
	struct kheap_stats st = stats(h);
	KT_EQ(st.in_use_bytes, ba + bb + bc);
	KT_EQ(st.used_blocks, 3);
	KT_EQ(st.alloc_count, 3);
	KT_CHECK(st.cached_blocks > 1); /* the refills carved batches */
	KT_CHECK(balanced(h));
	kheap_free(h, b);
	kheap_free(h, a);
	st = stats(h);
	KT_EQ(st.in_use_bytes, bc);
	KT_EQ(st.used_blocks, 1);
	KT_EQ(st.free_count, 2);
	KT_CHECK(st.peak_in_use_bytes >= ba + bb + bc);
	KT_CHECK(balanced(h));
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, c);
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* The walk calls blocks on a per-CPU list free, like kheap_stats. */
static void count_used(void *ctx, void *ptr, size_t size, int used)
{
	(void)ptr, (void)size;
	*(size_t *)ctx += (size_t)used;
}

KT_CASE(percpu_walk_and_stats_agree)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	void *p[40];
	for (unsigned i = 0; i < 40; i++)
		p[i] = kheap_alloc(h, 16 + 8 * (i % 5));
	for (unsigned i = 0; i < 40; i += 3)
		kheap_free(h, p[i]);
	size_t used = 0;
	kheap_walk(h, count_used, &used);
	KT_EQ(used, stats(h).used_blocks);
	KT_EQ(used, 40 - 14);
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < 40; i++)
		if (i % 3)
			kheap_free(h, p[i]);
	all_back(h);
}

KT_CASE(percpu_double_free_is_refused)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	char *p = kheap_alloc(h, 40), *q = kheap_alloc(h, 40);
	kheap_free(h, p);
	struct kheap_stats before = stats(h);
	kheap_free(h, p);
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_EQ(kheap_usable_size(h, p), 0);
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_CHECK(kheap_realloc(h, p, 100) == NULL);
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	struct kheap_stats after = stats(h);
	KT_EQ(after.free_count, before.free_count);
	KT_EQ(after.in_use_bytes, before.in_use_bytes);
	KT_EQ(after.error_count, before.error_count + 3);
	KT_EQ(kt_heap_check(h), 0);
	char *r = kheap_alloc(h, 40); /* p again, once */
	char *s = kheap_alloc(h, 40);
	KT_CHECK(r == p && s != p && s != q);
	kheap_free(h, r), kheap_free(h, s), kheap_free(h, q);
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* ---- a second CPU --------------------------------------------------------- */

struct other {
	struct kheap *h;
	void *p;
};

static void *free_there(void *arg)
{
	struct other *o = arg;
	kheap_free(o->h, o->p); /* onto this thread's per-CPU list */
	return NULL;
}

static void on_other_cpu(void *(*fn)(void *), struct other *o)
{
	pthread_t t;
	KT_REQUIRE(pthread_create(&t, NULL, fn, o) == 0);
	pthread_join(t, NULL);
}

#if KHEAP_HARDEN >= 1
/* Level 1 on a per-CPU hit (the fused routines at level 1, with the poison
 * and canary checked around them): a write after free is reported when the
 * block is handed out again, and counted; a one-byte overflow into the
 * canary refuses the free, and the block stays held and off the list. */
KT_CASE(percpu_level1_poison_and_canary_on_a_hit)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	char *p = kheap_alloc(h, 200), *q = kheap_alloc(h, 200); /* the second from the list: a hit */
	KT_REQUIRE(p != NULL && q != NULL);
	kheap_free(h, q);
	q[40] = 1; /* dangling write */
	uint64_t errors = stats(h).error_count;
	char *r = kheap_alloc(h, 200);
	KT_CHECK(r == q);
	KT_REPORTED(&rec, KHEAP_E_USE_AFTER_FREE);
	KT_EQ(stats(h).error_count, errors + 1);
	KT_EQ(kt_heap_check(h), 0);
	size_t in_use = stats(h).in_use_bytes, n = kheap_usable_size(h, r);
	r[n] ^= 0x55; /* into the canary */
	kheap_free(h, r);
	KT_REPORTED(&rec, KHEAP_E_CANARY);
	KT_EQ(stats(h).in_use_bytes, in_use);
	r[n] ^= 0x55;
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, r);
	kheap_free(h, p);
	KT_EQ(rec.count, 0);
	all_back(h);
}
#endif

KT_CASE(percpu_double_free_across_cpus)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	struct other o = {h, kheap_alloc(h, 200)};
	on_other_cpu(free_there, &o);
	KT_EQ(rec.count, 0);
	kheap_free(h, o.p); /* it sits on the other CPU's list */
	KT_REPORTED(&rec, KHEAP_E_DOUBLE_FREE);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(stats(h).used_blocks, 0);
	KT_EQ(stats(h).free_count, 1);
}

static void *one_free(void *arg)
{
	struct other *o = arg;
	void *q = kheap_alloc(o->h, 48);
	kheap_free(o->h, q);
	return NULL;
}

/* A per-CPU heap where another CPU, a thread that has since exited, left a
 * carved batch on its list. */
static struct kheap *batch_elsewhere(struct kt_rec *rec, struct other *o)
{
	struct kheap *h = percpu_heap(rec);
	*o = (struct other){h, NULL};
	if (h != NULL)
		on_other_cpu(one_free, o);
	return h;
}

/* kheap_trim on one CPU drains its own cache at once and another CPU's at
 * that CPU's next call. */
KT_CASE(percpu_trim_asks_the_other_cpus)
{
	struct kt_rec rec;
	struct other o;
	struct kheap *h = batch_elsewhere(&rec, &o);
	KT_REQUIRE(h != NULL);
	size_t theirs = stats(h).cached_bytes;
	KT_CHECK(theirs > 0);
	void *mine = kheap_alloc(h, 300);
	o.p = kheap_alloc(h, 64);
	KT_REQUIRE(o.p != NULL);
	size_t bo = block_bytes(h, o.p);
	kheap_free(h, mine);
	KT_CHECK(stats(h).cached_bytes > theirs);
	kheap_trim(h);
	KT_EQ(stats(h).cached_bytes, theirs); /* only ours went back */
	/* The other thread has exited; the next thread takes over its number,
	 * and so its cache and the pending drain. */
	on_other_cpu(free_there, &o);
	KT_EQ(stats(h).cached_blocks, 1); /* drained to the bins, then o.p pushed */
	KT_EQ(stats(h).cached_bytes, bo);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* ---- corruption on a per-CPU list ------------------------------------------ */

KT_CASE(percpu_overwritten_link_is_repaired)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	uint64_t *p = kheap_alloc(h, 56), *q = kheap_alloc(h, 56);
	kheap_free(h, q);
	kheap_free(h, p); /* p on top, its link leads to q */
	p[0] ^= (uint64_t)1 << 62; /* a write after free into the link: it now leads out of the heap */
	void *r = kheap_alloc(h, 56);
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	KT_CHECK(r != NULL);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(balanced(h));
	kheap_free(h, r);
	all_back(h); /* p and q both came back: their tokens were intact */
}

/* A free that finds its list full takes a batch off it before the lock and
 * hands it back under the lock; a link found overwritten on the way stops
 * the batch: the blocks taken go back, the list is repaired under the
 * lock, and nothing is lost. */
KT_CASE(percpu_overwritten_link_found_by_a_drain)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	unsigned c = kh_size_class(kh_want(56));
	struct kh_class *l = &h->cpus[kheap_cpu_id()].cls[c];
	static uint64_t *p[KHEAP_CPU_CACHE_MAX + 1];
	unsigned n = 0;
	while (n < KHEAP_CPU_CACHE_MAX && (n == 0 || l->limit == 0 || n <= l->limit))
		KT_REQUIRE((p[n++] = kheap_alloc(h, 56)) != NULL);
	KT_REQUIRE(l->limit > 2 && n > l->limit);
	kheap_trim(h); /* the list empty, so that the frees below fill it exactly */
	for (unsigned i = 0; i < l->limit; i++)
		kheap_free(h, p[i]); /* the list is full */
	KT_EQ(l->count, l->limit);
	p[l->limit - 2][0] ^= (uint64_t)1 << 62; /* the second block from the top: its link leads out */
	kheap_free(h, p[l->limit]); /* full: a drain, which meets the damage */
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(balanced(h));
	for (unsigned i = l->limit + 1; i < n; i++)
		kheap_free(h, p[i]);
	KT_EQ(rec.count, 0);
	all_back(h);
}

/* ---- batches handed between CPUs through the shared lists ------------------ */

enum { HAND_MAX = 4 * KHEAP_CPU_CACHE_MAX };
static void *handed[HAND_MAX];
static unsigned nhanded;

static void *free_handed(void *arg)
{
	struct other *o = arg;
	for (unsigned i = 0; i < nhanded; i++)
		kheap_free(o->h, handed[i]);
	return NULL;
}

static void *trim_there(void *arg)
{
	struct other *o = arg;
	kheap_trim(o->h); /* this thread took over the last one's number and cache */
	return NULL;
}

/* Blocks of class c allocated here, filled, checked and freed on another
 * CPU: enough that its list fills and drains batches onto the shared list,
 * each one marked. This CPU's list is left empty. */
static void hand_over(struct kheap *h, struct other *o, unsigned c, uint32_t *batch)
{
	uint32_t limit = h->cpu_limit[c];
	*batch = (limit + 1) / 2 < KHEAP_CPU_BATCH ? (limit + 1) / 2 : KHEAP_CPU_BATCH;
	nhanded = limit + 3 * *batch;
	KT_REQUIRE(nhanded <= HAND_MAX);
	for (unsigned i = 0; i < nhanded; i++) {
		KT_REQUIRE((handed[i] = kheap_alloc(h, 56)) != NULL);
		kt_fill(handed[i], 56, i);
	}
	kheap_trim(h);
	*o = (struct other){h, NULL};
	on_other_cpu(free_handed, o);
	KT_EQ(h->cpus[kheap_cpu_id()].cls[c].count, 0);
	KT_CHECK(h->batches[c].n >= 2);
}

/* A per-CPU heap whose shared list of class c (56-byte requests) holds
 * marked batches that another CPU drained (hand_over), a whole batch on top. */
struct handed {
	struct kt_rec rec;
	struct kheap *h;
	struct other o;
	unsigned c;
	uint32_t batch;
	const struct kh_class *sl; /* the shared list of c */
};

static int batch_on_top(struct handed *t)
{
	t->h = percpu_heap(&t->rec);
	if (t->h == NULL)
		return 0;
	t->c = kh_size_class(kh_want(56));
	t->batch = 0;
	hand_over(t->h, &t->o, t->c, &t->batch);
	t->sl = &t->h->cpus[KH_SHARED].cls[t->c];
	const struct kh_batches *m = &t->h->batches[t->c];
	return m->n >= 1 && t->sl->count - m->depth[m->n - 1] == t->batch;
}

/* The other CPU's cache back too (its number's next thread trims it), no
 * report left, every block back. */
static void hand_back(struct handed *t)
{
	on_other_cpu(trim_there, &t->o);
	KT_EQ(t->rec.count, 0);
	all_back(t->h);
}

/* A refill takes a batch another CPU's drain gave whole: under the lock it
 * only moves the shared list's head to the block below the batch's mark,
 * and this CPU claims the blocks after the unlock. kheap_check follows the
 * marks down the list. */
KT_CASE(percpu_refill_takes_a_drained_batch_whole)
{
	struct handed t;
	KT_REQUIRE(batch_on_top(&t));
	struct kheap *h = t.h;
	KT_EQ(kt_heap_check(h), 0);
	const struct kh_batches *m = &h->batches[t.c];
	uint32_t n = m->n, depth = m->depth[n - 1];
	uintptr_t rest = m->rest[n - 1];
	void *q = kheap_alloc(h, 56);
	KT_REQUIRE(q != NULL);
	KT_EQ(m->n, n - 1);
	KT_EQ(t.sl->count, depth);
	KT_EQ(t.sl->head, rest);
	KT_EQ(h->cpus[kheap_cpu_id()].cls[t.c].count, t.batch - 1);
	KT_EQ(h->batches_out, 0);
	KT_EQ(kt_heap_check(h), 0);
	/* A mark that names the wrong block is found. */
	uintptr_t saved = h->batches[t.c].rest[0];
	h->batches[t.c].rest[0] = (uintptr_t)q;
	KT_EQ(kt_heap_check(h), 1);
	h->batches[t.c].rest[0] = saved;
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, q);
	hand_back(&t);
}

/* A link overwritten inside a batch is found when the batch is claimed,
 * after the unlock: the blocks claimed before it are kept, the shared list
 * (with the rest of the batch) is repaired under the lock, nothing is lost. */
KT_CASE(percpu_overwritten_link_in_a_taken_batch)
{
	struct handed t;
	KT_REQUIRE(batch_on_top(&t));
	struct kheap *h = t.h;
	uint64_t *second = (uint64_t *)kh_enc(h, (void *)t.sl->head, *(uintptr_t *)t.sl->head);
	second[0] ^= (uint64_t)1 << 62; /* a write after free: its link leads out of the heap */
	void *q = kheap_alloc(h, 56);
	KT_REPORTED(&t.rec, KHEAP_E_FREELIST);
	KT_CHECK(q != NULL);
	KT_EQ(h->cpus[kheap_cpu_id()].cls[t.c].count, 1); /* the two blocks before the damage */
	KT_EQ(t.sl->count, 0);
	KT_EQ(kt_heap_check(h), 0);
	KT_CHECK(balanced(h));
	kheap_free(h, q);
	hand_back(&t);
}

/* A locked stretch that settles an error must not take a batch it would
 * claim only after the stretch: settling a corrupt list rebuilds the heap,
 * which waits for every batch in flight, this CPU's own too. Here a drain
 * request meets a damaged list of this CPU, then the refill finds a marked
 * batch on the shared list. A hang is turned into a failure. */
static void hang_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL percpu_error_then_refill_takes_no_batch: hung (a CPU waits for its own batch)\n";
	(void)!write(2, msg, sizeof msg - 1);
	_exit(3);
}

KT_CASE(percpu_error_then_refill_takes_no_batch)
{
	struct handed t;
	KT_REQUIRE(batch_on_top(&t));
	struct kheap *h = t.h;
	uint64_t *p = kheap_alloc(h, 200), *q = kheap_alloc(h, 200);
	kheap_free(h, q);
	kheap_free(h, p);
	p[0] ^= (uint64_t)1 << 62; /* a write after free on this CPU's list of another class */
	__atomic_store_n(&h->cpus[kheap_cpu_id()].drain, 1, __ATOMIC_RELAXED); /* as kh_flush_cpus asks */
	signal(SIGALRM, hang_alarm);
	alarm(10);
	void *r = kheap_alloc(h, 56); /* the drain finds the damage; then the refill */
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	KT_REPORTED(&t.rec, KHEAP_E_FREELIST);
	KT_CHECK(r != NULL);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, r);
	hand_back(&t);
}

/* The last link of a taken batch must lead to the block below its mark:
 * one turned to a held block of another class is reported when the batch
 * is claimed, and that block is never handed out. (Popped one at a time,
 * the link would become the shared list's head unchecked: the case fails
 * when refills take no batch whole.) */
KT_CASE(percpu_last_link_of_a_taken_batch_is_checked)
{
	struct handed t;
	KT_REQUIRE(batch_on_top(&t));
	struct kheap *h = t.h;
	void *held = kheap_alloc(h, 300);
	KT_REQUIRE(held != NULL);
	uintptr_t last = t.sl->head;
	for (uint32_t i = 1; i < t.batch; i++)
		last = kh_enc(h, (void *)last, *(uintptr_t *)last);
	*(uintptr_t *)last = kh_enc(h, (void *)last, (uintptr_t)held);
	void *q = kheap_alloc(h, 56);
	KT_REPORTED(&t.rec, KHEAP_E_FREELIST);
	KT_CHECK(q != NULL && q != held);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, q);
	kheap_free(h, held);
	hand_back(&t);
}

/* kheap_check on one thread while two others hand batches through the
 * shared lists, one allocating and one freeing: whatever batch is in
 * flight, every check finds the heap sound. */
enum { FLY_N = 96, FLY_ROUNDS = 300 };
static void *fly_p[FLY_N];
static atomic_int fly_phase, fly_stop, fly_problems, fly_checks;
static struct kheap *fly_h;

static void *fly_alloc(void *arg)
{
	(void)arg;
	for (int r = 0; r < FLY_ROUNDS; r++) {
		while (atomic_load(&fly_phase) != 0)
			sched_yield();
		for (int i = 0; i < FLY_N; i++)
			fly_p[i] = kheap_alloc(fly_h, 56);
		atomic_store(&fly_phase, 1);
	}
	while (atomic_load(&fly_phase) != 0)
		sched_yield();
	atomic_store(&fly_stop, 1);
	return NULL;
}

static void *fly_free(void *arg)
{
	(void)arg;
	while (!atomic_load(&fly_stop)) {
		if (atomic_load(&fly_phase) != 1) {
			sched_yield();
			continue;
		}
		for (int i = 0; i < FLY_N; i++)
			kheap_free(fly_h, fly_p[i]);
		atomic_store(&fly_phase, 0);
	}
	return NULL;
}

static void *fly_check(void *arg)
{
	(void)arg;
	while (!atomic_load(&fly_stop)) {
		if (kheap_check(fly_h) != 0)
			atomic_fetch_add(&fly_problems, 1);
		atomic_fetch_add(&fly_checks, 1);
		sched_yield();
	}
	return NULL;
}

KT_CASE(percpu_check_while_batches_fly)
{
	struct kt_rec rec;
	fly_h = percpu_heap(&rec);
	KT_REQUIRE(fly_h != NULL);
	atomic_store(&fly_phase, 0), atomic_store(&fly_stop, 0);
	atomic_store(&fly_problems, 0), atomic_store(&fly_checks, 0);
	pthread_t t[3];
	KT_REQUIRE(pthread_create(&t[0], NULL, fly_alloc, NULL) == 0);
	KT_REQUIRE(pthread_create(&t[1], NULL, fly_free, NULL) == 0);
	KT_REQUIRE(pthread_create(&t[2], NULL, fly_check, NULL) == 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	KT_EQ(atomic_load(&fly_problems), 0);
	KT_CHECK(atomic_load(&fly_checks) > 0);
	KT_EQ(kt_heap_check(fly_h), 0);
	KT_EQ(rec.count, 0);
}

KT_CASE(percpu_overwritten_token_is_caught)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	uint64_t *p = kheap_alloc(h, 56), *q = kheap_alloc(h, 56);
	size_t bp = block_bytes(h, p);
	kheap_free(h, q);
	kheap_free(h, p);
	p[1] = 0; /* a write after free over the token */
	void *r = kheap_alloc(h, 56);
	KT_REPORTED(&rec, KHEAP_E_FREELIST);
	KT_CHECK(r != NULL && r != p);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, r);
	kheap_trim(h);
	/* p lost its mark: it is kept as a held block, never handed out twice. */
	KT_EQ(stats(h).in_use_bytes, bp);
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, p); /* and it is sound enough to free */
	all_back(h);
	KT_EQ(rec.count, 0);
}

/* ---- running out ----------------------------------------------------------- */

KT_CASE(percpu_oom_drains_this_cpu)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	static void *p[ARENA / 32];
	unsigned n = 0;
	while (n < ARENA / 32 && (p[n] = kheap_alloc(h, 24)) != NULL)
		n++;
	KT_CHECK(n > 1000);
	for (unsigned i = 0; i < n; i++)
		kheap_free(h, p[i]);
	KT_CHECK(stats(h).cached_bytes > 0);
	/* Another class until memory runs out: the allocation that fails has
	 * drained every cache first, so nothing is left cached. */
	unsigned m = 0;
	while (m < ARENA / 32 && (p[m] = kheap_alloc(h, 200)) != NULL)
		m++;
	struct kheap_stats st = stats(h);
	KT_EQ(st.cached_bytes, 0);
	KT_CHECK(st.free_bytes < 4096);
	KT_EQ(st.oom_count, 2);
	KT_EQ(kt_heap_check(h), 0);
	for (unsigned i = 0; i < m; i++)
		kheap_free(h, p[i]);
	all_back(h);
	KT_EQ(rec.count, 0);
}

static void *big_there(void *arg)
{
	struct other *o = arg;
	kheap_free(o->h, kheap_alloc(o->h, 5000)); /* no per-CPU list involved */
	return NULL;
}

/* A CPU asked to drain does so at its next allocation or free of any kind,
 * not only at its next small one. */
KT_CASE(percpu_drain_request_met_by_a_large_call)
{
	struct kt_rec rec;
	struct other o;
	struct kheap *h = batch_elsewhere(&rec, &o);
	KT_REQUIRE(h != NULL);
	KT_CHECK(stats(h).cached_bytes > 0);
	kheap_trim(h); /* the default hook: a request only */
	KT_CHECK(stats(h).cached_bytes > 0);
	on_other_cpu(big_there, &o); /* takes over the number, and the request */
	KT_EQ(stats(h).cached_bytes, 0);
	KT_EQ(stats(h).free_blocks, 1);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* n stamped 48-byte blocks into p[], more than the first region holds: some
 * from the region that starts at b, some from before it. False when an
 * allocation failed (the caller stops). */
static bool alloc_across(struct kheap *h, void **p, unsigned n, const unsigned char *b)
{
	unsigned in_b = 0;
	for (unsigned i = 0; i < n; i++) {
		p[i] = kheap_alloc(h, 48);
		if (!KT_CHECK(p[i] != NULL))
			return false;
		kt_fill(p[i], 48, i);
		in_b += (unsigned char *)p[i] >= b;
	}
	KT_CHECK(in_b > 0 && in_b < n);
	return true;
}

/* A second region: each CPU's fast path takes it in at its next locked
 * stretch (its span snapshot, kh_internal.h), blocks from both regions go
 * through the per-CPU lists with their contents intact, and a sealed
 * header in the gap between the regions is refused as foreign. */
KT_CASE(percpu_second_region)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, 64u << 10, &rec);
	KT_REQUIRE(h != NULL);
	kheap_free(h, kheap_alloc(h, 48));
	const struct kh_cpu *cpu = &h->cpus[kheap_cpu_id()];
	KT_EQ(cpu->regions, 1);
	unsigned char *b = arena + (256u << 10);
	KT_EQ(kheap_add_region(h, b, 512u << 10), 0);
	KT_EQ(cpu->regions, 1); /* until this CPU's next locked stretch */
	enum { N = 6000 }; /* 64-byte blocks: more than the first region holds */
	static void *p[N];
	KT_REQUIRE(alloc_across(h, p, N, b));
	KT_EQ(cpu->regions, 2);
	uintptr_t g = (uintptr_t)arena + (128u << 10) + 8; /* a block address in the gap */
	kh_set(h, g, 64, KH_USED, 0);
	kheap_free(h, (void *)(g + 8));
	KT_REPORTED(&rec, KHEAP_E_FOREIGN);
	for (unsigned i = 0; i < N; i++) {
		KT_CHECK(kt_verify(p[i], 48, i));
		kheap_free(h, p[i]);
		if (i % 1000 == 0)
			KT_EQ(kt_heap_check(h), 0);
	}
	kheap_trim(h);
	struct kheap_stats st = stats(h);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.free_blocks, 2);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* Regions laid end to end (each one's lo the previous one's hi, as a
 * preload that reserves one range and grows inside it adds them) share one
 * span, so the fused calls keep serving blocks of every region; a region
 * with a gap before it empties the span again. A pointer into the bytes
 * between an end marker and the next region's first block is refused. */
KT_CASE(percpu_regions_end_to_end_share_one_span)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, 64u << 10, &rec);
	KT_REQUIRE(h != NULL);
	const struct kh_cpu *cpu = &h->cpus[kheap_cpu_id()];
	unsigned char *b = arena + (64u << 10);
	KT_EQ(kheap_add_region(h, b, 512u << 10), 0);
	kheap_free(h, kheap_alloc(h, 48)); /* a refill: the snapshot */
	KT_EQ(cpu->regions, 2);
	KT_EQ(cpu->lo, h->regions[0].first);
	KT_EQ(cpu->hi, h->regions[1].end);
	enum { N = 3000 }; /* 64-byte blocks: more than the first region holds */
	static void *p[N];
	KT_REQUIRE(alloc_across(h, p, N, b));
	uint64_t fast = cpu->frees;
	for (unsigned i = 0; i < N; i++) {
		KT_CHECK(kt_verify(p[i], 48, i));
		kheap_free(h, p[i]);
	}
	KT_CHECK(cpu->frees - fast >= N - KHEAP_CPU_CACHE_MAX); /* both regions' blocks, lock-free */
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, b); /* the end marker's payload: between the regions */
	KT_REPORTED(&rec, KHEAP_E_FOREIGN);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(kheap_add_region(h, b + (1024u << 10), 64u << 10), 0); /* after a gap */
	kheap_free(h, kheap_alloc(h, 16)); /* another class's refill */
	KT_EQ(cpu->regions, 3);
	KT_EQ(cpu->lo, 0);
	KT_EQ(cpu->hi, 0);
	kheap_trim(h);
	KT_EQ(stats(h).in_use_bytes, 0);
	KT_EQ(stats(h).free_blocks, 3);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}

/* A heap large enough for every CPU's share to hold a block or two of
 * the first classes above 1 KiB (kh_cpu_limits). */
#define BIG (16u << 20)
static _Alignas(16) unsigned char big[BIG];

/* A class above 1 KiB lives on the per-CPU lists only: a freed block of
 * one stays on this CPU's list and the next request of its class takes it
 * back without the lock; the shared lists hold none, and the locked path
 * (a caller that is no CPU) serves such a request at its own size. */
KT_CASE(percpu_large_class_stays_on_this_cpu)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(big, BIG, &rec);
	KT_REQUIRE(h != NULL);
	const struct kh_cpu *cpu = &h->cpus[kheap_cpu_id()];
	unsigned c = kh_size_class(kh_want(1200));
	size_t s = kh_class_block_size(c);
	KT_CHECK(s > KH_SHARED_MAX_BLOCK && s <= KHEAP_CPU_MAX_BLOCK);
	KT_EQ(h->cpus[KH_SHARED].cls[c].limit, 0);
	KT_REQUIRE(h->cpu_limit[c] >= 1);
	char *p = kheap_alloc(h, 1200); /* a refill: carved for this CPU */
	KT_REQUIRE(p != NULL);
	KT_EQ(kh_size(kh_block_of(p)), s);
	kt_fill(p, 1200, 1);
	uint64_t allocs = cpu->allocs, frees = cpu->frees;
	uint32_t count = cpu->cls[c].count;
	kheap_free(h, p);
	KT_EQ(cpu->frees, frees + 1);
	KT_EQ(cpu->cls[c].count, count + 1);
	KT_EQ(stats(h).cached_bytes, (count + 1) * s);
	KT_EQ(stats(h).in_use_bytes, 0);
	char *q = kheap_alloc(h, 1200);
	KT_CHECK(q == p);
	KT_EQ(cpu->allocs, allocs + 1);
	kt_percpu(0);
	char *r = kheap_alloc(h, 1200);
	KT_REQUIRE(r != NULL);
	KT_EQ(kh_size(kh_block_of(r)), kh_block_for(kh_want(1200))); /* its own size: no list keeps it */
	kheap_free(h, r);
	kheap_free(h, q); /* a locked free of a class block: to the bins */
	KT_EQ(h->cpus[KH_SHARED].cls[c].count, 0);
	KT_EQ(kt_heap_check(h), 0);
	kt_percpu(1);
	KT_EQ(rec.count, 0);
	all_back(h);
}

/* A refill carves from the request's own bin when its head holds the
 * class: a freed block of exactly the class size waits there, and TLSF's
 * search alone, which starts one bin up, would pass it by for the rest of
 * the region. */
KT_CASE(percpu_refill_takes_a_hole_of_its_class)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(big, BIG, &rec);
	KT_REQUIRE(h != NULL);
	unsigned c = kh_size_class(kh_want(1200));
	size_t s = kh_class_block_size(c);
	KT_REQUIRE(h->cpu_limit[c] >= 1 && h->cpu_limit[c] <= 2); /* a batch of one */
	kheap_free(h, kheap_alloc(h, 16)); /* the first call from a CPU turns the per-CPU path on */
	kt_percpu(0);
	char *hole = kheap_alloc(h, s - KHEAP_BLOCK_OVERHEAD); /* locked: exactly s */
	char *fence = kheap_alloc(h, 5000);
	KT_REQUIRE(hole != NULL && fence != NULL && kh_size(kh_block_of(hole)) == s);
	kheap_free(h, hole); /* to its bin, between the region's start and the fence */
	kt_percpu(1);
	char *p = kheap_alloc(h, 1200);
	KT_CHECK(p == hole);
	KT_EQ(kh_size(kh_block_of(p)), s); /* a class block: the refill's */
	kheap_free(h, p);
	kheap_free(h, fence);
	KT_EQ(rec.count, 0);
	all_back(h);
}

/* A CPU that only frees a class (a consumer) keeps a batch less of it at
 * each drain after its first few, down to one batch; its first refill
 * gives the list its full limit back. */
struct consumer {
	struct kheap *h;
	unsigned c;
	uint32_t limit_after_frees, most_after_frees, limit_after_refill;
};

static void *consume_there(void *arg)
{
	struct consumer *k = arg;
	const struct kh_class *l = &k->h->cpus[kheap_cpu_id()].cls[k->c];
	k->most_after_frees = 0;
	for (unsigned i = 0; i < nhanded; i++) {
		kheap_free(k->h, handed[i]);
		if (i + 2 * KHEAP_CPU_BATCH >= nhanded && l->count > k->most_after_frees)
			k->most_after_frees = l->count;
	}
	k->limit_after_frees = l->limit;
	static void *q[KHEAP_CPU_BATCH + 1];
	unsigned n = 0;
	while (n < KHEAP_CPU_BATCH && l->count > 0)
		q[n++] = kheap_alloc(k->h, 24);
	q[n++] = kheap_alloc(k->h, 24); /* the list was empty: a refill */
	k->limit_after_refill = l->limit;
	while (n > 0)
		kheap_free(k->h, q[--n]);
	kheap_trim(k->h);
	return NULL;
}

KT_CASE(percpu_consumer_keeps_one_batch)
{
	kt_percpu(1);
	struct kt_rec rec;
	struct kheap *h = kt_heap(big, BIG, &rec); /* lists long enough to come down a few times */
	KT_REQUIRE(h != NULL);
	struct consumer k = {h, kh_size_class(kh_want(24)), 0, 0, 0};
	uint32_t full = h->cpu_limit[k.c];
	uint32_t batch = (full + 1) / 2 < KHEAP_CPU_BATCH ? (full + 1) / 2 : KHEAP_CPU_BATCH;
	KT_REQUIRE(full > batch); /* a limit that can come down */
	nhanded = full + (KH_CONSUMER_DRAINS + full / batch + 4) * batch; /* the full drains, each decay, more */
	KT_REQUIRE(nhanded <= HAND_MAX);
	for (unsigned i = 0; i < nhanded; i++)
		KT_REQUIRE((handed[i] = kheap_alloc(h, 24)) != NULL);
	pthread_t t;
	KT_REQUIRE(pthread_create(&t, NULL, consume_there, &k) == 0);
	pthread_join(t, NULL);
	KT_EQ(k.limit_after_frees, batch);
	KT_CHECK(k.most_after_frees <= batch);
	KT_EQ(k.limit_after_refill, full);
	KT_EQ(rec.count, 0);
	all_back(h);
}

/* ---- other CPUs made to drain: kheap_flush_others (host_ipi.c) -------------- */

#define PARKED_MAX 3

/* Threads that each leave a carved batch in their per-CPU cache, then
 * wait on a condition variable without calling kheap, as an idle CPU
 * would. (Not a barrier: TSan delivers no signal to a thread blocked in
 * pthread_barrier_wait, but does in pthread_cond_wait.) */
struct parked {
	struct kheap *h;
	unsigned n;
	pthread_t t[PARKED_MAX];
	unsigned cpu[PARKED_MAX]; /* each one's number */
	pthread_barrier_t ready;
	pthread_mutex_t m;
	pthread_cond_t c;
	int go;
};

struct park_arg {
	struct parked *s;
	unsigned i;
};
static struct park_arg park_args[PARKED_MAX];

static void *park(void *arg)
{
	struct park_arg *a = arg;
	struct parked *s = a->s;
	kheap_free(s->h, kheap_alloc(s->h, 40 + 100 * a->i)); /* a class of its own */
	s->cpu[a->i] = host_cpu_self();
	pthread_barrier_wait(&s->ready);
	pthread_mutex_lock(&s->m);
	while (!s->go)
		pthread_cond_wait(&s->c, &s->m);
	pthread_mutex_unlock(&s->m);
	return NULL;
}

/* n threads parked, their caches full; 0 when one could not start. */
static int park_start(struct parked *s, struct kheap *h, unsigned n)
{
	s->h = h, s->n = n, s->go = 0;
	pthread_barrier_init(&s->ready, NULL, n + 1);
	pthread_mutex_init(&s->m, NULL);
	pthread_cond_init(&s->c, NULL);
	for (unsigned i = 0; i < n; i++) {
		park_args[i] = (struct park_arg){s, i};
		if (pthread_create(&s->t[i], NULL, park, &park_args[i]) != 0)
			return 0;
	}
	pthread_barrier_wait(&s->ready);
	return 1;
}

/* Let them go and wait until they have exited (their caches stay). */
static void park_end(struct parked *s)
{
	pthread_mutex_lock(&s->m);
	s->go = 1;
	pthread_cond_broadcast(&s->c);
	pthread_mutex_unlock(&s->m);
	for (unsigned i = 0; i < s->n; i++)
		pthread_join(s->t[i], NULL);
	pthread_barrier_destroy(&s->ready);
	pthread_mutex_destroy(&s->m);
	pthread_cond_destroy(&s->c);
}

/* Nothing held, nothing cached anywhere: the heap is one free block again. */
static void all_in_bins(struct kheap *h)
{
	struct kheap_stats st = stats(h);
	KT_EQ(st.cached_bytes, 0);
	KT_EQ(st.cached_blocks, 0);
	KT_EQ(st.in_use_bytes, 0);
	KT_EQ(st.used_blocks, 0);
	KT_EQ(st.free_blocks, 1);
	KT_EQ(st.free_bytes, st.total_bytes);
	KT_EQ(kt_heap_check(h), 0);
}

/* kheap_trim with the IPI hook reaches the caches of CPUs that make no
 * kheap call; without it (the library's default) they stay full. */
KT_CASE(percpu_ipi_trim_empties_every_cache)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	struct parked s;
	KT_REQUIRE(park_start(&s, h, 3));
	size_t theirs = stats(h).cached_bytes;
	KT_CHECK(theirs > 0);
	kheap_free(h, kheap_alloc(h, 300)); /* and a batch on this CPU */
	KT_CHECK(stats(h).cached_bytes > theirs);
	kheap_trim(h);
	KT_EQ(stats(h).cached_bytes, theirs); /* hook off: only ours went back */
	host_ipi_enabled = 1;
	kheap_trim(h);
	host_ipi_enabled = 0;
	all_in_bins(h);
	park_end(&s);
	KT_EQ(rec.count, 0);
}

/* The numbers of threads that exited are free, but their caches are not
 * empty: the hook drains them with kheap_cpu_dead. */
KT_CASE(percpu_ipi_trim_drains_exited_threads)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	struct parked s;
	KT_REQUIRE(park_start(&s, h, 2));
	park_end(&s);
	KT_CHECK(stats(h).cached_bytes > 0);
	host_ipi_enabled = 1;
	kheap_trim(h);
	host_ipi_enabled = 0;
	all_in_bins(h);
	KT_EQ(rec.count, 0);
}

static void count_oom(void *ctx, size_t size)
{
	(void)size;
	++*(unsigned *)ctx;
}

/* Take every free byte, halving the size on each failure. */
static unsigned fill(struct kheap *h, void **held, unsigned cap)
{
	unsigned n = 0;
	for (size_t size = 65536; size >= 16 && n < cap;) {
		if ((held[n] = kheap_alloc(h, size)) != NULL)
			n++;
		else
			size /= 2;
	}
	return n;
}

/* The only free memory sits in another CPU's cache: an allocation gets it
 * when the hook makes that CPU drain, and is an OOM when it does not (hook
 * off, or this CPU's emulated interrupts masked). */
KT_CASE(percpu_ipi_oom_takes_from_other_cpus)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	unsigned hook = 0;
	kheap_set_oom(h, count_oom, &hook);
	struct parked s;
	KT_REQUIRE(park_start(&s, h, 1));
	size_t theirs = stats(h).cached_bytes;
	static void *held[4096];
	unsigned n = fill(h, held, 4096);
	struct kheap_stats st = stats(h);
	KT_CHECK(n > 10 && n < 4096);
	KT_EQ(st.free_bytes, 0);
	KT_EQ(st.cached_bytes, theirs); /* all of it on the parked CPU */
	KT_CHECK(theirs >= 64);
	uint64_t ooms = st.oom_count;
	hook = 0;
	void *p = kheap_alloc(h, 48); /* hook off */
	KT_CHECK(p == NULL);
	KT_EQ(stats(h).oom_count, ooms + 1);
	KT_EQ(hook, 1);
	host_ipi_enabled = 1;
	uintptr_t irq = kheap_irq_save(); /* as if in an interrupt handler */
	void *q = kheap_alloc(h, 48);
	kheap_irq_restore(irq);
	void *r = kheap_alloc(h, 48);
	host_ipi_enabled = 0;
	KT_CHECK(q == NULL);
	KT_CHECK(r != NULL);
	KT_EQ(stats(h).oom_count, ooms + 2); /* the masked one only */
	KT_EQ(hook, 2);
	KT_EQ(stats(h).cached_bytes, 0);
	KT_CHECK(balanced(h));
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, r);
	for (unsigned i = 0; i < n; i++)
		kheap_free(h, held[i]);
	park_end(&s);
	all_back(h);
	KT_EQ(rec.count, 0);
}

KT_CASE(percpu_cpu_dead_drains_that_cache)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	struct parked s;
	KT_REQUIRE(park_start(&s, h, 1));
	park_end(&s); /* it exited; no other thread runs, so its number stays free */
	unsigned k = s.cpu[0];
	KT_REQUIRE(k < KHEAP_MAX_CPUS);
	KT_CHECK(stats(h).cached_bytes > 0);
	kheap_cpu_dead(h, k);
	all_in_bins(h);
	KT_EQ(rec.count, 0);
	uint64_t errors = stats(h).error_count;
	kheap_cpu_dead(h, KHEAP_MAX_CPUS);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_EQ((uintptr_t)rec.last.ptr, KHEAP_MAX_CPUS);
	kheap_cpu_dead(h, KHEAP_NO_CPU);
	KT_REPORTED(&rec, KHEAP_E_BAD_ARG);
	KT_EQ(stats(h).error_count, errors + 2);
	all_in_bins(h);
}

/* A CPU with interrupts masked must not wait for the others' answers: the
 * hook says false and leaves their caches alone. */
KT_CASE(percpu_ipi_refused_while_masked)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	struct parked s;
	KT_REQUIRE(park_start(&s, h, 2));
	size_t theirs = stats(h).cached_bytes;
	host_ipi_enabled = 1;
	uintptr_t irq = kheap_irq_save();
	int masked = kheap_flush_others(h);
	kheap_irq_restore(irq);
	size_t after_masked = stats(h).cached_bytes;
	int open = kheap_flush_others(h);
	host_ipi_enabled = 0;
	KT_CHECK(!masked);
	KT_EQ(after_masked, theirs);
	KT_CHECK(open);
	all_in_bins(h);
	park_end(&s);
	KT_EQ(rec.count, 0);
}

/* An IPI that reaches a CPU with interrupts masked waits for the unmask,
 * and the flush waits for it. */
struct masked_cpu {
	struct kheap *h;
	pthread_barrier_t ready, go;
	size_t seen; /* cached bytes once the IPI was pending */
};

static void *masked_cpu(void *arg)
{
	struct masked_cpu *m = arg;
	kheap_free(m->h, kheap_alloc(m->h, 72));
	uintptr_t irq = kheap_irq_save();
	pthread_barrier_wait(&m->ready);
	/* Bounded, and stops when the cache empties: a broken mask fails the
	 * case instead of hanging it. */
	time_t until = time(NULL) + 10;
	while (!host_ipi_pending() && stats(m->h).cached_bytes != 0 && time(NULL) < until)
		sched_yield();
	m->seen = stats(m->h).cached_bytes;
	kheap_irq_restore(irq); /* answers the IPI */
	pthread_barrier_wait(&m->go);
	return NULL;
}

KT_CASE(percpu_ipi_waits_for_a_masked_cpu)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	static struct masked_cpu m;
	m.h = h, m.seen = 0;
	pthread_barrier_init(&m.ready, NULL, 2);
	pthread_barrier_init(&m.go, NULL, 2);
	pthread_t t;
	KT_REQUIRE(pthread_create(&t, NULL, masked_cpu, &m) == 0);
	pthread_barrier_wait(&m.ready);
	size_t theirs = stats(h).cached_bytes;
	host_ipi_enabled = 1;
	int done = kheap_flush_others(h);
	host_ipi_enabled = 0;
	KT_CHECK(done);
	all_in_bins(h);
	pthread_barrier_wait(&m.go);
	pthread_join(t, NULL);
	KT_CHECK(theirs > 0);
	KT_EQ(m.seen, theirs); /* nothing drained while it was masked */
	pthread_barrier_destroy(&m.ready);
	pthread_barrier_destroy(&m.go);
	KT_EQ(rec.count, 0);
}

/* Several CPUs at work, each trimming now and then with the hook on: IPI
 * rounds overlap with heap calls (masked: the IPI waits), with each other
 * (one waits for the other's freeze, answering meanwhile), with masked
 * allocations, and with threads exiting. Contents are stamped; at the end
 * everything is back in the bins. The name holds "threads_", so that the
 * TSan suite (make test-tsan) runs it too. */
#define IPI_WORKERS 4
#define IPI_OPS 20000u
#define IPI_SLOTS 64u

static pthread_barrier_t ipi_start;

struct ipi_worker {
	pthread_t t;
	struct kheap *h;
	uint64_t seed;
	unsigned bad;
	struct {
		unsigned char *p;
		size_t n;
		uint64_t token;
	} slot[IPI_SLOTS];
};

static void *ipi_work(void *arg)
{
	struct ipi_worker *w = arg;
	pthread_barrier_wait(&ipi_start); /* before any heap call: no IPI can wait on it */
	for (unsigned op = 0; op < IPI_OPS; op++) {
		unsigned i = (unsigned)kt_below(&w->seed, IPI_SLOTS);
		if (op % 997 == 0)
			kheap_trim(w->h);
		if (w->slot[i].p != NULL) {
			size_t n = w->slot[i].n < 64 ? w->slot[i].n : 64;
			w->bad += !kt_verify(w->slot[i].p, n, w->slot[i].token);
			kheap_free(w->h, w->slot[i].p);
			w->slot[i].p = NULL;
			continue;
		}
		size_t n = 8 + kt_below(&w->seed, op % 5 ? 500 : 3000);
		uintptr_t irq = op % 7 == 0 ? kheap_irq_save() : 0; /* an "interrupt handler" */
		unsigned char *p = kheap_alloc(w->h, n);
		if (op % 7 == 0)
			kheap_irq_restore(irq);
		if (p == NULL)
			continue;
		w->slot[i].p = p, w->slot[i].n = n, w->slot[i].token = kt_rand(&w->seed);
		kt_fill(p, n < 64 ? n : 64, w->slot[i].token);
	}
	for (unsigned i = 0; i < IPI_SLOTS; i++)
		kheap_free(w->h, w->slot[i].p);
	return NULL;
}

KT_CASE(percpu_ipi_threads_trim_under_load)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	static struct ipi_worker w[IPI_WORKERS];
	KT_REQUIRE(pthread_barrier_init(&ipi_start, NULL, IPI_WORKERS) == 0);
	host_ipi_enabled = 1;
	unsigned started = 0;
	for (unsigned i = 0; i < IPI_WORKERS; i++) {
		w[i] = (struct ipi_worker){.h = h, .seed = 0x9e3779b97f4a7c15ull * (i + 1)};
		started += pthread_create(&w[i].t, NULL, ipi_work, &w[i]) == 0;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].t, NULL);
	pthread_barrier_destroy(&ipi_start);
	kheap_trim(h); /* the workers exited: their caches go back through kheap_cpu_dead */
	host_ipi_enabled = 0;
	KT_EQ(started, IPI_WORKERS);
	for (unsigned i = 0; i < started; i++)
		KT_EQ(w[i].bad, 0);
	KT_EQ(stats(h).alloc_count, stats(h).free_count);
	all_in_bins(h);
	KT_EQ(rec.count, 0);
}

/* kheap_check vouches for what the fused calls trust: a widened span or
 * an overwritten key in any CPU's cache is reported. */
KT_CASE(percpu_check_covers_keys_and_span)
{
	struct kt_rec rec;
	struct kheap *h = percpu_heap(&rec);
	KT_REQUIRE(h != NULL);
	kheap_free(h, kheap_alloc(h, 48));
	KT_EQ(kt_heap_check(h), 0);
	const unsigned cpus[] = {0, KHEAP_MAX_CPUS - 1};
	for (unsigned i = 0; i < 2; i++) {
		struct kh_cpu *cpu = &h->cpus[cpus[i]];
		uintptr_t *field[] = {&cpu->key, &cpu->tkey, &cpu->lo, &cpu->hi};
		for (unsigned f = 0; f < 4; f++) {
			*field[f] ^= 4096;
			KT_CHECK(kt_heap_check(h) != 0);
			*field[f] ^= 4096;
			KT_EQ(kt_heap_check(h), 0);
		}
		cpu->regions = 2;
		KT_CHECK(kt_heap_check(h) != 0);
		cpu->regions = 1;
	}
	KT_EQ(kt_heap_check(h), 0);
	all_back(h);
	KT_EQ(rec.count, 0);
}

#ifdef KH_FAULT_INJECT
/* Fail the Nth backend allocation, N = 1, 2, ...: refills and carving give
 * up cleanly, nothing is lost, and contents survive. */
KT_CASE(percpu_refill_failures_lose_nothing)
{
	kt_percpu(1);
	unsigned injected = 0;
	for (unsigned long n = 1; n < 200; n++) {
		struct kt_rec rec;
		struct kheap *h = kt_heap(arena, ARENA, &rec);
		KT_REQUIRE(h != NULL);
		kh_fault_countdown = n;
		void *p[300] = {0};
		for (unsigned i = 0; i < 300; i++) {
			size_t sz = 8 + (i * 37) % 900;
			p[i] = kheap_alloc(h, sz);
			if (p[i] != NULL)
				kt_fill(p[i], sz, i);
			if (i % 4 == 3) {
				kheap_free(h, p[i - 2]);
				p[i - 2] = NULL;
			}
		}
		injected += kh_fault_countdown == 0;
		kh_fault_countdown = 0;
		for (unsigned i = 0; i < 300; i++)
			if (p[i] != NULL) {
				KT_CHECK(kt_verify(p[i], 8 + (i * 37) % 900, i));
				kheap_free(h, p[i]);
			}
		KT_EQ(stats(h).alloc_count, stats(h).free_count);
		all_back(h);
		KT_EQ(rec.count, 0);
	}
	KT_CHECK(injected > 50);
}
#endif
#endif /* KH_PERCPU */
