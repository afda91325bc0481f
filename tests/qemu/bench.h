/* bench.h: the instruction-count table (bench.c). */
#ifndef BENCH_H
#define BENCH_H

/* Print the per-operation instruction counts as a Markdown table. Uses the
 * linker arena from __heap_start; needs QEMU -icount shift=0 for the counts
 * to be instructions. */
void bench_run(void);

#endif
