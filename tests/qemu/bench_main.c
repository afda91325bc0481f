/* bench_main.c: a kernel that prints the instruction-count table alone. */
#include "bench.h"
#include "board.h"
#include "console.h"

void kmain(void)
{
	con_puts("kheap instruction counts\n");
	bench_run();
	board_exit(0);
}
