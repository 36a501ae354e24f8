/* select: round trip between two goroutines that each wait in a two-case
 * select.
 *
 * A sends i on `ab`, then selects over {receive from `ba`, receive from
 * `never_a`}; B selects over {receive from `ab`, receive from `never_b`},
 * then sends the value + 1 on `ba`. The `never` channels are real (non-nil)
 * channels nobody sends on, so every select locks, queues on and dequeues
 * from two channels. Unbuffered channels, default number of processors, an
 * untimed warm-up of N/10 round trips first.
 *
 * Output (stdout, same name as select.go):
 *   select_ns   elapsed / N, ns per round trip
 * Usage: bench-select [N]   (default N = 600000)
 */
#include <stdint.h>
#include <stdio.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 600000L

static struct {
    gort_chan *ab, *ba, *never_a, *never_b;
    long n;
    long bad;
    gort_waitgroup wg;
} sl;

static void side_a(void *arg)
{
    (void)arg;
    for (long i = 0; i < sl.n; i++) {
        long v = i, w = -1, x;
        gort_chan_send(sl.ab, &v);
        gort_case cs[] = {GORT_RECV(sl.ba, &w, NULL), GORT_RECV(sl.never_a, &x, NULL)};
        if (gort_select(cs, 2, true) != 0 || w != i + 1) sl.bad++;
    }
    gort_wg_done(&sl.wg);
}

static void side_b(void *arg)
{
    (void)arg;
    for (long i = 0; i < sl.n; i++) {
        long v = -1, x;
        gort_case cs[] = {GORT_RECV(sl.ab, &v, NULL), GORT_RECV(sl.never_b, &x, NULL)};
        if (gort_select(cs, 2, true) != 0) sl.bad++;
        v++;
        gort_chan_send(sl.ba, &v);
    }
    gort_wg_done(&sl.wg);
}

/* n round trips; returns ns per round trip. */
static double run_phase(long n)
{
    sl.ab = gort_chan_make(sizeof(long), 0);
    sl.ba = gort_chan_make(sizeof(long), 0);
    sl.never_a = gort_chan_make(sizeof(long), 0);
    sl.never_b = gort_chan_make(sizeof(long), 0);
    sl.n = n;
    return (double)bench_go_pair(&sl.wg, side_b, side_a) / (double)n;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 0);
    if (n < 0) return 2;
    fprintf(stderr, "select: N=%ld, %d processors\n", n, gort_maxprocs(0));
    run_phase(bench_warm(n));
    double ns = run_phase(n);
    if (sl.bad) {
        fprintf(stderr, "select: %ld wrong cases or values\n", sl.bad);
        return 1;
    }
    printf("select_ns %.1f ns/op\n", ns);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
