/* xmalloc.c: producer/consumer cross-thread frees (the xmalloc-test shape), for the
 * allocator comparison (alloc.h, tools/bench/allocbench.sh).
 *
 *   bench-xmalloc [MILLIONS [RUNS]]   (default 10 million objects, 5 runs)
 *
 * Two goroutines on two processors: the producer allocates objects of 16..128 bytes,
 * writes their first word and passes them through a single-producer single-consumer ring
 * (lock-free, 4096 slots) to the consumer, which reads and frees them: every free is of
 * an object another processor allocated. Prints the median over RUNS of
 *   xmalloc_mops MEDIAN Mops/s        (objects allocated and freed per microsecond)
 * No Go twin: Go has no explicit free.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"
#include "bench.h"

#define RING 4096

static struct {
    _Atomic uint64_t head __attribute__((aligned(64))); /* consumer */
    _Atomic uint64_t tail __attribute__((aligned(64))); /* producer */
    void *slot[RING] __attribute__((aligned(64)));
} ring;
static long total;
static gort_waitgroup wg;
static _Atomic uint64_t sink;

static void producer(void *arg)
{
    (void)arg;
    uint64_t t = atomic_load_explicit(&ring.tail, memory_order_relaxed), x = 88172645463325252ULL;
    for (long i = 0; i < total; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t *p = bench_malloc(16 + (x % 8) * 16);
        p[0] = (uint64_t)i;
        for (int spin = 0; t - atomic_load_explicit(&ring.head, memory_order_acquire) >= RING;)
            if (++spin % 64 == 0)
                gort_yield(); /* the consumer may share our processor */
            else
                __builtin_ia32_pause();
        ring.slot[t % RING] = p;
        /* Release: publishes the slot (and the object); pairs with the consumer. */
        atomic_store_explicit(&ring.tail, ++t, memory_order_release);
    }
    gort_wg_done(&wg);
}

static void consumer(void *arg)
{
    (void)arg;
    uint64_t h = atomic_load_explicit(&ring.head, memory_order_relaxed), sum = 0;
    for (long i = 0; i < total; i++) {
        for (int spin = 0; atomic_load_explicit(&ring.tail, memory_order_acquire) == h;)
            if (++spin % 64 == 0)
                gort_yield();
            else
                __builtin_ia32_pause();
        uint64_t *p = ring.slot[h % RING];
        /* Release: the slot may be reused once head passes it. */
        atomic_store_explicit(&ring.head, ++h, memory_order_release);
        sum += p[0];
        bench_free(p);
    }
    atomic_fetch_add_explicit(&sink, sum, memory_order_relaxed);
    gort_wg_done(&wg);
}

static int bench_main(int argc, char **argv)
{
    long millions = bench_parse_arg(argc, argv, 1, 10, 1000, "[MILLIONS [RUNS]]");
    long runs = bench_parse_arg(argc, argv, 2, 5, 100, "[MILLIONS [RUNS]]");
    if (millions < 0 || runs < 0) return 2;
    if (gort_maxprocs(0) < 2) gort_maxprocs(2);
    total = millions * 1000000;
    double mops[100];
    for (long r = 0; r < runs; r++) {
        int64_t ns = bench_go_pair(&wg, producer, consumer);
        mops[r] = (double)total / ((double)ns / 1e3);
    }
    qsort(mops, (size_t)runs, sizeof mops[0], bench_cmp_double);
    printf("xmalloc_mops %.2f Mops/s\n", bench_median(mops, runs));
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
