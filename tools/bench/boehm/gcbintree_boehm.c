/* gcbintree_boehm.c: the Boehm-Demers-Weiser collector (libgc, Debian 12's 8.2) on the
 * same binary-trees work as ../gcbintree.c (gort) and ../gcbintree.go (Go), for
 * tools/bench/gcbench.sh. Not a gort program: it lives in this subdirectory so that the
 * Makefile (every tools/bench/X.c is linked against libgort) ignores it; gcbench.sh builds it:
 *
 *   gcc -std=gnu11 -O2 -pthread -o BUILD/bin/boehm-gcbintree gcbintree_boehm.c -lgc
 *   boehm-gcbintree [DEPTH [RUNS]]   (default depth 18, 5 runs; depth below 6 runs as 6)
 *
 * Nodes are 16-byte GC_MALLOC objects (two pointers, scanned conservatively as gort_new's
 * are), children allocated before their parent, never freed; libgc's defaults otherwise
 * (stop-the-world, not incremental, lazy sweeping during allocation; GC_get_parallel()
 * reports no helper marker threads in this single-threaded program, so it marks on one
 * thread; stderr gives the count). Prints gcbintree_ms (median of RUNS), gcbintree_maxpause_us (the
 * longest collection pause of the runs: from GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD,
 * summed per collection, or GC_EVENT_START to GC_EVENT_END where the world-stop events do
 * not come) and gcbintree_numgc (collections per run, median), as the gort and Go versions.
 */
#define GC_THREADS /* for GC_get_parallel (libgc is built with threads either way) */
#include <gc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 100

struct node {
    struct node *left, *right;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pause accounting, written by the collection-event callback (called by the collecting
 * thread with the GC lock held; this program has one thread). */
static int64_t ev_start, ev_stop, ev_cycle_stw, ev_max;
static int ev_saw_stw;

static void GC_CALLBACK on_event(GC_EventType e)
{
    int64_t t = now_ns();
    switch (e) {
    case GC_EVENT_START:
        ev_start = t;
        ev_cycle_stw = 0;
        ev_saw_stw = 0;
        break;
    case GC_EVENT_PRE_STOP_WORLD:
        ev_stop = t;
        ev_saw_stw = 1;
        break;
    case GC_EVENT_POST_START_WORLD:
        ev_cycle_stw += t - ev_stop;
        break;
    case GC_EVENT_END: {
        int64_t p = ev_saw_stw ? ev_cycle_stw : t - ev_start;
        if (p > ev_max) ev_max = p;
        break;
    }
    default:
        break;
    }
}

static struct node *make(int d)
{
    if (d == 0) return GC_MALLOC(sizeof(struct node)); /* zeroed: both children NULL */
    struct node *l = make(d - 1), *r = make(d - 1);
    struct node *n = GC_MALLOC(sizeof *n);
    if (n == NULL) {
        fprintf(stderr, "boehm-gcbintree: out of memory\n");
        exit(1);
    }
    n->left = l;
    n->right = r;
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

static long parse_arg(int argc, char **argv, int i, long def, long max)
{
    if (argc <= i) return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || v <= 0 || v > max) {
        fprintf(stderr, "usage: %s [DEPTH in 1..24 [RUNS in 1..100]]\n", argv[0]);
        exit(2);
    }
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

int main(int argc, char **argv)
{
    long depth = parse_arg(argc, argv, 1, 18, 24);
    long runs = parse_arg(argc, argv, 2, 5, MAX_RUNS);
    if (depth < 6) depth = 6;
    GC_INIT();
    GC_set_on_collection_event(on_event);

    double ms[MAX_RUNS], gcs[MAX_RUNS];
    long sum = 0;
    for (long r = 0; r < runs; r++) {
        GC_word gc0 = GC_get_gc_no();
        int64_t t0 = now_ns();
        sum = run((int)depth);
        ms[r] = (double)(now_ns() - t0) / 1e6;
        gcs[r] = (double)(GC_get_gc_no() - gc0);
    }
    fprintf(stderr,
            "gcbintree boehm depth %ld: checksum %ld; %lu collections, heap %lu MiB, "
            "%d marker thread(s), pauses from %s events\n",
            depth, sum, (unsigned long)GC_get_gc_no(), (unsigned long)(GC_get_heap_size() >> 20),
            GC_get_parallel() + 1, ev_saw_stw ? "stop/start-world" : "start/end");
    printf("gcbintree_ms %.1f ms\n", median(ms, runs));
    if (GC_get_gc_no() > 0) printf("gcbintree_maxpause_us %.1f us\n", (double)ev_max / 1e3);
    double numgc = median(gcs, runs);
    printf("gcbintree_numgc %.*f count\n", numgc == (double)(long)numgc ? 0 : 1, numgc);
    return 0;
}
