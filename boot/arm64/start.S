/*
 * start.S: arm64 entry for every arm64 board (QEMU virt, raspi3b).
 *
 * In:  _start at EL3, EL2 or EL1, MMU off, any CPU of the board (raspi3b starts
 *      all four here; virt starts only CPU 0 and the rest through PSCI).
 * Out: boot_main() on CPU 0 at EL1 with .bss zeroed, sp = __stack_top;
 *      secondary_entry(cpu) on others, sp = __stack_top - cpu * STACK_SIZE.
 * Each CPU turns on its MMU and caches before any C beyond the map builder
 * runs (arm64.c: identity map, RAM Normal write-back, the rest Device).
 * DAIF stays masked until a kernel unmasks IRQs.
 * Clobbers: everything; nothing returns here.
 */
#include "asm.h"

#define STACK_SHIFT 16 /* 64 KiB per CPU; linker scripts reserve 4 */

	.section .text.boot, "ax"
FUNC(_start)
	mrs	x0, mpidr_el1
	and	x0, x0, #0xff
	cbnz	x0, park
	bl	drop_to_el1
	ldr	x0, =__stack_top
	mov	sp, x0
	/* .bss is 16-aligned and a multiple of 16 long (linker ASSERTs). */
	ldr	x0, =__bss_start
	ldr	x1, =__bss_end
1:	cmp	x0, x1
	b.hs	2f
	stp	xzr, xzr, [x0], #16
	b	1b
2:	bl	cpu_setup
	bl	arm64_mmu_boot
	bl	kmain
	mov	w0, #4			/* kmain returned: a kernel bug */
	bl	board_exit
ENDF(_start)

/* Secondary CPUs the firmware starts here too (raspi3b) wait until CPU 0
 * writes their slot in cpu_release (.data, so .bss clearing cannot race). */
park:
	ldr	x1, =cpu_release
	ldr	x2, [x1, x0, lsl #3]
	cbnz	x2, secondary_entry
	wfe
	b	park

/* x0 = CPU index, MMU off; the PSCI CPU_ON entry point on virt. */
FUNC(secondary_entry)
	mov	x19, x0
	bl	drop_to_el1
	ldr	x1, =__stack_top
	sub	x1, x1, x19, lsl #STACK_SHIFT
	mov	sp, x1
	bl	cpu_setup
	bl	arm64_mmu_on
	mov	x0, x19
	bl	boot_secondary
	mov	w0, #4
	bl	board_exit
ENDF(secondary_entry)

/* Return to x30 at EL1h with DAIF masked. From EL3 (raspi3b starts all
 * cores there): Secure EL1 in AArch64, which needs no EL2 set-up. From EL2:
 * AArch64 EL1, EL1 may read the counters, no virtual offset. Clobbers x9. */
FUNC(drop_to_el1)
	mrs	x9, CurrentEL
	cmp	x9, #(3 << 2)
	b.ne	2f
	mov	x9, #0x430		/* SCR_EL3: RW, RES1 bits 5:4; NS = 0 */
	msr	scr_el3, x9
	mov	x9, #0x3c5		/* EL1h, D A I F masked */
	msr	spsr_el3, x9
	msr	elr_el3, x30
	eret
2:	cmp	x9, #(2 << 2)
	b.ne	1f
	mov	x9, #(1 << 31)		/* HCR_EL2.RW */
	msr	hcr_el2, x9
	mov	x9, #3			/* CNTHCTL_EL2.EL1PCEN | EL1PCTEN */
	msr	cnthctl_el2, x9
	msr	cntvoff_el2, xzr
	mov	x9, #0x3c5		/* EL1h, D A I F masked */
	msr	spsr_el2, x9
	msr	elr_el2, x30
	eret
1:	msr	daifset, #0xf
	ret
ENDF(drop_to_el1)

/* Vectors, SCTLR_EL1 with MMU, caches and alignment checks off (the reset
 * value is UNKNOWN on hardware), and TPIDR_EL1 = this CPU's number (MPIDR
 * Aff0, as board_cpu), which board_port.h reads in one instruction.
 * Clobbers x9. */
FUNC(cpu_setup)
	mrs	x9, mpidr_el1
	and	x9, x9, #0xff
	msr	tpidr_el1, x9
	ldr	x9, =vectors
	msr	vbar_el1, x9
	ldr	x9, =0x30d00800		/* RES1 bits only */
	msr	sctlr_el1, x9
	isb
	ret
ENDF(cpu_setup)

/* One slot per CPU: non-zero releases a parked CPU. */
	.data
	.balign 8
	.global cpu_release
cpu_release:
	.quad	0, 0, 0, 0
