/*
 * board.h: what the boot code of every board gives the kernels in tests/qemu/.
 * A port provides these in boot/<arch>/ plus a linker script in linker/;
 * nothing in src/heap/ knows about boards.
 *
 * Every function here is safe to call from any started CPU. Interrupts are
 * masked until a kernel turns them on with board_irq_on (the SMP stress).
 */
#ifndef BOARD_H
#define BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Most CPUs a kernel may start; the boot code reserves one stack for each. */
#define BOARD_MAX_CPUS 4u

/* The arena the linker script leaves for the heap: 16-aligned, at least the
 * size the script ASSERTs. */
extern char __heap_start[], __heap_end[];

/* Write one byte to the board's UART, spinning while its FIFO is full. */
void board_putc(char c);

/* Leave the emulator: status 0 means every test passed, anything else is a
 * failure. Never returns. */
_Noreturn void board_exit(int status);

/* Start CPU cpu (1 .. BOARD_MAX_CPUS - 1) in fn(cpu) on its own stack, with
 * interrupts masked. Returns 0 when the start request was accepted; the
 * caller then waits for the CPU to check in. fn must not return. */
int board_cpu_start(unsigned cpu, void (*fn)(unsigned cpu));

/* Non-zero: kheap_cpu_id (irq.c) names the running CPU, so kheap serves
 * small blocks from per-CPU caches; zero (the start): KHEAP_NO_CPU. */
extern int board_percpu;

/* Spin-wait hint (arm64 YIELD, x86 PAUSE). Under QEMU's round-robin TCG
 * (-accel tcg,thread=single) it also hands the host thread to the next
 * vCPU, so a waiting CPU does not burn its whole time slice. */
void board_relax(void);

/* Enable the per-CPU event counter and read it. Under QEMU -icount shift=0
 * it counts retired instructions; board_counter_name() says which counter
 * the port reads. */
void board_counter_init(void);
uint64_t board_counter(void);
const char *board_counter_name(void);

/* Interrupts, per CPU. board_irq_setup() prepares the calling CPU's part
 * of the interrupt controller (the boot CPU's call also the shared part)
 * and routes its timer and IPIs to it; board_timer_start(hz) then makes the
 * calling CPU's timer interrupt hz times a second, each calling
 * board_on_tick(cpu) in interrupt context, until board_timer_stop().
 * board_ipi(cpu) interrupts CPU cpu, which calls board_on_ipi(cpu).
 * board_irq_on/off unmask and mask interrupts on the calling CPU. Handlers
 * run with interrupts masked. */
void board_irq_setup(unsigned cpu);
void board_timer_start(unsigned hz);
void board_timer_stop(void);
void board_ipi(unsigned cpu);
void board_irq_on(void);
void board_irq_off(void);
int board_irq_masked(void); /* non-zero: the calling CPU takes no IRQ now */
extern void (*volatile board_on_tick)(unsigned cpu);
extern void (*volatile board_on_ipi)(unsigned cpu);

/* Non-zero (the start): kheap_irq_save masks interrupts. Zero turns the
 * kernel's masking hooks into no-ops: the control that proves a handler
 * calling kheap over a CPU that holds the heap lock is reported. */
extern int board_mask_irqs;

/* One line on how the calling CPU sees memory (MMU, caches, map), read
 * from the CPU's own control registers where it has them. */
const char *board_memory(void);

/* This CPU's number (0 .. BOARD_MAX_CPUS - 1). */
unsigned board_cpu(void);

/* Entered on the boot CPU with .bss cleared and a stack set up. */
void kmain(void);

/* Called by the exception vectors with a description of the fault; prints
 * it and exits with status 3. */
_Noreturn void board_fault(const char *what, uint64_t code, uint64_t pc, uint64_t addr);

#endif /* BOARD_H */
