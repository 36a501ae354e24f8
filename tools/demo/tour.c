/* tools/demo/tour.c: `make demo`, a short tour of what gort does today.
 *
 * Each stop runs a small real workload on the runtime and says what it did,
 * with the numbers it measured. It grows as gort gains channels, timers,
 * I/O and the collector.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gort.h"

static double ms_since(int64_t t0)
{
    return (double)(gort_now() - t0) / 1e6;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* 1. Many goroutines at once. */
static gort_waitgroup started, gate, finished;

static void parked(void *arg)
{
    (void)arg;
    gort_wg_done(&started);
    gort_wg_wait(&gate);
    gort_wg_done(&finished);
}

static void stop_many(void)
{
    enum { N = 200000 };
    long rss0 = rss_kib();
    int64_t t0 = gort_now();
    gort_wg_add(&started, N);
    gort_wg_add(&gate, 1);
    gort_wg_add(&finished, N);
    for (int i = 0; i < N; i++)
        gort_go(parked, NULL);
    gort_wg_wait(&started);
    double spawn_ms = ms_since(t0);
    long rss1 = rss_kib();
    printf("1. %d goroutines parked at once: spawned in %.0f ms, %d alive, %.1f KiB resident "
           "each\n",
           N, spawn_ms, gort_num_goroutine(), (double)(rss1 - rss0) / N);
    gort_wg_done(&gate);
    gort_wg_wait(&finished);
    printf("   released them all; they finished and their stacks went back to the free lists\n");
}

/* 2. Goroutines move between threads; each sees its own identity. */
static _Atomic long migrations, checks_failed;

static void wanderer(void *arg)
{
    uint64_t me = gort_self();
    long last = syscall(SYS_gettid);
    for (int i = 0; i < 20000; i++) {
        gort_yield();
        long tid = syscall(SYS_gettid);
        if (tid != last) atomic_fetch_add(&migrations, 1), last = tid;
        if (gort_self() != me) atomic_fetch_add(&checks_failed, 1);
    }
    gort_wg_done(arg);
}

static void stop_migration(void)
{
    gort_waitgroup wg = {0};
    int n = 8;
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        gort_go(wanderer, &wg);
    gort_wg_wait(&wg);
    printf("2. %d goroutines yielded 20,000 times each on %d processors: %ld thread changes "
           "seen, identity wrong %ld times\n",
           n, gort_maxprocs(0), (long)migrations, (long)checks_failed);
}

/* 3. A goroutine wired to its thread. */
static void wired(void *arg)
{
    gort_lock_thread();
    long tid = syscall(SYS_gettid);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        gort_yield();
        same += syscall(SYS_gettid) == tid;
    }
    gort_unlock_thread();
    printf("3. a goroutine called gort_lock_thread and yielded 1000 times: it stayed on thread "
           "%ld %d of 1000 times\n",
           tid, same);
    gort_wg_done(arg);
}

/* 4. Blocking C code does not stall other goroutines. */
static _Atomic long progress;
static _Atomic int sleeping_done;

static void sleeper(void *arg)
{
    gort_blocking_begin();
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gort_blocking_end();
    atomic_store(&sleeping_done, 1);
    gort_wg_done(arg);
}

static void worker(void *arg)
{
    while (!atomic_load(&sleeping_done)) {
        atomic_fetch_add(&progress, 1);
        gort_yield();
    }
    gort_wg_done(arg);
}

/* 5. Yield and spawn costs, measured right here. */
static void yielder(void *arg)
{
    for (int i = 0; i < 1000000; i++)
        gort_yield();
    gort_wg_done(arg);
}

static void nothing(void *arg)
{
    gort_wg_done(arg);
}

static int tour(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("gort tour: Go's runtime as a C library. main is goroutine %" PRIu64
           ", %d processors\n\n",
           gort_self(), gort_maxprocs(0));
    stop_many();

    stop_migration();

    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_go(wired, &wg);
    gort_wg_wait(&wg);

    gort_wg_add(&wg, 2);
    gort_go(sleeper, &wg);
    gort_go(worker, &wg);
    gort_wg_wait(&wg);
    printf("4. while one goroutine slept 200 ms in blocking C code (gort_blocking_begin/end),\n"
           "   another made %ld steps of progress on the processor it handed over\n",
           (long)progress);

    int old = gort_maxprocs(1);
    gort_wg_add(&wg, 2);
    int64_t t0 = gort_now();
    gort_go(yielder, &wg);
    gort_go(yielder, &wg);
    gort_wg_wait(&wg);
    double yield_ns = (double)(gort_now() - t0) / 2e6;
    gort_maxprocs(old);
    enum { S = 200000 };
    gort_wg_add(&wg, S);
    t0 = gort_now();
    for (int i = 0; i < S; i++)
        gort_go(nothing, &wg);
    gort_wg_wait(&wg);
    double spawn_ns = (double)(gort_now() - t0) / S;
    printf("5. two goroutines yielding to each other on one processor: %.1f ns per switch;\n"
           "   spawning %d goroutines that finish at once: %.0f ns each\n",
           yield_ns, S, spawn_ns);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\ndone: %d goroutine(s) left, %.2f s of CPU used. "
           "Run `make bench` to compare with Go.\n",
           gort_num_goroutine(),
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(tour, argc, argv);
}
