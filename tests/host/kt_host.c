/* kt_host.c: the hosted side of the harness: output and main. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_cpu.h"
#include "kt.h"

void kt_out(const char *s) { fputs(s, stdout); }

void kt_percpu(int on) { host_cpu_enabled = on; }

/* More test threads than cores: let a descheduled lock holder run. */
void kheap_spin_yield(void) { sched_yield(); }

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* KT_PERCPU=1: every thread gets a per-CPU cache (kheap_cpu_id). */
	const char *pc = getenv("KT_PERCPU");
	kt_percpu_default = pc != NULL && pc[0] == '1';
	return kt_run(argc > 1 ? argv[1] : NULL) ? 1 : 0;
}
