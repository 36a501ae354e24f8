/* parked: a million goroutines blocked at once.
 *
 * Main reads VmRSS from /proc/self/status, spawns N goroutines that each call
 * gort_wg_done(&started) and then block in gort_wg_wait(&gate) (gate holds a
 * count of 1), waits for `started`, and reads VmRSS again. It then releases
 * the gate with one gort_wg_done and waits for every goroutine to finish
 * (each calls gort_wg_done(&finished) after the gate opens).
 *
 * Output (stdout, same names as parked.go):
 *   parked_spawn_ns       (spawn + all started) / N
 *   parked_rss_per_g      VmRSS delta / N, bytes
 *   parked_rss_kib_per_g  the same in KiB
 *   parked_release_ns     (release gate + all finished) / N
 * Usage: bench-parked [N]   (default N = 1000000)
 */
#include <stdio.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 1000000L

static gort_waitgroup started, gate, finished;

static void parked_g(void *arg)
{
    (void)arg;
    gort_wg_done(&started);
    gort_wg_wait(&gate);
    gort_wg_done(&finished);
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 100000000L);
    if (n < 0) return 2;
    fprintf(stderr, "parked: N=%ld, %d processors\n", n, gort_maxprocs(0));

    gort_wg_add(&started, (int)n);
    gort_wg_add(&finished, (int)n);
    gort_wg_add(&gate, 1);

    long long rss0 = bench_rss_bytes("parked");
    int64_t t0 = gort_now();
    for (long i = 0; i < n; i++)
        gort_go(parked_g, NULL);
    gort_wg_wait(&started);
    int64_t t1 = gort_now();
    long long rss1 = bench_rss_bytes("parked");
    if (rss0 < 0 || rss1 < 0) return 1;
    fprintf(stderr, "parked: VmRSS %lld KiB -> %lld KiB, %d goroutines\n", rss0 / 1024, rss1 / 1024,
            gort_num_goroutine());

    int64_t t2 = gort_now();
    gort_wg_done(&gate);
    gort_wg_wait(&finished);
    int64_t t3 = gort_now();

    double per_g = (double)(rss1 - rss0) / (double)n;
    printf("parked_spawn_ns %.1f ns/op\n", (double)(t1 - t0) / (double)n);
    printf("parked_rss_per_g %.0f bytes\n", per_g);
    printf("parked_rss_kib_per_g %.1f KiB\n", per_g / 1024.0);
    printf("parked_release_ns %.1f ns/op\n", (double)(t3 - t2) / (double)n);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
