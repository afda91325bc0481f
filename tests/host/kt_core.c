/*
 * kt_core.c: the platform-independent half of the harness (see kt.h). No
 * libc: it builds freestanding for the QEMU test kernel too.
 */
#include "kt.h"

static const struct kt_case *current;
static int current_failed;
volatile int kt_panic_expected;
volatile unsigned kt_panics;
void (*volatile kt_panic_action)(const char *msg);

void kt_putu(uint64_t v)
{
	char d[21];
	int n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char s[22];
	int i = 0;
	while (n)
		s[i++] = d[--n];
	s[i] = '\0';
	kt_out(s);
}

void kt_putx(uint64_t v)
{
	char s[19];
	s[0] = '0', s[1] = 'x';
	for (int i = 0; i < 16; i++)
		s[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15u];
	s[18] = '\0';
	kt_out(s);
}

void kt_log(const char *s)
{
	kt_out("  [");
	kt_out(current ? current->name : "-");
	kt_out("] ");
	kt_out(s);
	kt_out("\n");
}

static void where(const char *file, int line)
{
	kt_out("  FAIL ");
	kt_out(file);
	kt_out(":");
	kt_putu((uint64_t)line);
	kt_out(": ");
}

int kt_check(int ok, const char *what, const char *file, int line)
{
	if (!ok) {
		current_failed = 1;
		where(file, line);
		kt_out(what);
		kt_out("\n");
	}
	return ok;
}

int kt_check_eq(uint64_t a, uint64_t b, const char *what, const char *file, int line)
{
	if (a != b) {
		current_failed = 1;
		where(file, line);
		kt_out(what);
		kt_out(" (");
		kt_putx(a);
		kt_out(" != ");
		kt_putx(b);
		kt_out(")\n");
	}
	return a == b;
}

static uint8_t token_byte(uint64_t token, size_t i)
{
	uint64_t x = token ^ (uint64_t)(i >> 3) * 0x9e3779b97f4a7c15ull;
	return (uint8_t)(x >> ((i & 7u) * 8));
}

void kt_fill(void *p, size_t n, uint64_t token)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = token_byte(token, i);
}

int kt_verify(const void *p, size_t n, uint64_t token)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != token_byte(token, i))
			return 0;
	return 1;
}

void kt_rec_hook(void *ctx, const struct kheap_report *r)
{
	struct kt_rec *rec = ctx;
	rec->count++;
	rec->last = *r;
}

int kt_rec_expect(struct kt_rec *rec, enum kheap_error kind, const char *file, int line)
{
	int ok = rec->count == 1 && rec->last.kind == kind;
	if (!ok) {
		current_failed = 1;
		where(file, line);
		kt_out("expected one report of kind ");
		kt_putu((uint64_t)kind);
		kt_out(", got ");
		kt_putu(rec->count);
		kt_out(rec->count ? " (last kind " : "");
		if (rec->count) {
			kt_putu((uint64_t)rec->last.kind);
			kt_out(": ");
			kt_out(rec->last.msg ? rec->last.msg : "");
			kt_out(")");
		}
		kt_out("\n");
	}
	rec->count = 0;
	return ok;
}

void kheap_panic(const char *msg)
{
	if (kt_panic_expected) {
		kt_panics++;
		if (kt_panic_action)
			kt_panic_action(msg);
		return;
	}
	current_failed = 1;
	kt_out("  FAIL unexpected kheap_panic: ");
	kt_out(msg);
	kt_out("\n");
}

static void log_problem(void *ctx, const void *addr, const char *what)
{
	(void)ctx;
	kt_out("  check: ");
	kt_putx((uint64_t)(uintptr_t)addr);
	kt_out(" ");
	kt_out(what);
	kt_out("\n");
}

int kt_heap_check(struct kheap *h) { return kheap_check_verbose(h, log_problem, NULL); }

struct kheap *kt_heap(void *arena, size_t size, struct kt_rec *rec)
{
	struct kheap *h = kheap_init(arena, size);
	if (h && rec) {
		rec->count = 0;
		kheap_set_report(h, kt_rec_hook, rec);
	}
	return h;
}

void *kt_alloc_alone(struct kheap *h, size_t n)
{
	void *p = kheap_alloc(h, n);
	kheap_trim(h);
	return p;
}

extern const struct kt_case __start_kt_cases[], __stop_kt_cases[];

static int contains(const char *s, const char *sub)
{
	for (; *s; s++) {
		const char *a = s, *b = sub;
		while (*a && *b && *a == *b)
			a++, b++;
		if (!*b)
			return 1;
	}
	return !*sub;
}

int kt_percpu_default;

int kt_run(const char *filter)
{
	unsigned passed = 0, failed = 0;
	for (const struct kt_case *c = __start_kt_cases; c < __stop_kt_cases; c++) {
		if (filter && !contains(c->name, filter))
			continue;
		current = c;
		current_failed = 0;
		kt_percpu(kt_percpu_default);
		kt_panic_expected = 0;
		kt_panic_action = 0;
		c->fn();
		kt_out(current_failed ? "FAIL " : "ok   ");
		kt_out(c->name);
		kt_out("\n");
		if (current_failed)
			failed++;
		else
			passed++;
	}
	current = 0;
	kt_putu(passed);
	kt_out(" passed, ");
	kt_putu(failed);
	kt_out(" failed\n");
	return (int)failed;
}
