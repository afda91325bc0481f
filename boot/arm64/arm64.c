/*
 * arm64.c: what every arm64 board shares: exit through semihosting, the
 * PMU instruction counter, the PL011 UART and the hand-over to a started
 * secondary CPU. A board file (virt.c, raspi3b.c) supplies pl011_base and
 * board_cpu_start().
 */
#include "board.h"
#include "arm64.h"

void board_putc(char c)
{
	volatile uint32_t *uart = (volatile uint32_t *)pl011_base;
	while (uart[0x18 / 4] & (1u << 5)) /* FR.TXFF */
		;
	uart[0] = (uint32_t)(unsigned char)c;
}

/* Semihosting SYS_EXIT_EXTENDED (0x20): x1 points to {reason, status};
 * ADP_Stopped_ApplicationExit makes QEMU exit with status. Needs QEMU's
 * -semihosting; PSCI SYSTEM_OFF cannot report a status. */
_Noreturn void board_exit(int status)
{
	static uint64_t block[2];
	block[0] = 0x20026;
	block[1] = (uint64_t)(int64_t)status;
	register uint64_t x0 __asm__("x0") = 0x20;
	register uint64_t x1 __asm__("x1") = (uint64_t)(uintptr_t)block;
	__asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
	for (;;)
		__asm__ volatile("wfi");
}

/* PMUv3 event 0x08 INST_RETIRED when PMCEID0_EL0 says QEMU implements it
 * (it does only under -icount), else the cycle counter, which QEMU derives
 * from its virtual clock: one cycle per instruction under -icount shift=0. */
static int use_inst_event;

void board_counter_init(void)
{
	uint64_t ceid;
	__asm__ volatile("mrs %0, pmceid0_el0" : "=r"(ceid));
	use_inst_event = (ceid >> 8) & 1;
	__asm__ volatile("msr pmevtyper0_el0, %0" ::"r"((uint64_t)0x08));
	__asm__ volatile("msr pmccfiltr_el0, xzr");
	__asm__ volatile("msr pmcntenset_el0, %0" ::"r"((uint64_t)1 | (uint64_t)1 << 31));
	__asm__ volatile("msr pmcr_el0, %0; isb" ::"r"((uint64_t)7)); /* E, P, C: enable, reset both */
}

uint64_t board_counter(void)
{
	uint64_t v;
	if (use_inst_event)
		__asm__ volatile("isb; mrs %0, pmevcntr0_el0" : "=r"(v)::"memory");
	else
		__asm__ volatile("isb; mrs %0, pmccntr_el0" : "=r"(v)::"memory");
	return v;
}

const char *board_counter_name(void)
{
	return use_inst_event ? "PMU event 0x08 INST_RETIRED (PMEVCNTR0_EL0)"
			      : "PMU cycle counter PMCCNTR_EL0";
}

void board_relax(void) { __asm__ volatile("yield" ::: "memory"); }

static void (*volatile secondary_fn[BOARD_MAX_CPUS])(unsigned cpu);

void arm64_set_entry(unsigned cpu, void (*fn)(unsigned cpu)) { secondary_fn[cpu] = fn; }

/* Called from start.S on a started secondary CPU. */
void boot_secondary(unsigned cpu)
{
	if (cpu < BOARD_MAX_CPUS && secondary_fn[cpu])
		secondary_fn[cpu](cpu);
	for (;;)
		__asm__ volatile("wfe");
}
