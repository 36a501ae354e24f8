/* tests/helpers/threads_victim.c: a program that runs out of threads on
 * purpose (or cycles through many without running out), for
 * tests/test_threads.c, which runs it as a subprocess and checks its exit
 * status and output.
 *
 *   threads_victim SCENARIO
 *
 * Each scenario runs inside gort_main:
 *   exhaust  main starts goroutines in batches of 64 that each enter a
 *            blocking region and stay in it (pause() forever), so every one
 *            keeps its thread, until the runtime refuses another thread:
 *            "fatal error: thread exhaustion", exit 2. Prints "no thread
 *            exhaustion" and exits 1 if that has not happened after 60 s
 *            (or after 20000 goroutines, twice the documented limit).
 *   churn    30 rounds of 500 goroutines that each spend 2 ms in a blocking
 *            region, main waiting for each round: 15000 regions in all, more
 *            than the thread limit, but never more than about 500 at once.
 *            Threads leaving a region are reused, so this must finish:
 *            prints "churn: 15000 regions" and exits 0.
 * An unknown scenario exits with status 100.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gort.h"

#define MS 1000000LL

/* ---- exhaust ------------------------------------------------------------- */

static void stay_blocked(void *arg)
{
    (void)arg;
    gort_blocking_begin();
    for (;;)
        pause(); /* keeps this thread until the process ends */
}

static int exhaust(void)
{
    int64_t deadline = gort_now() + 60000 * MS;
    for (int started = 0; started < 20000 && gort_now() < deadline;) {
        for (int i = 0; i < 64; i++, started++)
            gort_go(stay_blocked, NULL);
        /* Park main: the processors run the batch; sysmon hands each
         * processor left in a blocking region to a new thread. */
        gort_sleep(2 * MS);
    }
    while (gort_now() < deadline)
        gort_sleep(100 * MS);
    printf("no thread exhaustion\n");
    return 1;
}

/* ---- churn --------------------------------------------------------------- */

#define CHURN_ROUNDS 30
#define CHURN_WIDTH  500

static gort_waitgroup churn_wg;
static _Atomic int regions;

static void short_region(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 2 * MS};
    gort_blocking_begin();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    gort_blocking_end();
    /* Relaxed: main reads the count after the waitgroup, which orders it. */
    atomic_fetch_add_explicit(&regions, 1, memory_order_relaxed);
    gort_wg_done(&churn_wg);
}

static int churn(void)
{
    for (int round = 0; round < CHURN_ROUNDS; round++) {
        gort_wg_add(&churn_wg, CHURN_WIDTH);
        for (int i = 0; i < CHURN_WIDTH; i++)
            gort_go(short_region, NULL);
        gort_wg_wait(&churn_wg);
    }
    int n = atomic_load_explicit(&regions, memory_order_relaxed);
    printf("churn: %d regions\n", n);
    return n == CHURN_ROUNDS * CHURN_WIDTH ? 0 : 1;
}

static int real_main(int argc, char **argv)
{
    const char *s = argc > 1 ? argv[1] : "";
    if (!strcmp(s, "exhaust")) return exhaust();
    if (!strcmp(s, "churn")) return churn();
    fprintf(stderr, "threads_victim: unknown scenario \"%s\"\n", s);
    return 100;
}

int main(int argc, char **argv)
{
    return gort_main(real_main, argc, argv);
}
