/*
 * leak_test.c: the test kernel leaks on purpose and scans its own .data,
 * .bss and stack (leak_roots.c) for them: it must find exactly those. The
 * expected set is kept complemented (~p), since a plain copy in .bss or on
 * the stack would itself be a root and keep the leaks alive.
 */
#include "kt.h"
#include "leak_roots.h"

struct node {
	struct node *next;
	uintptr_t payload[3];
};

extern char __data_start[], __bss_end[];

static _Alignas(16) unsigned char karena[128u << 10];
static unsigned char kscratch[16u << 10];
static struct node *bss_list;     /* .bss root */
static void *data_slot = &data_slot; /* .data root */

#define NLEAK 7
static uintptr_t want[NLEAK]; /* ~p of each deliberate leak */
static uintptr_t seen[16];    /* ~p of each reported one */
static unsigned nseen;

static void record(void *ctx, void *ptr, size_t size, const void *site, uint64_t seq)
{
	(void)ctx, (void)size, (void)site, (void)seq;
	if (nseen < 16)
		seen[nseen] = ~(uintptr_t)ptr;
	nseen++;
}

static struct node *node(struct kheap *h) { return kheap_calloc(h, 1, sizeof(struct node)); }

/* Leaks, made in a frame far below the caller's (see deep()), so that no
 * copy of these pointers is left where the stack root will read. */
__attribute__((noinline)) static void make_leaks(struct kheap *h)
{
	unsigned k = 0;
	struct node *ring[3];
	for (unsigned i = 0; i < 3; i++)
		ring[i] = node(h);
	for (unsigned i = 0; i < 3; i++) {
		ring[i]->next = ring[(i + 1) % 3];
		want[k++] = ~(uintptr_t)ring[i];
	}
	want[k++] = ~(uintptr_t)kheap_alloc(h, 1000);
	/* Reachable only through a block that is then freed. */
	struct node *holder = node(h), *orphan = node(h);
	holder->next = orphan;
	kheap_free(h, holder);
	want[k++] = ~(uintptr_t)orphan;
	/* A list whose head is dropped while its tail stays in .bss. */
	struct node *a = node(h), *b = node(h);
	a->next = b;
	b->next = bss_list;
	want[k++] = ~(uintptr_t)a;
	want[k++] = ~(uintptr_t)b;
}

__attribute__((noinline)) static void deep(struct kheap *h)
{
	volatile char pad[2048];
	pad[0] = 0;
	make_leaks(h);
	for (unsigned i = 0; i < sizeof pad; i++)
		pad[i] = 0;
}

__attribute__((noinline)) static uintptr_t drop_data_slot(void)
{
	uintptr_t d = ~(uintptr_t)data_slot;
	data_slot = 0;
	return d;
}

__attribute__((noinline)) static uintptr_t deep_drop(void)
{
	volatile char pad[2048];
	pad[0] = 0;
	uintptr_t d = drop_data_slot();
	for (unsigned i = 0; i < sizeof pad; i++)
		pad[i] = 0;
	return d;
}

static int seen_once(uintptr_t w)
{
	unsigned n = 0;
	for (unsigned i = 0; i < nseen && i < 16; i++)
		n += seen[i] == w;
	return n == 1;
}

KT_CASE(leak_kernel_finds_exactly_its_leaks)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(karena, sizeof karena, &rec);
	KT_REQUIRE(h != NULL);
	struct node *l = NULL;
	for (unsigned i = 0; i < 4; i++) {
		struct node *n = node(h);
		KT_REQUIRE(n != NULL);
		n->next = l;
		l = n;
	}
	bss_list = l;
	data_slot = kheap_alloc(h, 300);
	void *volatile on_stack = kheap_alloc(h, 200);
	deep(h);
	nseen = 0;
	struct kheap_leak_result res;
	KT_EQ(kernel_leak_scan(h, kscratch, sizeof kscratch, record, 0, &res), 0);
	KT_EQ(nseen, NLEAK);
	for (unsigned i = 0; i < NLEAK; i++)
		KT_CHECK(seen_once(want[i]));
	KT_CHECK(!seen_once(~(uintptr_t)on_stack) && !seen_once(~(uintptr_t)data_slot));
	KT_EQ(res.held, 4 + 2 + NLEAK);
	/* .data and .bss were read, less the arena and the scratch, plus a stack. */
	KT_CHECK(res.root_bytes >= (size_t)(__bss_end - __data_start) - sizeof karena - sizeof kscratch);
	/* Drop the .data root (far down the stack, as the leaks were made):
	 * that block is a leak now too; the stack one still is not. */
	uintptr_t d = deep_drop();
	nseen = 0;
	KT_EQ(kernel_leak_scan(h, kscratch, sizeof kscratch, record, 0, &res), 0);
	KT_EQ(nseen, NLEAK + 1);
	KT_CHECK(seen_once(d) && !seen_once(~(uintptr_t)on_stack));
	bss_list = 0;
	KT_EQ(rec.count, 0);
}
