/*
 * preload_direct.h: large blocks of the preload library as mappings of
 * their own (preload_direct.c), as glibc serves requests above its mmap
 * threshold. Freeing one unmaps it, so both its pages and its address space
 * go back to the kernel at once, and realloc grows it with mremap, without
 * a second copy resident. kheap never sees these blocks.
 *
 * Every function is thread-safe (one internal lock, never held across a
 * call into kheap) and none allocates. A pointer kheap handed out is never
 * a direct block: the table knows exactly the pointers direct_alloc
 * returned and that were not freed since.
 */
#ifndef PRELOAD_DIRECT_H
#define PRELOAD_DIRECT_H

#include <stdbool.h>
#include <stddef.h>

/* Requests of this many bytes or more are mapped on their own. It starts
 * at 128 KiB and, like glibc's, rises to the mapped size of each direct
 * block freed, up to 32 MiB, so a program that cycles one buffer size pays
 * the mapping and its page faults once. */
size_t direct_threshold(void);

/* A new mapping for n bytes aligned to align (a power of two; at least 16
 * is used), zero-filled; NULL when the kernel refuses it or 65536 direct
 * blocks are live (the caller then falls back to kheap). n + align must not
 * overflow (the preload refuses requests above 2^38 before). */
void *direct_alloc(size_t n, size_t align);

/* Live direct blocks; 0 means no pointer is one (a cheap test first). */
size_t direct_live(void);

/* If p is a live direct block: *usable (when not NULL) gets its usable
 * bytes, and true. O(1) expected. */
bool direct_lookup(const void *p, size_t *usable);

/* If p is a live direct block, unmap it and return true; else false and
 * nothing happens (the caller hands p to kheap, which reports a foreign or
 * double-freed pointer). */
bool direct_free(void *p);

/* Resize the live direct block p to n bytes with mremap (it may move; the
 * pages move with it, nothing is copied). NULL when the kernel refuses: p
 * is then unchanged and still live. Precondition: direct_lookup(p). */
void *direct_realloc(void *p, size_t n);

/* Live direct blocks and their mapped bytes, for the exit report. */
void direct_stats(size_t *count, size_t *bytes);

/* The table's lock, for the fork handlers, which hold it across fork()
 * and reset it in the child with the heap's. */
struct kh_lock *direct_lock(void);

#endif /* PRELOAD_DIRECT_H */
