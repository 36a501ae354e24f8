/* spawn: cost of starting a goroutine that only signals completion.
 *
 * With the default number of processors, main spawns N goroutines that each
 * call gort_wg_done, then waits for all of them (gort_wg_wait). One untimed
 * warm-up round, then ROUNDS timed rounds.
 *
 * Output (stdout, same name as spawn.go):
 *   spawn_ns   median over rounds of elapsed / N, ns per goroutine
 * Usage: bench-spawn [N]   (N per round, default 100000)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gort.h"

#define DEFAULT_N 100000L
#define ROUNDS    10

/* File-scope, so it outlives every worker; reused across rounds, which the
 * API allows once gort_wg_wait has returned. */
static gort_waitgroup wg;

static void worker(void *arg)
{
    gort_wg_done(arg);
}

/* One round: spawn n goroutines and wait for them; returns ns per goroutine. */
static double round_ns(long n)
{
    gort_wg_add(&wg, (int)n);
    int64_t t0 = gort_now();
    for (long i = 0; i < n; i++)
        gort_go(worker, &wg);
    gort_wg_wait(&wg);
    int64_t t1 = gort_now();
    return (double)(t1 - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long parse_n(int argc, char **argv, long def)
{
    if (argc < 2) return def;
    char *end;
    errno = 0;
    long v = strtol(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || v <= 0 || v > 1000000000L) {
        fprintf(stderr, "usage: %s [N in 1..1000000000]\n", argv[0]);
        return -1;
    }
    return v;
}

static int bench_main(int argc, char **argv)
{
    long n = parse_n(argc, argv, DEFAULT_N);
    if (n < 0) return 2;
    fprintf(stderr, "spawn: N=%ld, %d rounds, %d processors\n", n, ROUNDS, gort_maxprocs(0));

    round_ns(n); /* warm-up */
    double r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++)
        r[i] = round_ns(n);
    qsort(r, ROUNDS, sizeof r[0], cmp_double);
    double med = (ROUNDS % 2) ? r[ROUNDS / 2] : (r[ROUNDS / 2 - 1] + r[ROUNDS / 2]) / 2.0;
    fprintf(stderr, "spawn: min %.1f max %.1f ns/op\n", r[0], r[ROUNDS - 1]);

    printf("spawn_ns %.1f ns/op\n", med);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
