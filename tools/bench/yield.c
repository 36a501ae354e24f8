/* yield: cost of gort_yield (runtime.Gosched) between two goroutines.
 *
 * Phase 1 runs on ONE processor (gort_maxprocs(1)): two goroutines each call
 * gort_yield N times, so every yield is a switch to the other one. Phase 2
 * restores the default number of processors and repeats. Each phase is
 * preceded by an untimed warm-up of N/10 iterations.
 *
 * Output (stdout, one metric a line, same names as yield.go):
 *   yield_ns       elapsed / (2N), one processor
 *   yield_allp_ns  elapsed / (2N), default processors
 * Usage: bench-yield [N]   (default N = 2000000)
 */
#include <stdio.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 2000000L

struct phase {
    long n;
    gort_waitgroup wg;
};

/* File-scope, so it outlives both yielders; reused by each phase, which the
 * API allows once gort_wg_wait has returned. */
static struct phase ph;

static void yielder(void *arg)
{
    struct phase *p = arg;
    for (long i = 0; i < p->n; i++)
        gort_yield();
    gort_wg_done(&p->wg);
}

/* Run two yielders for n iterations each; returns ns per yield. */
static double run_phase(long n)
{
    ph.n = n;
    return (double)bench_go_n(&ph.wg, 2, yielder, &ph) / (2.0 * (double)n);
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 0);
    if (n < 0) return 2;
    long warm = bench_warm(n);

    int old = gort_maxprocs(1);
    fprintf(stderr, "yield: N=%ld, processors 1 then %d\n", n, old);
    run_phase(warm);
    double one = run_phase(n);

    gort_maxprocs(old);
    run_phase(warm);
    double all = run_phase(n);

    printf("yield_ns %.1f ns/op\n", one);
    printf("yield_allp_ns %.1f ns/op\n", all);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
