/*
 * t_lock.c: the build's kh_lock (assembly by default) under contention, on
 * the host with pthreads. Four threads bump a plain counter and rewrite a
 * record under the lock while sharing one kheap (whose calls take the same
 * kind of lock inside). A control run with do-nothing lock functions must
 * show lost updates: that proves the stress can see a broken lock at all.
 *
 * Runs stop on a target count or a deadline, whichever comes first: with
 * four spinning threads on two cores a fair lock often hands over to a
 * thread that is not running, so progress per second depends on the
 * scheduler and on the machine's load.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kt.h"
#include "kh_internal.h"
#include "kh_lock.h"

#define THREADS 4
#define RECORD_WORDS 8
#define RING 4

struct lock_ops {
	void (*acquire)(struct kh_lock *l);
	void (*release)(struct kh_lock *l);
	/* Yield the CPU after every round. A ticket lock serves waiters in
	 * order, so a preempted next-in-line stalls all the others until the
	 * scheduler runs it again; yielding lets it run sooner. Without a lock
	 * there is no hand-over to help, and yielding would only make the
	 * threads take turns on one core, hiding the race the control run
	 * exists to show. */
	int yield;
};

static void no_lock(struct kh_lock *l) { (void)l; }

static const struct lock_ops real_ops = {kh_lock_acquire, kh_lock_release, 1};
static const struct lock_ops no_ops = {no_lock, no_lock, 0};

struct shared {
	struct kh_lock lock;
	const struct lock_ops *ops;
	struct kheap *heap; /* NULL: no heap traffic */
	atomic_int stop;
	uint64_t counter;              /* read-modify-write, guarded only by lock */
	uint64_t record[RECORD_WORDS]; /* all words equal whenever lock is free */
};

struct worker {
	pthread_t tid;
	struct shared *sh;
	unsigned id;
	_Atomic uint64_t done; /* critical sections completed */
	uint64_t torn;     /* records found inconsistent on entry */
	uint64_t heap_ops; /* alloc+free pairs */
	uint64_t heap_bad; /* NULL allocations or blocks whose fill changed */
};

/* A few hundred nanoseconds natively: long enough that an unprotected
 * read-modify-write is overlapped often. */
static void busy(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

static void critical(struct worker *w)
{
	struct shared *sh = w->sh;
	sh->ops->acquire(&sh->lock);
	volatile uint64_t *c = &sh->counter, *r = sh->record;
	uint64_t v = *c;
	for (unsigned i = 1; i < RECORD_WORDS; i++)
		w->torn += r[i] != r[0];
	busy(100);
	for (unsigned i = 0; i < RECORD_WORDS; i++) {
		r[i] = v + 1;
		busy(8);
	}
	*c = v + 1;
	sh->ops->release(&sh->lock);
}

struct live {
	void *p;
	size_t n;
	uint64_t token;
};

static void heap_step(struct worker *w, struct live *ring, uint64_t *rng)
{
	struct live *s = &ring[kt_below(rng, RING)];
	if (s->p) {
		w->heap_bad += !kt_verify(s->p, s->n, s->token);
		kheap_free(w->sh->heap, s->p);
		s->p = NULL;
		w->heap_ops++;
	}
	s->n = kt_below(rng, 8) ? 1 + kt_below(rng, 700) : 1 + kt_below(rng, 4000);
	s->token = ((uint64_t)w->id << 40) ^ kt_rand(rng);
	s->p = kheap_alloc(w->sh->heap, s->n);
	if (s->p == NULL)
		w->heap_bad++;
	else
		kt_fill(s->p, s->n, s->token);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct live ring[RING] = {{0}};
	uint64_t rng = 0x10c4ull + w->id;
	while (!atomic_load_explicit(&w->sh->stop, memory_order_relaxed)) {
		critical(w);
		atomic_fetch_add_explicit(&w->done, 1u, memory_order_relaxed);
		if (w->sh->heap)
			heap_step(w, ring, &rng);
		if (w->sh->ops->yield)
			sched_yield();
	}
	for (unsigned i = 0; i < RING; i++) {
		if (!ring[i].p)
			continue;
		w->heap_bad += !kt_verify(ring[i].p, ring[i].n, ring[i].token);
		kheap_free(w->sh->heap, ring[i].p);
		w->heap_ops++;
	}
	return NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) != 0)
		;
}

static uint64_t total_done(struct worker *w)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < THREADS; i++)
		n += atomic_load_explicit(&w[i].done, memory_order_relaxed);
	return n;
}

/* Run THREADS workers for at least min_ms, then until they have done
 * target critical sections or max_ms has passed; fill w[]. */
static void run_stress(struct shared *sh, struct worker *w, unsigned min_ms, unsigned max_ms,
		       uint64_t target)
{
	atomic_store(&sh->stop, 0);
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.sh = sh, .id = i};
		KT_REQUIRE(pthread_create(&w[i].tid, NULL, work, &w[i]) == 0);
	}
	unsigned ms = 0;
	for (; ms < min_ms || (ms < max_ms && total_done(w) < target); ms += 10)
		sleep_ms(10);
	atomic_store(&sh->stop, 1);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(w[i].tid, NULL);
}

/* A lock bug may hang instead of corrupting: end the run with a failure. */
static void hung(int sig)
{
	(void)sig;
	static const char msg[] = "  FAIL lock test still running after its deadline\n";
	(void)!write(1, msg, sizeof msg - 1);
	_exit(1);
}

static void watchdog(unsigned seconds)
{
	signal(SIGALRM, hung);
	alarm(seconds);
}

static _Alignas(16) unsigned char lock_arena[1u << 20];

KT_CASE(lock_stress_counter_record_heap)
{
	static struct shared sh;
	struct worker w[THREADS];
	struct kt_rec rec;
	sh = (struct shared){.ops = &real_ops};
	sh.heap = kt_heap(lock_arena, sizeof lock_arena, &rec);
	KT_REQUIRE(sh.heap != NULL);
	watchdog(30);
	run_stress(&sh, w, 200, 8000, 4000);
	alarm(0);
	uint64_t done = 0, torn = 0, ops = 0, bad = 0;
	for (unsigned i = 0; i < THREADS; i++) {
		done += w[i].done, torn += w[i].torn;
		ops += w[i].heap_ops, bad += w[i].heap_bad;
		KT_CHECK(w[i].done > 0); /* fair: nobody starved */
	}
	KT_EQ(sh.counter, done);
	KT_EQ(torn, 0);
	KT_EQ(bad, 0);
	for (unsigned i = 0; i < RECORD_WORDS; i++)
		KT_EQ(sh.record[i], done);
	KT_EQ(atomic_load(&sh.lock.next), done);
	KT_EQ(atomic_load(&sh.lock.serving), done);
	KT_EQ(atomic_load(&sh.lock.waiting), 0); /* every waiter took its bit back */
	struct kheap_stats st;
	kheap_get_stats(sh.heap, &st);
	KT_EQ(st.alloc_count, ops);
	KT_EQ(st.free_count, ops);
	KT_EQ(st.used_blocks, 0);
	KT_EQ(kt_heap_check(sh.heap), 0);
	KT_EQ(rec.count, 0);
	KT_CHECK(done >= 200); /* enough rounds to mean something */
	kt_log("critical sections, heap alloc+free pairs:");
	kt_putu(done), kt_out(" "), kt_putu(ops), kt_out("\n");
}

/* The same stress with no lock must lose updates; a few tries make that
 * certain on a machine with two cores or more. */
KT_CASE(lock_stress_control_detects_race)
{
	static struct shared sh;
	struct worker w[THREADS];
	unsigned tries = 0, detected = 0;
	while (!detected && tries < 10) {
		sh = (struct shared){.ops = &no_ops};
		tries++;
		run_stress(&sh, w, 100, 100, 0);
		uint64_t done = 0, torn = 0;
		for (unsigned i = 0; i < THREADS; i++)
			done += w[i].done, torn += w[i].torn;
		detected = sh.counter != done || torn != 0;
	}
	KT_CHECK(detected);
	kt_log("control tries until a race showed:");
	kt_putu(tries), kt_out("\n");
}

/* Tickets are served in order, across the 32-bit wrap, and a waiter does
 * not get in before the holder releases. */
static struct kh_lock order_lock;
static atomic_uint order_seq;

struct waiter {
	pthread_t tid;
	unsigned got; /* order_seq value when it got the lock */
};

static void *wait_turn(void *arg)
{
	struct waiter *wt = arg;
	kh_lock_acquire(&order_lock);
	wt->got = atomic_fetch_add(&order_seq, 1u);
	kh_lock_release(&order_lock);
	return NULL;
}

static int wait_next(uint32_t want)
{
	for (unsigned ms = 0; ms < 5000; ms++) {
		if (atomic_load(&order_lock.next) == want)
			return 1;
		sleep_ms(1);
	}
	return 0;
}

KT_CASE(lock_ticket_order)
{
	struct waiter a, b;
	atomic_init(&order_lock.next, 0xfffffffeu);
	atomic_init(&order_lock.serving, 0xfffffffeu);
	atomic_init(&order_seq, 0u);
	watchdog(30);
	kh_lock_acquire(&order_lock);
	KT_REQUIRE(pthread_create(&a.tid, NULL, wait_turn, &a) == 0);
	KT_CHECK(wait_next(0)); /* a holds ticket 0xffffffff */
	KT_REQUIRE(pthread_create(&b.tid, NULL, wait_turn, &b) == 0);
	KT_CHECK(wait_next(1)); /* b holds ticket 0 */
	sleep_ms(30);
	KT_EQ(atomic_load(&order_seq), 0); /* neither got past the holder */
	kh_lock_release(&order_lock);
	pthread_join(a.tid, NULL);
	pthread_join(b.tid, NULL);
	alarm(0);
	KT_EQ(a.got, 0);
	KT_EQ(b.got, 1);
	KT_EQ(atomic_load(&order_lock.next), 1);
	KT_EQ(atomic_load(&order_lock.serving), 1);
}

/* The kernel bug the lock names: a call into the heap from code that runs
 * while this CPU holds the heap lock. A kheap_walk callback runs with the
 * lock held, as an interrupt handler runs over interrupted kheap code; its
 * kheap_alloc (too big for the per-CPU caches, so it takes the lock) must
 * be reported as a re-entry through kheap_panic at once, not hang. Here the
 * expected panic lets the holder go (the white-box release), the nested
 * allocation completes, and the callback takes the lock back for the walk. */
static struct kheap *walk_heap;
static const char *walk_msg;
static void *nested;

static void let_go(const char *msg)
{
	walk_msg = msg;
	kh_lock_release(&walk_heap->lock);
}

static void walk_allocates(void *ctx, void *ptr, size_t size, int used)
{
	(void)ptr, (void)size, (void)used;
	if (*(int *)ctx == 0) {
		*(int *)ctx = 1;
		nested = kheap_alloc(walk_heap, 5000);
		kh_lock_acquire(&walk_heap->lock);
	}
}

KT_CASE(lock_reentry_from_hook_is_named)
{
	static _Alignas(16) unsigned char arena[64 << 10];
	struct kt_rec rec;
	kt_percpu(1);
	walk_heap = kt_heap(arena, sizeof arena, &rec);
	KT_REQUIRE(walk_heap != NULL);
	watchdog(30);
	int once = 0;
	walk_msg = NULL;
	kt_panics = 0;
	kt_panic_action = let_go;
	kt_panic_expected = 1;
	kheap_walk(walk_heap, walk_allocates, &once);
	kt_panic_expected = 0;
	kt_panic_action = 0;
	alarm(0);
	KT_EQ(kt_panics, 1);
	KT_CHECK(walk_msg != NULL && strstr(walk_msg, "re-entered") != NULL);
	KT_CHECK(walk_msg != NULL && strstr(walk_msg, "mask interrupts") != NULL);
	KT_CHECK(nested != NULL);
	kheap_free(walk_heap, nested);
	KT_EQ(atomic_load(&walk_heap->lock.next), atomic_load(&walk_heap->lock.serving));
	KT_EQ(kt_heap_check(walk_heap), 0);
	KT_EQ(rec.count, 0);
}
