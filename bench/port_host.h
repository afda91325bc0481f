/*
 * port_host.h: inline hooks for the bench (-DKHEAP_PORT_HEADER='"port_host.h"',
 * see kheap_port.h): how a kernel's port header makes the hot path call
 * nothing but the fused routine. A host has no interrupts to mask; the CPU
 * number is the calling thread's (tests/host/host_cpu.c), read from
 * thread-local storage as a kernel reads its per-CPU register (tpidr_el1,
 * a gs-relative load).
 */
#ifndef BENCH_PORT_HOST_H
#define BENCH_PORT_HOST_H

#include <stdint.h>

#include "host_cpu.h"

unsigned kheap_cpu_id(void);

static inline uintptr_t kheap_port_irq_save(void) { return 0; }

static inline void kheap_port_irq_restore(uintptr_t state) { (void)state; }

/* A thread takes its number when it starts (bench/bench.c calls
 * kheap_cpu_id), as a kernel sets its per-CPU register when it brings a
 * CPU up; until then, and in the bench's locked mode, host_cpu_mine is 0
 * and this is KHEAP_NO_CPU (~0u). */
static inline unsigned kheap_port_cpu_id(void) { return host_cpu_mine - 1; }

#endif
