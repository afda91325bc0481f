/* x86_64 overrides for kh_bits.h: BSF/BSR (or TZCNT/LZCNT) and PAUSE. */
#ifndef KH_ARCH_X86_64_H
#define KH_ARCH_X86_64_H

#define KH_ARCH_BITSCAN 1

#define kh_cpu_relax kh_cpu_relax
static inline void kh_cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

#endif
