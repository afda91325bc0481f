/* arm64 overrides for kh_bits.h: RBIT+CLZ, CLZ and YIELD. */
#ifndef KH_ARCH_ARM64_H
#define KH_ARCH_ARM64_H

#define KH_ARCH_BITSCAN 1

#define kh_cpu_relax kh_cpu_relax
static inline void kh_cpu_relax(void) { __asm__ volatile("yield" ::: "memory"); }


/* The fused calls (kh_class.h) as the hot path makes them: the compiler is
 * told the registers kh_class.S really writes (its header states them too),
 * so the caller keeps its own values in every other register across the
 * BL instead of saving them; kh_cpu_alloc and kh_cpu_free keep x1.
 * tests/host/t_diff.c checks that every other register survives. */
#define KH_CPU_ALLOC_CALL "bl kh_cpu_alloc"
#define KH_CPU_FREE_CALL "bl kh_cpu_free"
#define KH_CPU_CALL_CLOBBERS "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x16", "x17", "x30", "cc", "memory"
#define KH_CPU_ALLOC_CLOBBERS KH_CPU_CALL_CLOBBERS
#define KH_CPU_FREE_CLOBBERS KH_CPU_CALL_CLOBBERS

struct kh_cpu;

#define kh_call_cpu_alloc kh_call_cpu_alloc
static inline void *kh_call_cpu_alloc(struct kh_cpu *cpu, size_t n)
{
	register uintptr_t x0 __asm__("x0") = (uintptr_t)cpu;
	register size_t x1 __asm__("x1") = n;
	__asm__ volatile(KH_CPU_ALLOC_CALL : "+r"(x0) : "r"(x1) : KH_CPU_ALLOC_CLOBBERS);
	return (void *)x0;
}

#define kh_call_cpu_free kh_call_cpu_free
static inline int kh_call_cpu_free(struct kh_cpu *cpu, void *ptr)
{
	register uintptr_t x0 __asm__("x0") = (uintptr_t)cpu;
	register void *x1 __asm__("x1") = ptr;
	__asm__ volatile(KH_CPU_FREE_CALL : "+r"(x0) : "r"(x1) : KH_CPU_FREE_CLOBBERS);
	return (int)x0;
}

#endif
