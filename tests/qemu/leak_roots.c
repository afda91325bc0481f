/*
 * leak_roots.c: a kernel's roots for the leak scan, as a port would gather
 * them: the linker script's data and bss bounds, and the running stack.
 *
 * A pointer may live only in a register. __builtin_unwind_init makes the
 * compiler save every callee-saved register in this function's frame; the
 * scan then runs one call deeper, and the stack root starts at a local of
 * that deeper frame, so the saved registers lie inside it. Caller-saved
 * registers hold nothing across a call, so nothing else can hide.
 */
#include <stdint.h>

#include "leak_roots.h"

extern char __data_start[], __bss_end[], __stack_top[];

struct job {
	struct kheap *h;
	void *scratch;
	size_t size;
	kheap_leak_fn fn;
	kheap_putc_fn putc;
	void *ctx;
	struct kheap_leak_result *out;
};

__attribute__((noinline)) static int run(struct job *j)
{
	volatile uintptr_t here = 0;
	struct kheap_range roots[2] = {
		{__data_start, __bss_end},
		{(const void *)&here, __stack_top},
	};
	if (j->putc != NULL)
		return kheap_leak_report(j->h, roots, 2, j->scratch, j->size, j->putc, j->ctx);
	return kheap_leak_scan(j->h, roots, 2, j->scratch, j->size, j->fn, j->ctx, j->out);
}

__attribute__((noinline)) static int spill_and_run(struct job *j)
{
	__builtin_unwind_init();
	int rc = run(j);
	__asm__ volatile("" ::: "memory"); /* keep run() from becoming a tail call */
	return rc;
}

int kernel_leak_scan(struct kheap *h, void *scratch, size_t size, kheap_leak_fn fn, void *ctx,
		     struct kheap_leak_result *out)
{
	struct job j = {h, scratch, size, fn, NULL, ctx, out};
	return spill_and_run(&j);
}

int kernel_leak_report(struct kheap *h, void *scratch, size_t size, kheap_putc_fn putc, void *ctx)
{
	struct job j = {h, scratch, size, NULL, putc, ctx, NULL};
	return spill_and_run(&j);
}
