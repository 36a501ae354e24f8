/* tests/test_million.c: a million goroutines at once (100,000 in the
 * sanitizer build), parked on a WaitGroup.
 *
 * Asserts what DESIGN.md promises for them: every one is counted by
 * gort_num_goroutine; stacks are carved from large reservations, so the
 * process stays far below vm.max_map_count (65530) mappings; a parked
 * goroutine costs about one resident page (bounded generously here, the
 * benchmark measures the real figure); all of them finish once released and
 * the count returns to 1; and a second round reuses the dead goroutines'
 * stacks instead of reserving new address space.
 *
 * Runs inside the runtime: main() returns gort_main(run, ...). cmocka keeps
 * its state in __thread variables (the running test, the jmp_buf its
 * assertions longjmp to), and the main goroutine may resume on another thread
 * after any blocking call, so run() does the two rounds first, on the main
 * goroutine, recording what it measured, and only then runs the cmocka group,
 * whose tests assert on the records without blocking (no thread change while
 * cmocka runs). gort_lock_thread would be the usual remedy, but a wired
 * goroutine that parks and is readied from another thread currently trips a
 * false "all goroutines are asleep" (see test_fatal's
 * test_locked_thread_wakeup); this test is about a million goroutines, not
 * about that. The spawned goroutines only touch WaitGroups.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"

#ifdef GORT_SANITIZE
#define NGOROUTINES 100000
#else
#define NGOROUTINES 1000000
#endif

#define MAX_MAPS 10000 /* far below vm.max_map_count (65530) */
#ifdef GORT_SANITIZE
/* ASan's frames carry redzones, and each new stack is unpoisoned in shadow
 * memory: a parked goroutine costs shadow pages besides its own (measured
 * about 8.2 KiB). That build checks correctness; the footprint is judged in
 * the plain one. */
#define MAX_RSS_PER_G (32 << 10)
#else
#define MAX_RSS_PER_G (8 << 10) /* bytes per parked goroutine */
#endif
#define MAX_REUSE_VM_GROWTH (256 << 20) /* bytes of new address space in round two */
#define SEC                 1000000000LL

static gort_waitgroup started;  /* each goroutine: Done once it runs */
static gort_waitgroup gate;     /* all of them Wait here until main releases it */
static gort_waitgroup finished; /* each goroutine: Done after the gate opened */

static void worker(void *arg)
{
    (void)arg;
    gort_wg_done(&started);
    gort_wg_wait(&gate);
    gort_wg_done(&finished);
}

/* Lines of /proc/self/maps (one per mapping); -1 on error. */
static long count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[65536];
    long lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return n < 0 ? -1 : lines;
}

/* A "Name:   123 kB" field of /proc/self/status, in bytes; -1 on error. */
static long long status_kb_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    size_t len = strlen(name);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, name, len) && line[len] == ':') {
            v = strtoll(line + len + 1, NULL, 10) * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

static void sleep_ms_blocking(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    gort_blocking_begin();
    nanosleep(&ts, NULL);
    gort_blocking_end();
}

/* Wait (bounded) until only the main goroutine is left. */
static int settle_to_one(void)
{
    int64_t deadline = gort_now() + 30 * SEC;
    int n;
    for (long i = 0; (n = gort_num_goroutine()) != 1 && gort_now() < deadline; i++) {
        gort_yield();
        if (i % 1024 == 1023) sleep_ms_blocking(1);
    }
    return n;
}

struct round {
    int before;          /* gort_num_goroutine() before spawning */
    long maps;           /* mappings while all are parked */
    long long rss_per_g; /* resident bytes per parked goroutine */
    long long vm_growth; /* address space reserved by the round */
    int live;            /* gort_num_goroutine() while all are parked */
    int after;           /* gort_num_goroutine() once they finished */
};

/* Spawn n workers, wait until all are parked at the gate, measure, release
 * them and wait for all to finish. */
static void one_round(int n, struct round *out)
{
    memset(out, 0, sizeof *out);
    out->before = gort_num_goroutine();
    long long rss0 = status_kb_field("VmRSS");
    long long vm0 = status_kb_field("VmSize");

    gort_wg_add(&started, n);
    gort_wg_add(&gate, 1);
    gort_wg_add(&finished, n);
    for (int i = 0; i < n; i++)
        gort_go(worker, NULL);
    gort_wg_wait(&started); /* every worker ran; each is at or in Wait(&gate) */

    out->live = gort_num_goroutine();
    out->maps = count_maps();
    long long rss1 = status_kb_field("VmRSS");
    long long vm1 = status_kb_field("VmSize");
    out->rss_per_g = (rss1 - rss0) / n;
    out->vm_growth = vm1 - vm0;

    gort_wg_done(&gate); /* releases every waiter */
    gort_wg_wait(&finished);
    out->after = settle_to_one();
    if (rss0 < 0 || rss1 < 0 || vm0 < 0 || vm1 < 0) out->rss_per_g = out->vm_growth = LLONG_MAX;
    printf(
        "test_million: %d goroutines: %ld mappings, %lld resident bytes each, %lld MiB reserved, "
        "%d left after\n",
        n, out->maps, out->rss_per_g, out->vm_growth >> 20, out->after);
    fflush(stdout);
}

static struct round round1, round2;

/* a < b, or fail showing both values */
#define EXPECT_LT(a, b)                                                             \
    do {                                                                            \
        long long a_ = (a), b_ = (b);                                               \
        if (!(a_ < b_)) fail_msg("expected %s < %s: %lld >= %lld", #a, #b, a_, b_); \
    } while (0)

static void test_million_parked(void **state)
{
    (void)state;
    struct round *r = &round1;
    assert_int_equal(r->before, 1);
    EXPECT_LT(NGOROUTINES, r->live); /* every one of them, and main */
    EXPECT_LT(0, r->maps);
    EXPECT_LT(r->maps, MAX_MAPS);
    EXPECT_LT(r->rss_per_g, MAX_RSS_PER_G);
    assert_int_equal(r->after, 1);
}

/* Dead goroutines and their stacks are reused: a second round of the same
 * size reserves (almost) no new address space and as few mappings. */
static void test_million_reuse(void **state)
{
    (void)state;
    struct round *r = &round2;
    assert_int_equal(r->before, 1);
    EXPECT_LT(NGOROUTINES, r->live);
    EXPECT_LT(0, r->maps);
    EXPECT_LT(r->maps, MAX_MAPS);
    EXPECT_LT(r->vm_growth, MAX_REUSE_VM_GROWTH);
    assert_int_equal(r->after, 1);
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* The measurements, before cmocka runs: see the top comment. */
    one_round(NGOROUTINES, &round1);
    one_round(NGOROUTINES, &round2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_parked),
        cmocka_unit_test(test_million_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}
