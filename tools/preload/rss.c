/*
 * rss.c: does memory go back to the kernel once a program's peak has
 * passed? Builds a peak of 200 MiB in 4000-byte blocks and one 256 MiB
 * block, frees them, and prints the resident set (VmRSS) at each step;
 * then callocs 256 MiB, reads one byte per MiB, and prints it again (a
 * calloc need not touch pages that are already zero). With "check" it
 * exits 1 unless the RSS after the frees and after the calloc is under a
 * quarter of the peak. Usage: rss [check]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 50000, SMALL = 4000 };
#define BIG ((size_t)256 << 20)

static long rss_mib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	if (f != NULL)
		fclose(f);
	return kib / 1024;
}

int main(int argc, char **argv)
{
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
