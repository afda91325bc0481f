/*
 * t_diff.c: differential tests of the build's kh_* routines (assembly by
 * default) against the generic C twins compiled as twin_* (twin_c.c). Each
 * case also checks an independent model of the contract, so that it still
 * means something with GENERIC=1, where both sides are the same C.
 */
#include "kt.h"
#include "twin_c.h"

/* ---- kh_size_class ---------------------------------------------------------- */

/* The contract, from kh_class_block_size alone: the smallest class whose
 * block holds n + 8 bytes, or KH_NCLASSES above KH_CLASS_MAX_PAYLOAD. */
static int class_fits(size_t n, unsigned c)
{
	if (n > KH_CLASS_MAX_PAYLOAD)
		return c == KH_NCLASSES;
	if (c >= KH_NCLASSES || kh_class_block_size(c) < n + 8)
		return 0;
	return c == 0 || kh_class_block_size(c - 1) < n + 8;
}

static int class_agrees(size_t n)
{
	unsigned a = kh_size_class(n), t = twin_size_class(n);
	if (a == t && class_fits(n, a))
		return 1;
	kt_log("kh_size_class disagrees; n, build, twin:");
	kt_putx(n), kt_out(" "), kt_putu(a), kt_out(" "), kt_putu(t), kt_out("\n");
	return 0;
}

KT_CASE(diff_size_class_sweep)
{
	unsigned bad = 0;
	for (size_t n = 0; n <= 4 * KH_CLASS_MAX_BLOCK + 64; n++)
		bad += !class_agrees(n);
	KT_EQ(bad, 0);
}

KT_CASE(diff_size_class_huge)
{
	/* Overflow of n + 23, truncation to 32 bits, the sign bit. */
	static const size_t edge[] = {
		SIZE_MAX, SIZE_MAX - 7, SIZE_MAX - 8, SIZE_MAX - 15, SIZE_MAX - 22,
		SIZE_MAX - 23, SIZE_MAX - 24, SIZE_MAX - 1016, (size_t)1 << 63,
		((size_t)1 << 63) - 1, ((size_t)1 << 63) + 1, ((size_t)1 << 63) + 1016,
		(size_t)UINT32_MAX, (size_t)UINT32_MAX - 7, (size_t)UINT32_MAX + 1,
		((size_t)1 << 32) + 5, ((size_t)1 << 32) + 1016, ((size_t)1 << 32) + 1017,
		(size_t)1 << 31, ((size_t)1 << 31) + 1, (size_t)INT32_MAX,
		(size_t)1 << 16, (size_t)1 << 10, 1017, 1024, 1025, KH_CLASS_MAX_PAYLOAD, KH_CLASS_MAX_PAYLOAD + 1,
		((size_t)1 << 32) + KH_CLASS_MAX_PAYLOAD, ((size_t)1 << 32) + KH_CLASS_MAX_PAYLOAD + 1,
	};
	unsigned bad = 0;
	for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
		bad += !class_agrees(edge[i]);
	uint64_t s = 0x5eed0001;
	for (int i = 0; i < 100000; i++) {
		size_t n = (size_t)kt_rand(&s);
		/* Random magnitudes: shift a random word down by 0..63. */
		bad += !class_agrees(n >> (kt_rand(&s) & 63));
	}
	KT_EQ(bad, 0);
}

/* ---- kh_cpu_pop / kh_cpu_push ----------------------------------------------- */

#define SLOTS 48u
#define SLOT_BYTES 32u

/* One side of the comparison: a class list with guard words around it and
 * its own block memory. The two sides hold blocks at equal offsets. */
struct side {
	uint64_t pre[2];
	struct kh_class c;
	uint64_t post[2];
	_Alignas(16) unsigned char mem[SLOTS * SLOT_BYTES];
};

static struct side side_a, side_b; /* a: the build's kh_*; b: the twin */

/* The reference model: the list as a stack of slot numbers. */
struct model {
	unsigned stack[SLOTS];
	unsigned depth;
	unsigned char on[SLOTS];
	uint32_t limit;
	uintptr_t key;
	uintptr_t tkey; /* the token key: a listed block keeps a token in word 1 */
};

#define GUARD 0x6b68677561726421ull

static uint64_t slot_token(unsigned i) { return 0x51075107ull * (i + 1); }

static void *slot(struct side *s, unsigned i) { return s->mem + (size_t)i * SLOT_BYTES; }

static uintptr_t slot_addr(struct side *s, unsigned i) { return (uintptr_t)slot(s, i); }

static uintptr_t word_at(struct side *s, unsigned i, unsigned k)
{
	uintptr_t w;
	__builtin_memcpy(&w, (char *)slot(s, i) + k * sizeof w, sizeof w);
	return w;
}

static uintptr_t word0(struct side *s, unsigned i) { return word_at(s, i, 0); }

static void side_reset(struct side *s, const struct model *m)
{
	s->pre[0] = s->pre[1] = s->post[0] = s->post[1] = GUARD;
	s->c.head = 0;
	s->c.count = 0;
	s->c.limit = m->limit;
	for (unsigned i = 0; i < SLOTS; i++)
		kt_fill(slot(s, i), SLOT_BYTES, slot_token(i));
}

/* The expected raw link word of the model's list entry at depth d. */
static uintptr_t link_at(struct side *s, const struct model *m, unsigned d)
{
	uintptr_t next = d ? slot_addr(s, m->stack[d - 1]) : 0;
	return next ^ slot_addr(s, m->stack[d]) ^ m->key;
}

/* Everything the two sides hold against the model: guards, head, count,
 * limit, every link word, and untouched bytes everywhere else. */
static int side_matches(struct side *s, const struct model *m)
{
	int ok = KT_EQ(s->pre[0], GUARD) & KT_EQ(s->pre[1], GUARD) & KT_EQ(s->post[0], GUARD) &
		 KT_EQ(s->post[1], GUARD);
	ok &= KT_EQ(s->c.count, m->depth);
	ok &= KT_EQ(s->c.limit, m->limit);
	ok &= KT_EQ(s->c.head, m->depth ? slot_addr(s, m->stack[m->depth - 1]) : 0);
	for (unsigned d = 0; d < m->depth; d++) {
		unsigned i = m->stack[d];
		ok &= KT_EQ(word0(s, i), link_at(s, m, d));
		ok &= KT_EQ(word_at(s, i, 1), slot_addr(s, i) ^ m->tkey);
	}
	unsigned kept = 16; /* the link and the token */
	for (unsigned i = 0; i < SLOTS; i++) {
		const unsigned char *b = slot(s, i);
		if (m->on[i]) {
			/* Bytes past the link (and token) keep their fill. */
			unsigned char ref[SLOT_BYTES];
			kt_fill(ref, SLOT_BYTES, slot_token(i));
			ok &= KT_CHECK(__builtin_memcmp(b + kept, ref + kept, SLOT_BYTES - kept) == 0);
		} else {
			ok &= KT_CHECK(kt_verify(b, SLOT_BYTES, slot_token(i)));
		}
	}
	return ok;
}

static int both_match(const struct model *m) { return side_matches(&side_a, m) & side_matches(&side_b, m); }

static uintptr_t offset_of(struct side *s, void *p)
{
	if (p == NULL || p == KH_CLASS_BAD)
		return (uintptr_t)p;
	return (uintptr_t)p - (uintptr_t)s->mem + 0x1000; /* never 0 or 1 */
}

static int do_push(struct model *m, unsigned i)
{
	int ra = kh_cpu_push(&side_a.c, slot(&side_a, i), m->key, m->tkey);
	int rb = twin_cpu_push(&side_b.c, slot(&side_b, i), m->key, m->tkey);
	int want = m->depth < m->limit;
	int ok = KT_EQ(ra, rb) & KT_EQ(ra, want);
	if (want) {
		m->stack[m->depth++] = i;
		m->on[i] = 1;
	}
	return ok;
}

static int do_pop_tk(struct model *m, uintptr_t key, uintptr_t tkey, void *want_a)
{
	void *pa = kh_cpu_pop(&side_a.c, key, tkey);
	void *pb = twin_cpu_pop(&side_b.c, key, tkey);
	int ok = KT_EQ(offset_of(&side_a, pa), offset_of(&side_b, pb));
	ok &= KT_EQ(offset_of(&side_a, pa), offset_of(&side_a, want_a));
	if (pa != NULL && pa != KH_CLASS_BAD) {
		unsigned i = m->stack[--m->depth];
		/* Pop reads the link and leaves it; then the slot is handed out
		 * and, here, refilled as an owner would. */
		ok &= KT_EQ(word0(&side_a, i), link_at(&side_a, m, m->depth));
		ok &= KT_EQ(word0(&side_b, i), link_at(&side_b, m, m->depth));
		/* and clears the token */
		ok &= KT_EQ(word_at(&side_a, i, 1), 0) & KT_EQ(word_at(&side_b, i, 1), 0);
		m->on[i] = 0;
		kt_fill(slot(&side_a, i), SLOT_BYTES, slot_token(i));
		kt_fill(slot(&side_b, i), SLOT_BYTES, slot_token(i));
	}
	return ok;
}

static int do_pop(struct model *m, uintptr_t key, void *want_a)
{
	return do_pop_tk(m, key, m->tkey, want_a);
}

static void *model_top(const struct model *m)
{
	return m->depth ? slot(&side_a, m->stack[m->depth - 1]) : NULL;
}

/* XOR the same delta into the head's link on both sides: the decoded link
 * moves by delta on both, whatever the base addresses. */
static void corrupt_head(const struct model *m, uintptr_t delta)
{
	unsigned i = m->stack[m->depth - 1];
	uintptr_t wa = word0(&side_a, i) ^ delta, wb = word0(&side_b, i) ^ delta;
	__builtin_memcpy(slot(&side_a, i), &wa, sizeof wa);
	__builtin_memcpy(slot(&side_b, i), &wb, sizeof wb);
}

static void set_limit(struct model *m, uint32_t limit)
{
	m->limit = side_a.c.limit = side_b.c.limit = limit;
}

static unsigned random_free_slot(const struct model *m, uint64_t *s)
{
	unsigned i = (unsigned)kt_below(s, SLOTS);
	while (m->on[i])
		i = (i + 1) % SLOTS;
	return i;
}

static int random_step(struct model *m, uint64_t *s)
{
	unsigned op = (unsigned)kt_below(s, 100);
	if (op < 45) {
		if (m->depth == SLOTS)
			return do_pop(m, m->key, model_top(m));
		return do_push(m, random_free_slot(m, s));
	}
	if (op < 85)
		return do_pop(m, m->key, model_top(m));
	if (op < 90) {
		set_limit(m, (uint32_t)kt_below(s, SLOTS + 3));
		return 1;
	}
	if (op < 95 && m->depth) {
		/* A corrupt link: refused, list unchanged, then repaired. */
		uintptr_t delta = (uintptr_t)(1 + kt_below(s, 15)) | ((uintptr_t)kt_rand(s) << 4);
		corrupt_head(m, delta);
		int ok = do_pop(m, m->key, KH_CLASS_BAD);
		corrupt_head(m, delta);
		return ok;
	}
	if (m->depth && op < 97) {
		/* A wrong token: the block is not on this CPU's list. */
		unsigned i = m->stack[m->depth - 1];
		uintptr_t delta = (uintptr_t)kt_rand(s) | 1;
		uintptr_t ta = word_at(&side_a, i, 1), tb = word_at(&side_b, i, 1);
		uintptr_t xa = ta ^ delta, xb = tb ^ delta;
		__builtin_memcpy((char *)slot(&side_a, i) + 8, &xa, sizeof xa);
		__builtin_memcpy((char *)slot(&side_b, i) + 8, &xb, sizeof xb);
		int ok = do_pop(m, m->key, KH_CLASS_BAD);
		__builtin_memcpy((char *)slot(&side_a, i) + 8, &ta, sizeof ta);
		__builtin_memcpy((char *)slot(&side_b, i) + 8, &tb, sizeof tb);
		return ok & do_pop_tk(m, m->key, m->tkey ^ (delta << 4), KH_CLASS_BAD);
	}
	if (m->depth) {
		/* The wrong key is a corrupt link too. */
		uintptr_t bad_key = m->key ^ (uintptr_t)(1 + kt_below(s, 15));
		return do_pop(m, bad_key, KH_CLASS_BAD);
	}
	return do_pop(m, m->key, NULL);
}

static void run_random(uint64_t seed, uintptr_t key, unsigned steps, uintptr_t tkey)
{
	struct model m = {.limit = SLOTS, .key = key, .tkey = tkey};
	side_reset(&side_a, &m);
	side_reset(&side_b, &m);
	uint64_t s = seed;
	for (unsigned k = 0; k < steps; k++) {
		int ok = random_step(&m, &s);
		if (!(ok & both_match(&m))) {
			kt_log("diverged at step:");
			kt_putu(k), kt_out("\n");
			return;
		}
	}
}

/* The per-CPU pop/push against their twins: links, tokens, refusals. */
KT_CASE(diff_cpu_random)
{
	run_random(0xc0fe0001, 0x9e3779b97f4a7c10u, 20000, ~(uintptr_t)0x9e3779b97f4a7c10u ^ 3);
	run_random(0xc0fe0002, (uintptr_t)0 - 16, 20000, 0); /* all key bits set but the low 4 */
	run_random(0xc0fe0003, 0, 5000, (uintptr_t)0 - 1);
	run_random(0xd1ff0001, 0x9e3779b97f4a7c10u, 20000, 0x1234);
}

/* Fill the list to its limit: the refused push leaves the block alone. */
KT_CASE(diff_cpu_list_full_and_empty)
{
	struct model m = {.limit = 5, .key = 0x123456789abcdef0u, .tkey = 0x5a5a};
	side_reset(&side_a, &m);
	side_reset(&side_b, &m);
	for (unsigned i = 0; i < 5; i++)
		KT_CHECK(do_push(&m, i));
	KT_CHECK(do_push(&m, 7)); /* refused: count == limit */
	KT_CHECK(both_match(&m));
	set_limit(&m, 0);
	KT_CHECK(do_push(&m, 8)); /* refused: count > limit */
	KT_CHECK(both_match(&m));
	while (m.depth)
		KT_CHECK(do_pop(&m, m.key, model_top(&m)));
	KT_CHECK(do_pop(&m, m.key, NULL));
	KT_CHECK(do_pop(&m, m.key, NULL));
	KT_CHECK(both_match(&m));
}

/* count and limit compare unsigned, at the ends of the 32-bit range. */
KT_CASE(diff_cpu_list_count_limit_edges)
{
	static const uint32_t cases[][2] = {
		{0x80000000u, 0x7fffffffu}, {5, 0x80000000u}, {0xfffffffeu, 0xffffffffu},
		{0xffffffffu, 0xffffffffu}, {0, 0}, {0, 1}, {0x7fffffffu, 0x80000000u},
	};
	static _Alignas(16) unsigned char blk_a[16], blk_b[16];
	for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		struct kh_class a = {0x5550, cases[k][0], cases[k][1]}, b = a;
		__builtin_memset(blk_a, 0xa5, sizeof blk_a);
		__builtin_memset(blk_b, 0xa5, sizeof blk_b);
		int ra = kh_cpu_push(&a, blk_a, 0x10, 0x70);
		int rb = twin_cpu_push(&b, blk_b, 0x10, 0x70);
		KT_EQ(ra, rb);
		KT_EQ(ra, cases[k][0] < cases[k][1]);
		KT_EQ(a.count, b.count);
		KT_EQ(a.count, cases[k][0] + (uint32_t)ra);
		KT_EQ(a.limit, cases[k][1]);
		KT_EQ(a.head, ra ? (uintptr_t)blk_a : 0x5550);
		KT_EQ(b.head, rb ? (uintptr_t)blk_b : 0x5550);
		uintptr_t wa[2], wb[2];
		__builtin_memcpy(wa, blk_a, sizeof wa);
		__builtin_memcpy(wb, blk_b, sizeof wb);
		KT_EQ(wa[0], ra ? 0x5550 ^ (uintptr_t)blk_a ^ 0x10 : (uintptr_t)0xa5a5a5a5a5a5a5a5u);
		KT_EQ(wb[0], rb ? 0x5550 ^ (uintptr_t)blk_b ^ 0x10 : (uintptr_t)0xa5a5a5a5a5a5a5a5u);
		KT_EQ(wa[1], ra ? (uintptr_t)blk_a ^ 0x70 : (uintptr_t)0xa5a5a5a5a5a5a5a5u);
		KT_EQ(wb[1], rb ? (uintptr_t)blk_b ^ 0x70 : (uintptr_t)0xa5a5a5a5a5a5a5a5u);
	}
}

/* A pop with count already 0 wraps the count, as the C does; an empty list
 * keeps whatever count it had. */
KT_CASE(diff_cpu_list_pop_count_wrap)
{
	static _Alignas(16) unsigned char blk_a[16], blk_b[16];
	uintptr_t key = 0xfeedface00000000u, tkey = 0x3;
	uintptr_t wa[2] = {(uintptr_t)blk_a ^ key, (uintptr_t)blk_a ^ tkey}; /* next = 0 */
	uintptr_t wb[2] = {(uintptr_t)blk_b ^ key, (uintptr_t)blk_b ^ tkey};
	__builtin_memcpy(blk_a, wa, sizeof wa);
	__builtin_memcpy(blk_b, wb, sizeof wb);
	struct kh_class a = {(uintptr_t)blk_a, 0, 3}, b = {(uintptr_t)blk_b, 0, 3};
	KT_EQ(kh_cpu_pop(&a, key, tkey), blk_a);
	KT_EQ(twin_cpu_pop(&b, key, tkey), blk_b);
	KT_EQ(a.head, 0);
	KT_EQ(b.head, 0);
	KT_EQ(a.count, 0xffffffffu);
	KT_EQ(b.count, 0xffffffffu);
	KT_EQ(a.limit, 3);
	struct kh_class ea = {0, 77, 3}, eb = ea;
	KT_EQ(kh_cpu_pop(&ea, key, tkey), NULL);
	KT_EQ(twin_cpu_pop(&eb, key, tkey), NULL);
	KT_EQ(ea.count, 77);
	KT_EQ(eb.count, 77);
}

/* ---- kh_lock ---------------------------------------------------------------- */

/* Single-threaded: the state after each call, from the same start, wrap
 * included, with and without a CPU number for the holder. (Contention is
 * t_lock.c's business.) */
KT_CASE(diff_lock_states)
{
	static const uint32_t starts[] = {0, 1, 7, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu};
	for (int named = 0; named < 2; named++) {
		kt_percpu(named);
		uint32_t tag = kheap_cpu_id() + 1u;
		KT_CHECK(named ? tag != 0 : tag == 0);
		for (unsigned k = 0; k < sizeof starts / sizeof starts[0]; k++) {
			struct kh_lock a = {0}, b = {0};
			atomic_init(&a.next, starts[k]);
			atomic_init(&a.serving, starts[k]);
			atomic_init(&b.next, starts[k]);
			atomic_init(&b.serving, starts[k]);
			for (unsigned r = 0; r < 3; r++) {
				kh_lock_acquire(&a);
				twin_lock_acquire(&b);
				KT_EQ(atomic_load(&a.next), starts[k] + r + 1);
				KT_EQ(atomic_load(&a.serving), starts[k] + r);
				KT_EQ(atomic_load(&a.holder), tag);
				KT_EQ(atomic_load(&b.next), atomic_load(&a.next));
				KT_EQ(atomic_load(&b.serving), atomic_load(&a.serving));
				KT_EQ(atomic_load(&b.holder), atomic_load(&a.holder));
				kh_lock_release(&a);
				twin_lock_release(&b);
				KT_EQ(atomic_load(&a.serving), starts[k] + r + 1);
				KT_EQ(atomic_load(&a.holder), 0);
				KT_EQ(atomic_load(&b.serving), atomic_load(&a.serving));
				KT_EQ(atomic_load(&b.next), atomic_load(&a.next));
				KT_EQ(atomic_load(&b.holder), 0);
				KT_EQ(atomic_load(&a.waiting), 0);
				KT_EQ(atomic_load(&b.waiting), 0);
			}
		}
	}
}

/* The two implementations share the layout: one may take what the other
 * released, which is what mixing objects from the two builds relies on. */
KT_CASE(diff_lock_interleaved)
{
	struct kh_lock l = {0};
	atomic_init(&l.next, 0xfffffff0u);
	atomic_init(&l.serving, 0xfffffff0u);
	for (unsigned r = 0; r < 64; r++) {
		if (r & 1)
			kh_lock_acquire(&l);
		else
			twin_lock_acquire(&l);
		if (r & 2)
			kh_lock_release(&l);
		else
			twin_lock_release(&l);
	}
	KT_EQ(atomic_load(&l.next), 0x30u);
	KT_EQ(atomic_load(&l.serving), 0x30u);
	KT_EQ(atomic_load(&l.holder), 0);
}

/* A deadlock the lock reports: the report's kheap_panic (expected here)
 * plays the holder and releases, so the waiter is served and returns. */
static struct kh_lock *stuck_lock;
static void (*stuck_release)(struct kh_lock *l);
static const char *stuck_msg;
static unsigned stuck_releases; /* tickets ahead of the stuck one */

static void unstick(const char *msg)
{
	stuck_msg = msg;
	for (unsigned i = 0; i < stuck_releases; i++)
		stuck_release(stuck_lock);
}

static int has(const char *s, const char *sub)
{
	for (; s && *s; s++) {
		size_t i = 0;
		while (sub[i] && s[i] == sub[i])
			i++;
		if (!sub[i])
			return 1;
	}
	return 0;
}

typedef void lock_fn(struct kh_lock *l);

/* Acquire l (in state *start) once more with acq; expect one report
 * containing what, answered by releasing with rel. */
static void expect_stuck(lock_fn *acq, lock_fn *rel, struct kh_lock *l, const char *what)
{
	stuck_lock = l, stuck_release = rel, stuck_msg = NULL;
	stuck_releases = atomic_load(&l->next) - atomic_load(&l->serving);
	kt_panics = 0;
	kt_panic_action = unstick;
	kt_panic_expected = 1;
	uint32_t next = atomic_load(&l->next);
	acq(l);
	kt_panic_expected = 0;
	kt_panic_action = 0;
	KT_EQ(kt_panics, 1);
	KT_CHECK(has(stuck_msg, what));
	KT_EQ(atomic_load(&l->serving), next); /* served: this call's ticket */
	KT_EQ(atomic_load(&l->holder), kheap_cpu_id() + 1u);
	KT_EQ(atomic_load(&l->waiting), 0);
	rel(l);
	KT_EQ(atomic_load(&l->next), atomic_load(&l->serving));
}

/* Re-entry on a CPU that holds the lock is named at once (a patience of
 * 64 rounds would otherwise end in the other report); with no CPU named it is
 * caught by the bounded wait instead; a lock that another CPU holds is
 * waited for without a re-entry report, up to the bound; and a CPU whose
 * interrupted code was still waiting (its bit in waiting set, its ticket
 * behind another CPU's) is named at once too. */
/* kh_lock_acquire_as, the form a port-header build uses: the tag it is
 * given is the holder recorded, and the re-entry check works on it. */
static void asm_acquire_as(struct kh_lock *l) { kh_lock_acquire_as(l, kheap_cpu_id() + 1u); }
static void twin_acquire_as(struct kh_lock *l) { twin_lock_acquire_as(l, kheap_cpu_id() + 1u); }

KT_CASE(diff_lock_acquire_as_records_the_tag)
{
	void (*as[2])(struct kh_lock *, uint32_t) = {kh_lock_acquire_as, twin_lock_acquire_as};
	lock_fn *acq[2] = {asm_acquire_as, twin_acquire_as};
	lock_fn *rel[2] = {kh_lock_release, twin_lock_release};
	for (unsigned t = 0; t < 2; t++) {
		struct kh_lock l = {0};
		for (uint32_t tag = 0; tag < 70; tag += 7) {
			as[t](&l, tag);
			KT_EQ(atomic_load(&l.holder), tag);
			KT_EQ(atomic_load(&l.next), atomic_load(&l.serving) + 1u);
			rel[t](&l);
			KT_EQ(atomic_load(&l.holder), 0);
		}
		kt_percpu(1);
		KT_REQUIRE(kheap_cpu_id() != KHEAP_NO_CPU);
		l.patience = 64;
		acq[t](&l);
		expect_stuck(acq[t], rel[t], &l, "re-entered by the CPU that holds it");
		kt_percpu(kt_percpu_default);
	}
}

KT_CASE(diff_lock_reports_deadlock)
{
	lock_fn *acq[2] = {kh_lock_acquire, twin_lock_acquire};
	lock_fn *rel[2] = {kh_lock_release, twin_lock_release};
	for (unsigned t = 0; t < 2; t++) {
		struct kh_lock l = {0};
		kt_percpu(1);
		KT_REQUIRE(kheap_cpu_id() != KHEAP_NO_CPU);
		l.patience = 64; /* broken: "still held" after 64 rounds, not a hang */
		acq[t](&l);
		expect_stuck(acq[t], rel[t], &l, "re-entered by the CPU that holds it");

		kt_percpu(0);
		l.patience = 3;
		acq[t](&l);
		expect_stuck(acq[t], rel[t], &l, "still held");

		kt_percpu(1);
		atomic_store(&l.next, atomic_load(&l.next) + 1u); /* another CPU's ticket */
		atomic_store(&l.holder, kheap_cpu_id() + 2u);
		expect_stuck(acq[t], rel[t], &l, "still held");

		atomic_store(&l.next, atomic_load(&l.next) + 2u); /* another CPU's, then this one's */
		atomic_store(&l.holder, kheap_cpu_id() + 2u);
		atomic_store(&l.waiting, (uint64_t)1 << kheap_cpu_id());
		l.patience = 64; /* broken: "still held" after 64 rounds, not a hang */
		expect_stuck(acq[t], rel[t], &l, "re-entered by the CPU that holds it");
	}
}

/* ---- kh_cpu_alloc / kh_cpu_free: the fused fast path ------------------------ */

/*
 * Every call runs three ways from one starting state: the build's kh_cpu_*
 * (the assembly by default), the twin, and a model written from the
 * contract in kh_class.h. Links, tokens and cookies encode absolute
 * addresses, so two images can be compared byte for byte only when both
 * calls ran at the same address: the image is saved before the first run
 * and put back before each of the others, and the three results are
 * compared whole (struct kh_cpu, the arena and the guard words around
 * them) along with the return values. The twin's result goes on.
 */
#ifndef KT_STRESS_OPS
#define KT_STRESS_OPS 1000000u
#endif
#define ARENA 4096u
#define NBLK ((ARENA - 32) / 32) /* blocks 32 bytes apart: header, link, token, spare */
#define BODY_MASK (((uint64_t)1 << KH_COOKIE_SHIFT) - 1)
#define SIZE_BITS 0xfffffffff0u
#define H_USED 1u
#define H_PREV 2u
#define H_CACHED 4u
#define H_ZERO 8u
#define H_ALG(a) ((uint64_t)(a) << 40)

struct image {
	uint64_t pre[8];
	struct kh_cpu cpu;
	uint64_t mid[4];
	unsigned char mem[ARENA];
	uint64_t post[4];
};
_Static_assert(sizeof(struct image) == 64 + sizeof(struct kh_cpu) + 32 + ARENA + 32,
	       "no padding: every byte compared is state");
_Static_assert(offsetof(struct image, mem) % 16 == 0, "blocks are 8 mod 16, payloads 16-aligned");

static _Alignas(64) struct image img, img_base, img_start, img_asm, img_model;
static unsigned fp_logged; /* failures logged in this case, to keep the log short */

static uintptr_t blk_p(unsigned i) { return (uintptr_t)img.mem + 16 + 32 * (uintptr_t)i; }

static uintptr_t ld(uintptr_t a)
{
	uintptr_t w;
	__builtin_memcpy(&w, (const void *)a, sizeof w);
	return w;
}

static void st(uintptr_t a, uintptr_t v) { __builtin_memcpy((void *)a, &v, sizeof v); }

/* A header sealed as the contract says: the cookie is the top 18 bits of
 * ((bits 0..45) ^ block address ^ key) * KH_COOKIE_MUL. */
static uint64_t seal(uintptr_t b, uint64_t body, uintptr_t key)
{
	body &= BODY_MASK;
	uint64_t cookie = ((body ^ b ^ key) * (uint64_t)KH_COOKIE_MUL) >> KH_COOKIE_SHIFT;
	return body | cookie << KH_COOKIE_SHIFT;
}

static void set_header(unsigned i, uint64_t body) { st(blk_p(i) - 8, seal(blk_p(i) - 8, body, img.cpu.key)); }

/* The token word of a block on CPU k's list (kh_tkey), read back by
 * kh_cpu_free as w ^ p ^ ~key = k. */
static void set_token_cpu(unsigned i, uint64_t k) { st(blk_p(i) + 8, blk_p(i) ^ ~img.cpu.key ^ k); }

/* -- the model, from kh_class.h alone -- */

static unsigned model_request_class(size_t n)
{
	for (unsigned c = 0; c < KH_NCLASSES && n <= KH_CLASS_MAX_PAYLOAD; c++)
		if (kh_class_block_size(c) >= n + 8)
			return c;
	return KH_NCLASSES;
}

static unsigned model_block_class(uint64_t s)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++)
		if (kh_class_block_size(c) == s)
			return c;
	return KH_NCLASSES;
}

/* lo <= b < hi, two compares as the twins make them: an empty span when
 * lo >= hi (region_attach keeps lo <= hi; the twins must agree either way). */
static int model_in_span(const struct kh_cpu *cpu, uintptr_t b) { return b >= cpu->lo && b < cpu->hi; }

static void *model_alloc(struct kh_cpu *cpu, size_t n)
{
	unsigned c = model_request_class(n);
	if (c == KH_NCLASSES || cpu->drain != 0 || cpu->cls[c].head == 0)
		return NULL;
	struct kh_class *l = &cpu->cls[c];
	uintptr_t p = l->head, next = ld(p) ^ p ^ cpu->key;
	if (ld(p + 8) != (p ^ cpu->tkey))
		return NULL;
	if (next != 0 && (next % 16 != 0 || !model_in_span(cpu, next - 8)))
		return NULL;
	l->head = next;
	l->count--;
	st(p + 8, 0);
	cpu->allocs++;
	return (void *)p;
}

/* The class of block b with header h when h is sealed, USED alone of the
 * flags (PREV_FREE either way), alignment 0 and a class size; else
 * KH_NCLASSES. */
static unsigned model_header_class(const struct kh_cpu *cpu, uintptr_t b, uint64_t h)
{
	if (seal(b, h, cpu->key) != h)
		return KH_NCLASSES;
	if (!(h & H_USED) || (h & (H_CACHED | H_ZERO)) || (h & H_ALG(63)) != 0)
		return KH_NCLASSES;
	return model_block_class(h & SIZE_BITS);
}

static int model_free(struct kh_cpu *cpu, void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	if (p % 16 != 0 || !model_in_span(cpu, p - 8))
		return 0;
	unsigned c = model_header_class(cpu, p - 8, ld(p - 8));
	if (c == KH_NCLASSES || (ld(p + 8) ^ p ^ ~cpu->key) < KH_TOKEN_CPUS)
		return 0;
	struct kh_class *l = &cpu->cls[c];
	if (cpu->drain != 0 || l->count >= l->limit)
		return 2;
	st(p, l->head ^ p ^ cpu->key);
	st(p + 8, p ^ cpu->tkey);
	l->head = p;
	l->count++;
	cpu->frees++;
	return 1;
}

/* -- the build's call, as the hot path makes it --
 * An arch header's kh_call_cpu_alloc/free (kh_arch.h) tell the compiler
 * that the assembly writes only the registers in KH_CPU_*_CLOBBERS. The
 * build's side of every case below calls the assembly the same way, with a
 * pattern in each other register (the arguments' included) that it can
 * bind, and fails the case when one comes back changed. */
static int regs_kept;

#define PAT(k) (0x5eed000000000000u ^ (uint64_t)(k) * 0x0101010101u)

#if defined(KH_CPU_ALLOC_CALL) && defined(__x86_64__)
#define LEAN_CALL(call, clobbers, cpu, arg, type)                                                        \
	do {                                                                                             \
		register uint64_t r9 __asm__("r9") = PAT(9), r10 __asm__("r10") = PAT(10);               \
		register uint64_t r11 __asm__("r11") = PAT(11), rbx __asm__("rbx") = PAT(3);             \
		register uint64_t r12 __asm__("r12") = PAT(12), r13 __asm__("r13") = PAT(13);            \
		register uint64_t r14 __asm__("r14") = PAT(14), r15 __asm__("r15") = PAT(15);            \
		uint64_t c = (uint64_t)(cpu), a = (uint64_t)(arg), out;                                  \
		__asm__ volatile(call                                                                    \
				 : "=a"(out), "+D"(c), "+S"(a), "+r"(r9), "+r"(r10), "+r"(r11), "+r"(rbx), \
				   "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15)                            \
				 :                                                                       \
				 : clobbers);                                                            \
		regs_kept = c == (uint64_t)(cpu) && a == (uint64_t)(arg) && r9 == PAT(9) &&              \
			    r10 == PAT(10) && r11 == PAT(11) && rbx == PAT(3) && r12 == PAT(12) &&       \
			    r13 == PAT(13) && r14 == PAT(14) && r15 == PAT(15);                          \
		return (type)out;                                                                        \
	} while (0)
#elif defined(KH_CPU_ALLOC_CALL) && defined(__aarch64__)
/* x0-x10, x16, x17 and x30 may change; x18 is the platform's; x19-x28 are
 * callee-saved, of which three stand for the rest (an asm statement takes
 * at most 30 operands, and each "+r" counts twice). */
#define LEAN_CALL(call, clobbers, cpu, arg, type)                                                        \
	do {                                                                                             \
		register uint64_t x0 __asm__("x0") = (uint64_t)(cpu), x1 __asm__("x1") = (uint64_t)(arg); \
		register uint64_t x11 __asm__("x11") = PAT(11), x12 __asm__("x12") = PAT(12);            \
		register uint64_t x13 __asm__("x13") = PAT(13), x14 __asm__("x14") = PAT(14);            \
		register uint64_t x15 __asm__("x15") = PAT(15), x19 __asm__("x19") = PAT(19);            \
		register uint64_t x20 __asm__("x20") = PAT(20), x21 __asm__("x21") = PAT(21);            \
		__asm__ volatile(call                                                                    \
				 : "+r"(x0), "+r"(x1), "+r"(x11), "+r"(x12), "+r"(x13), "+r"(x14),        \
				   "+r"(x15), "+r"(x19), "+r"(x20), "+r"(x21)                             \
				 :                                                                       \
				 : clobbers);                                                            \
		regs_kept = x1 == (uint64_t)(arg) && x11 == PAT(11) && x12 == PAT(12) &&                 \
			    x13 == PAT(13) && x14 == PAT(14) && x15 == PAT(15) && x19 == PAT(19) &&      \
			    x20 == PAT(20) && x21 == PAT(21);                                            \
		return (type)x0;                                                                         \
	} while (0)
#endif

static void *build_cpu_alloc(struct kh_cpu *cpu, size_t n)
{
#ifdef LEAN_CALL
	LEAN_CALL(KH_CPU_ALLOC_CALL, KH_CPU_ALLOC_CLOBBERS, cpu, n, void *);
#else
	regs_kept = 1;
	return kh_cpu_alloc(cpu, n);
#endif
}

static int build_cpu_free(struct kh_cpu *cpu, void *ptr)
{
#ifdef LEAN_CALL
	LEAN_CALL(KH_CPU_FREE_CALL, KH_CPU_FREE_CLOBBERS, cpu, ptr, int);
#else
	regs_kept = 1;
	return kh_cpu_free(cpu, ptr);
#endif
}

/* -- running one call three ways -- */

static int image_same(const struct image *x, const char *who)
{
	const unsigned char *a = (const void *)x, *b = (const void *)&img;
	for (size_t i = 0; i < sizeof img; i++) {
		if (a[i] == b[i])
			continue;
		if (fp_logged < 5) {
			kt_log(who);
			kt_out("    differs from the twin at image byte ");
			kt_putu(i), kt_out(" (kh_cpu at 64, arena at "), kt_putu(64 + sizeof img.cpu + 32);
			kt_out(")\n");
		}
		return 0;
	}
	return 1;
}

static void run_start(void) { __builtin_memcpy(&img_start, &img, sizeof img); }

static void run_next(struct image *keep)
{
	__builtin_memcpy(keep, &img, sizeof img);
	__builtin_memcpy(&img, &img_start, sizeof img);
}

static int verdict(int ok, const char *op, uint64_t arg, uint64_t ra, uint64_t rt, uint64_t rm)
{
	ok &= image_same(&img_asm, "state after the build's call");
	ok &= image_same(&img_model, "state after the model's call");
	if (!ok && fp_logged++ < 5) {
		kt_log(op);
		kt_out("    arg, build, twin, model: "), kt_putx(arg), kt_out(" "), kt_putx(ra);
		kt_out(" "), kt_putx(rt), kt_out(" "), kt_putx(rm), kt_out("\n");
	}
	return ok;
}

/* want: 1 a block, 0 NULL, -1 whatever the model says. */
static int fp_alloc(size_t n, int want)
{
	run_start();
	void *ra = build_cpu_alloc(&img.cpu, n);
	run_next(&img_asm);
	void *rm = model_alloc(&img.cpu, n);
	run_next(&img_model);
	void *rt = twin_cpu_alloc(&img.cpu, n);
	int ok = regs_kept && ra == rt && rt == rm && (want < 0 || (rt != NULL) == want);
	return verdict(ok, "kh_cpu_alloc disagrees; n:", n, (uintptr_t)ra, (uintptr_t)rt, (uintptr_t)rm);
}

static int fp_free(uintptr_t p, int want)
{
	run_start();
	int ra = build_cpu_free(&img.cpu, (void *)p);
	run_next(&img_asm);
	int rm = model_free(&img.cpu, (void *)p);
	run_next(&img_model);
	int rt = twin_cpu_free(&img.cpu, (void *)p);
	int ok = regs_kept && ra == rt && rt == rm && (want < 0 || rt == want);
	return verdict(ok, "kh_cpu_free disagrees; p - arena:", p - (uintptr_t)img.mem, (unsigned)ra,
		       (unsigned)rt, (unsigned)rm);
}

/* -- states -- */

/* Random bytes everywhere (so that a stray write shows), then a cache as
 * the heap sets one up: tkey names CPU k as kh_tkey does, the span covers
 * every block, no drain, empty lists with random counts and limits, every
 * block a sealed used block of a class size with a token naming no CPU. */
static void image_random(uint64_t *s)
{
	for (size_t i = 0; i < sizeof img; i += 8) {
		uint64_t w = kt_rand(s);
		__builtin_memcpy((unsigned char *)&img + i, &w, sizeof w);
	}
	struct kh_cpu *cpu = &img.cpu;
	cpu->key = kt_rand(s);
	cpu->tkey = ~cpu->key ^ (uintptr_t)kt_below(s, KH_TOKEN_CPUS);
	cpu->lo = blk_p(0) - 8;
	cpu->hi = (uintptr_t)img.mem + ARENA - 24; /* a block below it has its token below the end */
	cpu->drain = 0;
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		cpu->cls[c].head = 0;
		cpu->cls[c].count = (uint32_t)kt_below(s, 4);
		cpu->cls[c].limit = cpu->cls[c].count + 1 + (uint32_t)kt_below(s, 8);
	}
	for (unsigned i = 0; i < NBLK; i++)
		set_header(i, kh_class_block_size((unsigned)kt_below(s, KH_NCLASSES)) | H_USED | (kt_rand(s) & H_PREV));
}

/* Put blocks ids[0..k) on class c's list, ids[k - 1] the head; the oldest
 * block's link decodes to tail. */
static void list_build(unsigned c, const unsigned *ids, unsigned k, uintptr_t tail)
{
	struct kh_cpu *cpu = &img.cpu;
	uintptr_t next = tail;
	for (unsigned j = 0; j < k; j++) {
		uintptr_t p = blk_p(ids[j]);
		st(p, next ^ p ^ cpu->key);
		st(p + 8, p ^ cpu->tkey);
		next = p;
	}
	cpu->cls[c].head = next;
	cpu->cls[c].count = k;
}

/* Every class list holds two blocks (2c, 2c + 1); the older one's link
 * decodes to 0 for even classes and to block NOLIST + c / 2, on no list, for
 * odd ones. Saved as img_base for image_restore. */
#define NOLIST (2 * KH_NCLASSES)
_Static_assert(NOLIST + KH_NCLASSES / 2 < NBLK, "every list block and every no-list block fits the arena");

static void image_lists(uint64_t seed)
{
	uint64_t s = seed;
	image_random(&s);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		unsigned ids[2] = {2 * c, 2 * c + 1};
		list_build(c, ids, 2, c & 1 ? blk_p(NOLIST + c / 2) : 0);
	}
	__builtin_memcpy(&img_base, &img, sizeof img);
}

static void image_restore(void) { __builtin_memcpy(&img, &img_base, sizeof img); }

/* -- kh_cpu_alloc -- */

/* Every request size through the tables' classes and a little past them,
 * then, for each class above (sizes the assembly computes), its smallest and
 * largest request and one on either side, and sizes past the largest class;
 * each from full lists: the head, then the older block (whose link decodes
 * to 0 or to a block on no list), then what is left. */
static unsigned alloc_every(size_t req, uint64_t seed)
{
	image_lists(seed);
	unsigned bad = !fp_alloc(req, req <= KH_CLASS_MAX_PAYLOAD);
	bad += !fp_alloc(req, req <= KH_CLASS_MAX_PAYLOAD);
	return bad + !fp_alloc(req, -1);
}

KT_CASE(diff_cpu_alloc_every_size)
{
	static const size_t huge[] = {
		SIZE_MAX, SIZE_MAX - 7, (size_t)1 << 63, (size_t)UINT32_MAX, (size_t)UINT32_MAX + 8,
		((size_t)1 << 32) + 5, ((size_t)1 << 32) + 1016, ((size_t)1 << 32) + KH_CLASS_TABLE_PAYLOAD,
		((size_t)1 << 32) + KH_CLASS_MAX_PAYLOAD, KH_CLASS_MAX_PAYLOAD + 1, KH_CLASS_MAX_PAYLOAD + 8,
		KH_CLASS_MAX_PAYLOAD + 9, 1u << 20,
	};
	unsigned bad = 0;
	fp_logged = 0;
	for (size_t n = 0; n <= KH_CLASS_TABLE_PAYLOAD + 100; n++)
		bad += alloc_every(n, 0xa110c000 + n);
	for (unsigned c = KH_CLASS_TABLE_CLASSES; c < KH_NCLASSES; c++) {
		size_t least = kh_class_block_size(c - 1) - 7, most = kh_class_block_size(c) - 8;
		const size_t edge[] = {least - 1, least, least + 1, most - 1, most, most + 1};
		for (unsigned k = 0; k < sizeof edge / sizeof edge[0]; k++)
			bad += alloc_every(edge[k], 0xa110d000 + 8 * c + k);
	}
	for (unsigned k = 0; k < sizeof huge / sizeof huge[0]; k++)
		bad += alloc_every(huge[k], 0xa110e000 + k);
	KT_EQ(bad, 0);
}

/* Each refusal the contract lists, for the smallest and largest request
 * of every class: drain set, an empty list, a wrong token (each bit, and
 * with a link decoding to 0), a link that decodes misaligned (each low
 * nibble); and the hit beside them: a link decoding to 0, with a count and
 * allocs that wrap. */
static unsigned alloc_refusals(size_t n)
{
	static const uint32_t drains[] = {1, 0x80000000u, 0xffffffffu};
	struct kh_class *l = &img.cpu.cls[model_request_class(n)];
	unsigned bad = 0;
	for (unsigned k = 0; k < 3; k++) {
		image_restore();
		img.cpu.drain = drains[k];
		bad += !fp_alloc(n, 0);
	}
	image_restore();
	l->head = 0;
	bad += !fp_alloc(n, 0);
	for (unsigned bit = 0; bit < 64; bit++) {
		image_restore();
		st(l->head + 8, ld(l->head + 8) ^ (uintptr_t)1 << bit);
		bad += !fp_alloc(n, 0);
	}
	for (uintptr_t d = 1; d < 16; d++) {
		image_restore();
		st(l->head, ld(l->head) ^ d);
		bad += !fp_alloc(n, 0);
	}
	image_restore();
	st(l->head, l->head ^ img.cpu.key); /* next == 0, and a wrong token */
	st(l->head + 8, ld(l->head + 8) ^ 16);
	bad += !fp_alloc(n, 0);
	image_restore();
	st(l->head, l->head ^ img.cpu.key); /* next == 0 */
	l->count = 0;
	img.cpu.allocs = UINT64_MAX;
	bad += !fp_alloc(n, 1);
	bad += !KT_EQ(l->count, 0xffffffffu) + !KT_EQ(img.cpu.allocs, 0) + !KT_EQ(l->head, 0);
	return bad;
}

KT_CASE(diff_cpu_alloc_refusals)
{
	unsigned bad = 0;
	fp_logged = 0;
	image_lists(0xa110c001);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		bad += alloc_refusals(c ? kh_class_block_size(c - 1) - 7 : 0);
		bad += alloc_refusals(kh_class_block_size(c) - 8);
	}
	KT_EQ(bad, 0);
}

/* The decoded link against the span, byte by byte across both ends, with
 * lo at every offset mod 16; then spans with lo == hi and lo > hi. */
static unsigned alloc_span(size_t n, uintptr_t lo, uintptr_t hi)
{
	unsigned c = model_request_class(n), bad = 0;
	for (int end = 0; end < 2; end++) {
		for (uintptr_t next = (end ? hi : lo) - 40; next != (end ? hi : lo) + 40; next++) {
			image_restore();
			img.cpu.lo = lo;
			img.cpu.hi = hi;
			uintptr_t p = img.cpu.cls[c].head;
			st(p, next ^ p ^ img.cpu.key);
			bad += !fp_alloc(n, -1);
		}
	}
	return bad;
}

KT_CASE(diff_cpu_alloc_span_edges)
{
	unsigned bad = 0;
	fp_logged = 0;
	image_lists(0xa110c002);
	uintptr_t mem = (uintptr_t)img.mem;
	for (uintptr_t d = 0; d < 16; d++)
		bad += alloc_span(100, mem + 200 + d, mem + 1500 + d);
	bad += alloc_span(1000, mem + 1000, mem + 1000);
	bad += alloc_span(24, mem + 1500, mem + 400);
	bad += alloc_span(24, mem + 1504, mem + 1496);
	bad += alloc_span(500, UINTPTR_MAX - 7, 8);
	KT_EQ(bad, 0);
}

/* -- kh_cpu_free -- */

#define FREE_BLK 20u /* the block the directed cases free */

/* A fresh image whose lists are as image_random leaves them, with block
 * FREE_BLK's header set to body and its token naming no CPU. */
static void free_setup(uint64_t seed, uint64_t body)
{
	uint64_t s = seed;
	image_random(&s);
	set_header(FREE_BLK, body);
	__builtin_memcpy(&img_base, &img, sizeof img);
}

/* Every block size 0..1104 in steps of 16, every size in steps of 16 on
 * either side of each class above (the sizes the assembly computes), and
 * a few far above, sealed, USED with and without PREV_FREE: pushed iff a
 * class size. Then the same block again, which its token now names this
 * CPU's: refused. */
static unsigned free_every(uint64_t size, uint64_t seed)
{
	int want = model_block_class(size) < KH_NCLASSES;
	unsigned bad = 0;
	for (uint64_t prev = 0; prev <= H_PREV; prev += H_PREV) {
		free_setup(seed, size | H_USED | prev);
		bad += !fp_free(blk_p(FREE_BLK), want);
		bad += !fp_free(blk_p(FREE_BLK), 0);
	}
	return bad;
}

KT_CASE(diff_cpu_free_every_size)
{
	static const uint64_t far[] = {KH_CLASS_MAX_BLOCK + 16, 2 * KH_CLASS_MAX_BLOCK, (uint64_t)1 << 39, SIZE_BITS,
				       SIZE_BITS - 1008};
	unsigned bad = 0;
	fp_logged = 0;
	for (unsigned k = 0; k < 70; k++)
		bad += free_every(16 * (uint64_t)k, 0xf4ee0000 + k);
	for (unsigned c = KH_CLASS_TABLE_CLASSES; c < KH_NCLASSES; c++)
		for (uint64_t d = 0; d <= 64; d += 16) {
			bad += free_every(kh_class_block_size(c) - d, 0xf4ee2000 + 16 * c + d / 16);
			bad += free_every(kh_class_block_size(c) + d, 0xf4ee3000 + 16 * c + d / 16);
		}
	for (unsigned k = 0; k < sizeof far / sizeof far[0]; k++)
		bad += free_every(far[k], 0xf4ee4000 + k);
	KT_EQ(bad, 0);
}

/* The header checks, on blocks of 32, 272, 320 (no class), 528, 1024
 * (no class), 1040, 2048 (no class), 2064, 3328 (no class), 4112, 65536 (no
 * class) and 65552 bytes: each of the 64 bits flipped (the cookie fails); resealed with
 * the zero bit, CACHED, each alignment bit, without USED; and resealed
 * with PREV_FREE, which is a hit. */
static unsigned free_headers(uint64_t size)
{
	static const uint64_t sealed_bad[] = {
		H_ZERO, H_CACHED, H_CACHED | H_ZERO, H_ALG(1), H_ALG(2), H_ALG(4), H_ALG(8), H_ALG(16),
		H_ALG(32), H_ALG(63),
	};
	uint64_t good = size | H_USED;
	int want = model_block_class(size) < KH_NCLASSES;
	unsigned bad = 0;
	free_setup(0xf4ee1000 + size, good);
	for (unsigned bit = 0; bit < 64; bit++) {
		image_restore();
		uintptr_t b = blk_p(FREE_BLK) - 8;
		st(b, ld(b) ^ (uint64_t)1 << bit);
		bad += !fp_free(blk_p(FREE_BLK), 0);
	}
	for (unsigned k = 0; k < sizeof sealed_bad / sizeof sealed_bad[0]; k++) {
		image_restore();
		set_header(FREE_BLK, good | sealed_bad[k]);
		bad += !fp_free(blk_p(FREE_BLK), 0);
	}
	image_restore();
	set_header(FREE_BLK, size | H_PREV);
	bad += !fp_free(blk_p(FREE_BLK), 0);
	image_restore();
	set_header(FREE_BLK, good | H_PREV);
	bad += !fp_free(blk_p(FREE_BLK), want);
	return bad;
}

KT_CASE(diff_cpu_free_headers)
{
	static const uint64_t sizes[] = {32, 272, 320, 528, 1024, 1040, 2048, 2064, 3328, 4112, 65536, 65552};
	unsigned bad = 0;
	fp_logged = 0;
	for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
		bad += free_headers(sizes[k]);
	KT_EQ(bad, 0);
}

/* A token naming CPU k, for every k below KH_TOKEN_CPUS (a block on
 * some CPU's list: refused) and a few at and above it (pushed); and a
 * token that is not p ^ anything near ~key. */
KT_CASE(diff_cpu_free_tokens)
{
	static const uint64_t above[] = {KH_TOKEN_CPUS, KH_TOKEN_CPUS + 1, 8191, 1u << 16,
					 (uint64_t)1 << 63, UINT64_MAX};
	unsigned bad = 0;
	fp_logged = 0;
	free_setup(0xf4ee2000, 96 | H_USED);
	for (uint64_t k = 0; k < KH_TOKEN_CPUS; k++) {
		image_restore();
		set_token_cpu(FREE_BLK, k);
		bad += !fp_free(blk_p(FREE_BLK), 0);
	}
	for (unsigned k = 0; k < sizeof above / sizeof above[0]; k++) {
		image_restore();
		set_token_cpu(FREE_BLK, above[k]);
		bad += !fp_free(blk_p(FREE_BLK), 1);
	}
	image_restore();
	st(blk_p(FREE_BLK) + 8, 0); /* as kh_cpu_alloc leaves it */
	bad += !fp_free(blk_p(FREE_BLK), 1);
	KT_EQ(bad, 0);
}

/* p against the span: every lo and hi from 24 bytes below the block to 24
 * above it (b just below lo, at lo, at hi - 1, at hi, and lo > hi); and p
 * at every misaligned offset around the block, with a header sealed for
 * p - 8 and a token naming no CPU, so that only the alignment refuses it. */
KT_CASE(diff_cpu_free_span_edges)
{
	unsigned bad = 0;
	fp_logged = 0;
	free_setup(0xf4ee3000, 128 | H_USED | H_PREV);
	uintptr_t b = blk_p(FREE_BLK) - 8;
	for (uintptr_t lo = b - 24; lo != b + 25; lo++) {
		for (uintptr_t hi = b - 24; hi != b + 25; hi++) {
			image_restore();
			img.cpu.lo = lo;
			img.cpu.hi = hi;
			bad += !fp_free(b + 8, -1);
		}
	}
	for (uintptr_t d = 1; d < 32; d++) {
		uintptr_t p = b + d - 8;
		if (p % 16 == 0)
			continue;
		image_restore();
		st(p - 8, seal(p - 8, 64 | H_USED, img.cpu.key));
		st(p + 8, 0);
		bad += !fp_free(p, 0);
	}
	KT_EQ(bad, 0);
}

/* The list's count against its limit, drain, and the counters' wrap. */
KT_CASE(diff_cpu_free_list_state)
{
	static const uint32_t cl[][2] = {
		{0, 0}, {3, 3}, {4, 3}, {2, 3}, {0, 1}, {0xffffffffu, 0xffffffffu}, {0xfffffffeu, 0xffffffffu},
		{0x80000000u, 0x7fffffffu}, {0x7fffffffu, 0x80000000u},
	};
	static const uint32_t drains[] = {1, 0x80000000u, 0xffffffffu};
	unsigned bad = 0;
	fp_logged = 0;
	free_setup(0xf4ee4000, 656 | H_USED);
	struct kh_class *l = &img.cpu.cls[model_block_class(656)];
	for (unsigned k = 0; k < sizeof cl / sizeof cl[0]; k++) {
		image_restore();
		l->count = cl[k][0];
		l->limit = cl[k][1];
		bad += !fp_free(blk_p(FREE_BLK), cl[k][0] < cl[k][1] ? 1 : 2);
	}
	for (unsigned k = 0; k < 3; k++) {
		image_restore();
		img.cpu.drain = drains[k];
		bad += !fp_free(blk_p(FREE_BLK), 2);
	}
	image_restore();
	img.cpu.frees = UINT64_MAX;
	bad += !fp_free(blk_p(FREE_BLK), 1);
	bad += !KT_EQ(img.cpu.frees, 0) + !KT_EQ(l->head, blk_p(FREE_BLK));
	KT_EQ(bad, 0);
}

/* -- both, at random -- */

static size_t random_request(uint64_t *s)
{
	if (kt_below(s, 20) == 0)
		return (size_t)kt_rand(s) >> (kt_rand(s) & 63);
	if (kt_below(s, 4) == 0)
		return (size_t)kt_below(s, KH_CLASS_MAX_PAYLOAD + 100);
	return (size_t)kt_below(s, 1101);
}

/* A block size: mostly a class's, else one of no class or a random one. */
static uint64_t random_size(uint64_t *s)
{
	static const uint64_t odd[] = {0, 16, 288, 320, 576, 1024, 1104, 2048, 3328, 65536, 65568, 98304};
	unsigned k = (unsigned)kt_below(s, 10);
	if (k < 8)
		return kh_class_block_size((unsigned)kt_below(s, KH_NCLASSES));
	return k == 8 ? odd[kt_below(s, sizeof odd / sizeof odd[0])] : kt_rand(s) & SIZE_BITS;
}

/* The span moves within the arena (lo <= hi, as region_attach keeps it;
 * the edge cases above cover lo > hi). */
static void random_span(uint64_t *s)
{
	uintptr_t a = blk_p((unsigned)kt_below(s, NBLK)) - 8, z = blk_p((unsigned)kt_below(s, NBLK)) - 8;
	if (kt_below(s, 3) != 0) {
		img.cpu.lo = blk_p(0) - 8;
		img.cpu.hi = (uintptr_t)img.mem + ARENA - 24;
		return;
	}
	img.cpu.lo = (a < z ? a : z) + (uintptr_t)kt_below(s, 16);
	img.cpu.hi = (a < z ? z : a) + (uintptr_t)kt_below(s, 16);
}

/* One disturbance of the state, the ways the contract lists, or a repair
 * of the kind the slow path makes (a block resealed, a list emptied), so
 * that the damage does not pile up. */
static void disturb(uint64_t *s)
{
	struct kh_cpu *cpu = &img.cpu;
	unsigned i = (unsigned)kt_below(s, NBLK), c = (unsigned)kt_below(s, KH_NCLASSES);
	uintptr_t head = cpu->cls[c].head;
	switch (kt_below(s, 16)) {
	case 0: cpu->drain = kt_below(s, 8) == 0 ? (uint32_t)kt_rand(s) | 1 : 0; break;
	case 1: /* around the count: count == limit, and limit 0 */
		cpu->cls[c].limit = kt_below(s, 8) ? cpu->cls[c].count + (uint32_t)kt_below(s, 4) - 1 : (uint32_t)kt_rand(s);
		break;
	case 2: set_header(i, kt_rand(s)); break;
	case 3: st(blk_p(i) - 8, ld(blk_p(i) - 8) ^ (uint64_t)1 << kt_below(s, 64)); break;
	case 4: set_token_cpu(i, kt_below(s, 2) ? kt_below(s, 4097) : kt_rand(s)); break;
	case 5: if (head) st(head, ld(head) ^ (kt_below(s, 2) ? 1 + kt_below(s, 15) : kt_rand(s))); break;
	case 6: if (head) st(head + 8, ld(head + 8) ^ (uintptr_t)1 << kt_below(s, 64)); break;
	case 7: random_span(s); break;
	case 8: st(blk_p(i) + 8, 0); break;
	case 9: case 10: cpu->cls[c].head = 0, cpu->cls[c].count = 0; break;
	default: set_header(i, random_size(s) | H_USED | (kt_rand(s) & H_PREV)); break;
	}
}

/* A request anywhere in the range of the first class from c on whose
 * list is not empty. */
static size_t class_request(uint64_t *s, unsigned c)
{
	for (unsigned k = 0; k < KH_NCLASSES && img.cpu.cls[c].head == 0; k++)
		c = (c + 1) % KH_NCLASSES;
	size_t least = c ? kh_class_block_size(c - 1) - 7 : 0;
	return least + (size_t)kt_below(s, kh_class_block_size(c) - 7 - least);
}

/* Frees push blocks of every size, allocs take them back (half of them
 * aimed at a list that holds some, the rest at any size); now and then the state
 * is disturbed, or the free is of a pointer that is misaligned, just below
 * lo or at hi. After every call the three images agree. */
static unsigned fused_random(uint64_t seed, unsigned steps)
{
	uint64_t s = seed;
	unsigned bad = 0;
	image_random(&s);
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		img.cpu.cls[c].count = 0;
		img.cpu.cls[c].limit = 2 + (uint32_t)kt_below(&s, 8);
	}
	for (unsigned k = 0; k < steps && bad < 5; k++) {
		unsigned op = (unsigned)kt_below(&s, 100);
		uintptr_t p = blk_p((unsigned)kt_below(&s, NBLK)), lo = img.cpu.lo, hi = img.cpu.hi;
		if (op < 45)
			bad += !fp_free(p, -1);
		else if (op < 70)
			bad += !fp_alloc(class_request(&s, (unsigned)kt_below(&s, KH_NCLASSES)), -1);
		else if (op < 85)
			bad += !fp_alloc(random_request(&s), -1);
		else if (op < 88)
			bad += !fp_free(p + 1 + kt_below(&s, 15), 0);
		else if (op < 90)
			bad += !fp_free(kt_below(&s, 2) ? (lo + 7) & ~(uintptr_t)15 : (hi + 8 + 15) & ~(uintptr_t)15, 0);
		else
			disturb(&s);
	}
	return bad;
}

KT_CASE(diff_cpu_fused_random)
{
	unsigned bad = 0;
	fp_logged = 0;
	for (uint64_t seed = 0xf05ed001; seed < 0xf05ed005; seed++)
		bad += fused_random(seed, KT_STRESS_OPS / 100);
	KT_EQ(bad, 0);
}
