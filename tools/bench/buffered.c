/* buffered: throughput of a buffered channel between one producer and one
 * consumer.
 *
 * The producer sends the integers 1..N through a 128-slot channel and closes
 * it; the consumer receives until the channel is closed and checks the sum.
 * Default number of processors. An untimed warm-up of N/10 items comes
 * first.
 *
 * Output (stdout, same name as buffered.go):
 *   buffered_ns   elapsed / N, ns per item
 * Usage: bench-buffered [N]   (default N = 5000000)
 */
#include <stdint.h>
#include <stdio.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 5000000L
#define SLOTS     128

static struct {
    gort_chan *c;
    long n;
    uint64_t sum;
    gort_waitgroup wg;
} bf;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= bf.n; i++)
        gort_chan_send(bf.c, &i);
    gort_chan_close(bf.c);
    gort_wg_done(&bf.wg);
}

static void consumer(void *arg)
{
    (void)arg;
    long v;
    uint64_t sum = 0;
    while (gort_chan_recv(bf.c, &v))
        sum += (uint64_t)v;
    bf.sum = sum;
    gort_wg_done(&bf.wg);
}

/* n items; returns ns per item. */
static double run_phase(long n)
{
    bf.c = gort_chan_make(sizeof(long), SLOTS);
    bf.n = n;
    bf.sum = 0;
    return (double)bench_go_pair(&bf.wg, consumer, producer) / (double)n;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 0);
    if (n < 0) return 2;
    fprintf(stderr, "buffered: N=%ld, %d slots, %d processors\n", n, SLOTS, gort_maxprocs(0));
    run_phase(bench_warm(n));
    double ns = run_phase(n);
    if (bf.sum != (uint64_t)n * (uint64_t)(n + 1) / 2) {
        fprintf(stderr, "buffered: wrong sum %llu\n", (unsigned long long)bf.sum);
        return 1;
    }
    printf("buffered_ns %.1f ns/op\n", ns);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
