/*
 * direct-test.c: preload_direct.c against a model, built with a table of
 * 64 slots (at most 32 live blocks) so that probe runs wrap, deletions
 * shift entries back, and the limit is met. Random allocations (sizes
 * from a page to 1 MiB, alignments up to 2 MiB), frees and reallocs; after
 * each step every live block must be found with its usable size and its
 * first and last bytes (a tag) intact, and a freed one must be unknown.
 * Prints one line; exits 1 on the first disagreement.
 * Usage: direct-test [steps]
 */
#define SLOTS_LOG2 6
#include "preload_direct.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIVE_MAX = 32, KEEP = 48 };

struct model {
	unsigned char *p;
	size_t n;
	unsigned char tag;
};

static struct model m[KEEP];
static unsigned long long rng = 88172645463325252ull;

static unsigned long long next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int fail(long step, const char *what)
{
	printf("direct-test: step %ld: %s\n", step, what);
	return 1;
}

static void stamp(struct model *b)
{
	b->p[0] = b->p[b->n - 1] = b->tag;
}

static int verify(long step, size_t want)
{
	size_t count = 0, bytes = 0;
	direct_stats(&count, &bytes);
	if (count != want || direct_live() != want)
		return fail(step, "live count differs from the model");
	for (int i = 0; i < KEEP; i++) {
		size_t usable = 0;
		if (m[i].p == NULL)
			continue;
		if (!direct_lookup(m[i].p, &usable) || usable < m[i].n)
			return fail(step, "a live block is not found, or too small");
		if (m[i].p[0] != m[i].tag || m[i].p[m[i].n - 1] != m[i].tag)
			return fail(step, "a live block's contents changed");
	}
	return 0;
}

int main(int argc, char **argv)
{
	long steps = argc > 1 ? atol(argv[1]) : 20000;
	size_t held = 0;
	for (long s = 0; s < steps; s++) {
		struct model *b = &m[next() % KEEP];
		size_t n = 4096 + next() % ((size_t)1 << 20);
		if (b->p == NULL) {
			size_t align = (size_t)1 << (next() % 22);
			b->p = direct_alloc(n, align);
			if ((b->p == NULL) != (held == LIVE_MAX))
				return fail(s, held == LIVE_MAX ? "allocated past the limit" : "refused below the limit");
			if (b->p == NULL)
				continue;
			if ((uintptr_t)b->p % (align < 16 ? 16 : align) != 0)
				return fail(s, "misaligned");
			held++;
			b->n = n;
			b->tag = (unsigned char)next();
			stamp(b);
		} else if (next() % 2) {
			unsigned char *old = b->p;
			if (!direct_free(old) || direct_free(old) || direct_lookup(old, NULL))
				return fail(s, "free: not found the first time, or found after");
			b->p = NULL;
			held--;
		} else {
			unsigned char *q = direct_realloc(b->p, n);
			if (q == NULL)
				return fail(s, "realloc refused");
			unsigned char keep = q[0];
			b->p = q;
			b->n = n;
			if (keep != b->tag)
				return fail(s, "realloc lost the contents");
			stamp(b);
		}
		if (verify(s, held))
			return 1;
	}
	printf("direct-test: %ld steps, table of %zu slots, %zu live at the end\n", steps, (size_t)SLOTS, held);
	return 0;
}
