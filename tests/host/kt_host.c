/* kt_host.c: the hosted side of the harness: output and main. */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kt.h"

void kt_out(const char *s) { fputs(s, stdout); }

/* More test threads than cores: let a descheduled lock holder run. */
void kheap_spin_yield(void) { sched_yield(); }

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return kt_run(argc > 1 ? argv[1] : NULL) ? 1 : 0;
}
