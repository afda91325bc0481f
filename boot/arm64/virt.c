/*
 * virt.c: QEMU -M virt. PL011 at 0x09000000, ready without set-up.
 * Secondary CPUs start powered off; PSCI CPU_ON brings one up at
 * secondary_entry with x0 = the context id. With no EL2/EL3 firmware (the
 * virt default) QEMU implements PSCI itself behind the HVC conduit.
 * Interrupts: GICv2, distributor at 0x08000000, CPU interface at
 * 0x08010000 (single security state).
 */
#include "board.h"
#include "arm64.h"

#define GICD 0x08000000u
#define GICC 0x08010000u

void board_putc(char c) { arm64_pl011_putc(0x09000000u, c); }

int board_cpu_start(unsigned cpu, void (*fn)(unsigned cpu))
{
	return arm64_psci_cpu_on(cpu, fn, PSCI_HVC);
}

void arm64_irqc_setup(unsigned cpu) { arm64_gicv2_setup(GICD, GICC, cpu); }

void arm64_irqc_dispatch(unsigned cpu) { arm64_gicv2_dispatch(GICC, cpu); }

void arm64_irqc_ipi(unsigned cpu) { arm64_gicv2_ipi(GICD, cpu); }
