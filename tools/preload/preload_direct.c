/*
 * preload_direct.c: large blocks as mappings of their own (contract in
 * preload_direct.h).
 *
 * A direct block is one anonymous mapping; the pointer handed out lies
 * off bytes into its first page (16, or the alignment asked for when that
 * is less than a page, else 0), so its mapping starts at the pointer's page
 * and nothing is written in front of it. An open-addressing table (linear
 * probing, deletion by backward shift) maps each live pointer to its
 * mapping's length. The table's 2 MiB are reserved once without commit
 * charge; only the pages its live entries touch become resident.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include "kh_lock.h"
#include "preload_direct.h"

#define THRESHOLD_START ((size_t)128 << 10)
#define THRESHOLD_MAX ((size_t)32 << 20)
#define MIN_ALIGN ((size_t)16)
/* The table's size; direct-test.c builds a small one, where probe runs
 * and the limit are reached. */
#ifndef SLOTS_LOG2
#define SLOTS_LOG2 17
_Static_assert(((size_t)1 << SLOTS_LOG2) / 2 == 65536, "glibc's default limit of mmapped chunks, as preload_direct.h says");
#endif
#define SLOTS ((size_t)1 << SLOTS_LOG2)
#define MAX_LIVE (SLOTS / 2) /* a half-full table keeps probe runs short */

struct slot {
	uintptr_t p; /* 0: empty */
	size_t len;  /* bytes mapped from p's page on */
};

static struct slot *table;          /* written under lock */
static struct kh_lock lock;
static _Atomic size_t live;         /* written under lock */
static _Atomic size_t live_bytes;   /* written under lock */
static _Atomic size_t threshold = THRESHOLD_START;

struct kh_lock *direct_lock(void) { return &lock; }

size_t direct_threshold(void) { return atomic_load_explicit(&threshold, memory_order_relaxed); }

size_t direct_live(void) { return atomic_load_explicit(&live, memory_order_relaxed); }

void direct_stats(size_t *count, size_t *bytes)
{
	*count = atomic_load_explicit(&live, memory_order_relaxed);
	*bytes = atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

static size_t page_size(void)
{
	unsigned long p = getauxval(AT_PAGESZ);
	return p != 0 ? (size_t)p : 4096;
}

static uintptr_t page_of(uintptr_t p) { return p & ~(uintptr_t)(page_size() - 1); }

static size_t home(uintptr_t p) { return (size_t)(((uint64_t)p * 0x9e3779b97f4a7c15u) >> (64 - SLOTS_LOG2)); }

/* The slot holding p, or SLOTS. Lock held. */
static size_t find(uintptr_t p)
{
	for (size_t i = home(p);; i = (i + 1) & (SLOTS - 1)) {
		if (table[i].p == p)
			return i;
		if (table[i].p == 0)
			return SLOTS;
	}
}

/* Lock held, p not in the table, fewer than MAX_LIVE entries. */
static void put(uintptr_t p, size_t len)
{
	size_t i = home(p);
	while (table[i].p != 0)
		i = (i + 1) & (SLOTS - 1);
	table[i].p = p;
	table[i].len = len;
}

/* Empty slot i and move up each later entry of its run that would no
 * longer be found (its home lies cyclically outside (i, j]). Lock held. */
static void take_out(size_t i)
{
	for (size_t j = i;;) {
		table[i].p = 0;
		for (;;) {
			j = (j + 1) & (SLOTS - 1);
			if (table[j].p == 0)
				return;
			size_t k = home(table[j].p);
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		table[i] = table[j];
		i = j;
	}
}

/* Map the table on first use. Lock held. */
static bool table_ready(void)
{
	if (table == NULL) {
		void *t = mmap(NULL, SLOTS * sizeof(struct slot), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		table = t != MAP_FAILED ? t : NULL;
	}
	return table != NULL;
}

/* Record the mapping [page_of(p), + len); false (nothing recorded) when
 * the table is full or cannot be mapped. */
static bool record(uintptr_t p, size_t len)
{
	kh_lock_acquire(&lock);
	size_t n = atomic_load_explicit(&live, memory_order_relaxed);
	bool ok = n < MAX_LIVE && table_ready();
	if (ok) {
		put(p, len);
		atomic_store_explicit(&live, n + 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&live_bytes, len, memory_order_relaxed);
	}
	kh_lock_release(&lock);
	return ok;
}

void *direct_alloc(size_t n, size_t align)
{
	size_t page = page_size();
	if (align < MIN_ALIGN)
		align = MIN_ALIGN;
	size_t off = align < page ? align : 0;
	size_t len = (off + n + page - 1) & ~(page - 1);
	size_t extra = align > page ? align - page : 0; /* room to slide to an aligned page */
	char *m = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t base = extra != 0 ? ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1) : (uintptr_t)m;
	if (base != (uintptr_t)m)
		munmap(m, base - (uintptr_t)m);
	if ((uintptr_t)m + len + extra != base + len)
		munmap((void *)(base + len), (uintptr_t)m + len + extra - (base + len));
	if (!record(base + off, len)) {
		munmap((void *)base, len);
		return NULL;
	}
	return (void *)(base + off);
}

bool direct_lookup(const void *p, size_t *usable)
{
	kh_lock_acquire(&lock);
	size_t i = table != NULL ? find((uintptr_t)p) : SLOTS;
	if (i != SLOTS && usable != NULL)
		*usable = page_of((uintptr_t)p) + table[i].len - (uintptr_t)p;
	kh_lock_release(&lock);
	return i != SLOTS;
}

/* The unmapping happens after the entry is gone and the lock released:
 * the range is nobody's by then. */
bool direct_free(void *p)
{
	kh_lock_acquire(&lock);
	size_t i = table != NULL ? find((uintptr_t)p) : SLOTS;
	size_t len = i != SLOTS ? table[i].len : 0;
	if (i != SLOTS) {
		take_out(i);
		atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&live_bytes, len, memory_order_relaxed);
	}
	kh_lock_release(&lock);
	if (i == SLOTS)
		return false;
	munmap((void *)page_of((uintptr_t)p), len);
	size_t t = atomic_load_explicit(&threshold, memory_order_relaxed);
	if (len > t && len <= THRESHOLD_MAX)
		atomic_store_explicit(&threshold, len, memory_order_relaxed);
	return true;
}

/* The lock is held across mremap, so p is never missing from the table
 * while it is still the caller's. */
void *direct_realloc(void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, base = page_of(a);
	size_t page = page_size();
	size_t len = (a - base + n + page - 1) & ~(page - 1);
	void *q = NULL;
	kh_lock_acquire(&lock);
	size_t i = table != NULL ? find(a) : SLOTS;
	if (i != SLOTS) {
		size_t old = table[i].len;
		void *m = len == old ? (void *)base : mremap((void *)base, old, len, MREMAP_MAYMOVE);
		if (m != MAP_FAILED) {
			q = (char *)m + (a - base);
			take_out(i);
			put((uintptr_t)q, len);
			atomic_fetch_add_explicit(&live_bytes, len - old, memory_order_relaxed);
		}
	}
	kh_lock_release(&lock);
	return q;
}
