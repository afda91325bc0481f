/* console.h: unbuffered text output over board_putc, no allocation. */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stdint.h>

void con_puts(const char *s);
void con_putu(uint64_t v);
/* v right-aligned in a field of width characters. */
void con_putu_w(uint64_t v, unsigned width);
void con_putx(uint64_t v);

/* Serialise whole lines from several CPUs (a test-and-set lock that does not
 * use the heap's lock, so it still works when the heap is corrupt). */
void con_lock(void);
void con_unlock(void);

#endif
