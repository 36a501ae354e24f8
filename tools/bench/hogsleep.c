/* hogsleep: how late a 1 ms sleep wakes while every P is hogged.
 *
 * One goroutine per P spins in a loop with no calls (only preemption can
 * take its CPU); main calls gort_sleep(1 ms) N times (after 20 untimed
 * warm-up sleeps); lateness = elapsed - 1 ms.
 *
 * Output (stdout, same names as hogsleep.go):
 *   hogsleep_late_p50_us, hogsleep_late_p99_us, hogsleep_late_max_us
 * Usage: bench-hogsleep [N]   (default N = 200)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 200L
#define WARMUP    20
#define D_NS      1000000LL

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
    int64_t *late = calloc((size_t)n, sizeof *late);
    if (!late) return 1;
    int procs = gort_maxprocs(0);
    for (int i = 0; i < procs; i++)
        gort_go(hog, NULL);
    for (int i = 0; i < WARMUP; i++)
        gort_sleep(D_NS);
    for (long i = 0; i < n; i++) {
        int64_t t0 = gort_now();
        gort_sleep(D_NS);
        late[i] = gort_now() - t0 - D_NS;
    }
    stop = 1;
    qsort(late, (size_t)n, sizeof *late, bench_cmp_i64);
    fprintf(stderr, "hogsleep: N=%ld beside %d hogs, lateness min %.1f us\n", n, procs,
            late[0] / 1e3);
    printf("hogsleep_late_p50_us %.1f us\n", bench_pct(late, n, 50) / 1e3);
    printf("hogsleep_late_p99_us %.1f us\n", bench_pct(late, n, 99) / 1e3);
    printf("hogsleep_late_max_us %.1f us\n", late[n - 1] / 1e3);
    fflush(stdout);
    free(late);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
