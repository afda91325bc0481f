/*
 * fork-stress.c: fork() while other threads hammer malloc. Four threads
 * allocate, stamp, check and free blocks of random sizes; the main thread
 * forks FORKS children meanwhile, and each child allocates, checks and
 * frees on its own before it exits. A child forked while a worker held the
 * allocator's lock (or waited on it) deadlocks unless the allocator's fork
 * handlers deal with it; preload-test.sh runs this under a timeout.
 *
 * Output is deterministic, so that the glibc run and the preload run can be
 * compared: "fork-stress: N forks, N children ok, workers ok".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 4
#define FORKS 150
#define SLOTS 64

static atomic_int stop;
static atomic_int bad;

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A random size: mostly small, sometimes up to 64 KiB. */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = next_rand(s);
	return (r & 7) == 0 ? (size_t)(r >> 8) % 65536 : (size_t)(r >> 8) % 512;
}

struct slot {
	unsigned char *p;
	size_t n;
	unsigned char tok;
};

static int slot_ok(const struct slot *sl)
{
	for (size_t i = 0; i < sl->n; i++)
		if (sl->p[i] != sl->tok)
			return 0;
	return 1;
}

/* One round of random replace-in-slot operations; returns 0 on a bad block. */
static int churn(struct slot *slots, uint64_t *seed, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		struct slot *sl = &slots[next_rand(seed) % SLOTS];
		if (sl->p != NULL && !slot_ok(sl))
			return 0;
		free(sl->p);
		sl->n = pick_size(seed);
		sl->tok = (unsigned char)next_rand(seed);
		sl->p = (next_rand(seed) & 1) ? malloc(sl->n) : realloc(NULL, sl->n);
		if (sl->p == NULL)
			return 0;
		memset(sl->p, sl->tok, sl->n);
	}
	return 1;
}

static void release(struct slot *slots)
{
	for (int i = 0; i < SLOTS; i++) {
		free(slots[i].p);
		slots[i].p = NULL;
	}
}

static void *worker(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15u * (uintptr_t)arg + 1;
	struct slot slots[SLOTS] = {{0}};
	while (!atomic_load(&stop))
		if (!churn(slots, &seed, 64))
			atomic_store(&bad, 1);
	release(slots);
	return NULL;
}

static int child(int i)
{
	uint64_t seed = (uint64_t)i * 7919u + 3;
	struct slot slots[SLOTS] = {{0}};
	int ok = churn(slots, &seed, 2000);
	release(slots);
	return ok ? 0 : 1;
}

int main(void)
{
	pthread_t t[WORKERS];
	for (uintptr_t i = 0; i < WORKERS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(i + 1));
	int ok = 0;
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(child(i));
		int st;
		if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	printf("fork-stress: %d forks, %d children ok, workers %s\n", FORKS, ok,
	       atomic_load(&bad) ? "FAILED" : "ok");
	return ok == FORKS && !atomic_load(&bad) ? 0 : 1;
}
