/*
 * kheap_preload.c: kheap as the malloc of an ordinary Linux program, loaded
 * with LD_PRELOAD (issue 7). Built with the heap sources into
 * build/host/libkheap-preload.so; the version script kheap_preload.map
 * exports only the allocator entry points, so the heap's own symbols bind
 * inside the library and cannot be interposed.
 *
 * Memory: a large range of address space is reserved on first use, and
 * regions are made readable and writable in it end to end (so that the
 * per-CPU fast path keeps one span, kh_cpu_sync), first 1 GiB, then as much
 * as the heap holds up to 1 GiB, or what a request needs; past the
 * reservation, or under ulimit -v, mappings anywhere at sizes that fit.
 * Requests above the mmap threshold are mappings of their own
 * (preload_direct.c), unmapped when freed and grown with mremap; kheap
 * serves the rest. Whole free pages of the regions go back to the kernel
 * with madvise (a walk once use dropped, malloc_trim); the regions' address
 * space is never given back.
 *
 * Threads: each thread is a CPU for kheap's per-CPU caches (kheap_cpu_id,
 * below). The heap lock is tools/preload/preload_lock.c, a futex mutex, in
 * place of the ticket spinlock (mk/preload.mk).
 *
 * Early calls: the dynamic loader and libc may call malloc before any
 * constructor has run, so the heap is set up lazily by whichever thread
 * calls first, with raw mmap and no allocation; the others wait for it.
 *
 * Locks: the heap's lock; grow_lock, which serialises growth and is
 * always taken before the heap lock, never while holding it; and the
 * direct blocks' table lock (preload_direct.c), never held with either.
 * All three are held across fork() (pthread_atfork) and reset in the
 * child, where the waiters they record are threads that no longer exist.
 *
 * Misuse: kheap reports it to on_report, which writes one line to stderr
 * with write(2) and aborts, as glibc does on a double free. KHEAP_STATS=1
 * writes one line of statistics and the kheap_check verdict at exit, where
 * KHEAP_STATS_FILE or KHEAP_STATS_FD say (stats_open).
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
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "kh_internal.h" /* struct kheap's lock, for the fork handlers */
#include "preload_direct.h"

/* The build hides every symbol (-fvisibility=hidden); these are the exports,
 * listed again in kheap_preload.map. */
#define EXPORT __attribute__((visibility("default")))

#define ARENA_SIZE ((size_t)1 << 30) /* the default region */
#define RESERVE_MAX ((size_t)64 << 30)
#define RESERVE_MIN ((size_t)16 << 20)
#define FIRST_MIN ((size_t)1 << 20)
/* A walk gives back the pages of free blocks once the bytes in use
 * dropped by RELEASE_DROP and a quarter, or by RELEASE_HALVED and half; a
 * calloc of CALLOC_FRESH bytes or more that kheap serves gets its whole
 * pages by madvise rather than by writing zeros. */
#define RELEASE_DROP ((size_t)32 << 20)
#define RELEASE_HALVED ((size_t)4 << 20)
#define CALLOC_FRESH ((size_t)1 << 20)
#define FREES_PER_CHECK 4096u /* frees of one thread between two drop checks */
#define NOTICE_BLOCK ((size_t)128 << 10) /* a free this large checks the drop at once */
#define KEEP 64                  /* bytes left alone at each end of a given-back block */
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

/* ---- per-thread caches: a thread is a CPU ----------------------------------- */

/* kheap's per-CPU caches with threads for CPUs. The first HOME_SLOTS numbers
 * are each owned by one thread from its first call to its exit (the pthread
 * key's destructor drains the cache with kheap_cpu_dead and frees the
 * number); the last SHARED_SLOTS are lent for one kheap call at a time to
 * threads that found no home number free, or that are exiting: taken in
 * kheap_cpu_id, given back when the outermost kheap_irq_restore runs,
 * which is when kheap's contract lets the answer change. A thread that
 * finds every shared number lent takes the locked path for that call. */
#define SHARED_SLOTS 16u
#define HOME_SLOTS (KHEAP_MAX_CPUS - SHARED_SLOTS)
_Static_assert(KHEAP_MAX_CPUS > SHARED_SLOTS && HOME_SLOTS <= 64, "home numbers fit one 64-bit word");

#define TLS __attribute__((tls_model("initial-exec"))) __thread

static _Atomic uint64_t home_taken; /* bit k: home number k has a thread */
static struct {
	_Atomic unsigned lent; /* 1 while a thread is inside a kheap call with it */
	char pad[60];
} shared[SHARED_SLOTS];
static pthread_key_t home_key;
static _Atomic int homes_ready; /* home_key exists: the constructor has run */

static TLS unsigned my_home;     /* home number + 1; 0: none */
static TLS unsigned my_loan;     /* shared number + 1 while lent; 0: none */
static TLS unsigned my_hint;     /* the shared number this thread had last */
static TLS unsigned my_depth;    /* kheap_irq_save nesting */
static TLS unsigned char my_state; /* 0: no home yet; 1: asked, keep going */

uintptr_t kheap_irq_save(void) { return my_depth++; }

void kheap_irq_restore(uintptr_t state)
{
	my_depth = (unsigned)state;
	if (state == 0 && my_loan != 0) {
		atomic_store_explicit(&shared[my_loan - 1].lent, 0u, memory_order_release);
		my_loan = 0;
	}
}

/* Borrow a shared number for the current kheap call, the one this thread
 * had last if it is free. KHEAP_NO_CPU when all are lent. */
static unsigned borrow(void)
{
	for (unsigned i = 0; i < SHARED_SLOTS; i++) {
		unsigned k = (my_hint + i) % SHARED_SLOTS;
		if (atomic_load_explicit(&shared[k].lent, memory_order_relaxed) == 0 &&
		    atomic_exchange_explicit(&shared[k].lent, 1u, memory_order_acquire) == 0) {
			my_hint = k;
			my_loan = k + 1;
			return HOME_SLOTS + k;
		}
	}
	return KHEAP_NO_CPU;
}

/* A thread's first call (after the constructor): take a free home number
 * and register the destructor that gives it back. */
static unsigned take_home(void)
{
	my_state = 1; /* once: pthread_setspecific may allocate */
	uint64_t t = atomic_load_explicit(&home_taken, memory_order_relaxed);
	uint64_t all = HOME_SLOTS >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << HOME_SLOTS) - 1;
	while ((t & all) != all) {
		unsigned k = (unsigned)__builtin_ctzll(~t);
		if (atomic_compare_exchange_weak_explicit(&home_taken, &t, t | ((uint64_t)1 << k),
							  memory_order_acquire, memory_order_relaxed)) {
			if (pthread_setspecific(home_key, (void *)(uintptr_t)(k + 1)) != 0) {
				atomic_fetch_and_explicit(&home_taken, ~((uint64_t)1 << k), memory_order_release);
				return KHEAP_NO_CPU;
			}
			my_home = k + 1;
			return k;
		}
	}
	return KHEAP_NO_CPU;
}

/* Called inside kheap_irq_save, as kheap_port.h asks; the answer holds
 * until the matching outermost restore. */
unsigned kheap_cpu_id(void)
{
	if (__builtin_expect(my_home != 0, 1))
		return my_home - 1;
	if (my_loan != 0)
		return my_loan - 1 + HOME_SLOTS;
	if (my_state == 0 && atomic_load_explicit(&homes_ready, memory_order_acquire)) {
		unsigned k = take_home();
		if (k != KHEAP_NO_CPU)
			return k;
	}
	return borrow();
}

/* The home_key destructor: the thread is exiting. From here on it borrows
 * (a free() from a later destructor must not take a home number nobody
 * would give back); its cache goes back to the heap, then its number. */
static void home_exit(void *v)
{
	unsigned k = (unsigned)(uintptr_t)v - 1;
	struct kheap *h = atomic_load_explicit(&heap, memory_order_acquire);
	my_home = 0;
	my_state = 1;
	if (h != NULL)
		kheap_cpu_dead(h, k);
	atomic_fetch_and_explicit(&home_taken, ~((uint64_t)1 << k), memory_order_release);
}

/* glibc keeps the values of the first 32 keys in the thread itself; a
 * later key's first pthread_setspecific in a thread calls calloc, which
 * must not happen inside a kheap call (take_home may run with the heap lock
 * held). With such a key every thread borrows instead. */
#define INLINE_KEYS 32u

static void homes_init(void)
{
	if (pthread_key_create(&home_key, home_exit) == 0 && (unsigned)home_key < INLINE_KEYS)
		atomic_store_explicit(&homes_ready, 1, memory_order_release);
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

/* Address space reserved up front (PROT_NONE, MAP_NORESERVE: it costs
 * neither memory nor commit charge) so that regions are added end to end
 * inside it and kheap's per-CPU fast path keeps one span over all of them.
 * [rsv_base, rsv_used) holds the regions, readable and writable; the rest
 * stays reserved until a region takes it. Written at init and under
 * grow_lock; rsv_used only grows, so a stale read of it is a smaller,
 * still valid, bound. */
static uintptr_t rsv_base;
static _Atomic uintptr_t rsv_used;
static uintptr_t rsv_end;

static size_t page_size(void)
{
	unsigned long p = getauxval(AT_PAGESZ);
	return p != 0 ? (size_t)p : 4096;
}

static size_t round_page(size_t n)
{
	size_t page = page_size();
	return (n + page - 1) & ~(page - 1);
}

/* Reserve the largest range that the address-space limit allows, halving
 * from RESERVE_MAX (ulimit -v refuses a reservation as it would a mapping). */
static void reserve(void)
{
	for (size_t size = RESERVE_MAX; size >= RESERVE_MIN; size /= 2) {
		void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED) {
			rsv_base = (uintptr_t)p;
			atomic_store_explicit(&rsv_used, rsv_base, memory_order_relaxed);
			rsv_end = rsv_base + size;
			return;
		}
	}
}

/* Would the kernel's default overcommit heuristic take a mapping of this
 * size? A region sized by one request is refused above RAM + swap, as
 * glibc's mmap of it would be, even inside the reservation. */
static int plausible(size_t size)
{
	struct sysinfo si;
	if (size <= ARENA_SIZE || sysinfo(&si) != 0)
		return 1;
	return size / si.mem_unit <= si.totalram + si.totalswap;
}

/* size bytes at the reservation's next free address, readable and
 * writable, or NULL when they do not fit or the kernel refuses. */
static void *take_reserved(size_t size)
{
	uintptr_t at = atomic_load_explicit(&rsv_used, memory_order_relaxed);
	if (rsv_base == 0 || rsv_end - at < size || !plausible(size) ||
	    mprotect((void *)at, size, PROT_READ | PROT_WRITE) != 0)
		return NULL;
	atomic_store_explicit(&rsv_used, at + size, memory_order_release);
	return (void *)at;
}

/* Fresh zeroed memory anywhere, or NULL. Only the default-sized regions
 * skip the commit charge: a larger one is sized by a request, and the
 * kernel's overcommit policy should refuse an absurd one as it would for
 * glibc. */
static void *map_anywhere(size_t size)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (size <= ARENA_SIZE ? MAP_NORESERVE : 0);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Give the reservation's unused tail back to the kernel, to make room
 * under an address-space limit. Returns whether there was one. Under
 * grow_lock, or before the heap is shared. */
static bool give_back_tail(void)
{
	uintptr_t used = atomic_load_explicit(&rsv_used, memory_order_relaxed);
	if (rsv_end <= used)
		return false;
	munmap((void *)used, rsv_end - used);
	rsv_end = used;
	return true;
}

/* Memory for a region of at least need bytes, preferably want (>= need):
 * in the reservation first, then anywhere, each trying halves of want down
 * to need (under ulimit -v a large mapping may be refused where a smaller
 * one fits); last, the reservation's unused tail is given back to make
 * room. *size gets the size mapped. */
static void *get_memory(size_t need, size_t want, size_t *size)
{
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 2)
			give_back_tail();
		for (size_t s = want;; s = s / 2 > need ? round_page(s / 2) : need) {
			void *p = pass == 0 ? take_reserved(s) : map_anywhere(s);
			if (p != NULL) {
				*size = s;
				return p;
			}
			if (s == need)
				break;
		}
	}
	return NULL;
}

/* The first thread through maps the arena; a racing one waits. Under an
 * address-space limit the reservation is smaller, and the first region
 * takes an eighth of it: the heap then grows geometrically (grow), and a
 * large request may still find the address space it needs. */
static struct kheap *init_slow(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1)) {
		while (atomic_load_explicit(&init_state, memory_order_acquire) != 2)
			sched_yield();
		return atomic_load_explicit(&heap, memory_order_acquire);
	}
	reserve();
	size_t want = rsv_end - rsv_base >= 2 * ARENA_SIZE ? ARENA_SIZE : round_page((rsv_end - rsv_base) / 8);
	if (want < FIRST_MIN)
		want = FIRST_MIN;
	size_t size = 0;
	void *base = get_memory(FIRST_MIN, want, &size);
	struct kheap *h = base != NULL ? kheap_init(base, size) : NULL;
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
 * thread added one since the caller read gen: as large as the heap
 * already is, up to ARENA_SIZE (geometric growth), if the address space
 * allows. Returns whether a retry may
 * succeed. Takes grow_lock, then (inside kheap_add_region) the heap lock.
 * A region refused by kheap stays mapped but unused (it cannot be given
 * back to the reservation in between others). */
static int grow(struct kheap *h, size_t n, size_t align, unsigned gen)
{
	if (h == NULL)
		return 0;
	/* The bins round a search up by up to 1/16 of the size (O(1) good fit). */
	size_t need = round_page(n + n / 8 + align + GROW_SLACK);
	int ok = 1;
	kh_lock_acquire(&grow_lock);
	if (atomic_load(&grow_gen) == gen) {
		struct kheap_stats st;
		kheap_get_stats(h, &st);
		size_t size = 0;
		size_t want = st.total_bytes < ARENA_SIZE ? round_page(st.total_bytes) : ARENA_SIZE;
		void *base = st.regions < KHEAP_MAX_REGIONS ? get_memory(need, need > want ? need : want, &size) : NULL;
		ok = base != NULL && kheap_add_region(h, base, size) == 0;
		if (ok)
			atomic_fetch_add(&grow_gen, 1u);
	}
	kh_lock_release(&grow_lock);
	return ok;
}

/* ---- memory given back ------------------------------------------------------ */

/* Give the whole pages inside [p, p + n) back to the kernel, keeping a
 * margin at each end for what kheap writes into a free block (its header,
 * links and footer). They read as zero when next touched. */
static void release_inside(void *p, size_t n)
{
	size_t page = page_size();
	uintptr_t lo = ((uintptr_t)p + KEEP + page - 1) & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + n - KEEP) & ~(page - 1);
	if (n > 2 * KEEP && hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void release_free(void *ctx, void *ptr, size_t size, int used)
{
	(void)ctx;
	if (!used && size >= 4 * page_size())
		release_inside(ptr, size);
}

/* The bytes a program's use dropped since the last walk (high water less
 * what is in use now), plus those of large blocks that realloc moved. */
static _Atomic size_t high_water;
static _Atomic size_t moved_bytes;
static _Atomic int walking;
static TLS unsigned frees_here;

/* When the heap's in-use bytes dropped by RELEASE_DROP and a quarter since
 * the last walk, or by RELEASE_HALVED and half (the last 32 MiB of a
 * program that frees nearly everything), walk every block and give back
 * the pages of free ones: a program whose peak passed gives that memory
 * back. The walk is O(blocks) with the heap lock held, paid for by the
 * bytes given back. */
static void maybe_release(struct kheap *h, int force)
{
	struct kheap_stats st;
	kheap_get_stats(h, &st);
	size_t high = atomic_load_explicit(&high_water, memory_order_relaxed);
	if (st.in_use_bytes > high) {
		atomic_store_explicit(&high_water, st.in_use_bytes, memory_order_relaxed);
		high = st.in_use_bytes;
	}
	size_t drop = high - st.in_use_bytes + atomic_load_explicit(&moved_bytes, memory_order_relaxed);
	if (!force && (drop < RELEASE_DROP || drop < st.in_use_bytes / 4) &&
	    (drop < RELEASE_HALVED || drop < st.in_use_bytes))
		return;
	if (atomic_exchange_explicit(&walking, 1, memory_order_acquire) != 0)
		return;
	atomic_store_explicit(&moved_bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&high_water, st.in_use_bytes, memory_order_relaxed);
	kheap_walk(h, release_free, NULL);
	atomic_store_explicit(&walking, 0, memory_order_release);
}

/* The size in the header of p's block if p lies in the reservation (the
 * only memory the preload reads without asking kheap), unchecked: a hint
 * that p may be large. Else 0: p may be a direct block (never in the
 * reservation) or in a region mapped elsewhere. */
static size_t peek_size(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (a < rsv_base + KH_HDR || a >= atomic_load_explicit(&rsv_used, memory_order_acquire))
		return 0;
	return kh_size(kh_block_of(p));
}

/* The kernel refused a large block's mapping. Under an address-space
 * limit (ulimit -v), give the reservation's unused tail back; returns
 * whether a retry may now succeed. Without a limit the refusal was about
 * memory or the number of mappings, which the tail does not change, and
 * the tail stays (regions laid in it keep the fast path's one span). */
static bool make_room(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return false;
	kh_lock_acquire(&grow_lock);
	bool more = give_back_tail();
	kh_lock_release(&grow_lock);
	return more;
}

/* A direct block for n bytes (align: 0 or a power of two); NULL: kheap
 * serves it. Below the threshold, NULL. */
static void *try_direct(size_t n, size_t align)
{
	if (n < direct_threshold())
		return NULL;
	void *p = direct_alloc(n, align);
	return p == NULL && make_room() ? direct_alloc(n, align) : p;
}

/* Is p a live direct block? (*usable gets its usable bytes.) The range
 * test first: a block of the reservation never is. */
static bool is_direct(const void *p, size_t *usable)
{
	uintptr_t a = (uintptr_t)p;
	if (a >= rsv_base && a < atomic_load_explicit(&rsv_used, memory_order_acquire))
		return false;
	return direct_live() != 0 && direct_lookup(p, usable);
}

enum op { OP_ALLOC, OP_CALLOC, OP_REALLOC };

/* One allocation: a direct block above the threshold (not for OP_REALLOC),
 * else kheap, growing the heap and retrying (at most GROW_TRIES times). For
 * OP_CALLOC n is the byte count (checked for overflow by the caller); for
 * OP_REALLOC old is a kheap block (not NULL) and n is not 0. Sets errno to
 * ENOMEM on failure. */
static void *obtain(enum op op, void *old, size_t align, size_t n)
{
	struct kheap *h = get_heap();
	if (n > MAX_REQUEST || align > MAX_REQUEST) { /* before kheap could call it an overflow */
		errno = ENOMEM;
		return NULL;
	}
	void *d = op != OP_REALLOC ? try_direct(n, align) : NULL;
	if (d != NULL)
		return d;
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

/* ---- fork: hold the locks across it ------------------------------------------ */

/* The direct table's lock is never held with the other two, so its place
 * in the order is free: first. */
static void fork_prepare(void)
{
	struct kheap *h = get_heap();
	kh_lock_acquire(direct_lock());
	kh_lock_acquire(&grow_lock);
	if (h != NULL) {
		kh_lock_acquire(&h->lock);
		/* A thread may be claiming a batch without the lock: the child
		 * would inherit it in flight for ever (kh_batch_quiesce). None
		 * starts while the lock is held. */
		kh_batch_quiesce(h);
	}
}

static void fork_parent(void)
{
	struct kheap *h = atomic_load(&heap);
	if (h != NULL)
		kh_lock_release(&h->lock);
	kh_lock_release(&grow_lock);
	kh_lock_release(direct_lock());
}

/* The child is alone: the waiters the lock records died with their threads
 * (with the ticket lock, a plain release would hand it to a ticket nobody
 * holds; with the mutex, it would wake nobody). Start afresh. */
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
	lock_reset(direct_lock());
}

/* ---- exit report ------------------------------------------------------------ */

/* Where the exit report goes: KHEAP_STATS_FILE (appended to, one line per
 * process), else KHEAP_STATS_FD (a descriptor the caller opened, e.g. 2 for
 * stderr), else DEFAULT_STATS_FILE; never the program's stderr unless asked.
 * Kept as a copy above the descriptors programs use: xz, sort and others
 * close stderr themselves before they exit. -1: no report. */
#define DEFAULT_STATS_FILE "/tmp/kheap-stats.log"
static int stats_fd = -1;

static void stats_open(void)
{
	const char *env = getenv("KHEAP_STATS");
	if (env == NULL || env[0] != '1' || env[1] != '\0')
		return;
	const char *file = getenv("KHEAP_STATS_FILE"), *fd = getenv("KHEAP_STATS_FD");
	int src = -1, own = 0;
	if ((file == NULL || file[0] == '\0') && fd != NULL && fd[0] >= '0' && fd[0] <= '9')
		src = atoi(fd);
	else
		src = open(file != NULL && file[0] != '\0' ? file : DEFAULT_STATS_FILE,
			   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), own = 1;
	if (src >= 0)
		stats_fd = fcntl(src, F_DUPFD_CLOEXEC, 100);
	if (own && src >= 0)
		close(src);
}

__attribute__((constructor)) static void preload_init(void)
{
	get_heap();
	homes_init();
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
	size_t direct = 0, direct_bytes = 0;
	direct_stats(&direct, &direct_bytes);
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
	put_kv(&l, "direct", direct);
	put_kv(&l, "direct_bytes", direct_bytes);
	put_kv(&l, "oom", st.oom_count);
	put_kv(&l, "errors", st.error_count);
	put_kv(&l, "check", (uint64_t)problems);
	emit(stats_fd, &l);
}

/* ---- the malloc family ---------------------------------------------------------- */

static int pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

EXPORT void *malloc(size_t n) { return obtain(OP_ALLOC, NULL, 0, n); }

/* A direct block is unmapped; any other pointer goes to kheap (which
 * reports one that is not its own). Every FREES_PER_CHECK frees, and after
 * each large one, the drop check. */
EXPORT void free(void *p)
{
	if (p == NULL)
		return;
	struct kheap *h = get_heap();
	size_t peek = peek_size(p);
	if (peek == 0 && direct_live() != 0 && direct_free(p))
		return;
	kheap_free(h, p);
	if (peek >= NOTICE_BLOCK || ++frees_here % FREES_PER_CHECK == 0)
		maybe_release(h, 0);
}

/* A direct block is a fresh mapping and reads as zero. A large block of
 * kheap's is zeroed by giving its whole pages back (they read as zero, and
 * cost nothing until touched: a fresh region's are not touched at all) and
 * writing zeros only to the partial pages at its ends. */
EXPORT void *calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	size_t bytes = n * size;
	void *d = bytes <= MAX_REQUEST ? try_direct(bytes, 0) : NULL;
	if (d != NULL)
		return d;
	if (bytes < CALLOC_FRESH)
		return obtain(OP_CALLOC, NULL, 0, bytes);
	char *p = obtain(OP_ALLOC, NULL, 0, bytes);
	if (p == NULL)
		return NULL;
	size_t page = page_size();
	char *lo = (char *)(((uintptr_t)p + page - 1) & ~(page - 1));
	char *hi = (char *)(((uintptr_t)p + bytes) & ~(page - 1));
	if (hi > lo && madvise(lo, (size_t)(hi - lo), MADV_DONTNEED) == 0) {
		memset(p, 0, (size_t)(lo - p));
		memset(hi, 0, (size_t)(p + bytes - hi));
	} else {
		memset(p, 0, bytes);
	}
	return p;
}

/* A direct block to n bytes: mremap, or when the kernel refuses (address
 * space short), a new block and a copy. NULL (errno ENOMEM) leaves p. */
static void *direct_resize(void *p, size_t usable, size_t n)
{
	void *q = n <= MAX_REQUEST ? direct_realloc(p, n) : NULL;
	if (q == NULL && n <= MAX_REQUEST && make_room())
		q = direct_realloc(p, n);
	if (q != NULL)
		return q;
	q = malloc(n);
	if (q != NULL) {
		memcpy(q, p, usable < n ? usable : n);
		direct_free(p);
	}
	return q;
}

/* A kheap block that grows past the threshold moves to a direct block
 * (copied once; later growth is mremap's). realloc(p, 0) frees p and
 * returns NULL, as glibc does. */
EXPORT void *realloc(void *p, size_t n)
{
	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	size_t usable = 0;
	if (is_direct(p, &usable))
		return direct_resize(p, usable, n);
	struct kheap *h = get_heap();
	size_t peek = peek_size(p);
	if (n >= direct_threshold() && n <= MAX_REQUEST && n > (usable = kheap_usable_size(h, p))) {
		void *d = try_direct(n, 0);
		if (d != NULL) {
			memcpy(d, p, usable);
			free(p);
			return d;
		}
	}
	void *q = obtain(OP_REALLOC, p, 0, n);
	if (q != NULL && q != p && peek >= NOTICE_BLOCK) { /* kheap freed the old block */
		atomic_fetch_add_explicit(&moved_bytes, peek, memory_order_relaxed);
		maybe_release(get_heap(), 0);
	}
	return q;
}

/* glibc's extension: give back what can be. kheap_trim returns this
 * thread's cache and the shared lists to the bins (the other threads'
 * at their next call); the walk gives back the free blocks' pages. pad
 * is ignored. Returns 1: some memory may have been given back. */
EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	struct kheap *h = get_heap();
	if (h == NULL)
		return 0;
	kheap_trim(h);
	maybe_release(h, 1);
	return 1;
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

EXPORT size_t malloc_usable_size(void *p)
{
	size_t usable = 0;
	if (p == NULL || is_direct(p, &usable))
		return usable;
	return kheap_usable_size(get_heap(), p);
}
