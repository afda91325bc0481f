/*
 * kh_bits.h: bit-scan and spin-wait primitives. An architecture's kh_arch.h
 * (named by KH_ARCH_HEADER, which the Makefile sets unless GENERIC=1) says
 * that it has bit-scan instructions (KH_ARCH_BITSCAN: the compiler's
 * builtins then compile to one instruction, no runtime call) and defines its
 * spin hint (kh_cpu_relax), musl-style; the portable C below is the
 * fallback and needs no compiler runtime.
 */
#ifndef KH_BITS_H
#define KH_BITS_H

#include <stddef.h>
#include <stdint.h>

#ifdef KH_ARCH_HEADER
#include KH_ARCH_HEADER
#endif

#ifdef KH_ARCH_BITSCAN
#define kh_ctz64 kh_ctz64
static inline unsigned kh_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
#define kh_fls64 kh_fls64
static inline unsigned kh_fls64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }
#endif

/* Index of the lowest set bit. Precondition: x != 0. */
#ifndef kh_ctz64
static inline unsigned kh_ctz64(uint64_t x)
{
	unsigned n = 0;
	if ((x & 0xffffffffu) == 0) { n += 32; x >>= 32; }
	if ((x & 0xffffu) == 0) { n += 16; x >>= 16; }
	if ((x & 0xffu) == 0) { n += 8; x >>= 8; }
	if ((x & 0xfu) == 0) { n += 4; x >>= 4; }
	if ((x & 0x3u) == 0) { n += 2; x >>= 2; }
	return n + (unsigned)((x & 1u) ^ 1u);
}
#endif

/* Index of the highest set bit. Precondition: x != 0. */
#ifndef kh_fls64
static inline unsigned kh_fls64(uint64_t x)
{
	unsigned n = 0;
	if (x >> 32) { n += 32; x >>= 32; }
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8) { n += 8; x >>= 8; }
	if (x >> 4) { n += 4; x >>= 4; }
	if (x >> 2) { n += 2; x >>= 2; }
	return n + (unsigned)(x >> 1);
}
#endif

/* Tell the core it is spinning (x86 PAUSE, arm64 YIELD). */
#ifndef kh_cpu_relax
static inline void kh_cpu_relax(void) {}
#endif

static inline unsigned kh_fls_size(size_t x) { return kh_fls64((uint64_t)x); }

#endif /* KH_BITS_H */
