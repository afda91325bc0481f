/*
 * kt_qemu.c: the QEMU side of the test harness (the twin of
 * tests/host/kt_host.c): kt_out over the board's UART, and a kmain that runs
 * every case linked into the kernel (tests/host/t_*.c minus the hosted ones,
 * see mk/qemu.mk) and exits with status 1 if any failed.
 */
#include "board.h"
#include "console.h"
#include "kt.h"

void kt_out(const char *s) { con_puts(s); }

void kt_percpu(int on) { board_percpu = on; }

void kmain(void)
{
	con_puts("kheap test kernel; ");
	con_puts(board_memory());
	con_puts("\n");
	board_exit(kt_run(NULL) ? 1 : 0);
}
