/* host_ipi.h: kheap_flush_others for the host tests (host_ipi.c): a thread
 * is a CPU, a signal is an IPI, and interrupt masking is emulated. */
#ifndef HOST_IPI_H
#define HOST_IPI_H

/* 1: kheap_flush_others signals every other numbered thread and drains the
 * caches of numbers whose threads exited. 0 (the default): it returns false
 * at once, as the library's default does. A test that turns it on turns it
 * off again before it returns. */
extern int host_ipi_enabled;

/* Whether an IPI reached this thread while its emulated interrupts were
 * masked and waits for kheap_irq_restore to unmask them (for tests). */
int host_ipi_pending(void);

#endif
