/* x86_64 overrides for kh_bits.h: BSF/BSR (or TZCNT/LZCNT) and PAUSE. */
#ifndef KH_ARCH_X86_64_H
#define KH_ARCH_X86_64_H

#define KH_ARCH_BITSCAN 1

#define kh_cpu_relax kh_cpu_relax
static inline void kh_cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }


/* The fused calls (kh_class.h) as the hot path makes them: the compiler is
 * told the registers kh_class.S really writes (the lists below, which its
 * header states too), so the caller keeps its own values in every other
 * register across the call instead of saving them; kh_cpu_alloc and
 * kh_cpu_free keep rdi and rsi. tests/host/t_diff.c checks that every
 * other register survives. The routines are .hidden: the call never goes
 * through a PLT, which may write r10 and r11. A hosted caller may keep
 * data in the 128 bytes below %rsp (the SysV red zone), which the call's
 * return address would overwrite: step over it. A freestanding build has
 * no red zone (kernels build with -mno-red-zone: interrupts push onto the
 * same stack). */
#if __STDC_HOSTED__
#define KH_RZ_SKIP "lea -128(%%rsp), %%rsp\n\t"
#define KH_RZ_BACK "\n\tlea 128(%%rsp), %%rsp"
#else
#define KH_RZ_SKIP ""
#define KH_RZ_BACK ""
#endif
#define KH_CPU_ALLOC_CALL KH_RZ_SKIP "call kh_cpu_alloc" KH_RZ_BACK
#define KH_CPU_ALLOC_CLOBBERS "rcx", "rdx", "r8", "cc", "memory"
#define KH_CPU_FREE_CALL KH_RZ_SKIP "call kh_cpu_free" KH_RZ_BACK
#define KH_CPU_FREE_CLOBBERS "rcx", "rdx", "r8", "cc", "memory"

struct kh_cpu;

#define kh_call_cpu_alloc kh_call_cpu_alloc
static inline void *kh_call_cpu_alloc(struct kh_cpu *cpu, size_t n)
{
	void *p;
	__asm__ volatile(KH_CPU_ALLOC_CALL : "=a"(p) : "D"(cpu), "S"(n) : KH_CPU_ALLOC_CLOBBERS);
	return p;
}

#define kh_call_cpu_free kh_call_cpu_free
static inline int kh_call_cpu_free(struct kh_cpu *cpu, void *ptr)
{
	int r;
	__asm__ volatile(KH_CPU_FREE_CALL : "=a"(r) : "D"(cpu), "S"(ptr) : KH_CPU_FREE_CLOBBERS);
	return r;
}

#endif
