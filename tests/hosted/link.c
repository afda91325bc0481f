/*
 * link.c: a hosted program on the library as a kernel-less user links it
 * (make lib PIC=1), built with the toolchain's default flags, so a default
 * PIE gcc proves the library links into position-independent executables.
 * It runs a few calls, prints the control block size from the code, and
 * ends with "N passed, N failed" like every suite.
 */
#include <stdio.h>
#include <string.h>

#include "kheap.h"

static _Alignas(16) unsigned char arena[1u << 20];

int main(void)
{
	int failed = 0;
	struct kheap *h = kheap_init(arena, sizeof arena);
	char *p = h ? kheap_alloc(h, 1000) : NULL;
	char *q = h ? kheap_aligned_alloc(h, 4096, 100) : NULL;
	failed += h == NULL || p == NULL || q == NULL || ((unsigned long)q & 4095u) != 0;
	if (p != NULL) {
		memset(p, 0x5a, 1000);
		p = kheap_realloc(h, p, 5000);
		failed += p == NULL || p[999] != 0x5a;
	}
	/* a refused request returns NULL and does not trap by default */
	failed += h != NULL && kheap_calloc(h, (size_t)-1 / 2, 3) != NULL;
	kheap_free(h, p);
	kheap_free(h, q);
	failed += h == NULL || kheap_check(h) != 0;
	printf("kheap_control_size() = %zu bytes (KHEAP_MAX_CPUS %u, KHEAP_MAX_REGIONS %u)\n",
	       kheap_control_size(), KHEAP_MAX_CPUS, KHEAP_MAX_REGIONS);
	printf("%d passed, %d failed\n", !failed, failed);
	return failed;
}
