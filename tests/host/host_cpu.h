/* host_cpu.h: a thread-per-CPU kheap_cpu_id for hosted programs (host_cpu.c). */
#ifndef HOST_CPU_H
#define HOST_CPU_H

#define HOST_CPU_MAX 64u /* numbers fit one 64-bit word */

/* 0: kheap_cpu_id says KHEAP_NO_CPU to threads that have no number yet. */
extern int host_cpu_enabled;

#endif
