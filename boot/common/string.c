/*
 * string.c: the four functions a C compiler may call on its own even in a
 * freestanding build (struct copies, zeroing loops). Built with
 * -fno-tree-loop-distribute-patterns, so gcc does not turn these loops back
 * into calls to themselves. Byte-wise on purpose: the arm64 kernels run with
 * the MMU off, where memory is Device and unaligned wide accesses fault; the
 * hot loops that matter (.bss clearing, fill tokens) have their own code.
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if ((uintptr_t)dp - (uintptr_t)sp >= n)
		return memcpy(d, s, n); /* no overlap that a forward copy breaks */
	while (n--)
		dp[n] = sp[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *dp = d;
	while (n--)
		*dp++ = (unsigned char)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}
