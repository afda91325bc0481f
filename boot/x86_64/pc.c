/*
 * pc.c: QEMU -M pc. COM1 at 0x3f8, ready without set-up under QEMU; exit
 * through -device isa-debug-exit,iobase=0xf4,iosize=0x04, where QEMU exits
 * with (value << 1) | 1; APs started with INIT-SIPI-SIPI from the local APIC
 * (xAPIC, MMIO at 0xfee00000, APIC ID = CPU index under QEMU).
 */
#include "board.h"
#include "board_port.h"
#include "console.h"

#define COM1 0x3f8
#define EXIT_PORT 0xf4
#define EXIT_PASS 0x10 /* QEMU exits 33: the only passing status */
#define LAPIC ((volatile uint32_t *)(uintptr_t)0xfee00000)
#define TRAMPOLINE_BASE 0x8000u
#define STACK_SIZE 0x10000u /* per CPU, as the linker script reserves */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

void board_putc(char c)
{
	while (!(inb(COM1 + 5) & 0x20)) /* LSR.THRE */
		;
	outb(COM1, (uint8_t)c);
}

/* A triple fault under -no-reboot exits 0 and a guest that writes nothing
 * exits 1 on SIGTERM, so only EXIT_PASS means success; failures write 1..15,
 * which QEMU turns into 3..31. */
_Noreturn void board_exit(int status)
{
	outb(EXIT_PORT, status == 0 ? EXIT_PASS : (uint8_t)(1 + ((unsigned)status - 1) % 15u));
	for (;;)
		__asm__ volatile("cli; hlt");
}

void board_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* Under -icount the TSC follows QEMU's instruction counter. */
void board_counter_init(void) {}

uint64_t board_counter(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return (uint64_t)hi << 32 | lo;
}

const char *board_counter_name(void) { return "RDTSC"; }

/* ---- exceptions ---- */

struct gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
};
_Static_assert(sizeof(struct gate) == 16, "long-mode IDT gates are 16 bytes");

extern const char isr_stubs[], irq_timer[], irq_ipi[], irq_spurious[];
#define VEC_TIMER 0x40u
#define VEC_IPI 0x41u
#define VEC_SPURIOUS 0x4fu /* low four bits set, as older APICs require */
#define VEC_PIC 0x20u      /* the legacy 8259s, moved off the exceptions */
static struct gate idt[VEC_SPURIOUS + 1];

static struct gate gate_to(const char *stub)
{
	uint64_t a = (uint64_t)(uintptr_t)stub;
	return (struct gate){(uint16_t)a, 0x18, 0, 0x8e, (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
}

/* One per CPU; GS_BASE points at the running CPU's, so that board_port.h
 * reads the CPU number with one %gs-relative load. */
struct pc_percpu pc_percpu[BOARD_MAX_CPUS];

#define MSR_GS_BASE 0xc0000101u

void cpu_setup(void);
void cpu_setup(void)
{
	unsigned cpu = board_cpu();
	struct pc_percpu *me = &pc_percpu[cpu % BOARD_MAX_CPUS];
	uint64_t a = (uint64_t)(uintptr_t)me;
	me->cpu = cpu;
	__asm__ volatile("wrmsr" ::"c"(MSR_GS_BASE), "a"((uint32_t)a), "d"((uint32_t)(a >> 32)) : "memory");
	for (unsigned i = 0; i < 32; i++)
		idt[i] = gate_to(isr_stubs + 16 * i);
	idt[VEC_TIMER] = gate_to(irq_timer);
	idt[VEC_IPI] = gate_to(irq_ipi);
	for (unsigned i = VEC_PIC; i < VEC_PIC + 16; i++)
		idt[i] = gate_to(irq_spurious);
	idt[VEC_SPURIOUS] = gate_to(irq_spurious);
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} p = {sizeof idt - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" ::"m"(p));
}

_Noreturn void x86_fault(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cr2);
_Noreturn void x86_fault(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cr2)
{
	static const char *const names[32] = {
		"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
		"#BR bound", "#UD invalid opcode", "#NM no FPU", "#DF double fault", "coproc",
		"#TS bad TSS", "#NP not present", "#SS stack fault", "#GP general protection",
		"#PF page fault", "reserved", "#MF x87", "#AC alignment", "#MC machine check",
		"#XM SIMD", "#VE virtualisation", "#CP control protection"};
	board_fault(vec < 32 && names[vec] ? names[vec] : "exception", err, rip, cr2);
}

const char *board_memory(void)
{
	uint64_t cr0;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	if ((cr0 >> 31 & 1) && !(cr0 >> 30 & 1))
		return "paging and caches on (CR0.PG, CR0.CD clear): identity map of the first 4 GiB in 2 MiB "
		       "pages, write-back except the top 32 MiB (local APIC), uncached";
	return "paging or caches OFF (CR0)";
}

/* ---- interrupts: the local APIC's timer and IPIs ---- */

#define LAPIC_EOI (0xb0 / 4)
#define LAPIC_SVR (0xf0 / 4)
#define LAPIC_TPR (0x80 / 4)
#define LAPIC_LVT_TIMER (0x320 / 4)
#define LAPIC_TIMER_INIT (0x380 / 4)
#define LAPIC_TIMER_DIV (0x3e0 / 4)
/* QEMU clocks the APIC timer at 1 GHz before the divider; hardware would
 * calibrate it against a known clock. Divide by 16: 62.5 MHz. */
#define LAPIC_TIMER_HZ 62500000u

void (*volatile board_on_tick)(unsigned cpu);
void (*volatile board_on_ipi)(unsigned cpu);

unsigned board_cpu(void) { return LAPIC[0x20 / 4] >> 24; }

/* The legacy 8259 pair would deliver the PIT at vector 8 (a double fault)
 * through the boot CPU's LINT0 once interrupts are on: move it to
 * VEC_PIC..+15 (ICW1-ICW4) and mask every line. A spurious IRQ 7 or 15 it
 * may still raise lands on irq_spurious. */
static void pic_off(void)
{
	static const uint8_t icw[2][4] = {{0x11, VEC_PIC, 4, 1}, {0x11, VEC_PIC + 8, 2, 1}};
	for (unsigned k = 0; k < 4; k++) {
		outb(k ? 0x21 : 0x20, icw[0][k]);
		outb(k ? 0xa1 : 0xa0, icw[1][k]);
	}
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void board_irq_setup(unsigned cpu)
{
	if (cpu == 0)
		pic_off();
	LAPIC[LAPIC_TPR] = 0;
	LAPIC[LAPIC_SVR] = 0x100u | VEC_SPURIOUS; /* software enable */
}

void board_timer_start(unsigned hz)
{
	LAPIC[LAPIC_TIMER_DIV] = 0x3; /* divide by 16 */
	LAPIC[LAPIC_LVT_TIMER] = VEC_TIMER | 1u << 17; /* periodic */
	LAPIC[LAPIC_TIMER_INIT] = LAPIC_TIMER_HZ / hz;
}

void board_timer_stop(void)
{
	LAPIC[LAPIC_LVT_TIMER] = VEC_TIMER | 1u << 16; /* masked */
	LAPIC[LAPIC_TIMER_INIT] = 0;
}

static void ipi(unsigned apic_id, uint32_t cmd);

void board_ipi(unsigned cpu) { ipi(cpu, VEC_IPI); /* fixed delivery */ }

void board_irq_on(void) { __asm__ volatile("sti" ::: "memory"); }

void board_irq_off(void) { __asm__ volatile("cli" ::: "memory"); }

int board_irq_masked(void)
{
	uint64_t flags;
	__asm__ volatile("pushfq; popq %0" : "=r"(flags));
	return !(flags & 0x200); /* RFLAGS.IF */
}

void x86_irq(unsigned kind);
void x86_irq(unsigned kind)
{
	unsigned cpu = board_cpu();
	void (*fn)(unsigned) = kind == 0 ? board_on_tick : board_on_ipi;
	if (fn)
		fn(cpu);
	LAPIC[LAPIC_EOI] = 0;
}

/* ---- application processors ---- */

extern const char ap_trampoline[], ap_trampoline_end[];
uint64_t ap_stack;
uint32_t ap_cpu;
volatile uint32_t ap_arrived;
static void (*volatile ap_fn[BOARD_MAX_CPUS])(unsigned cpu);
extern char __stack_top[];

void boot_secondary(unsigned cpu);
void boot_secondary(unsigned cpu)
{
	ap_fn[cpu](cpu);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* QEMU delivers INIT and SIPI at once; on hardware these would be the
 * SDM's 10 ms and 200 us, timed by a calibrated clock. */
static void delay(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

static void ipi(unsigned apic_id, uint32_t cmd)
{
	LAPIC[0x310 / 4] = apic_id << 24;
	LAPIC[0x300 / 4] = cmd;
	while (LAPIC[0x300 / 4] & (1u << 12)) /* delivery status: pending */
		;
}

static int arrived(unsigned spins)
{
	for (unsigned i = 0; i < spins; i++) {
		if (ap_arrived)
			return 1;
		board_relax();
	}
	return 0;
}

int board_cpu_start(unsigned cpu, void (*fn)(unsigned cpu))
{
	if (cpu == 0 || cpu >= BOARD_MAX_CPUS)
		return -1;
	unsigned char *t = (unsigned char *)(uintptr_t)TRAMPOLINE_BASE;
	for (const char *s = ap_trampoline; s < ap_trampoline_end; s++)
		*t++ = (unsigned char)*s;
	ap_fn[cpu] = fn;
	ap_stack = (uint64_t)(uintptr_t)(__stack_top - (size_t)cpu * STACK_SIZE);
	ap_cpu = cpu;
	ap_arrived = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ipi(cpu, 0x4500); /* INIT, level assert */
	delay(10000);
	for (int tries = 0; tries < 2; tries++) {
		ipi(cpu, 0x4600 | TRAMPOLINE_BASE >> 12); /* STARTUP */
		if (arrived(10000000))
			return 0;
	}
	return -1;
}
