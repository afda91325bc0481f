/* host_cpu.h: a thread-per-CPU kheap_cpu_id for hosted programs (host_cpu.c). */
#ifndef HOST_CPU_H
#define HOST_CPU_H

#include <pthread.h>

#define HOST_CPU_MAX 64u /* numbers fit one 64-bit word */

/* 0: kheap_cpu_id says KHEAP_NO_CPU to threads that have no number yet. */
extern int host_cpu_enabled;

/* This thread's number + 1, 0 before it has one: what an inline
 * kheap_port_cpu_id reads (bench/port_host.h), as a kernel's reads its
 * per-CPU register. */
extern __attribute__((tls_model("initial-exec"))) __thread unsigned host_cpu_mine;

/* This thread's number, or KHEAP_NO_CPU when it has none. Never takes one,
 * so a signal handler may call it. */
unsigned host_cpu_self(void);

/* For an IPI round (host_ipi.c). host_cpu_freeze stops numbers from changing
 * hands until host_cpu_thaw: a thread that exits waits to give its number
 * back, and every number that no thread holds is claimed for the caller and
 * returned in *idle, so that no thread takes it (its cache, left by a thread
 * that exited, may then be drained with kheap_cpu_dead). Returns the numbers
 * that threads hold, storing each one's thread in threads[k]; those threads
 * are running until the thaw. Calls do not nest; one at a time. */
unsigned long long host_cpu_freeze(pthread_t threads[HOST_CPU_MAX], unsigned long long *idle);
void host_cpu_thaw(unsigned long long idle);

#endif
