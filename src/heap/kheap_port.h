/*
 * kheap_port.h: the seam between kheap and the kernel it runs in: every hook
 * a kernel may provide, the context kheap calls it in, and its default.
 * kh_port.c defines each default weak; a kernel overrides one by defining a
 * function of the same name. These and the kheap_* API are the library's
 * only external symbols. Included by kheap.h.
 *
 * Inline hooks. The fast path of kheap_alloc and kheap_free masks
 * interrupts, asks the CPU number and restores, around one call to the
 * fused routine; as functions, those three hooks cost more than the
 * routine. A kernel may build the library with -DKHEAP_PORT_HEADER=
 * '"my_port.h"' naming a header that defines, with the contracts of
 * kheap_irq_save, kheap_irq_restore and kheap_cpu_id below:
 *     static inline uintptr_t kheap_port_irq_save(void);
 *     static inline void kheap_port_irq_restore(uintptr_t state);
 *     static inline unsigned kheap_port_cpu_id(void);
 * (e.g. mrs daif / msr daifset,#3 and mrs tpidr_el1 on arm64; pushf / cli
 * and a gs-relative load on x86_64). The library then calls these and never
 * the three functions, whose weak defaults stay for other callers.
 * boot/<arch>/board_port.h are the QEMU kernels' (docs/porting.md, step
 * 7); bench/port_host.h is an example for a hosted build.
 */
#ifndef KHEAP_PORT_H
#define KHEAP_PORT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kheap;

/* Default report action for KHEAP_SEV_MISUSE and KHEAP_SEV_CORRUPT (never
 * called for a refused request, kheap.h): msg is a NUL-terminated line
 * naming the check, the pointer and the caller. Default: a trap instruction
 * (__builtin_trap). If an override returns, the heap carries on with the
 * operation refused. */
void kheap_panic(const char *msg);

/* Save the interrupt state and mask interrupts on this CPU; restore it.
 * Default: nothing (hosted programs and single-context firmware). */
uintptr_t kheap_irq_save(void);
void kheap_irq_restore(uintptr_t state);

/* Called from the lock's spin loop once every 256 spins while another CPU
 * holds the heap. Default: nothing, which is right for a kernel that masks
 * interrupts around the lock. A hosted program with more threads than cores
 * should make it sched_yield(), or a fair lock's next holder may sit
 * descheduled while the others spin out their time slices. */
void kheap_spin_yield(void);

/* This CPU's number, below KHEAP_MAX_CPUS, for its per-CPU cache; or
 * KHEAP_NO_CPU to take the locked path. Called with interrupts masked
 * (inside kheap_irq_save), and the answer must stay true until they are
 * restored: no migration in between. On a host, a thread is a CPU: return a
 * per-thread number, never the same for two live threads. Default:
 * KHEAP_NO_CPU, so a kernel that does not say gets no per-CPU caches. */
unsigned kheap_cpu_id(void);

/* Make every other CPU that may own a per-CPU cache of h call
 * kheap_trim_cpu(h), and return true once all of them have returned
 * (e.g. send an IPI whose handler calls kheap_trim_cpu, and wait for each
 * CPU's acknowledgement; an offline CPU's cache is drained with
 * kheap_cpu_dead instead). Return false when it did not: those CPUs then
 * drain at their next allocation or free. Called by kheap_trim, and by an
 * allocation that ran out of memory while other CPUs' caches held blocks,
 * always with the heap lock released (the other CPUs need it), and with
 * the caller's interrupt state: an allocation in an interrupt handler
 * calls it with interrupts masked. An implementation that would deadlock
 * waiting with interrupts masked (another CPU spinning on an IPI to this
 * one) must detect that and return false. Two CPUs may call it at once:
 * each must keep answering IPIs while it waits. It must not allocate from
 * h. Default: false (no IPIs). */
bool kheap_flush_others(struct kheap *h);

/* 64 bits of entropy for the per-heap secret that keys header cookies and
 * free-list link encoding, called once from kheap_init. Default: a fixed
 * mix of the heap address, which detects accidents but not an attacker. */
uint64_t kheap_entropy(void);

#ifdef __cplusplus
}
#endif

#endif /* KHEAP_PORT_H */
