/* gcpause.c: collector pauses, CPU share and allocation throughput with a large live heap
 * that keeps changing (issue 8).
 *
 *   bench-gcpause [LIVE_MIB [SECONDS]]   (default 1024 MiB live, 10 s)
 *
 * 10,000 goroutines each own a table (one gort_new array of K pointers) of K 1 KiB
 * gort_new objects, K = LIVE_MIB MiB / (10,000 KiB), at least 1: together about LIVE_MIB
 * MiB live. Each object's first word points back to its table, the rest is data (scanned
 * conservatively like everything from gort_new; the Go twin's are precise). Once every
 * table is full, the goroutines, on the default number of processors, replace for SECONDS
 * a random slot of their table with a new object (xorshift, seeded per goroutine), so the
 * live heap stays the same while the old objects become garbage. Every pointer store into
 * a heap object goes through GORT_STORE. The workers keep the time themselves (a clock
 * read every 64 replacements): the first to see SECONDS pass stops them all, and every
 * 250 ms one of them reads the memstats pause ring (256 cycles) so that no cycle of the
 * window is missed. Main only waits: behind 10,000 runnable goroutines a sleeping main
 * can wake very late (Go 1.19's main was seen waking 46 s late in a 2 s window).
 *
 * Prints on stdout, over the cycles that completed after the tables were full (the two
 * pause lines only when there was one):
 *   gcpause_p99_us P99 us          nearest-rank p99 of the per-cycle pauses (memstats
 *                                  pause_ns: a cycle's two stop-the-world pauses summed)
 *   gcpause_max_us MAX us          the longest of them
 *   gcpause_numgc N count          how many cycles completed
 *   gc_cpu_fraction F percent      memstats gc_cpu_fraction * 100: the collector's share of
 *                                  the CPU time available since the program started (the
 *                                  build-up included), as of the end
 *   alloc_mib_per_s R MiB/s        1 KiB objects allocated in the window / its length
 * and the setup time, live heap, pause_max_ns (the longest single stop) on stderr. The Go
 * twin (gcpause.go) does the same with runtime.ReadMemStats (PauseNs, NumGC,
 * GCCPUFraction), default GOGC. Memory: about 2x LIVE_MIB at the default GOGC of 100 (both).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define NG       10000
#define OBJ_SIZE 1024
#define POLL_NS  250000000LL

struct table;
struct obj {
    struct table *owner;
    uint64_t data[OBJ_SIZE / 8 - 1];
};
_Static_assert(sizeof(struct obj) == OBJ_SIZE, "1 KiB objects");

struct table {
    long k;
    struct obj *slot[];
};

struct pauses {
    int64_t *v;
    size_t n, cap;
    uint64_t last, lost; /* cycles read so far; cycles that had left the ring */
};

/* Written by main before the workers read them: k_per_g before it starts them, deadline
 * before it opens the gate (the gate's wait orders the write before the reads). */
static long k_per_g;
static int64_t deadline;
static gort_waitgroup ready, gate, done;

/* The atomics below are relaxed: they order nothing; the waitgroups order what main reads. */
static atomic_int stop;          /* set once, by the first worker past the deadline */
static _Atomic int64_t t_stop;   /* when (the winner of stop's exchange writes it) */
static atomic_llong total_count; /* objects allocated in the window, summed at the end */
static _Atomic int64_t next_poll;
static gort_mutex poll_mu;   /* held by the worker reading the ring; guards stats, pauses */
static gort_memstats stats;  /* 2 KiB: not on a goroutine's stack */
static struct pauses pauses; /* the per-cycle pauses of the window */

static void collect(gort_memstats *ms, struct pauses *p);

static struct obj *new_obj(struct table *t, uint64_t x)
{
    struct obj *o = gort_new(sizeof *o);
    GORT_STORE(o->owner, t);
    o->data[0] = x;
    return o;
}

static void worker(void *arg)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL * ((uint64_t)(uintptr_t)arg + 1);
    long k = k_per_g;
    struct table *t = gort_new(sizeof *t + (size_t)k * sizeof t->slot[0]);
    t->k = k;
    for (long j = 0; j < k; j++)
        GORT_STORE(t->slot[j], new_obj(t, x + (uint64_t)j));
    gort_wg_done(&ready);
    gort_wg_wait(&gate);

    long long n = 0;
    /* relaxed: only a stop signal, seen an iteration late at worst */
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        GORT_STORE(t->slot[x % (uint64_t)k], new_obj(t, x));
        if (++n % 64 != 0) continue;
        int64_t now = gort_now();
        if (now >= deadline) {
            if (!atomic_exchange_explicit(&stop, 1, memory_order_relaxed))
                atomic_store_explicit(&t_stop, now, memory_order_relaxed);
            break;
        }
        if (now >= atomic_load_explicit(&next_poll, memory_order_relaxed) &&
            gort_mutex_trylock(&poll_mu)) {
            if (now >= atomic_load_explicit(&next_poll, memory_order_relaxed)) {
                collect(&stats, &pauses);
                atomic_store_explicit(&next_poll, gort_now() + POLL_NS, memory_order_relaxed);
            }
            gort_mutex_unlock(&poll_mu);
        }
    }
    atomic_fetch_add_explicit(&total_count, n, memory_order_relaxed);
    gort_wg_done(&done);
}

/* Reads memstats into *ms and appends the ring entries of the cycles completed since
 * p->last. */
static void collect(gort_memstats *ms, struct pauses *p)
{
    gort_read_memstats(ms);
    uint64_t from = p->last, to = ms->num_gc;
    if (to - from > 256) {
        p->lost += to - from - 256;
        from = to - 256;
    }
    for (uint64_t c = from + 1; c <= to; c++) {
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 1024;
            p->v = realloc(p->v, p->cap * sizeof p->v[0]);
            if (p->v == NULL) {
                perror("realloc");
                exit(1);
            }
        }
        p->v[p->n++] = (int64_t)ms->pause_ns[(c + 255) % 256];
    }
    p->last = to;
}

static int bench_main(int argc, char **argv)
{
    const char *usage = "[LIVE_MIB in 1..16384 [SECONDS in 1..3600]]";
    long live_mib = bench_parse_arg(argc, argv, 1, 1024, 16384, usage);
    long seconds = bench_parse_arg(argc, argv, 2, 10, 3600, usage);
    if (live_mib < 0 || seconds < 0) return 2;
    k_per_g = (long)(((long long)live_mib << 20) / ((long long)NG * OBJ_SIZE));
    if (k_per_g < 1) k_per_g = 1;

    int64_t t_setup = gort_now();
    gort_wg_add(&ready, NG);
    gort_wg_add(&gate, 1);
    gort_wg_add(&done, NG);
    for (long i = 0; i < NG; i++)
        gort_go(worker, (void *)(uintptr_t)i);
    gort_wg_wait(&ready);

    struct pauses *p = &pauses;
    gort_read_memstats(&stats);
    p->last = stats.num_gc;
    uint64_t heap_full = stats.heap_alloc;
    int64_t t0 = gort_now();
    fprintf(stderr,
            "gcpause gort: %d goroutines x %ld objects of %d B, setup %.0f ms, "
            "heap_alloc %llu MiB, %llu cycles so far\n",
            NG, k_per_g, OBJ_SIZE, (double)(t0 - t_setup) / 1e6,
            (unsigned long long)(heap_full >> 20), (unsigned long long)stats.num_gc);
    deadline = t0 + (int64_t)seconds * 1000000000;
    atomic_store_explicit(&next_poll, t0 + POLL_NS, memory_order_relaxed);
    gort_wg_done(&gate);
    gort_wg_wait(&done);
    collect(&stats, p);
    int64_t t1 = atomic_load_explicit(&t_stop, memory_order_relaxed);

    double secs = (double)(t1 - t0) / 1e9;
    long long count = atomic_load_explicit(&total_count, memory_order_relaxed);
    qsort(p->v, p->n, sizeof p->v[0], bench_cmp_i64);
    int64_t p99 = p->n ? bench_pct(p->v, (long)p->n, 99) : 0;
    int64_t max = p->n ? p->v[p->n - 1] : 0;
    fprintf(stderr,
            "gcpause gort: %lld objects in %.2f s; %zu cycles (%llu not in the ring), "
            "pause p50 %.1f us, pause_max_ns %llu (longest single stop), heap_alloc %llu MiB, "
            "heap_sys %llu MiB, sys %llu MiB\n",
            count, secs, p->n + (size_t)p->lost, (unsigned long long)p->lost,
            p->n ? (double)bench_pct(p->v, (long)p->n, 50) / 1e3 : 0.0,
            (unsigned long long)stats.pause_max_ns, (unsigned long long)(stats.heap_alloc >> 20),
            (unsigned long long)(stats.heap_sys >> 20), (unsigned long long)(stats.sys >> 20));
    if (p->n == 0)
        fprintf(stderr, "gcpause gort: no collection completed in the window: "
                        "no gcpause_p99_us, gcpause_max_us\n");
    else
        printf("gcpause_p99_us %.1f us\ngcpause_max_us %.1f us\n", (double)p99 / 1e3,
               (double)max / 1e3);
    printf("gcpause_numgc %llu count\n", (unsigned long long)(p->n + p->lost));
    printf("gc_cpu_fraction %.2f percent\n", stats.gc_cpu_fraction * 100);
    printf("alloc_mib_per_s %.1f MiB/s\n", (double)count * OBJ_SIZE / (1 << 20) / secs);
    free(p->v);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
