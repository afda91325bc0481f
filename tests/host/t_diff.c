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
		(size_t)1 << 16, (size_t)1 << 10, 1017, 1024, 1025,
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

/* ---- kh_class_pop / kh_class_push ------------------------------------------- */

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
	int cpu;        /* 1: kh_cpu_pop/push, which also keep a token in word 1 */
	uintptr_t tkey; /* their token key */
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
		if (m->cpu)
			ok &= KT_EQ(word_at(s, i, 1), slot_addr(s, i) ^ m->tkey);
	}
	unsigned kept = m->cpu ? 16 : 8; /* link, and the per-CPU token */
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
	int ra, rb;
	if (m->cpu) {
		ra = kh_cpu_push(&side_a.c, slot(&side_a, i), m->key, m->tkey);
		rb = twin_cpu_push(&side_b.c, slot(&side_b, i), m->key, m->tkey);
	} else {
		ra = kh_class_push(&side_a.c, slot(&side_a, i), m->key);
		rb = twin_class_push(&side_b.c, slot(&side_b, i), m->key);
	}
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
	void *pa, *pb;
	if (m->cpu) {
		pa = kh_cpu_pop(&side_a.c, key, tkey);
		pb = twin_cpu_pop(&side_b.c, key, tkey);
	} else {
		pa = kh_class_pop(&side_a.c, key);
		pb = twin_class_pop(&side_b.c, key);
	}
	int ok = KT_EQ(offset_of(&side_a, pa), offset_of(&side_b, pb));
	ok &= KT_EQ(offset_of(&side_a, pa), offset_of(&side_a, want_a));
	if (pa != NULL && pa != KH_CLASS_BAD) {
		unsigned i = m->stack[--m->depth];
		/* Pop reads the link and leaves it; then the slot is handed out
		 * and, here, refilled as an owner would. */
		ok &= KT_EQ(word0(&side_a, i), link_at(&side_a, m, m->depth));
		ok &= KT_EQ(word0(&side_b, i), link_at(&side_b, m, m->depth));
		if (m->cpu) /* and clears the token */
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
	if (m->cpu && m->depth && op < 97) {
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

static void run_random_mode(uint64_t seed, uintptr_t key, unsigned steps, int cpu, uintptr_t tkey)
{
	struct model m = {.limit = SLOTS, .key = key, .cpu = cpu, .tkey = tkey};
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

static void run_random(uint64_t seed, uintptr_t key, unsigned steps)
{
	run_random_mode(seed, key, steps, 0, 0);
}

/* The per-CPU pop/push against their twins: links, tokens, refusals. */
KT_CASE(diff_cpu_random)
{
	run_random_mode(0xc0fe0001, 0x9e3779b97f4a7c10u, 20000, 1, ~(uintptr_t)0x9e3779b97f4a7c10u ^ 3);
	run_random_mode(0xc0fe0002, (uintptr_t)0 - 16, 20000, 1, 0);
	run_random_mode(0xc0fe0003, 0, 5000, 1, (uintptr_t)0 - 1);
}

KT_CASE(diff_class_random)
{
	run_random(0xd1ff0001, 0x9e3779b97f4a7c10u, 20000);
	run_random(0xd1ff0002, (uintptr_t)0 - 16, 20000); /* all key bits set but the low 4 */
	run_random(0xd1ff0003, 0, 5000);
}

/* Fill the list to its limit: the refused push leaves the block alone. */
KT_CASE(diff_class_full_and_empty)
{
	struct model m = {.limit = 5, .key = 0x123456789abcdef0u};
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
KT_CASE(diff_class_count_limit_edges)
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
		int ra = kh_class_push(&a, blk_a, 0x10);
		int rb = twin_class_push(&b, blk_b, 0x10);
		KT_EQ(ra, rb);
		KT_EQ(ra, cases[k][0] < cases[k][1]);
		KT_EQ(a.count, b.count);
		KT_EQ(a.count, cases[k][0] + (uint32_t)ra);
		KT_EQ(a.limit, cases[k][1]);
		KT_EQ(a.head, ra ? (uintptr_t)blk_a : 0x5550);
		KT_EQ(b.head, rb ? (uintptr_t)blk_b : 0x5550);
		uintptr_t wa, wb;
		__builtin_memcpy(&wa, blk_a, sizeof wa);
		__builtin_memcpy(&wb, blk_b, sizeof wb);
		KT_EQ(wa, ra ? 0x5550 ^ (uintptr_t)blk_a ^ 0x10 : (uintptr_t)0xa5a5a5a5a5a5a5a5u);
		KT_EQ(wb, rb ? 0x5550 ^ (uintptr_t)blk_b ^ 0x10 : (uintptr_t)0xa5a5a5a5a5a5a5a5u);
	}
}

/* A pop with count already 0 wraps the count, as the C does; an empty list
 * keeps whatever count it had. */
KT_CASE(diff_class_pop_count_wrap)
{
	static _Alignas(16) unsigned char blk_a[16], blk_b[16];
	uintptr_t key = 0xfeedface00000000u;
	uintptr_t wa = (uintptr_t)blk_a ^ key, wb = (uintptr_t)blk_b ^ key; /* next = 0 */
	__builtin_memcpy(blk_a, &wa, sizeof wa);
	__builtin_memcpy(blk_b, &wb, sizeof wb);
	struct kh_class a = {(uintptr_t)blk_a, 0, 3}, b = {(uintptr_t)blk_b, 0, 3};
	KT_EQ(kh_class_pop(&a, key), blk_a);
	KT_EQ(twin_class_pop(&b, key), blk_b);
	KT_EQ(a.head, 0);
	KT_EQ(b.head, 0);
	KT_EQ(a.count, 0xffffffffu);
	KT_EQ(b.count, 0xffffffffu);
	KT_EQ(a.limit, 3);
	struct kh_class ea = {0, 77, 3}, eb = ea;
	KT_EQ(kh_class_pop(&ea, key), NULL);
	KT_EQ(twin_class_pop(&eb, key), NULL);
	KT_EQ(ea.count, 77);
	KT_EQ(eb.count, 77);
}

/* ---- kh_lock ---------------------------------------------------------------- */

/* Single-threaded: the state after each call, from the same start, wrap
 * included. (Contention is t_lock.c's business.) */
KT_CASE(diff_lock_states)
{
	static const uint32_t starts[] = {0, 1, 7, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu};
	for (unsigned k = 0; k < sizeof starts / sizeof starts[0]; k++) {
		struct kh_lock a, b;
		atomic_init(&a.next, starts[k]);
		atomic_init(&a.owner, starts[k]);
		atomic_init(&b.next, starts[k]);
		atomic_init(&b.owner, starts[k]);
		for (unsigned r = 0; r < 3; r++) {
			kh_lock_acquire(&a);
			twin_lock_acquire(&b);
			KT_EQ(atomic_load(&a.next), starts[k] + r + 1);
			KT_EQ(atomic_load(&a.owner), starts[k] + r);
			KT_EQ(atomic_load(&b.next), atomic_load(&a.next));
			KT_EQ(atomic_load(&b.owner), atomic_load(&a.owner));
			kh_lock_release(&a);
			twin_lock_release(&b);
			KT_EQ(atomic_load(&a.owner), starts[k] + r + 1);
			KT_EQ(atomic_load(&b.owner), atomic_load(&a.owner));
			KT_EQ(atomic_load(&b.next), atomic_load(&a.next));
		}
	}
}

/* The two implementations share the layout: one may take what the other
 * released, which is what mixing objects from the two builds relies on. */
KT_CASE(diff_lock_interleaved)
{
	struct kh_lock l;
	atomic_init(&l.next, 0xfffffff0u);
	atomic_init(&l.owner, 0xfffffff0u);
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
	KT_EQ(atomic_load(&l.owner), 0x30u);
}

/* ---- kh_irq ----------------------------------------------------------------- */

/* The asm versions are privileged (tests/qemu runs them); the generic twin
 * has nothing to save and must say so with 0. */
KT_CASE(diff_irq_generic_twin)
{
	KT_EQ(twin_arch_irq_save(), 0);
	twin_arch_irq_restore(0);
	twin_arch_irq_restore(~(uintptr_t)0);
	KT_EQ(twin_arch_irq_save(), 0);
}
