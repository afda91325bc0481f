/*
 * nomask.c: the control for the heap lock's re-entry report: the SMP stress
 * with the kernel's interrupt masking hooks turned into no-ops, so a timer
 * interrupt that allocates lands on a CPU inside the heap. It must fail
 * through the lock's kheap_panic naming the re-entry (tools/qemu-test.sh
 * checks the message and that it came within a second), not by a timeout.
 */
#define CONTROL_NOMASK 1
#define TICK_MIN_SIZE 66000u
#include "smp_stress.c"
