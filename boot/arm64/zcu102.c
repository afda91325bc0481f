/*
 * zcu102.c: QEMU -M xlnx-zcu102 (Xilinx ZynqMP: four Cortex-A53, plus two
 * Cortex-R5F that QEMU leaves idle). With the machine's defaults
 * (secure=off, virtualization=off) the A53s start at EL1 and QEMU answers
 * PSCI itself through the SMC conduit (HVC is undefined there and faults):
 * the secondaries start powered off and CPU_ON brings one up at
 * secondary_entry. UART0 is a Cadence UART at 0xFF000000 (QEMU's first
 * serial port): transmit must be enabled before it sends. GIC-400 (GICv2):
 * distributor at 0xF9010000, CPU interface at 0xF9020000; the virtual timer
 * is PPI 27, IPIs are SGI 0.
 */
#include "board.h"
#include "arm64.h"

#define UART ((volatile uint32_t *)(uintptr_t)0xff000000)
#define UART_CR (0x00 / 4)
#define UART_SR (0x2c / 4)
#define UART_FIFO (0x30 / 4)
#define CR_TXEN (1u << 4)
#define SR_TXFULL (1u << 4)
#define GICD 0xf9010000u
#define GICC 0xf9020000u

void board_putc(char c)
{
	if (!(UART[UART_CR] & CR_TXEN))
		UART[UART_CR] = CR_TXEN;
	while (UART[UART_SR] & SR_TXFULL)
		;
	UART[UART_FIFO] = (uint32_t)(unsigned char)c;
}

int board_cpu_start(unsigned cpu, void (*fn)(unsigned cpu))
{
	return arm64_psci_cpu_on(cpu, fn, PSCI_SMC);
}

void arm64_irqc_setup(unsigned cpu) { arm64_gicv2_setup(GICD, GICC, cpu); }

void arm64_irqc_dispatch(unsigned cpu) { arm64_gicv2_dispatch(GICC, cpu); }

void arm64_irqc_ipi(unsigned cpu) { arm64_gicv2_ipi(GICD, cpu); }
