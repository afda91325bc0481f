/*
 * host_cpu.c: kheap_cpu_id for hosted programs (tests, bench): each thread
 * is a CPU. A thread takes the lowest free number on its first heap call
 * and gives it back when it exits, so a program that starts and ends many
 * threads keeps reusing the first few per-CPU caches. A cache outlives its
 * thread: the next thread to take the number takes it over, which is safe
 * because the number is handed over with release/acquire ordering.
 *
 * host_cpu_enabled = 0 turns the hook off (every call takes the locked
 * path); tests switch between the two.
 *
 * host_ipi.c interrupts the numbered threads (a signal is an IPI) and
 * drains the caches of numbers no thread holds: host_cpu_freeze keeps
 * numbers from changing hands meanwhile. A thread records its pthread_t
 * when it takes a number (lock-free: that runs inside heap calls) and takes
 * the freeze mutex to give the number back, so a frozen number's thread is
 * still running and may be signalled.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "kheap.h"
#include "host_cpu.h"

int host_cpu_enabled = 1;

static _Atomic unsigned long long taken; /* bit k: number k is in use */
static _Atomic unsigned long long live;  /* bit k: tid[k] is number k's thread */
static pthread_t tid[HOST_CPU_MAX];
static pthread_mutex_t frozen = PTHREAD_MUTEX_INITIALIZER; /* held from freeze to thaw */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
__attribute__((tls_model("initial-exec"))) __thread unsigned host_cpu_mine; /* number + 1; 0: none */
#define mine host_cpu_mine
static __attribute__((tls_model("initial-exec"))) __thread int busy;

/* Take the freeze mutex without blocking in it: a thread waiting here must
 * still answer the IPIs of the round that holds it. Linux delivers signals
 * to a thread blocked in pthread_mutex_lock, but TSan holds them back until
 * the call returns; it delivers them as each trylock returns. */
static void freeze_lock(void)
{
	while (pthread_mutex_trylock(&frozen) != 0)
		sched_yield();
}

static void give_back(void *v)
{
	unsigned k = (unsigned)(unsigned long)v - 1;
	freeze_lock();
	atomic_fetch_and_explicit(&live, ~(1ull << k), memory_order_relaxed);
	mine = 0;
	atomic_fetch_and_explicit(&taken, ~(1ull << k), memory_order_release);
	pthread_mutex_unlock(&frozen);
}

static void make_key(void) { pthread_key_create(&key, give_back); }

static unsigned take(void)
{
	unsigned long long t = atomic_load_explicit(&taken, memory_order_relaxed);
	for (;;) {
		unsigned k = (unsigned)__builtin_ctzll(~t);
		if (~t == 0 || k >= KHEAP_MAX_CPUS || k >= HOST_CPU_MAX)
			return KHEAP_NO_CPU;
		if (atomic_compare_exchange_weak_explicit(&taken, &t, t | (1ull << k), memory_order_acquire,
							  memory_order_relaxed))
			return k;
	}
}

/* A thread's first call: take a number. Out of line, so that the common
 * case below needs no stack frame. */
static __attribute__((noinline)) unsigned first_call(void)
{
	if (busy)
		return KHEAP_NO_CPU;
	busy = 1; /* pthread_setspecific may allocate: no recursion */
	pthread_once(&once, make_key);
	unsigned k = take();
	if (k != KHEAP_NO_CPU) {
		tid[k] = pthread_self();
		atomic_fetch_or_explicit(&live, 1ull << k, memory_order_release);
		mine = k + 1;
		pthread_setspecific(key, (void *)(unsigned long)mine);
	}
	busy = 0;
	return k;
}

unsigned kheap_cpu_id(void)
{
	if (!host_cpu_enabled)
		return KHEAP_NO_CPU;
	unsigned m = mine;
	return m != 0 ? m - 1 : first_call();
}

unsigned host_cpu_self(void) { return mine != 0 ? mine - 1 : KHEAP_NO_CPU; }

/* Every number a thread may take: below KHEAP_MAX_CPUS and HOST_CPU_MAX. */
static unsigned long long numbers(void)
{
	unsigned n = KHEAP_MAX_CPUS < HOST_CPU_MAX ? KHEAP_MAX_CPUS : HOST_CPU_MAX;
	return n >= 64 ? ~0ull : (1ull << n) - 1;
}

unsigned long long host_cpu_freeze(pthread_t threads[HOST_CPU_MAX], unsigned long long *idle)
{
	freeze_lock();
	unsigned long long all = numbers();
	unsigned long long t = atomic_load_explicit(&taken, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&taken, &t, t | all, memory_order_acquire,
						      memory_order_relaxed))
		;
	*idle = all & ~t;
	for (unsigned k = 0; k < HOST_CPU_MAX; k++) {
		if (!(t >> k & 1))
			continue;
		/* Taken but not yet recorded: its thread is inside kheap_cpu_id,
		 * which records it without waiting for anything. */
		while (!(atomic_load_explicit(&live, memory_order_acquire) >> k & 1))
			sched_yield();
		threads[k] = tid[k];
	}
	return t & all;
}

void host_cpu_thaw(unsigned long long idle)
{
	atomic_fetch_and_explicit(&taken, ~idle, memory_order_release);
	pthread_mutex_unlock(&frozen);
}
