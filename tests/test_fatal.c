/* tests/test_fatal.c: the errors users see (DESIGN.md section 4) and the
 * checking of the GORT_* environment, observed from outside the process.
 *
 * Every case runs the helper program tests/helpers/gort_victim (found through
 * GORT_TEST_HELPERS, which scripts/run-tests.sh exports; next to this program
 * in helpers/ otherwise) as a subprocess with one scenario name, captures its
 * stdout and stderr through pipes, and asserts its exit status and the exact
 * words it printed. Each run is bounded (RUN_TIMEOUT_MS): a helper that hangs
 * is killed and the case fails instead of the test getting stuck. The helper
 * gets this program's environment with the case's GORT_* variables replacing
 * any inherited value.
 *
 * Sanitizer build (GORT_SANITIZE): checked by hand that gort's own fault
 * handler, installed after ASan's, sees the guard-page fault first and prints
 * "fatal error: stack overflow" itself (it chains to ASan's handler only for
 * faults outside stack guards), so the overflow cases are as strict there as
 * in the plain build. Should a future ASan take the fault first, the overflow
 * cases accept its "stack-overflow" report in that build only (see
 * expect_overflow); nothing else differs.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort_test.h"

#define RUN_TIMEOUT_MS 20000

static char victim_path[PATH_MAX];

/* Run the helper with one scenario; env: NULL-terminated "NAME=VALUE"
 * overrides (may be NULL). Fills r (free with run_free). */
static void run_victim(const char *scenario, const char *const *env, struct run *r)
{
    char *argv[] = {victim_path, (char *)scenario, NULL};
    run_prog(victim_path, argv, env, RUN_TIMEOUT_MS, r);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The goroutine id the helper printed as the first line of stdout (0 when
 * none). */
static unsigned long long printed_id(const struct run *r)
{
    char *end;
    unsigned long long id = strtoull(r->out, &end, 10);
    return end != r->out && *end == '\n' ? id : 0;
}

static int group_setup(void **state)
{
    (void)state;
    return helper_path("gort_victim", victim_path);
}

/* ---- stack overflow ------------------------------------------------------ */

/* A stack overflow report for goroutine id: status 2, Go's words, the id. */
static void expect_overflow(const struct run *r, const char *scenario, unsigned long long id)
{
    char hdr[64];
    snprintf(hdr, sizeof hdr, "goroutine %llu [running]:", id);
#ifdef GORT_SANITIZE
    /* Sanitizer build only: accept ASan's own report, should it ever take the
     * guard-page fault before gort's handler (it does not with the ASan this
     * was written against; see the comment at the top). */
    if (has(r->err, "AddressSanitizer") && has(r->err, "stack-overflow")) {
        CHECK(r, scenario, !r->timed_out && !(r->exited && r->status == 0));
        return;
    }
#endif
    CHECK(r, scenario, exited_with(r, 2));
    CHECK(r, scenario, has_line(r->err, "fatal error: stack overflow"));
    CHECK(r, scenario, has_line(r->err, hdr));
}

static void test_overflow_goroutine(void **state)
{
    (void)state;
    static const char *const procs[][2] = {{NULL}, {"GORT_MAXPROCS=1", NULL}};
    for (size_t i = 0; i < sizeof procs / sizeof *procs; i++) {
        struct run r;
        run_victim("overflow", procs[i], &r);
        unsigned long long id = printed_id(&r);
        CHECK(&r, "overflow", id > 1); /* a spawned goroutine, not main */
        expect_overflow(&r, "overflow", id);
        run_free(&r);
    }
}

static void test_overflow_main(void **state)
{
    (void)state;
    struct run r;
    run_victim("overflow-main", NULL, &r);
    CHECK(&r, "overflow-main", printed_id(&r) == 1);
    expect_overflow(&r, "overflow-main", 1);
    run_free(&r);
}

/* The smallest stack the environment allows still overflows cleanly (the
 * fault handler runs on its own signal stack, not the full one). */
static void test_overflow_small_stack(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_STACK_SIZE=16k", NULL};
    struct run r;
    run_victim("overflow", env, &r);
    unsigned long long id = printed_id(&r);
    CHECK(&r, "overflow (GORT_STACK_SIZE=16k)", id > 1);
    expect_overflow(&r, "overflow (GORT_STACK_SIZE=16k)", id);
    CHECK(&r, "overflow (GORT_STACK_SIZE=16k)", has(r.err, "exceeds 16384-byte limit"));
    run_free(&r);
}

/* The limit named in the report is the overflowing goroutine's: the main
 * goroutine has an 8 MiB stack whatever GORT_STACK_SIZE says, so a report
 * for it must not name the GORT_STACK_SIZE limit. */
static void test_overflow_main_names_its_limit(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_STACK_SIZE=128k", NULL};
    struct run r;
    run_victim("overflow-main", env, &r);
    expect_overflow(&r, "overflow-main (GORT_STACK_SIZE=128k)", 1);
    const char *lim = strstr(r.err, "goroutine stack exceeds ");
    if (lim) {
        unsigned long long n = strtoull(lim + strlen("goroutine stack exceeds "), NULL, 10);
        CHECK(&r, "overflow-main (GORT_STACK_SIZE=128k)", n >= (8ULL << 20));
    }
    run_free(&r);
}

/* ---- deadlocks ----------------------------------------------------------- */

static const char *const procs_variants[][2] = {
    {NULL}, {"GORT_MAXPROCS=1", NULL}, {"GORT_MAXPROCS=2", NULL}, {"GORT_MAXPROCS=4", NULL}};
#define NPROCS_VARIANTS (sizeof procs_variants / sizeof *procs_variants)

static void test_deadlock(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("deadlock", procs_variants[i], &r);
        CHECK(&r, "deadlock", exited_with(&r, 2));
        CHECK(&r, "deadlock",
              has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        CHECK(&r, "deadlock", has_line(r.err, "goroutine 1 ["));
        run_free(&r);
    }
}

static void test_deadlock_child(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("deadlock-child", procs_variants[i], &r);
        CHECK(&r, "deadlock-child", exited_with(&r, 2));
        CHECK(&r, "deadlock-child",
              has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        /* every goroutine is listed, the child (which printed its id) too */
        unsigned long long id = printed_id(&r);
        char hdr[64];
        snprintf(hdr, sizeof hdr, "goroutine %llu [", id);
        CHECK(&r, "deadlock-child", id > 1);
        CHECK(&r, "deadlock-child", has_line(r.err, "goroutine 1 ["));
        CHECK(&r, "deadlock-child", has_line(r.err, hdr));
        run_free(&r);
    }
}

/* A goroutine wired to its thread blocks: its M sleeps as "locked", which
 * deadlock detection must count as idle. */
static void test_deadlock_locked_thread(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("deadlock-locked", procs_variants[i], &r);
        CHECK(&r, "deadlock-locked", exited_with(&r, 2));
        CHECK(&r, "deadlock-locked",
              has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        run_free(&r);
    }
}

/* SIGQUIT dumps every goroutine with its state (a leaked sender shows as
 * "chan send", with its creator) and exits 2, as Go does. */
static void test_sigquit_dump(void **state)
{
    (void)state;
    struct run r;
    run_victim("sigquit", NULL, &r);
    CHECK(&r, "sigquit", exited_with(&r, 2));
    CHECK(&r, "sigquit", strstr(r.out, "goroutines 2") != NULL);
    CHECK(&r, "sigquit", has_line(r.err, "SIGQUIT: quit"));
    CHECK(&r, "sigquit", strstr(r.err, "goroutine 1 [running]:") != NULL);
    CHECK(&r, "sigquit", strstr(r.err, " [chan send]:") != NULL);
    CHECK(&r, "sigquit", strstr(r.err, "created by goroutine 1") != NULL);
    run_free(&r);
}

/* The last running thread ends (a wired goroutine exited) while main is
 * asleep: deadlock detection runs on that thread's way out too. */
static void test_deadlock_after_locked_exit(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("deadlock-locked-exit", procs_variants[i], &r);
        CHECK(&r, "deadlock-locked-exit", exited_with(&r, 2));
        CHECK(&r, "deadlock-locked-exit",
              has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        run_free(&r);
    }
}

/* A goroutine wired to its thread parks and another goroutine (on another
 * thread) readies it: the wired thread is woken to run it, and no deadlock
 * may be reported meanwhile. */
static void test_locked_thread_wakeup(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("locked-wakeup", procs_variants[i], &r);
        CHECK(&r, "locked-wakeup", exited_with(&r, 0));
        CHECK(&r, "locked-wakeup", !strcmp(r.out, "locked-wakeup: done\n"));
        CHECK(&r, "locked-wakeup", !has(r.err, "fatal error"));
        run_free(&r);
    }
}

/* A goroutine in a blocking region keeps its M running: no deadlock may be
 * reported while it sleeps, and the waiter wakes up afterwards. */
static void test_no_false_deadlock_in_blocking_region(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("blocking-wakeup", procs_variants[i], &r);
        CHECK(&r, "blocking-wakeup", exited_with(&r, 0));
        CHECK(&r, "blocking-wakeup", !strcmp(r.out, "blocking-wakeup: done\n"));
        CHECK(&r, "blocking-wakeup", !has(r.err, "fatal error"));
        run_free(&r);
    }
}

/* runtime.Goexit from main: the other goroutines run to completion, then the
 * program dies as Go's does. */
static void test_goexit_main(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("goexit-main", procs_variants[i], &r);
        CHECK(&r, "goexit-main", exited_with(&r, 2));
        CHECK(&r, "goexit-main", has_line(r.out, "goexit-child 0 done"));
        CHECK(&r, "goexit-main", has_line(r.out, "goexit-child 1 done"));
        CHECK(&r, "goexit-main", has_line(r.out, "goexit-child 2 done"));
        CHECK(&r, "goexit-main",
              has_line(r.err, "fatal error: no goroutines (main called gort_exit) - deadlock!"));
        run_free(&r);
    }
}

/* Goexit from main while another goroutine is blocked forever: an ordinary
 * deadlock (Go says "all goroutines are asleep" here too). */
static void test_goexit_main_blocked(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("goexit-main-blocked", procs_variants[i], &r);
        CHECK(&r, "goexit-main-blocked", exited_with(&r, 2));
        CHECK(&r, "goexit-main-blocked",
              has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        run_free(&r);
    }
}

/* ---- panics -------------------------------------------------------------- */

static void test_panic(void **state)
{
    (void)state;
    struct run r;
    run_victim("panic", NULL, &r);
    unsigned long long id = printed_id(&r);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "goroutine %llu [running]:", id);
    CHECK(&r, "panic", exited_with(&r, 2));
    CHECK(&r, "panic", starts_with(r.err, "panic: boom 42\n"));
    CHECK(&r, "panic", has(r.err, "goroutine "));
    CHECK(&r, "panic", id > 1);
    CHECK(&r, "panic", has_line(r.err, hdr));
    run_free(&r);
}

static void test_negative_waitgroup(void **state)
{
    (void)state;
    struct run r;
    run_victim("negative-wg", NULL, &r);
    CHECK(&r, "negative-wg", exited_with(&r, 2));
    CHECK(&r, "negative-wg", starts_with(r.err, "panic: sync: negative WaitGroup counter\n"));
    CHECK(&r, "negative-wg", has_line(r.err, "goroutine 1 [running]:"));
    CHECK(&r, "negative-wg", !has(r.out, "returned"));
    run_free(&r);
}

/* ---- normal exits -------------------------------------------------------- */

/* main's return value is the exit status; a blocked goroutine is not waited
 * for. */
static void test_exit_code(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPROCS_VARIANTS; i++) {
        struct run r;
        run_victim("exit-code", procs_variants[i], &r);
        CHECK(&r, "exit-code", exited_with(&r, 7));
        CHECK(&r, "exit-code", r.errlen == 0);
        run_free(&r);
    }
}

/* Returning from main exits through exit(): buffered stdout reaches the pipe. */
static void test_stdout_flush(void **state)
{
    (void)state;
    struct run r;
    run_victim("stdout-flush", NULL, &r);
    CHECK(&r, "stdout-flush", exited_with(&r, 0));
    CHECK(&r, "stdout-flush", !strcmp(r.out, "stdout-flush: no newline, still buffered"));
    run_free(&r);
}

static void test_ok(void **state)
{
    (void)state;
    struct run r;
    run_victim("ok", NULL, &r);
    CHECK(&r, "ok", exited_with(&r, 0));
    CHECK(&r, "ok", !strcmp(r.out, "ok\n"));
    CHECK(&r, "ok", r.errlen == 0);
    run_free(&r);
}

/* ---- the environment ----------------------------------------------------- */

/* Run scenario with NAME=value. good: must succeed quietly; otherwise must
 * exit with status 2 and name the variable on stderr. */
static void env_case(const char *name, const char *value, const char *scenario, bool good)
{
    char var[256], label[320];
    snprintf(var, sizeof var, "%s=%s", name, value);
    snprintf(label, sizeof label, "%s with %s", scenario, var);
    const char *const env[] = {var, NULL};
    struct run r;
    run_victim(scenario, env, &r);
    if (good) {
        CHECK(&r, label, exited_with(&r, 0));
        if (!strcmp(scenario, "ok")) CHECK(&r, label, !strcmp(r.out, "ok\n"));
    } else {
        CHECK(&r, label, exited_with(&r, 2));
        CHECK(&r, label, has(r.err, name));
        CHECK(&r, label, r.outlen == 0); /* rejected before main runs */
    }
    run_free(&r);
}

static void test_env_maxprocs(void **state)
{
    (void)state;
    static const char *const bad[] = {"0", "-1", "abc", "1x", "99999999999", "1025", " 2", "+2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        env_case("GORT_MAXPROCS", bad[i], "ok", false);
    static const char *const good[] = {"", "1", "3", "1024"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        env_case("GORT_MAXPROCS", good[i], "ok", true);
}

static void test_env_stack_size(void **state)
{
    (void)state;
    static const char *const bad[] = {"1", "abc", "10g", "-5", "15k", "257m", "64kk"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        env_case("GORT_STACK_SIZE", bad[i], "ok", false);
    static const char *const good[] = {"", "128k", "1m", "16k", "65536"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        env_case("GORT_STACK_SIZE", good[i], "ok", true);
}

static void test_env_timeslice(void **state)
{
    (void)state;
    static const char *const bad[] = {"10",  "abc",   "10 ms", "0ms",  "-1ms", "49us",
                                      "11s", "10mss", "ms",    "+5ms", "1h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        env_case("GORT_TIMESLICE", bad[i], "ok", false);
    static const char *const good[] = {"", "10ms", "50us", "250000ns", "2s", "10s"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        env_case("GORT_TIMESLICE", good[i], "ok", true);
}

static void test_env_numa(void **state)
{
    (void)state;
    static const char *const bad[] = {"banana", "fake:0", "fake:", "fake:2x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        env_case("GORT_NUMA", bad[i], "ok", false);
    static const char *const good[] = {"off", "fake:2"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        env_case("GORT_NUMA", good[i], "ok", true);
}

static void test_env_poller(void **state)
{
    (void)state;
    static const char *const bad[] = {"kqueue", "EPOLL", "io_uring ", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        env_case("GORT_POLLER", bad[i], "ok", false);
    /* io_uring may be refused by this kernel; epoll and auto always work */
    static const char *const good[] = {"", "epoll", "auto"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        env_case("GORT_POLLER", good[i], "ok", true);
}

static void test_env_debug(void **state)
{
    (void)state;
    static const char *const bad[] = {"bogus=1",        "schedtrace",    "schedtrace=abc",
                                      "schedtrace=0",   "scheddetail=2", "asyncpreemptoff=2",
                                      "asyncpreemptoff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        env_case("GORT_DEBUG", bad[i], "ok", false);
    env_case("GORT_DEBUG", "", "ok", true);
    env_case("GORT_DEBUG", "asyncpreemptoff=1", "ok", true);
}

/* schedtrace=50 over a 200 ms run prints Go-style "SCHED" lines on stderr. */
static void test_schedtrace(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_DEBUG=schedtrace=50", NULL};
    struct run r;
    run_victim("sleep200", env, &r);
    CHECK(&r, "sleep200 with GORT_DEBUG=schedtrace=50", exited_with(&r, 0));
    CHECK(&r, "sleep200 with GORT_DEBUG=schedtrace=50", has_line(r.err, "SCHED "));
    CHECK(&r, "sleep200 with GORT_DEBUG=schedtrace=50", has(r.err, "gomaxprocs="));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_overflow_goroutine),
        cmocka_unit_test(test_overflow_main),
        cmocka_unit_test(test_overflow_small_stack),
        cmocka_unit_test(test_overflow_main_names_its_limit),
        cmocka_unit_test(test_deadlock),
        cmocka_unit_test(test_deadlock_child),
        cmocka_unit_test(test_deadlock_locked_thread),
        cmocka_unit_test(test_deadlock_after_locked_exit),
        cmocka_unit_test(test_sigquit_dump),
        cmocka_unit_test(test_locked_thread_wakeup),
        cmocka_unit_test(test_no_false_deadlock_in_blocking_region),
        cmocka_unit_test(test_goexit_main),
        cmocka_unit_test(test_goexit_main_blocked),
        cmocka_unit_test(test_panic),
        cmocka_unit_test(test_negative_waitgroup),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_stdout_flush),
        cmocka_unit_test(test_env_maxprocs),
        cmocka_unit_test(test_env_stack_size),
        cmocka_unit_test(test_env_timeslice),
        cmocka_unit_test(test_env_numa),
        cmocka_unit_test(test_env_poller),
        cmocka_unit_test(test_env_debug),
        cmocka_unit_test(test_schedtrace),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
