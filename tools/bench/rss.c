/* rss.c: resident memory over live bytes for a mixed-size workload, for the allocator
 * comparison (alloc.h, tools/bench/allocbench.sh).
 *
 *   bench-rss [MB]   (default 256 MB of live data at the peak)
 *
 * One goroutine fills a table with objects of mixed sizes (80% 16..512 bytes, 18%
 * 512..8192, 2% 8 KiB..256 KiB) up to MB of requested bytes, then churns: ten times,
 * frees a random half and reallocates it with new random sizes; then frees 3/4 of the
 * objects, keeping every fourth. Prints (RSS measured above the RSS before the workload;
 * live = bytes requested and not freed):
 *   rss_peak_ratio  RSS/live after the churn, at the full live size   x
 *   rss_after_ratio RSS/live after freeing 3/4 (fragmentation left behind)  x
 * gort, mimalloc and jemalloc return memory on their own schedules; the "after" figure
 * is taken after a 1.5 s pause so their background purging (gort's scavenger, driven by
 * sysmon; mimalloc's and jemalloc's decay) can run. No Go twin.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "alloc.h"
#include "bench.h"

static uint64_t x = 0x2545F4914F6CDD1DULL;

static size_t rand_size(void)
{
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t r = x % 100;
    if (r < 80) return 16 + (x >> 8) % 497;
    if (r < 98) return 512 + (x >> 8) % 7681;
    return 8192 + (x >> 8) % (256 << 10);
}

static int bench_main(int argc, char **argv)
{
    long mb = bench_parse_arg(argc, argv, 1, 256, 65536, "[MB]");
    if (mb < 0) return 2;
    size_t target = (size_t)mb << 20, live = 0, n = 0, cap = (size_t)mb * 20000;
    void **obj = calloc(cap, sizeof *obj);
    size_t *len = calloc(cap, sizeof *len);
    long long base = bench_rss_bytes("rss");
    while (live < target && n < cap) {
        len[n] = rand_size();
        obj[n] = bench_malloc(len[n]);
        memset(obj[n], 1, len[n]);
        live += len[n++];
    }
    for (int round = 0; round < 10; round++)
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (x & 1) continue;
            bench_free(obj[i]);
            live -= len[i];
            len[i] = rand_size();
            obj[i] = bench_malloc(len[i]);
            memset(obj[i], 2, len[i]);
            live += len[i];
        }
    double peak = (double)(bench_rss_bytes("rss") - base) / (double)live;
    for (size_t i = 0; i < n; i++)
        if (i % 4) {
            bench_free(obj[i]);
            live -= len[i];
        }
    gort_sleep(1500 * 1000000LL);
    double after = (double)(bench_rss_bytes("rss") - base) / (double)live;
    printf("rss_peak_ratio %.3f x\n", peak);
    printf("rss_after_ratio %.3f x\n", after);
    printf("rss_live_mb %.1f MB\n", (double)live / (1 << 20));
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
