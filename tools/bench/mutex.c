/* mutex: cost of gort_mutex lock+unlock (sync.Mutex in the Go twin).
 *
 * Contended: G = 64 goroutines on the default number of processors, each
 * doing N times { lock; counter++; unlock } on one shared mutex. Reported as
 * elapsed / (G * N): the throughput cost of one critical section when every
 * processor wants the lock (spinning, parking, hand-offs included).
 * Uncontended: one goroutine doing lock+unlock 20 * N times (the fast
 * paths: one CAS and one atomic add).
 * Each measurement is preceded by an untimed warm-up of a tenth of its work.
 *
 * Output (stdout, one metric a line, same names as mutex.go):
 *   mutex_contended_ns    ns per lock+unlock, 64 goroutines
 *   mutex_uncontended_ns  ns per lock+unlock, one goroutine
 * Usage: bench-mutex [N]   (default N = 100000)
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N  100000L
#define GOROUTINES 64

static struct {
    gort_mutex mu;
    long counter; /* protected by mu */
    long n;       /* iterations per goroutine */
    gort_waitgroup wg;
} sh;

static void worker(void *arg)
{
    (void)arg;
    for (long i = 0; i < sh.n; i++) {
        gort_mutex_lock(&sh.mu);
        sh.counter++;
        gort_mutex_unlock(&sh.mu);
    }
    gort_wg_done(&sh.wg);
}

/* Returns ns per lock+unlock with GOROUTINES goroutines doing n each. */
static double contended(long n)
{
    sh.n = n;
    sh.counter = 0;
    int64_t ns = bench_go_n(&sh.wg, GOROUTINES, worker, NULL);
    if (sh.counter != (long)GOROUTINES * n) {
        fprintf(stderr, "mutex: counter %ld, want %ld\n", sh.counter, (long)GOROUTINES * n);
        exit(1);
    }
    return (double)ns / ((double)GOROUTINES * (double)n);
}

/* Returns ns per lock+unlock, one goroutine, m iterations. */
static double uncontended(long m)
{
    static gort_mutex mu;
    int64_t t0 = gort_now();
    for (long i = 0; i < m; i++) {
        gort_mutex_lock(&mu);
        gort_mutex_unlock(&mu);
    }
    int64_t t1 = gort_now();
    return (double)(t1 - t0) / (double)m;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 0);
    if (n < 0) return 2;
    long warm = bench_warm(n);
    fprintf(stderr, "mutex: N=%ld, %d goroutines, %d processors\n", n, GOROUTINES,
            gort_maxprocs(0));

    contended(warm);
    double c = contended(n);
    uncontended(2 * n);
    double u = uncontended(20 * n);

    printf("mutex_contended_ns %.1f ns/op\n", c);
    printf("mutex_uncontended_ns %.1f ns/op\n", u);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}
