/*
 * raspi3b.c: QEMU -M raspi3b (BCM2837). PL011 at 0x3F201000, ready without
 * set-up under QEMU. QEMU starts all four cores at the ELF entry; start.S
 * parks every core whose MPIDR.Aff0 is not 0 until its cpu_release slot is
 * written (no PSCI on this board).
 */
#include "board.h"
#include "arm64.h"

const uintptr_t pl011_base = 0x3f201000;

extern volatile uint64_t cpu_release[BOARD_MAX_CPUS];

int board_cpu_start(unsigned cpu, void (*fn)(unsigned cpu))
{
	if (cpu == 0 || cpu >= BOARD_MAX_CPUS)
		return -1;
	arm64_set_entry(cpu, fn);
	__asm__ volatile("dsb sy" ::: "memory"); /* entry visible before the release */
	cpu_release[cpu] = 1;
	__asm__ volatile("dsb sy; sev" ::: "memory");
	return 0;
}
