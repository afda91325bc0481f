/* t_api.c: the contract of every public function, case by case. */
#include "kt.h"

static _Alignas(16) unsigned char arena[1u << 20];

KT_CASE(api_init_and_basic_alloc)
{
	struct kt_rec rec;
	struct kheap *h = kt_heap(arena, sizeof arena, &rec);
	KT_REQUIRE(h != NULL);
	void *p = kheap_alloc(h, 100);
	KT_REQUIRE(p != NULL);
	KT_EQ((uintptr_t)p % 16, 0);
	kt_fill(p, 100, 1);
	KT_CHECK(kt_verify(p, 100, 1));
	KT_EQ(kt_heap_check(h), 0);
	kheap_free(h, p);
	KT_EQ(kt_heap_check(h), 0);
	KT_EQ(rec.count, 0);
}
