/*
 * host_ipi.c: kheap_flush_others for the host test programs. A thread is a
 * CPU (host_cpu.c numbers them) and a signal is an IPI: the handler calls
 * kheap_trim_cpu, as a kernel's IPI handler would.
 *
 * That needs interrupt masking, which a thread does not have, so this file
 * also overrides kheap_irq_save/kheap_irq_restore with a per-thread flag
 * (no syscalls). A signal that finds the flag set does nothing but note
 * that it is pending; the restore that unmasks answers it. So, as with a
 * real maskable IPI, the handler never runs heap code on top of a heap
 * call of its own thread (which may hold the lock, or be halfway through
 * a per-CPU list). A thread blocked in a system call (a barrier, a join, a
 * mutex) is unmasked: the signal interrupts the wait and SA_RESTART
 * resumes it (a sleep returns early instead).
 *
 * kheap_flush_others, when host_ipi_enabled is set:
 *  - returns false when the calling thread is masked: waiting there is the
 *    deadlock the hook's contract forbids (an allocation in an "interrupt
 *    handler");
 *  - freezes the numbering (host_cpu_freeze): exiting threads wait to give
 *    their numbers back, and the numbers no thread holds are claimed, so
 *    none changes hands during the round;
 *  - signals every numbered thread but itself and waits until each one
 *    has answered (acks); the heap is in `target`, set before the signals;
 *  - drains the claimed numbers' caches, left by threads that exited, with
 *    kheap_cpu_dead, then thaws and returns true.
 * Rounds are serialised by the freeze. A thread that calls the hook while
 * another round runs waits for the freeze unmasked, so it answers that
 * round's signal meanwhile. The waiting thread never waits on itself.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "kheap.h"
#include "host_cpu.h"
#include "host_ipi.h"

#define IPI_SIGNAL SIGUSR2

int host_ipi_enabled;

static __attribute__((tls_model("initial-exec"))) __thread volatile sig_atomic_t masked, pending;
static _Atomic(struct kheap *) target; /* the heap of the round under way */
static atomic_uint acks;               /* answers to this round's signals */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Drain this thread's cache for the round under way, then say so. */
static void answer(void)
{
	struct kheap *h = atomic_load_explicit(&target, memory_order_acquire);
	if (host_cpu_self() != KHEAP_NO_CPU)
		kheap_trim_cpu(h);
	atomic_fetch_add_explicit(&acks, 1, memory_order_release);
}

static void on_ipi(int sig)
{
	(void)sig;
	int saved = errno;
	if (masked)
		pending = 1;
	else
		answer();
	errno = saved;
}

static void install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_ipi;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(IPI_SIGNAL, &sa, NULL);
}

/* The signal fences keep the compiler from moving heap accesses across the
 * flag; the handler runs on this thread, so no CPU fence is needed. */
uintptr_t kheap_irq_save(void)
{
	uintptr_t was = (uintptr_t)masked;
	masked = 1;
	atomic_signal_fence(memory_order_seq_cst);
	return was;
}

void kheap_irq_restore(uintptr_t state)
{
	atomic_signal_fence(memory_order_seq_cst);
	masked = (sig_atomic_t)state;
	atomic_signal_fence(memory_order_seq_cst);
	while (state == 0 && pending) { /* a signal landing meanwhile answers by itself */
		pending = 0;
		answer();
	}
}

int host_ipi_pending(void) { return pending; }

bool kheap_flush_others(struct kheap *h)
{
	if (!host_ipi_enabled || !host_cpu_enabled || masked)
		return false;
	pthread_once(&once, install);
	pthread_t threads[HOST_CPU_MAX];
	unsigned long long idle, held = host_cpu_freeze(threads, &idle);
	unsigned me = host_cpu_self(), sent = 0;
	bool all = true;
	atomic_store_explicit(&target, h, memory_order_release);
	atomic_store_explicit(&acks, 0, memory_order_relaxed);
	for (unsigned k = 0; k < HOST_CPU_MAX; k++) {
		if (!(held >> k & 1) || k == me)
			continue;
		if (pthread_kill(threads[k], IPI_SIGNAL) == 0)
			sent++;
		else
			all = false;
	}
	while (atomic_load_explicit(&acks, memory_order_acquire) < sent)
		sched_yield();
	for (unsigned k = 0; k < HOST_CPU_MAX; k++)
		if (idle >> k & 1)
			kheap_cpu_dead(h, k);
	host_cpu_thaw(idle);
	return all;
}
