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
 */
#include <pthread.h>
#include <stdatomic.h>

#include "kheap.h"
#include "host_cpu.h"

int host_cpu_enabled = 1;

static _Atomic unsigned long long taken; /* bit k: number k is in use */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static __attribute__((tls_model("initial-exec"))) __thread unsigned mine; /* number + 1; 0: none */
static __attribute__((tls_model("initial-exec"))) __thread int busy;

static void give_back(void *v)
{
	unsigned k = (unsigned)(unsigned long)v - 1;
	mine = 0;
	atomic_fetch_and_explicit(&taken, ~(1ull << k), memory_order_release);
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
