/* gcbintree.c: binary-trees (the Computer Language Benchmarks Game) on the collector: the
 * same work as bintree.go, with nodes from gort_new and no frees (issue 8).
 *
 *   bench-gcbintree [DEPTH [RUNS]]   (default depth 18, 5 runs; depth below 6 runs as 6)
 *
 * One goroutine builds a stretch tree of DEPTH+1 and a long-lived tree of DEPTH, then for
 * d = 4, 6, ..., DEPTH builds and checks 2^(DEPTH-d+4) trees of depth d and drops each.
 * Nodes are 16-byte gort_new objects (two pointers), children allocated before their
 * parent as Go's &node{make_(d-1), make_(d-1)} does, and linked with GORT_STORE. Nothing
 * is freed: the collector reclaims the dropped trees. Prints on stdout:
 *   gcbintree_ms MEDIAN ms             median over RUNS of one run's wall time
 *   gcbintree_maxpause_us MAX us       longest per-cycle stop-the-world pause of the runs
 *                                      (left out when no cycle completed)
 *   gcbintree_numgc MEDIAN count       collections per run (median over RUNS)
 * and the checksum, gort_read_memstats' pause_max_ns (the longest single stop; a cycle has
 * two, and its pause_ns entry is their sum) and the GC CPU fraction on stderr.
 * maxpause is the largest pause_ns ring entry of the cycles that completed during the
 * runs (the ring is read after each run), the same figure the Go twin (gcbintree.go) takes
 * from runtime.MemStats.PauseNs, so the two compare like for like. The Boehm variant is
 * tools/bench/boehm/gcbintree_boehm.c; tools/bench/gcbench.sh runs all three side by side.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define MAX_RUNS 100

struct node {
    struct node *left, *right;
};

static struct node *make(int d)
{
    if (d == 0) return gort_new(sizeof(struct node)); /* zeroed: both children NULL */
    struct node *l = make(d - 1), *r = make(d - 1);
    struct node *n = gort_new(sizeof *n);
    GORT_STORE(n->left, l);
    GORT_STORE(n->right, r);
    return n;
}

static long check(const struct node *n)
{
    return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static long run(int max)
{
    long sum = check(make(max + 1));
    struct node *longlived = make(max);
    for (int d = 4; d <= max; d += 2) {
        long iters = 1L << (max - d + 4);
        for (long i = 0; i < iters; i++)
            sum += check(make(d));
    }
    return sum + check(longlived);
}

/* Appends to pauses[0..*n) (capacity cap) the ring entries of the cycles completed since
 * cycle *last, and moves *last to the current count. Cycles that dropped out of the
 * 256-entry ring are counted in *lost. */
static void collect_pauses(gort_memstats *ms, uint64_t *last, int64_t **pauses, size_t *n,
                           size_t *cap, uint64_t *lost)
{
    gort_read_memstats(ms);
    uint64_t from = *last, to = ms->num_gc;
    if (to - from > 256) {
        *lost += to - from - 256;
        from = to - 256;
    }
    for (uint64_t c = from + 1; c <= to; c++) {
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 1024;
            *pauses = realloc(*pauses, *cap * sizeof **pauses);
            if (*pauses == NULL) {
                perror("realloc");
                exit(1);
            }
        }
        (*pauses)[(*n)++] = (int64_t)ms->pause_ns[(c + 255) % 256];
    }
    *last = to;
}

static int bench_main(int argc, char **argv)
{
    const char *usage = "[DEPTH in 1..24 [RUNS in 1..100]]";
    long depth = bench_parse_arg(argc, argv, 1, 18, 24, usage);
    long runs = bench_parse_arg(argc, argv, 2, 5, MAX_RUNS, usage);
    if (depth < 0 || runs < 0) return 2;
    if (depth < 6) depth = 6;

    static gort_memstats ms; /* 2 KiB: keep it off the goroutine's stack */
    int64_t *pauses = NULL;
    size_t npauses = 0, cap = 0;
    uint64_t lost = 0;
    gort_read_memstats(&ms);
    uint64_t last = ms.num_gc;

    double ms_run[MAX_RUNS], gc_run[MAX_RUNS];
    long sum = 0;
    for (long r = 0; r < runs; r++) {
        uint64_t gc0 = last;
        int64_t t0 = gort_now();
        sum = run((int)depth);
        ms_run[r] = (double)(gort_now() - t0) / 1e6;
        collect_pauses(&ms, &last, &pauses, &npauses, &cap, &lost);
        gc_run[r] = (double)(last - gc0);
    }
    qsort(ms_run, (size_t)runs, sizeof ms_run[0], bench_cmp_double);
    qsort(gc_run, (size_t)runs, sizeof gc_run[0], bench_cmp_double);
    int64_t maxpause = 0;
    for (size_t i = 0; i < npauses; i++)
        if (pauses[i] > maxpause) maxpause = pauses[i];

    fprintf(stderr,
            "gcbintree gort depth %ld: checksum %ld; %llu cycles (%llu not in the ring), "
            "pause_max_ns %llu (longest single stop), pause_total_ns %llu, "
            "gc_cpu_fraction %.4f, heap_sys %llu MiB\n",
            depth, sum, (unsigned long long)npauses + lost, (unsigned long long)lost,
            (unsigned long long)ms.pause_max_ns, (unsigned long long)ms.pause_total_ns,
            ms.gc_cpu_fraction, (unsigned long long)(ms.heap_sys >> 20));
    printf("gcbintree_ms %.1f ms\n", bench_median(ms_run, runs));
    if (npauses > 0) printf("gcbintree_maxpause_us %.1f us\n", (double)maxpause / 1e3);
    double numgc = bench_median(gc_run, runs);
    printf("gcbintree_numgc %.*f count\n", numgc == (double)(long)numgc ? 0 : 1, numgc);
    free(pauses);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
