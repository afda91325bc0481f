/* arm64 overrides for kh_bits.h: RBIT+CLZ, CLZ and YIELD. */
#ifndef KH_ARCH_ARM64_H
#define KH_ARCH_ARM64_H

#define KH_ARCH_BITSCAN 1

#define kh_cpu_relax kh_cpu_relax
static inline void kh_cpu_relax(void) { __asm__ volatile("yield" ::: "memory"); }

#endif
