/*
 * contract.c: the malloc family's contracts as the preload implements them
 * (POSIX, glibc's choices where POSIX leaves room, C23 for aligned_alloc).
 * Run under LD_PRELOAD=libkheap-preload.so by preload-test.sh. Prints one
 * line per failed check and a final "contract: N checks, N failed"; exits 1
 * on any failure.
 *
 * "contract double-free" frees a block twice instead, "contract
 * double-free-large" a block above the mmap threshold: the preload must
 * write a report line and abort (SIGABRT), as glibc does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int checks, failed;

#define CHECK(cond) check((cond), #cond, __LINE__)

static void check(int ok, const char *what, int line)
{
	checks++;
	if (!ok) {
		failed++;
		printf("FAIL line %d: %s\n", line, what);
	}
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* Hide a size from the compiler, which knows malloc's contract too and
 * would otherwise fold or warn about the absurd requests below. */
static volatile size_t huge = SIZE_MAX;
/* Called through these where failure must leave the block valid, which the
 * compiler cannot know (it would call the later use a use after free). */
static void *(*volatile realloc_v)(void *, size_t) = realloc;
static void *(*volatile reallocarray_v)(void *, size_t, size_t) = reallocarray;

static void t_malloc_free(void)
{
	void *a = malloc(0), *b = malloc(0);
	CHECK(a != NULL && b != NULL && a != b);
	free(a);
	free(b);
	free(NULL);
	errno = 0;
	CHECK(malloc(huge) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(malloc(huge / 2) == NULL && errno == ENOMEM);
	for (size_t n = 1; n < 5000; n += 37) {
		unsigned char *p = malloc(n);
		CHECK(p != NULL && aligned(p, 16) && malloc_usable_size(p) >= n);
		memset(p, 0xa5, malloc_usable_size(p));
		free(p);
	}
	CHECK(malloc_usable_size(NULL) == 0);
}

static void t_calloc(void)
{
	unsigned char *p = malloc(4096);
	memset(p, 0xff, 4096);
	free(p);
	p = calloc(64, 64);
	size_t nz = 0;
	for (size_t i = 0; p != NULL && i < 4096; i++)
		nz += p[i] != 0;
	CHECK(p != NULL && nz == 0);
	free(p);
	errno = 0;
	CHECK(calloc(huge / 2, 3) == NULL && errno == ENOMEM);
	errno = 0;
	CHECK(calloc(3, huge / 2) == NULL && errno == ENOMEM);
	p = calloc(0, 5);
	CHECK(p != NULL);
	free(p);
}

static void t_realloc(void)
{
	char *p = realloc(NULL, 10);
	CHECK(p != NULL);
	strcpy(p, "contract");
	p = realloc(p, 100000);
	CHECK(p != NULL && strcmp(p, "contract") == 0);
	errno = 0;
	CHECK(realloc_v(p, huge) == NULL && errno == ENOMEM && strcmp(p, "contract") == 0);
	p = realloc(p, 5);
	CHECK(p != NULL && memcmp(p, "contr", 5) == 0);
	CHECK(realloc(p, 0) == NULL); /* frees, like glibc */
	p = reallocarray(NULL, 100, 8);
	CHECK(p != NULL);
	errno = 0;
	CHECK(reallocarray_v(p, huge / 4, 8) == NULL && errno == ENOMEM);
	p = reallocarray(p, 200, 8);
	CHECK(p != NULL);
	free(p);
}

static void t_posix_memalign(void)
{
	void *p = (void *)1;
	CHECK(posix_memalign(&p, 3, 8) == EINVAL && p == (void *)1);
	CHECK(posix_memalign(&p, 0, 8) == EINVAL);
	CHECK(posix_memalign(&p, sizeof(void *) / 2, 8) == EINVAL);
	CHECK(posix_memalign(&p, 48, 8) == EINVAL);
	errno = 1234;
	CHECK(posix_memalign(&p, 64, huge - 100) == ENOMEM && p == (void *)1 && errno == 1234);
	size_t aligns[] = {sizeof(void *), 16, 64, 4096, 1u << 20};
	for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
		CHECK(posix_memalign(&p, aligns[i], 100) == 0 && aligned(p, aligns[i]));
		memset(p, 1, 100);
		free(p);
	}
	CHECK(errno == 1234);
}

static void t_aligned(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p = aligned_alloc(64, 128);
	CHECK(p != NULL && aligned(p, 64));
	free(p);
	errno = 0;
	CHECK(aligned_alloc(24, 48) == NULL && errno == EINVAL);
	errno = 0;
	CHECK(aligned_alloc(0, 48) == NULL && errno == EINVAL);
	p = memalign(24, 10); /* glibc rounds the alignment up to 32 */
	CHECK(p != NULL && aligned(p, 32));
	free(p);
	p = memalign(8, 10);
	CHECK(p != NULL && aligned(p, 16));
	free(p);
	errno = 0;
	CHECK(memalign(SIZE_MAX / 2 + 2, 1) == NULL && errno == EINVAL);
	p = valloc(100);
	CHECK(p != NULL && aligned(p, page));
	free(p);
	p = pvalloc(100);
	CHECK(p != NULL && aligned(p, page) && malloc_usable_size(p) >= page);
	free(p);
	p = pvalloc(0);
	CHECK(p != NULL && aligned(p, page) && malloc_usable_size(p) >= page);
	free(p);
	errno = 0;
	CHECK(pvalloc(huge - 10) == NULL && errno == ENOMEM);
}

/* Past the first 1 GiB arena: blocks below the mmap threshold (128 KiB
 * at first) make the preload add regions; one byte of each is touched. */
static void t_growth(void)
{
	enum { N = 12000, SIZE = 100 << 10 }; /* 1.14 GiB */
	static char *b[N];
	int got = 0;
	for (int i = 0; i < N; i++) {
		b[i] = malloc(SIZE);
		got += b[i] != NULL;
		if (b[i] != NULL)
			b[i][SIZE - 1] = (char)i;
	}
	CHECK(got == N);
	int intact = 0;
	for (int i = 0; i < N; i++) {
		intact += b[i] != NULL && b[i][SIZE - 1] == (char)i;
		free(b[i]);
	}
	CHECK(intact == N);
	void *a = aligned_alloc((size_t)1 << 30, 100);
	CHECK(a != NULL && aligned(a, (size_t)1 << 30));
	free(a);
}

/* Many large blocks at once (the preload's table of mappings), freed in a
 * scrambled order: each keeps its contents and its size to the end. Runs
 * first, while the mmap threshold is still at its start (128 KiB). */
static void t_many_large(void)
{
	enum { N = 3000, SIZE = 256 << 10 };
	static unsigned *b[N];
	int good = 1;
	for (unsigned i = 0; i < N; i++) {
		b[i] = malloc(SIZE);
		good &= b[i] != NULL;
		if (b[i] != NULL)
			b[i][0] = i;
	}
	for (unsigned k = 0; k < N; k++) {
		unsigned i = (k * 1237u) % N; /* 1237 is prime to N: every i once */
		good &= b[i] != NULL && b[i][0] == i && malloc_usable_size(b[i]) >= SIZE;
		if (k % 2 == 0) {
			free(b[i]);
			b[i] = NULL;
		}
	}
	for (unsigned i = 0; i < N; i++) {
		good &= b[i] == NULL || (b[i][0] == i && malloc_usable_size(b[i]) >= SIZE);
		free(b[i]);
	}
	CHECK(good);
}

/* Large blocks (mappings of their own): contents through realloc both
 * ways, alignment, usable size, zeroed calloc after a dirty free. */
static void t_large(void)
{
	size_t mib = (size_t)1 << 20;
	t_many_large();
	char *p = malloc(mib);
	CHECK(p != NULL && aligned(p, 16) && malloc_usable_size(p) >= mib);
	for (size_t i = 0; p != NULL && i < mib; i += 4096)
		p[i] = (char)(i >> 12);
	p = realloc(p, 64 * mib);
	int same = p != NULL;
	for (size_t i = 0; p != NULL && i < mib; i += 4096)
		same &= p[i] == (char)(i >> 12);
	CHECK(same && malloc_usable_size(p) >= 64 * mib);
	errno = 0;
	CHECK(realloc_v(p, huge / 2) == NULL && errno == ENOMEM && p[4096] == 1);
	if (p != NULL)
		p[64 * mib - 1] = 7;
	p = realloc(p, 200 << 10);
	same = p != NULL;
	for (size_t i = 0; p != NULL && i < (200 << 10); i += 4096)
		same &= p[i] == (char)(i >> 12);
	CHECK(same && malloc_usable_size(p) >= (200 << 10));
	p = realloc(p, 100);
	CHECK(p != NULL && p[0] == 0 && p[4096 % 100] == 0);
	free(p);
	p = malloc(1000); /* a small block that grows into a large one */
	if (p != NULL)
		memset(p, 'k', 1000);
	p = realloc(p, 3 * mib);
	CHECK(p != NULL && p[0] == 'k' && p[999] == 'k');
	free(p);
	size_t aligns[] = {64, 4096, mib, 4 * mib};
	for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
		p = memalign(aligns[i], 2 * mib);
		CHECK(p != NULL && aligned(p, aligns[i]) && malloc_usable_size(p) >= 2 * mib);
		if (p != NULL)
			memset(p, 1, 2 * mib);
		free(p);
	}
	p = malloc(8 * mib);
	if (p != NULL)
		memset(p, 0xff, 8 * mib);
	free(p);
	unsigned char *z = calloc(8, mib);
	size_t nz = 0;
	for (size_t i = 0; z != NULL && i < 8 * mib; i++)
		nz += z[i] != 0;
	CHECK(z != NULL && nz == 0);
	free(z);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strncmp(argv[1], "double-free", 11) == 0) {
		char *volatile p = malloc(strcmp(argv[1], "double-free-large") == 0 ? 1 << 20 : 40);
		free(p);
		free(p);
		puts("double free went unnoticed");
		return 0;
	}
	t_malloc_free();
	t_calloc();
	t_realloc();
	t_posix_memalign();
	t_aligned();
	t_growth();
	t_large();
	printf("contract: %d checks, %d failed\n", checks, failed);
	return failed != 0;
}
