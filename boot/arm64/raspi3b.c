/*
 * raspi3b.c: QEMU -M raspi3b (BCM2837). PL011 at 0x3F201000, ready without
 * set-up under QEMU. QEMU starts all four cores at the ELF entry; start.S
 * parks every core whose MPIDR.Aff0 is not 0 until its cpu_release slot is
 * written (no PSCI on this board).
 * Interrupts: no GIC; the BCM2836 local controller at 0x40000000 routes
 * each core's virtual timer (CNTV) to it and gives each core four
 * mailboxes whose writes raise an IRQ on it: mailbox 0 is the IPI.
 */
#include "board.h"
#include "arm64.h"

void board_putc(char c) { arm64_pl011_putc(0x3f201000u, c); }

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

#define LOCAL ((volatile uint32_t *)(uintptr_t)0x40000000)
#define TIMER_CTL(c) ((0x40 + 4 * (c)) / 4) /* bit 3: CNTV to IRQ */
#define MBOX_CTL(c) ((0x50 + 4 * (c)) / 4)  /* bit 0: mailbox 0 to IRQ */
#define IRQ_SRC(c) ((0x60 + 4 * (c)) / 4)   /* bit 3: CNTV, bit 4: mailbox 0 */
#define MBOX0_SET(c) ((0x80 + 16 * (c)) / 4)
#define MBOX0_CLR(c) ((0xc0 + 16 * (c)) / 4)

void arm64_irqc_setup(unsigned cpu)
{
	LOCAL[TIMER_CTL(cpu)] = 1u << 3;
	LOCAL[MBOX_CTL(cpu)] = 1u << 0;
}

void arm64_irqc_dispatch(unsigned cpu)
{
	uint32_t src = LOCAL[IRQ_SRC(cpu)];
	if (src & (1u << 4)) {
		LOCAL[MBOX0_CLR(cpu)] = LOCAL[MBOX0_CLR(cpu)]; /* write ones to clear */
		arm64_ipi_irq(cpu);
	}
	if (src & (1u << 3))
		arm64_timer_irq(cpu);
}

void arm64_irqc_ipi(unsigned cpu)
{
	__asm__ volatile("dsb sy" ::: "memory");
	LOCAL[MBOX0_SET(cpu)] = 1;
}
