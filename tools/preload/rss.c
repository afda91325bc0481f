/*
 * rss.c: does memory go back to the kernel once a program's peak has
 * passed? Builds a peak of 200 MiB in 4000-byte blocks and one 256 MiB
 * block, frees them, and prints the resident set (VmRSS) at each step;
 * then callocs 256 MiB, reads one byte per MiB, and prints it again (a
 * calloc need not touch pages that are already zero). With "check" it
 * exits 1 unless the RSS after the frees and after the calloc is under a
 * quarter of the peak.
 *
 * "rss realloc [check]" grows two blocks by realloc, in turns, to 128 MiB
 * each in 4 MiB steps, writing every new page, and prints how far the peak
 * resident set (VmHWM) rose over their final size. With "check" it exits 1
 * unless the rise stays under a quarter of that size more: glibc grows its
 * mappings with mremap (nothing more); a block that has to move to another
 * region holds the old copy and the new one at once. preload-test.sh runs
 * it under ulimit -v 2 GiB, where the preload's first region is 128 MiB,
 * so that a block kept in the heap would have to cross regions.
 * Usage: rss [realloc] [check]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 50000, SMALL = 4000 };
#define BIG ((size_t)256 << 20)

/* A line of /proc/self/status ("VmRSS:", "VmHWM:") in MiB. */
static long status_mib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			kib = atol(line + strlen(key));
	if (f != NULL)
		fclose(f);
	return kib / 1024;
}

static long rss_mib(void) { return status_mib("VmRSS:"); }

static int grow_by_realloc(int check)
{
	enum { STEP = 4 << 20, STEPS = 32 };
	long before = status_mib("VmHWM:");
	char *p[2] = {NULL, NULL};
	for (size_t n = STEP; n <= (size_t)STEP * STEPS; n += STEP)
		for (int k = 0; k < 2; k++) {
			char *q = realloc(p[k], n);
			if (q == NULL)
				return 2;
			p[k] = q;
			memset(q + n - STEP, (int)(n / STEP + k), STEP);
		}
	int intact = 1;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < STEPS; i++)
			intact &= p[k][i * STEP] == (char)(i + 1 + k);
	long rise = status_mib("VmHWM:") - before, size = 2 * ((long)STEP * STEPS >> 20);
	free(p[0]);
	free(p[1]);
	printf("realloc of two blocks to %ld MiB in all, %d MiB steps: peak RSS rose %ld MiB (%ld over)%s\n", size,
	       STEP >> 20, rise, rise - size, intact ? "" : ", contents damaged");
	return check && !(intact && rise - size < size / 4);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "realloc") == 0)
		return grow_by_realloc(argc > 2 && strcmp(argv[2], "check") == 0);
	static char *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(SMALL);
		if (p[i] == NULL)
			return 2;
		memset(p[i], i, SMALL);
	}
	char *big = malloc(BIG);
	if (big == NULL)
		return 2;
	memset(big, 1, BIG);
	long peak = rss_mib();
	free(big);
	long after_big = rss_mib();
	for (int i = 0; i < N; i++)
		free(p[i]);
	long after_all = rss_mib();
	unsigned char *z = calloc(1, BIG);
	if (z == NULL)
		return 2;
	unsigned sum = 0;
	for (size_t i = 0; i < BIG; i += (size_t)1 << 20)
		sum += z[i];
	long after_calloc = rss_mib();
	free(z);
	printf("rss MiB: peak %ld, after the big free %ld, after all frees %ld, with 256 MiB calloc'd %ld (sum %u)\n",
	       peak, after_big, after_all, after_calloc, sum);
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return !(after_all < peak / 4 && after_calloc < peak / 4 && sum == 0);
	return 0;
}
