/* larson.c: a larson-like server workload, for the allocator comparison (alloc.h,
 * tools/bench/allocbench.sh).
 *
 *   bench-larson [ROUNDS [RUNS]]   (default 40 rounds, 5 runs)
 *
 * WORKERS goroutines (on every processor) each own a table of SLOTS objects of 16..1024
 * bytes; each round a worker replaces OPS random objects of its table (free the old one,
 * allocate a new one of a random size, write it), then the tables rotate to the next
 * worker, so most frees are of objects another processor allocated (Larson's "threads
 * exit and their objects are freed by their successors"). Prints the median over RUNS of
 *   larson_mops MEDIAN Mops/s        (malloc+free pairs per microsecond)
 * No Go twin: Go has no explicit free.
 */
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"
#include "bench.h"

#define WORKERS 4
#define SLOTS   4000
#define OPS     50000

static void *table[WORKERS][SLOTS];
static long rounds;
static gort_waitgroup wg, roundwg;
static gort_chan *start[WORKERS];

static void worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
    for (long r = 0; r < rounds; r++) {
        gort_chan_recv(start[id], NULL);
        void **t = table[(id + r) % WORKERS]; /* rotates: the previous owner allocated it */
        for (int i = 0; i < OPS; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int k = (int)(x % SLOTS);
            bench_free(t[k]);
            size_t n = 16 + (x >> 32) % 1009;
            t[k] = bench_malloc(n);
            ((char *)t[k])[0] = (char)i;
            ((char *)t[k])[n - 1] = (char)i;
        }
        gort_wg_done(&roundwg);
    }
    gort_wg_done(&wg);
}

static double run(void)
{
    for (int w = 0; w < WORKERS; w++)
        for (int k = 0; k < SLOTS; k++)
            table[w][k] = bench_malloc(16 + (size_t)(k * 7) % 1009);
    gort_wg_add(&wg, WORKERS);
    for (long w = 0; w < WORKERS; w++)
        gort_go(worker, (void *)(intptr_t)w);
    int64_t t0 = gort_now();
    for (long r = 0; r < rounds; r++) {
        gort_wg_add(&roundwg, WORKERS);
        for (int w = 0; w < WORKERS; w++)
            gort_chan_send(start[w], NULL);
        gort_wg_wait(&roundwg);
    }
    gort_wg_wait(&wg);
    int64_t ns = gort_now() - t0;
    for (int w = 0; w < WORKERS; w++)
        for (int k = 0; k < SLOTS; k++)
            bench_free(table[w][k]);
    return (double)rounds * WORKERS * OPS / ((double)ns / 1e3);
}

static int bench_main(int argc, char **argv)
{
    rounds = bench_parse_arg(argc, argv, 1, 40, 100000, "[ROUNDS [RUNS]]");
    long runs = bench_parse_arg(argc, argv, 2, 5, 100, "[ROUNDS [RUNS]]");
    if (rounds < 0 || runs < 0) return 2;
    for (int w = 0; w < WORKERS; w++)
        start[w] = gort_chan_make(0, 1);
    double mops[100];
    for (long r = 0; r < runs; r++)
        mops[r] = run();
    qsort(mops, (size_t)runs, sizeof mops[0], bench_cmp_double);
    printf("larson_mops %.2f Mops/s\n", bench_median(mops, runs));
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
