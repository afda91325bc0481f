/*
 * kh_report.c: the report path: counting, repairing and reporting what a
 * locked stretch found, after the lock is released.
 *
 * Nothing here allocates or takes the heap lock: the default report formats
 * its message on the stack and hands it to kheap_panic(), except for a
 * refused request, which it leaves at the count (kheap.h, severities).
 */
#include "kh_internal.h"

static const char *const kind_names[KHEAP_E_COUNT_] = {
	[KHEAP_OK] = "ok",
	[KHEAP_E_DOUBLE_FREE] = "double free",
	[KHEAP_E_FOREIGN] = "foreign pointer",
	[KHEAP_E_MISALIGNED] = "misaligned pointer",
	[KHEAP_E_BAD_HEADER] = "bad header",
	[KHEAP_E_NEIGHBOUR] = "neighbour corrupt",
	[KHEAP_E_FREELIST] = "free list corrupt",
	[KHEAP_E_OVERFLOW] = "size overflow",
	[KHEAP_E_BAD_ALIGN] = "bad alignment",
	[KHEAP_E_REGION] = "bad region",
	[KHEAP_E_REGION_SMALL] = "region too small",
	[KHEAP_E_BAD_HEAP] = "bad heap handle",
	[KHEAP_E_NULL] = "NULL argument",
	[KHEAP_E_USE_AFTER_FREE] = "write after free",
	[KHEAP_E_CANARY] = "write past the block",
	[KHEAP_E_CORRUPT] = "heap corrupt",
	[KHEAP_E_BAD_ARG] = "bad argument",
	[KHEAP_E_WRONG_CACHE] = "wrong object cache",
	[KHEAP_E_BAD_CACHE] = "bad object cache",
};

/* kheap.h, enum kheap_severity: what each kind of report is. */
static const uint8_t severities[KHEAP_E_COUNT_] = {
	[KHEAP_OK] = KHEAP_SEV_REFUSED,
	[KHEAP_E_DOUBLE_FREE] = KHEAP_SEV_MISUSE,
	[KHEAP_E_FOREIGN] = KHEAP_SEV_MISUSE,
	[KHEAP_E_MISALIGNED] = KHEAP_SEV_MISUSE,
	[KHEAP_E_BAD_HEADER] = KHEAP_SEV_CORRUPT,
	[KHEAP_E_NEIGHBOUR] = KHEAP_SEV_CORRUPT,
	[KHEAP_E_FREELIST] = KHEAP_SEV_CORRUPT,
	[KHEAP_E_OVERFLOW] = KHEAP_SEV_REFUSED,
	[KHEAP_E_BAD_ALIGN] = KHEAP_SEV_REFUSED,
	[KHEAP_E_REGION] = KHEAP_SEV_REFUSED,
	[KHEAP_E_REGION_SMALL] = KHEAP_SEV_REFUSED,
	[KHEAP_E_BAD_HEAP] = KHEAP_SEV_MISUSE,
	[KHEAP_E_NULL] = KHEAP_SEV_MISUSE,
	[KHEAP_E_USE_AFTER_FREE] = KHEAP_SEV_CORRUPT,
	[KHEAP_E_CANARY] = KHEAP_SEV_CORRUPT,
	[KHEAP_E_CORRUPT] = KHEAP_SEV_CORRUPT,
	[KHEAP_E_BAD_ARG] = KHEAP_SEV_REFUSED,
	[KHEAP_E_WRONG_CACHE] = KHEAP_SEV_MISUSE,
	[KHEAP_E_BAD_CACHE] = KHEAP_SEV_MISUSE,
};

static enum kheap_severity severity_of(enum kheap_error kind)
{
	/* An out-of-range kind cannot come from the library: treat it as damage. */
	return (unsigned)kind < KHEAP_E_COUNT_ ? (enum kheap_severity)severities[kind] : KHEAP_SEV_CORRUPT;
}

/* Bounded string builder over a caller's buffer. */
struct line {
	char *p, *end;
};

static void put_s(struct line *l, const char *s)
{
	while (*s && l->p < l->end)
		*l->p++ = *s++;
}

const char *kh_fmt(char *buf, uint64_t v, unsigned base)
{
	char *p = buf + KH_FMT_LEN - 1;
	*p = '\0';
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	return p;
}

static void put_x(struct line *l, uintptr_t v)
{
	char d[KH_FMT_LEN];
	put_s(l, "0x");
	put_s(l, kh_fmt(d, v, 16));
}

/* A refused request is only counted (the caller got NULL or an error and
 * may come from untrusted input); misuse and damage go to kheap_panic as
 * "kheap: <kind>: <msg> (ptr 0x.., caller 0x..)". */
static void default_report(const struct kheap_report *r)
{
	if (r->severity == KHEAP_SEV_REFUSED)
		return;
	char buf[192];
	struct line l = {buf, buf + sizeof buf - 1};
	unsigned k = (unsigned)r->kind < KHEAP_E_COUNT_ ? (unsigned)r->kind : 0u;
	put_s(&l, "kheap: ");
	put_s(&l, kind_names[k]);
	put_s(&l, ": ");
	put_s(&l, r->msg ? r->msg : "");
	put_s(&l, " (ptr ");
	put_x(&l, (uintptr_t)r->ptr);
	put_s(&l, ", caller ");
	put_x(&l, (uintptr_t)r->caller);
	put_s(&l, ")");
	*l.p = '\0';
	kheap_panic(buf);
}

void kh_report(struct kheap *h, const struct kh_err *e, const void *caller)
{
	struct kheap_report r = {e->kind, e->ptr, caller, e->msg, severity_of(e->kind)};
	kheap_report_fn fn = h->report;
	if (fn != NULL)
		fn(h->report_ctx, &r);
	else
		default_report(&r);
}

void kh_report_counted(struct kheap *h, struct kh_err *e, const void *caller)
{
	uintptr_t irq = kh_enter(h);
	kh_leave(h, irq, e, caller);
}

void kh_report_global(enum kheap_error kind, const void *ptr, const void *caller, const char *msg)
{
	struct kheap_report r = {kind, ptr, caller, msg, severity_of(kind)};
	default_report(&r);
}

void kh_settle(struct kheap *h, struct kh_err *e)
{
	if (e->kind != KHEAP_OK)
		h->n.errors++;
	if (e->kind == KHEAP_E_FREELIST)
		kh_rebuild(h);
}

void kh_leave_slow(struct kheap *h, uintptr_t irq, struct kh_err *e, const void *caller)
{
	kh_settle(h, e);
	kheap_oom_fn oom = e->oom ? h->oom : NULL;
	void *oom_ctx = h->oom_ctx;
	kh_exit(h, irq);
	if (e->kind != KHEAP_OK)
		kh_report(h, e, caller);
	if (oom != NULL)
		oom(oom_ctx, e->oom_size);
}

void kh_assert_fail(const char *what, const char *file, int line)
{
	char buf[160], d[KH_FMT_LEN];
	struct line l = {buf, buf + sizeof buf - 1};
	put_s(&l, "kheap: internal assertion failed: ");
	put_s(&l, what);
	put_s(&l, " at ");
	put_s(&l, file);
	put_s(&l, ":");
	put_s(&l, kh_fmt(d, (uint64_t)line, 10));
	*l.p = '\0';
	kheap_panic(buf);
}
