/* sleep: how late a 1 ms sleep wakes on an otherwise idle program.
 *
 * Main alone calls gort_sleep(1 ms) N times (after 20 untimed warm-up
 * sleeps), measuring each with gort_now; lateness = elapsed - 1 ms.
 *
 * Output (stdout, same names as sleep.go):
 *   sleep_late_p50_us  median lateness, microseconds
 *   sleep_late_p99_us  99th percentile lateness, microseconds
 * Usage: bench-sleep [N]   (default N = 500)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 500L
#define WARMUP    20
#define D_NS      1000000LL

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 1000000L);
    if (n < 0) return 2;
    int64_t *late = calloc((size_t)n, sizeof *late);
    if (!late) return 1;
    for (int i = 0; i < WARMUP; i++)
        gort_sleep(D_NS);
    for (long i = 0; i < n; i++) {
        int64_t t0 = gort_now();
        gort_sleep(D_NS);
        late[i] = gort_now() - t0 - D_NS;
    }
    qsort(late, (size_t)n, sizeof *late, bench_cmp_i64);
    fprintf(stderr, "sleep: N=%ld, lateness min %.1f us, max %.1f us\n", n, late[0] / 1e3,
            late[n - 1] / 1e3);
    printf("sleep_late_p50_us %.1f us\n", bench_pct(late, n, 50) / 1e3);
    printf("sleep_late_p99_us %.1f us\n", bench_pct(late, n, 99) / 1e3);
    fflush(stdout);
    free(late);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
