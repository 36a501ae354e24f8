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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gort.h"

#define DEFAULT_N 500L
#define WARMUP    20
#define D_NS      1000000LL

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static long parse_n(int argc, char **argv, long def)
{
    if (argc < 2) return def;
    char *end;
    errno = 0;
    long v = strtol(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || v <= 0 || v > 1000000L) {
        fprintf(stderr, "usage: %s [N in 1..1000000]\n", argv[0]);
        return -1;
    }
    return v;
}

/* Nearest-rank percentile of sorted v[0..n). */
static int64_t pct(const int64_t *v, long n, int p)
{
    long k = (n * p + 99) / 100; /* ceil(n * p / 100), 1-based */
    if (k < 1) k = 1;
    return v[k - 1];
}

static int bench_main(int argc, char **argv)
{
    long n = parse_n(argc, argv, DEFAULT_N);
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
    qsort(late, (size_t)n, sizeof *late, cmp_i64);
    fprintf(stderr, "sleep: N=%ld, lateness min %.1f us, max %.1f us\n", n, late[0] / 1e3,
            late[n - 1] / 1e3);
    printf("sleep_late_p50_us %.1f us\n", pct(late, n, 50) / 1e3);
    printf("sleep_late_p99_us %.1f us\n", pct(late, n, 99) / 1e3);
    fflush(stdout);
    free(late);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
