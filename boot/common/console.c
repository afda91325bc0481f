/* console.c: number formatting over board_putc (see console.h). */
#include "board.h"
#include "console.h"

static volatile int line_lock;

void con_puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			board_putc('\r');
		board_putc(*s);
	}
}

void con_putu_w(uint64_t v, unsigned width)
{
	char d[21];
	unsigned n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (; width > n; width--)
		board_putc(' ');
	while (n)
		board_putc(d[--n]);
}

void con_putu(uint64_t v) { con_putu_w(v, 0); }

void con_putx(uint64_t v)
{
	con_puts("0x");
	for (int i = 60; i >= 0; i -= 4)
		board_putc("0123456789abcdef"[(v >> i) & 15u]);
}

void con_lock(void)
{
	while (__atomic_exchange_n(&line_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&line_lock, __ATOMIC_RELAXED))
			;
}

void con_unlock(void) { __atomic_store_n(&line_lock, 0, __ATOMIC_RELEASE); }

_Noreturn void board_fault(const char *what, uint64_t code, uint64_t pc, uint64_t addr)
{
	/* No con_lock: the faulting CPU may hold it, and a garbled line
	 * beats a hang. */
	con_puts("\nFAULT ");
	con_puts(what);
	con_puts(" code ");
	con_putx(code);
	con_puts(" pc ");
	con_putx(pc);
	con_puts(" addr ");
	con_putx(addr);
	con_puts("\n");
	board_exit(3);
}
