/*
 * twin_c.c: the generic C twins under twin_* names (see twin_c.h). The
 * headers were included under their own names by twin_c.h, so the renamed
 * definitions below are checked against the twin_* prototypes.
 */
#include "twin_c.h"

#define kh_size_class twin_size_class
#define kh_cpu_pop twin_cpu_pop
#define kh_cpu_push twin_cpu_push
#define kh_cpu_alloc twin_cpu_alloc
#define kh_cpu_free twin_cpu_free
#define kh_lock_acquire twin_lock_acquire
#define kh_lock_acquire_as twin_lock_acquire_as
#define kh_lock_release twin_lock_release

#include "kh_class.c"
#include "kh_lock.c"
