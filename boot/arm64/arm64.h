/* arm64.h: the seam between arm64.c (shared) and a board file. */
#ifndef ARM64_H
#define ARM64_H

#include <stdint.h>

/* Physical base of the board's PL011 (the MMU is off). */
extern const uintptr_t pl011_base;

/* Record what a secondary CPU runs once start.S has given it a stack. */
void arm64_set_entry(unsigned cpu, void (*fn)(unsigned cpu));
void boot_secondary(unsigned cpu);
void secondary_entry(unsigned cpu); /* start.S; x0 = cpu */

#endif
