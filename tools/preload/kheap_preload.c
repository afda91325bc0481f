/*
 * kheap_preload.c: kheap as the malloc of an ordinary Linux program, loaded
 * with LD_PRELOAD (issue 7). Built with the heap sources into
 * build/host/libkheap-preload.so; the version script kheap_preload.map
 * exports only the allocator entry points, so the heap's own symbols bind
 * inside the library and cannot be interposed.
 *
 * Memory: one arena, mmapped on first use (MAP_NORESERVE, so only the pages
 * touched cost anything), and further regions mmapped and handed to
 * kheap_add_region when an allocation fails, up to KHEAP_MAX_REGIONS (the
 * Makefile sets 64). Every size, large ones included, is served by kheap;
 * nothing is ever returned to the kernel.
 *
 * Early calls: the dynamic loader and libc may call malloc before any
 * constructor has run, so the heap is set up lazily by whichever thread
 * calls first, with raw mmap and no allocation; the others wait for it.
 *
 * Locks: the heap's ticket lock, and grow_lock, which serialises growth and
 * is always taken before the heap lock, never while holding it. Both are
 * held across fork() (pthread_atfork) and reset in the child, where the
 * tickets of threads that no longer exist would otherwise never be served.
 *
 * Misuse: kheap reports it to on_report, which writes one line to stderr
 * with write(2) and aborts, as glibc does on a double free. KHEAP_STATS=1
 * prints one line of statistics and the kheap_check verdict at exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kh_internal.h" /* struct kheap's lock, for the fork handlers */

/* The build hides every symbol (-fvisibility=hidden); these are the exports,
 * listed again in kheap_preload.map. */
#define EXPORT __attribute__((visibility("default")))

#define ARENA_SIZE ((size_t)1 << 30)
#define GROW_SLACK ((size_t)64 << 10) /* control block, end marker, alignment */
/* Growths one request may trigger: a region sized for it serves it unless
 * other threads take the room first; the retries stop a runaway. */
#define GROW_TRIES 4
/* Requests above this fail with ENOMEM without trying: a region's span is
 * clipped to KH_MAX_BLOCK, and a block must fit with its alignment. */
#define MAX_REQUEST ((size_t)1 << 38)

_Static_assert(MAX_REQUEST * 3 + GROW_SLACK < KH_MAX_BLOCK, "the largest request fits one region");
_Static_assert(KHEAP_MAX_REGIONS >= 2, "the preload grows beyond its first arena");

static struct kheap *_Atomic heap;
static _Atomic int init_state; /* 0 none, 1 in progress, 2 done (heap may still be NULL) */
static struct kh_lock grow_lock;
static _Atomic unsigned grow_gen; /* regions added so far; read before an attempt */

/* ---- output without stdio or allocation ------------------------------------ */

struct line {
	char buf[512];
	size_t n;
};

static void put_s(struct line *l, const char *s)
{
	while (*s && l->n < sizeof l->buf - 1)
		l->buf[l->n++] = *s++;
}

static void put_u(struct line *l, uint64_t v, unsigned base)
{
	char d[24];
	unsigned n = 0;
	do {
		d[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		put_s(l, "0x");
	while (n && l->n < sizeof l->buf - 1)
		l->buf[l->n++] = d[--n];
}

static void put_kv(struct line *l, const char *key, uint64_t v)
{
	put_s(l, " ");
	put_s(l, key);
	put_s(l, "=");
	put_u(l, v, 10);
}

/* Write the line and a newline to fd, retrying short writes. */
static void emit(int fd, struct line *l)
{
	l->buf[l->n++] = '\n';
	for (size_t off = 0; off < l->n;) {
		ssize_t w = write(fd, l->buf + off, l->n - off);
		if (w <= 0 && errno != EINTR)
			return;
		off += w > 0 ? (size_t)w : 0;
	}
}

/* libc sets it during its own start-up, which a report may precede. */
static const char *prog_name(void)
{
	return program_invocation_short_name != NULL ? program_invocation_short_name : "?";
}

/* ---- hooks the heap calls ---------------------------------------------------- */

void kheap_spin_yield(void) { sched_yield(); }

uint64_t kheap_entropy(void)
{
	uint64_t v = 0;
	if (syscall(SYS_getrandom, &v, sizeof v, GRND_NONBLOCK) != (long)sizeof v)
		v = (uint64_t)(uintptr_t)&v ^ ((uint64_t)getpid() << 32);
	return v;
}

/* A report without a live heap (kh_report_global): same line, same end. */
void kheap_panic(const char *msg)
{
	struct line l = {.n = 0};
	put_s(&l, msg);
	put_s(&l, " [kheap-preload: aborting]");
	emit(STDERR_FILENO, &l);
	abort();
}

static void on_report(void *ctx, const struct kheap_report *r)
{
	(void)ctx;
	struct line l = {.n = 0};
	put_s(&l, "kheap: ");
	put_s(&l, prog_name());
	put_s(&l, ": misuse (kind ");
	put_u(&l, (uint64_t)r->kind, 10);
	put_s(&l, "): ");
	put_s(&l, r->msg ? r->msg : "?");
	put_s(&l, " (ptr ");
	put_u(&l, (uintptr_t)r->ptr, 16);
	put_s(&l, ", caller ");
	put_u(&l, (uintptr_t)r->caller, 16);
	put_s(&l, ") [kheap-preload: aborting]");
	emit(STDERR_FILENO, &l);
	abort();
}

/* ---- set-up and growth --------------------------------------------------------- */

/* Fresh zeroed memory, or NULL. Only the default-sized regions skip the
 * commit charge: a larger one is sized by a request, and the kernel's
 * overcommit policy should refuse an absurd one as it would for glibc. */
static void *map_region(size_t size)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (size <= ARENA_SIZE ? MAP_NORESERVE : 0);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The first thread through maps the arena; a racing one waits. The arena
 * shrinks by halves if the address space is limited (ulimit -v). */
static struct kheap *init_slow(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1)) {
		while (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
			sched_yield();
		return atomic_load_explicit(&heap, memory_order_acquire);
	}
	struct kheap *h = NULL;
	for (size_t size = ARENA_SIZE; h == NULL && size >= ((size_t)1 << 20); size /= 2) {
		void *base = map_region(size);
		if (base != NULL && (h = kheap_init(base, size)) == NULL)
			munmap(base, size);
	}
	if (h != NULL)
		kheap_set_report(h, on_report, NULL);
	atomic_store_explicit(&heap, h, memory_order_release);
	atomic_store_explicit(&init_state, 2, memory_order_release);
	return h;
}

static struct kheap *get_heap(void)
{
	struct kheap *h = atomic_load_explicit(&heap, memory_order_acquire);
	return h != NULL ? h : init_slow();
}

/* Add a region big enough for n bytes aligned to align, unless another
 * thread added one since the caller read gen. Returns whether a retry may
 * succeed. Takes grow_lock, then (inside kheap_add_region) the heap lock. */
static int grow(struct kheap *h, size_t n, size_t align, unsigned gen)
{
	if (h == NULL)
		return 0;
	/* The bins round a search up by up to 1/16 of the size (O(1) good fit). */
	size_t page = 4096, need = (n + n / 8 + align + GROW_SLACK + page - 1) & ~(page - 1);
	size_t size = need > ARENA_SIZE ? need : ARENA_SIZE;
	int ok = 1;
	kh_lock_acquire(&grow_lock);
	if (atomic_load(&grow_gen) == gen) {
		struct kheap_stats st;
		kheap_get_stats(h, &st);
		void *base = st.regions < KHEAP_MAX_REGIONS ? map_region(size) : NULL;
		ok = base != NULL && kheap_add_region(h, base, size) == 0;
		if (ok)
			atomic_fetch_add(&grow_gen, 1u);
		else if (base != NULL)
			munmap(base, size);
	}
	kh_lock_release(&grow_lock);
	return ok;
}

enum op { OP_ALLOC, OP_CALLOC, OP_REALLOC };

/* One allocation, growing the heap and retrying (at most GROW_TRIES times). For
 * OP_CALLOC n is the byte count (checked for overflow by the caller); for
 * OP_REALLOC old is the block (not NULL) and n is not 0. Sets errno to
 * ENOMEM on failure. */
static void *obtain(enum op op, void *old, size_t align, size_t n)
{
	struct kheap *h = get_heap();
	if (n > MAX_REQUEST || align > MAX_REQUEST) { /* before kheap could call it an overflow */
		errno = ENOMEM;
		return NULL;
	}
	for (int grown = 0;; grown++) {
		unsigned gen = atomic_load(&grow_gen);
		void *p = NULL;
		if (h != NULL && op == OP_REALLOC)
			p = kheap_realloc(h, old, n);
		else if (h != NULL && op == OP_CALLOC)
			p = kheap_calloc(h, 1, n);
		else if (h != NULL)
			p = align > KHEAP_ALIGN ? kheap_aligned_alloc(h, align, n) : kheap_alloc(h, n);
		if (p != NULL)
			return p;
		if (grown == GROW_TRIES || !grow(h, n, align, gen)) {
			errno = ENOMEM;
			return NULL;
		}
	}
}

/* ---- fork: hold both locks across it ----------------------------------------- */

static void fork_prepare(void)
{
	struct kheap *h = get_heap();
	kh_lock_acquire(&grow_lock);
	if (h != NULL)
		kh_lock_acquire(&h->lock);
}

static void fork_parent(void)
{
	struct kheap *h = atomic_load(&heap);
	if (h != NULL)
		kh_lock_release(&h->lock);
	kh_lock_release(&grow_lock);
}

/* The child is alone: waiters' tickets (and waiting bits) died with their
 * threads, so a plain release would hand the lock to a ticket nobody holds.
 * Start afresh. */
static void lock_reset(struct kh_lock *l)
{
	atomic_store(&l->next, 0u);
	atomic_store(&l->serving, 0u);
	atomic_store(&l->holder, 0u);
	atomic_store(&l->waiting, 0u);
}

static void fork_child(void)
{
	struct kheap *h = atomic_load(&heap);
	if (h != NULL)
		lock_reset(&h->lock);
	lock_reset(&grow_lock);
}

/* ---- exit report ------------------------------------------------------------ */

/* A copy of stderr for the exit report: xz, sort and other programs close
 * stderr themselves before they exit, to catch write errors. -1: no report. */
static int stats_fd = -1;

static void stats_open(void)
{
	const char *env = getenv("KHEAP_STATS");
	if (env != NULL && env[0] == '1' && env[1] == '\0')
		stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
}

__attribute__((constructor)) static void preload_init(void)
{
	get_heap();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	stats_open();
}

__attribute__((destructor)) static void preload_report(void)
{
	struct kheap *h = atomic_load(&heap);
	if (stats_fd < 0 || h == NULL)
		return;
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	int problems = kheap_check(h);
	struct line l = {.n = 0};
	put_s(&l, "kheap-stats: prog=");
	put_s(&l, prog_name());
	put_kv(&l, "pid", (uint64_t)getpid());
	put_kv(&l, "allocs", st.alloc_count);
	put_kv(&l, "frees", st.free_count);
	put_kv(&l, "in_use", st.in_use_bytes);
	put_kv(&l, "peak_in_use", st.peak_in_use_bytes);
	put_kv(&l, "largest_free", st.largest_free);
	put_kv(&l, "total", st.total_bytes);
	put_kv(&l, "regions", st.regions);
	put_kv(&l, "oom", st.oom_count);
	put_kv(&l, "errors", st.error_count);
	put_kv(&l, "check", (uint64_t)problems);
	emit(stats_fd, &l);
}

/* ---- the malloc family ---------------------------------------------------------- */

static int pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

static size_t page_size(void)
{
	unsigned long p = getauxval(AT_PAGESZ);
	return p != 0 ? (size_t)p : 4096;
}

EXPORT void *malloc(size_t n) { return obtain(OP_ALLOC, NULL, 0, n); }

EXPORT void free(void *p)
{
	if (p != NULL)
		kheap_free(get_heap(), p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return obtain(OP_CALLOC, NULL, 0, n * size);
}

/* realloc(p, 0) frees p and returns NULL, as glibc does. */
EXPORT void *realloc(void *p, size_t n)
{
	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	return obtain(OP_REALLOC, p, 0, n);
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size);
}

/* glibc's rules: alignments up to 16 are plain allocations, others are
 * rounded up to a power of two, and one above SIZE_MAX / 2 + 1 is EINVAL. */
EXPORT void *memalign(size_t align, size_t n)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (align <= KHEAP_ALIGN)
		return obtain(OP_ALLOC, NULL, 0, n);
	size_t a = 2 * KHEAP_ALIGN;
	while (a < align)
		a <<= 1;
	return obtain(OP_ALLOC, NULL, a, n);
}

/* C23 (and glibc from 2.38): the alignment must be a power of two. */
EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return memalign(align, n);
}

/* Returns the error instead of setting errno, which it leaves as it was. */
EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	if (!pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	int saved = errno;
	void *p = memalign(align, n);
	errno = saved;
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *valloc(size_t n) { return memalign(page_size(), n); }

/* The size rounded up to whole pages; pvalloc(0) gives one page. */
EXPORT void *pvalloc(size_t n)
{
	size_t page = page_size();
	if (n > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	size_t r = n == 0 ? page : (n + page - 1) & ~(page - 1);
	return memalign(page, r);
}

EXPORT size_t malloc_usable_size(void *p) { return p != NULL ? kheap_usable_size(get_heap(), p) : 0; }
