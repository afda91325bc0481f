/* arm64.h: the seam between arm64.c (shared) and a board file. */
#ifndef ARM64_H
#define ARM64_H

#include <stdint.h>

/* Helpers a board file may use. arm64_pl011_putc: board_putc for a PL011
 * at base (QEMU's needs no set-up). arm64_psci_cpu_on: board_cpu_start
 * through PSCI CPU_ON over the board's conduit. arm64_gicv2_*: the
 * arm64_irqc_* functions below for a GICv2 at gicd/gicc. */
#define PSCI_HVC 0
#define PSCI_SMC 1
void arm64_pl011_putc(uintptr_t base, char c);
int arm64_psci_cpu_on(unsigned cpu, void (*fn)(unsigned cpu), int conduit);
void arm64_gicv2_setup(uintptr_t gicd, uintptr_t gicc, unsigned cpu);
void arm64_gicv2_dispatch(uintptr_t gicc, unsigned cpu);
void arm64_gicv2_ipi(uintptr_t gicd, unsigned cpu);

/* Record what a secondary CPU runs once start.S has given it a stack. */
void arm64_set_entry(unsigned cpu, void (*fn)(unsigned cpu));
void boot_secondary(unsigned cpu);
void secondary_entry(unsigned cpu); /* start.S; x0 = cpu */

/* The board's interrupt controller. arm64_irqc_setup(cpu): set up the
 * calling CPU's interface (and, on the boot CPU, the shared part) and
 * enable its virtual-timer interrupt and IPIs. arm64_irqc_dispatch(cpu):
 * called for each IRQ exception; acknowledges the pending sources, calling
 * arm64_timer_irq / arm64_ipi_irq for each. arm64_irqc_ipi(cpu): raise an
 * IPI on CPU cpu. */
void arm64_irqc_setup(unsigned cpu);
void arm64_irqc_dispatch(unsigned cpu);
void arm64_irqc_ipi(unsigned cpu);
void arm64_timer_irq(unsigned cpu);
void arm64_ipi_irq(unsigned cpu);
void arm64_irq(void); /* vectors.S, IRQ from EL1 */

/* start.S: the boot CPU builds the identity map and turns the MMU and
 * caches on (arm64_mmu_boot); every other CPU turns them on over that map
 * (arm64_mmu_on). */
void arm64_mmu_boot(void);
void arm64_mmu_on(void);

#endif
