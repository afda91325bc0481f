/* arm64 overrides for kh_bits.h: RBIT+CLZ, CLZ and YIELD. */
#ifndef KH_ARCH_ARM64_H
#define KH_ARCH_ARM64_H

#include <stdint.h>

#define kh_ctz64 kh_ctz64
static inline unsigned kh_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

#define kh_fls64 kh_fls64
static inline unsigned kh_fls64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }

#define kh_cpu_relax kh_cpu_relax
static inline void kh_cpu_relax(void) { __asm__ volatile("yield" ::: "memory"); }

#endif
