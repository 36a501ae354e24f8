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
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
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
    return (double)bench_go_n(&wg, n, worker, &wg) / (double)n;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 1000000000L);
    if (n < 0) return 2;
    fprintf(stderr, "spawn: N=%ld, %d rounds, %d processors\n", n, ROUNDS, gort_maxprocs(0));

    round_ns(n); /* warm-up */
    double r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++)
        r[i] = round_ns(n);
    qsort(r, ROUNDS, sizeof r[0], bench_cmp_double);
    double med = bench_median(r, ROUNDS);
    fprintf(stderr, "spawn: min %.1f max %.1f ns/op\n", r[0], r[ROUNDS - 1]);

    printf("spawn_ns %.1f ns/op\n", med);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
