/* tests/test_threads.c: the thread limit (DESIGN.md section 3: at most 10000
 * threads, then "fatal error: thread exhaustion"), observed from outside the
 * process.
 *
 * Each case runs the helper tests/helpers/threads_victim as a subprocess
 * (found through GORT_TEST_HELPERS, which scripts/run-tests.sh exports;
 * helpers/ next to this program otherwise), bounded by RUN_TIMEOUT_MS, and
 * checks its exit status and words:
 *   - goroutines that stay in blocking regions each keep a thread, until the
 *     10000th: the process then dies with "fatal error: thread exhaustion"
 *     and status 2 (about 3.5 s and 140 MiB here; 1.5 GiB under ASan);
 *   - 15000 short blocking regions, at most about 500 at once, never exhaust
 *     the threads: the limit counts threads alive, not threads ever made.
 *
 * The limit is MAX_THREADS (sched/sched.h), which no environment variable
 * changes, so the first case needs an environment that allows 10000 threads
 * of one process: it is skipped, saying why, when RLIMIT_NPROC (not root),
 * kernel.threads-max, kernel.pid_max, the cgroup's pids.max or
 * vm.max_map_count (4 mappings per thread, 6 under ASan: stack, guard,
 * signal stack and its guard, plus ASan's own) is too low. Nothing here
 * measures time beyond the generous bound.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "gort_test.h"

#define RUN_TIMEOUT_MS 90000
#define THREAD_LIMIT   10000 /* MAX_THREADS, as documented */

#ifdef GORT_SANITIZE
#define MAPS_PER_THREAD 6
#else
#define MAPS_PER_THREAD 4
#endif

static char victim_path[PATH_MAX];

static int group_setup(void **state)
{
    (void)state;
    return helper_path("threads_victim", victim_path);
}

static void run_victim(const char *scenario, struct run *r)
{
    char *argv[] = {victim_path, (char *)scenario, NULL};
    run_prog(victim_path, argv, NULL, RUN_TIMEOUT_MS, r);
}

/* The first number in file path, or -1 (missing, or "max"). */
static long long read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long v;
    int n = fscanf(f, "%lld", &v);
    fclose(f);
    return n == 1 ? v : -1;
}

/* The pids.max of this process's cgroup (v2, or v1's pids controller); -1
 * when unlimited or unknown. */
static long long cgroup_pids_max(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return -1;
    char line[4096], path[PATH_MAX + 64];
    long long best = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *cg = c2 + 1;
        if (!strcmp(ctrl, ""))
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/pids.max", cg);
        else if (!strcmp(ctrl, "pids"))
            snprintf(path, sizeof path, "/sys/fs/cgroup/pids%s/pids.max", cg);
        else
            continue;
        long long v = read_number(path);
        if (v >= 0 && (best < 0 || v < best)) best = v;
    }
    fclose(f);
    return best;
}

/* Why this machine cannot give one process THREAD_LIMIT threads, into why
 * (size n); false when nothing known stands in the way. */
static bool cannot_host_limit(char *why, size_t n)
{
    const long long need = THREAD_LIMIT + 256;
    struct rlimit rl;
    if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long long)rl.rlim_cur < need) {
        snprintf(why, n, "ulimit -u is %llu", (unsigned long long)rl.rlim_cur);
        return true;
    }
    long long v = read_number("/proc/sys/kernel/threads-max");
    if (v >= 0 && v < need) {
        snprintf(why, n, "kernel.threads-max is %lld", v);
        return true;
    }
    v = read_number("/proc/sys/kernel/pid_max");
    if (v >= 0 && v < 2 * need) {
        snprintf(why, n, "kernel.pid_max is %lld", v);
        return true;
    }
    v = cgroup_pids_max();
    if (v >= 0 && v < need) {
        snprintf(why, n, "the cgroup's pids.max is %lld", v);
        return true;
    }
    v = read_number("/proc/sys/vm/max_map_count");
    if (v >= 0 && v < (long long)MAPS_PER_THREAD * THREAD_LIMIT + 4096) {
        snprintf(why, n, "vm.max_map_count is %lld (need about %d)", v,
                 MAPS_PER_THREAD * THREAD_LIMIT + 4096);
        return true;
    }
    return false;
}

/* Goroutines that stay in blocking regions take a thread each until the
 * limit: the process then stops with Go's words and status 2, well before
 * the helper's own 60 s give-up. */
static void test_exhaustion_is_fatal(void **state)
{
    (void)state;
    char why[128];
    if (cannot_host_limit(why, sizeof why)) {
        print_message("skipped: this machine cannot give a process %d threads: %s\n", THREAD_LIMIT,
                      why);
        skip();
    }
    struct run r;
    run_victim("exhaust", &r);
    CHECK(&r, "exhaust", !r.timed_out);
    CHECK(&r, "exhaust", exited_with(&r, 2));
    CHECK(&r, "exhaust", has_line(r.err, "fatal error: thread exhaustion"));
    CHECK(&r, "exhaust", has(r.err, "(10000 threads)")); /* the documented limit */
    CHECK(&r, "exhaust", !has(r.out, "no thread exhaustion"));
    /* Not the kernel refusing a thread first (a different error). */
    CHECK(&r, "exhaust", !has(r.err, "failed to create new OS thread"));
    run_free(&r);
}

/* More regions than the limit, but few at once: threads that leave their
 * regions are reused, and the limit is never reached. */
static void test_churn_reuses_threads(void **state)
{
    (void)state;
    struct run r;
    run_victim("churn", &r);
    CHECK(&r, "churn", exited_with(&r, 0));
    CHECK(&r, "churn", has_line(r.out, "churn: 15000 regions"));
    CHECK(&r, "churn", !has(r.err, "fatal error"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exhaustion_is_fatal),
        cmocka_unit_test(test_churn_reuses_threads),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
