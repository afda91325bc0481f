/*
 * kh_stats.c: the counters (struct kh_counts in kh_internal.h, invariant I7)
 * and kheap_get_stats. Blocks join the in-use counters when they are handed
 * to the caller or move to a per-CPU list in a batch, and leave them when
 * they come back; kheap_get_stats subtracts what the per-CPU lists hold.
 */
#include "kh_internal.h"

/* Hand used block b to the caller: its canary, the counters, and its tag. */
void kh_count_grant(struct kheap *h, uintptr_t b, const struct kh_err *e)
{
	KH_ASSERT(kh_used(b) && kh_size(b) >= KH_HDR + KH_TAIL);
	kh_arm_canary(h, b);
	kh_count_out(h, kh_size(b), 1);
	h->n.allocs++;
	kh_tag_put(b, (struct kh_tag){kh_err_caller(e), h->n.allocs});
}


void kheap_get_stats(struct kheap *h, struct kheap_stats *out)
{
	if (!kh_handle_ok(h, KH_CALLER()))
		return;
	if (out == NULL) {
		kh_report_global(KHEAP_E_NULL, out, KH_CALLER(), "kheap_get_stats: out is NULL");
		return;
	}
	uintptr_t irq = kh_enter(h);
	kh_stats_locked(h, out);
	kh_exit(h, irq);
}

/* Blocks and bytes on slot cpu's lists, and its lock-free operation counts.
 * Relaxed loads: a per-CPU slot's owner changes them without the lock (the
 * sums are exact when no CPU is inside a kheap call). */
static void slot_sums(const struct kh_cpu *cpu, size_t *bytes, size_t *blocks, uint64_t *ops)
{
	for (unsigned c = 0; c < KH_NCLASSES; c++) {
		uint32_t n = __atomic_load_n(&cpu->cls[c].count, __ATOMIC_RELAXED);
		*blocks += n;
		*bytes += n * kh_class_block_size(c);
	}
	ops[0] += __atomic_load_n(&cpu->allocs, __ATOMIC_RELAXED);
	ops[1] += __atomic_load_n(&cpu->frees, __ATOMIC_RELAXED);
}

/* Per-CPU lists count as in use in h->n (they move in batches) and are
 * subtracted here; the shared lists count in neither in_use nor free. */
void kh_stats_locked(const struct kheap *h, struct kheap_stats *out)
{
	size_t bytes = 0, blocks = 0, sbytes = 0, sblocks = 0;
	uint64_t ops[2] = {0, 0};
	for (unsigned k = 0; KH_PERCPU && k < KH_NCPU; k++)
		slot_sums(&h->cpus[k], &bytes, &blocks, ops);
	slot_sums(&h->cpus[KH_SHARED], &sbytes, &sblocks, ops);
	kh_obj_stats(h, &bytes, &blocks, &ops[0], &ops[1]); /* objects on caches' lists: in h->n.in_use */
	out->total_bytes = h->n.total;
	out->in_use_bytes = h->n.in_use - bytes;
	out->peak_in_use_bytes = h->n.peak;
	out->free_bytes = h->n.free;
	out->cached_bytes = sbytes + bytes;
	out->largest_free = kh_largest_free(h);
	out->used_blocks = h->n.used_blocks - blocks;
	out->free_blocks = h->n.free_blocks;
	out->cached_blocks = sblocks + blocks;
	out->alloc_count = h->n.allocs + ops[0];
	out->free_count = h->n.frees + ops[1];
	out->oom_count = h->n.ooms;
	out->error_count = h->n.errors;
	out->regions = h->nregions;
}
