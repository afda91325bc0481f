/*
 * arm64.c: what every arm64 board shares: exit through semihosting, the
 * PMU instruction counter, the hand-over to a started secondary CPU, the
 * generic timer, the MMU, and helpers a board file may use (PL011 UART,
 * PSCI CPU_ON, GICv2). A board file (virt.c, raspi3b.c, zcu102.c) supplies
 * board_putc, board_cpu_start and the arm64_irqc_* interrupt controller
 * (arm64.h).
 */
#include "board.h"
#include "arm64.h"

void arm64_pl011_putc(uintptr_t base, char c)
{
	volatile uint32_t *uart = (volatile uint32_t *)base;
	while (uart[0x18 / 4] & (1u << 5)) /* FR.TXFF */
		;
	uart[0] = (uint32_t)(unsigned char)c;
}

/* PSCI CPU_ON (SMC64 function 0xC4000003): CPU cpu (MPIDR Aff0 = cpu)
 * starts at secondary_entry with x0 = cpu. The conduit is the board's:
 * HVC where a hypervisor (or QEMU in its place) answers, SMC where the
 * secure monitor does; the wrong one is an undefined-instruction fault. */
int arm64_psci_cpu_on(unsigned cpu, void (*fn)(unsigned cpu), int conduit)
{
	if (cpu == 0 || cpu >= BOARD_MAX_CPUS)
		return -1;
	arm64_set_entry(cpu, fn);
	register uint64_t x0 __asm__("x0") = 0xc4000003;
	register uint64_t x1 __asm__("x1") = cpu;
	register uint64_t x2 __asm__("x2") = (uint64_t)(uintptr_t)secondary_entry;
	register uint64_t x3 __asm__("x3") = cpu; /* arrives in x0 */
	if (conduit == PSCI_SMC)
		__asm__ volatile("smc #0"
				 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
				 :
				 : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
				   "x15", "x16", "x17", "memory");
	else
		__asm__ volatile("hvc #0"
				 : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
				 :
				 : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
				   "x15", "x16", "x17", "memory");
	return (int)(int64_t)x0; /* 0: PSCI_SUCCESS */
}

/* GICv2 (single security state, or the non-secure view): group 0 is
 * signalled as IRQ. The virtual timer is PPI 27 on every board here; SGI 0
 * is the IPI. GICD_ISENABLER0 is banked: each CPU enables its own. */
#define GICD_CTLR (0x000 / 4)
#define GICD_ISENABLER0 (0x100 / 4)
#define GICD_SGIR (0xf00 / 4)
#define GICC_CTLR (0x00 / 4)
#define GICC_PMR (0x04 / 4)
#define GICC_IAR (0x0c / 4)
#define GICC_EOIR (0x10 / 4)
#define TIMER_PPI 27u
#define IPI_SGI 0u
#define SPURIOUS 1023u

void arm64_gicv2_setup(uintptr_t gicd, uintptr_t gicc, unsigned cpu)
{
	volatile uint32_t *d = (volatile uint32_t *)gicd, *c = (volatile uint32_t *)gicc;
	if (cpu == 0)
		d[GICD_CTLR] = 1;
	d[GICD_ISENABLER0] = 1u << TIMER_PPI | 1u << IPI_SGI;
	c[GICC_PMR] = 0xff; /* every priority passes */
	c[GICC_CTLR] = 1;
}

void arm64_gicv2_dispatch(uintptr_t gicc, unsigned cpu)
{
	volatile uint32_t *c = (volatile uint32_t *)gicc;
	for (;;) {
		uint32_t iar = c[GICC_IAR];
		uint32_t id = iar & 0x3ffu;
		if (id == SPURIOUS)
			return;
		if (id == TIMER_PPI)
			arm64_timer_irq(cpu);
		else if (id == IPI_SGI)
			arm64_ipi_irq(cpu);
		c[GICC_EOIR] = iar;
	}
}

void arm64_gicv2_ipi(uintptr_t gicd, unsigned cpu)
{
	__asm__ volatile("dsb sy" ::: "memory"); /* what the IPI asks about is visible first */
	((volatile uint32_t *)gicd)[GICD_SGIR] = (1u << (16 + cpu)) | IPI_SGI; /* target list filter 0 */
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

/* ---- interrupts: the generic timer (architectural, every board) ---- */

void (*volatile board_on_tick)(unsigned cpu);
void (*volatile board_on_ipi)(unsigned cpu);
static uint64_t tick_interval; /* counter ticks between timer interrupts */

unsigned board_cpu(void)
{
	uint64_t mpidr;
	__asm__ volatile("mrs %0, mpidr_el1" : "=r"(mpidr));
	return (unsigned)(mpidr & 0xff);
}

void board_irq_setup(unsigned cpu) { arm64_irqc_setup(cpu); }

void board_irq_on(void) { __asm__ volatile("msr daifclr, #2" ::: "memory"); }

void board_irq_off(void) { __asm__ volatile("msr daifset, #2" ::: "memory"); }

int board_irq_masked(void)
{
	uint64_t daif;
	__asm__ volatile("mrs %0, daif" : "=r"(daif));
	return (daif >> 7) & 1; /* DAIF.I */
}

/* The EL1 virtual timer (CNTV): its condition is a level, cleared by
 * writing the next deadline into CNTV_TVAL_EL0. */
void board_timer_start(unsigned hz)
{
	uint64_t freq;
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
	tick_interval = freq / hz;
	__asm__ volatile("msr cntv_tval_el0, %0; msr cntv_ctl_el0, %1; isb" ::"r"(tick_interval),
			 "r"((uint64_t)1));
}

void board_timer_stop(void) { __asm__ volatile("msr cntv_ctl_el0, %0; isb" ::"r"((uint64_t)2)); }

void arm64_timer_irq(unsigned cpu)
{
	__asm__ volatile("msr cntv_tval_el0, %0; isb" ::"r"(tick_interval));
	if (board_on_tick)
		board_on_tick(cpu);
}

void arm64_ipi_irq(unsigned cpu)
{
	if (board_on_ipi)
		board_on_ipi(cpu);
}

void board_ipi(unsigned cpu) { arm64_irqc_ipi(cpu); }

void arm64_irq(void) { arm64_irqc_dispatch(board_cpu()); }

/* ---- MMU: identity map, caches on ----
 * The first 4 GiB of physical address space, identity-mapped with 2 MiB
 * blocks (4 KiB granule, 39-bit VA, walks start at level 1): the linker
 * script's [__ram_start, __ram_end) as Normal write-back (inner shareable,
 * so exclusives and the heap's atomics behave as on hardware), the rest as
 * Device-nGnRnE and never executable (UARTs, interrupt controllers). The
 * boot CPU builds the tables once; every CPU then turns its MMU on. */
extern char __ram_start[], __ram_end[];

#define MAP_GIB 4u
#define BLOCK_2M ((uint64_t)1 << 21)
#define ATTR_DEVICE 0u /* MAIR index: Device-nGnRnE (0x00) */
#define ATTR_NORMAL 1u /* MAIR index: Normal, inner/outer WB RA WA (0xff) */
#define DESC_BLOCK 1u
#define DESC_TABLE 3u
#define DESC_AF ((uint64_t)1 << 10)
#define DESC_SH_INNER ((uint64_t)3 << 8)
#define DESC_XN ((uint64_t)3 << 53) /* PXN and UXN */

static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l2[MAP_GIB][512] __attribute__((aligned(4096)));

static uint64_t block(uint64_t pa)
{
	uint64_t lo = (uint64_t)(uintptr_t)__ram_start, hi = (uint64_t)(uintptr_t)__ram_end;
	if (pa >= lo && pa < hi)
		return pa | DESC_BLOCK | DESC_AF | DESC_SH_INNER | (uint64_t)ATTR_NORMAL << 2;
	return pa | DESC_BLOCK | DESC_AF | DESC_XN | (uint64_t)ATTR_DEVICE << 2;
}

void arm64_mmu_on(void)
{
	uint64_t mair = 0x00u | (uint64_t)0xff << 8;
	uint64_t tcr = 25u                  /* T0SZ: 39-bit VA */
		       | (uint64_t)1 << 8   /* IRGN0: write-back, write-allocate */
		       | (uint64_t)1 << 10  /* ORGN0: the same */
		       | (uint64_t)3 << 12  /* SH0: inner shareable */
		       | (uint64_t)1 << 23  /* EPD1: no TTBR1 walks */
		       | (uint64_t)2 << 32; /* IPS: 40-bit PA */
	uint64_t sctlr;
	__asm__ volatile("msr mair_el1, %0; msr tcr_el1, %1; msr ttbr0_el1, %2; isb;"
			 "tlbi vmalle1; dsb ish; isb" ::"r"(mair),
			 "r"(tcr), "r"((uint64_t)(uintptr_t)l1)
			 : "memory");
	__asm__ volatile("mrs %0, sctlr_el1" : "=r"(sctlr));
	sctlr |= 1u << 0 | 1u << 2 | 1u << 12; /* M, C, I */
	__asm__ volatile("msr sctlr_el1, %0; isb" ::"r"(sctlr) : "memory");
}

/* start.S, on the boot CPU before kmain: build the map, turn it on. */
void arm64_mmu_boot(void)
{
	for (unsigned g = 0; g < MAP_GIB; g++) {
		for (unsigned i = 0; i < 512; i++)
			l2[g][i] = block(((uint64_t)g << 30) + i * BLOCK_2M);
		l1[g] = (uint64_t)(uintptr_t)l2[g] | DESC_TABLE;
	}
	__asm__ volatile("dsb ish" ::: "memory"); /* tables in memory before the walker reads them */
	arm64_mmu_on();
}

const char *board_memory(void)
{
	uint64_t sctlr;
	__asm__ volatile("mrs %0, sctlr_el1" : "=r"(sctlr));
	if ((sctlr & 0x1005u) == 0x1005u)
		return "MMU and caches on (SCTLR_EL1 M, C, I): identity map, RAM Normal write-back, MMIO Device";
	return "MMU or caches OFF (SCTLR_EL1)";
}
