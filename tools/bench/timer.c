/* timer: the cost of AfterFunc timers.
 *
 * First, in a fresh process, the memory of pending timers: VmRSS (from
 * /proc/self/status, same parsing as timer.go) before and after creating
 * NBYTES gort_timer_after_func timers with a 1 hour deadline (the array that
 * keeps them is allocated and touched beforehand); then all are stopped.
 * Then the create+stop pair: gort_timer_after_func(1 h) immediately followed
 * by gort_timer_stop, N times after N/10 untimed warm-up pairs.
 *
 * Output (stdout, same names as timer.go):
 *   timer_bytes           VmRSS delta / NBYTES, bytes per pending timer
 *   timer_create_stop_ns  elapsed / N, ns per create+stop pair
 * Usage: bench-timer [N [NBYTES]]   (defaults 1000000 and 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 1000000L
#define HOUR      (3600LL * 1000000000LL)

static void never(void *arg)
{
    (void)arg;
}

static int bench_main(int argc, char **argv)
{
    const char *usage = "[N [NBYTES]], each in 1..100000000";
    long n = bench_parse_arg(argc, argv, 1, DEFAULT_N, 100000000L, usage);
    long nb = bench_parse_arg(argc, argv, 2, DEFAULT_N, 100000000L, usage);
    if (n < 0 || nb < 0) return 2;

    /* pending timers: bytes each */
    gort_timer **ts = malloc((size_t)nb * sizeof *ts);
    if (!ts) return 1;
    memset(ts, 0, (size_t)nb * sizeof *ts);
    long long rss0 = bench_rss_bytes("timer");
    for (long i = 0; i < nb; i++)
        ts[i] = gort_timer_after_func(HOUR, never, NULL);
    long long rss1 = bench_rss_bytes("timer");
    if (rss0 < 0 || rss1 < 0) return 1;
    long notstopped = 0;
    for (long i = 0; i < nb; i++)
        notstopped += !gort_timer_stop(ts[i]);
    free(ts);
    if (notstopped) {
        fprintf(stderr, "timer: %ld timers were not pending\n", notstopped);
        return 1;
    }
    fprintf(stderr, "timer: VmRSS %lld KiB -> %lld KiB with %ld pending timers\n", rss0 / 1024,
            rss1 / 1024, nb);

    /* create + stop */
    for (long i = 0; i < n / 10; i++)
        gort_timer_stop(gort_timer_after_func(HOUR, never, NULL));
    int64_t t0 = gort_now();
    for (long i = 0; i < n; i++)
        gort_timer_stop(gort_timer_after_func(HOUR, never, NULL));
    int64_t t1 = gort_now();

    printf("timer_bytes %.0f bytes\n", (double)(rss1 - rss0) / (double)nb);
    printf("timer_create_stop_ns %.1f ns/op\n", (double)(t1 - t0) / (double)n);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
