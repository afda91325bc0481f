/*
 * virt.c: QEMU -M virt. PL011 at 0x09000000, ready without set-up.
 * Secondary CPUs start powered off; PSCI CPU_ON brings one up at
 * secondary_entry with x0 = the context id. With no EL2/EL3 firmware (the
 * virt default) QEMU implements PSCI itself behind the HVC conduit.
 */
#include "board.h"
#include "arm64.h"

const uintptr_t pl011_base = 0x09000000;

int board_cpu_start(unsigned cpu, void (*fn)(unsigned cpu))
{
	if (cpu == 0 || cpu >= BOARD_MAX_CPUS)
		return -1;
	arm64_set_entry(cpu, fn);
	register uint64_t x0 __asm__("x0") = 0xc4000003; /* PSCI CPU_ON, SMC64 */
	register uint64_t x1 __asm__("x1") = cpu;         /* MPIDR: Aff0 = cpu */
	register uint64_t x2 __asm__("x2") = (uint64_t)(uintptr_t)secondary_entry;
	register uint64_t x3 __asm__("x3") = cpu;         /* arrives in x0 */
	__asm__ volatile("hvc #0"
			 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
			 :
			 : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
			   "x14", "x15", "x16", "x17", "memory");
	return (int)(int64_t)x0; /* 0: PSCI_SUCCESS */
}
