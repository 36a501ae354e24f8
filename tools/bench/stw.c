/* stw: how long stopping (and restarting) the world takes while every P
 * is hogged by a loop with no calls.
 *
 * One hog goroutine per P; main stops and restarts the world N times
 * (gort__stw_probe: the stop-the-world gort_maxprocs and the collector
 * use), 1 ms apart. The Go twin times runtime.ReadMemStats, which is a
 * stop-the-world around a short read.
 *
 * Output (stdout): stw_call_p50_us, stw_call_p99_us (the whole call, as
 * stw.go measures ReadMemStats), and gort only: stw_stop_p50_us,
 * stw_stop_p99_us (until every P has stopped: the pause a stopper waits).
 * Usage: bench-stw [N]   (default N = 200)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 200L

int64_t gort__stw_probe(void);

static volatile int stop;
static volatile unsigned long spins;

static void hog(void *arg)
{
    (void)arg;
    while (!stop)
        spins++;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 100000L);
    if (n < 0) return 2;
    int64_t *d = calloc((size_t)n, sizeof *d), *stop_ns = calloc((size_t)n, sizeof *d);
    if (!d || !stop_ns) return 1;
    int procs = gort_maxprocs(0);
    for (int i = 0; i < procs; i++)
        gort_go(hog, NULL);
    gort_sleep(5 * 1000000LL);
    for (long i = 0; i < n; i++) {
        int64_t t0 = gort_now();
        stop_ns[i] = gort__stw_probe();
        d[i] = gort_now() - t0;
        gort_sleep(1000000LL);
    }
    stop = 1;
    qsort(d, (size_t)n, sizeof *d, bench_cmp_i64);
    qsort(stop_ns, (size_t)n, sizeof *d, bench_cmp_i64);
    fprintf(stderr, "stw: N=%ld beside %d hogs, max call %.1f us, max stop %.1f us\n", n, procs,
            d[n - 1] / 1e3, stop_ns[n - 1] / 1e3);
    printf("stw_call_p50_us %.1f us\n", bench_pct(d, n, 50) / 1e3);
    printf("stw_call_p99_us %.1f us\n", bench_pct(d, n, 99) / 1e3);
    printf("stw_stop_p50_us %.1f us\n", bench_pct(stop_ns, n, 50) / 1e3);
    printf("stw_stop_p99_us %.1f us\n", bench_pct(stop_ns, n, 99) / 1e3);
    fflush(stdout);
    free(d);
    free(stop_ns);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
