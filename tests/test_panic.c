/* tests/test_panic.c: gort_panic, gort_defer and gort_try (sched/panic.c).
 *
 * Go's rules: deferred calls run newest first when the enclosing gort_try
 * body ends, normally or by panic, or when the goroutine ends; a panic runs
 * the deferred calls down to the innermost gort_try, which recovers it; a
 * panic raised while another unwinds replaces it for the frame it unwinds
 * to, but one recovered inside a deferred call leaves the outer panic going;
 * gort_exit runs every deferred call and cannot be undone by a panic in one.
 * Scenarios that end the process run in a subprocess (this program with
 * --scenario NAME).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gort_test.h"

#define SCENARIO_FLAG "--scenario"

static char trace[256];

static void note(void *arg)
{
    strncat(trace, arg, sizeof trace - strlen(trace) - 1);
}

static void panics(void *arg)
{
    gort_panic("%s", (const char *)arg);
}

/* ---- in-process ---------------------------------------------------------- */

static void body_defers_then_returns(void *arg)
{
    (void)arg;
    gort_defer(note, "a");
    gort_defer(note, "b");
    gort_defer(note, "c");
}

static void test_defers_run_lifo_at_try_end(void **state)
{
    (void)state;
    trace[0] = 0;
    assert_true(gort_try(body_defers_then_returns, NULL, NULL));
    assert_string_equal(trace, "cba");
}

static void body_defers_then_panics(void *arg)
{
    (void)arg;
    gort_defer(note, "1");
    gort_defer(note, "2");
    gort_panic("boom %d", 42);
}

static void test_panic_runs_defers_and_recovers(void **state)
{
    (void)state;
    trace[0] = 0;
    const char *msg = NULL;
    assert_false(gort_try(body_defers_then_panics, NULL, &msg));
    assert_string_equal(msg, "boom 42");
    assert_string_equal(trace, "21");
}

static void body_nested(void *arg)
{
    (void)arg;
    gort_defer(note, "o");
    const char *msg = NULL;
    bool ok = gort_try(body_defers_then_panics, NULL, &msg);
    note(ok ? "!ok" : "|inner:");
    note((void *)msg);
    note("|");
    gort_panic("outer");
}

static void test_nested_try(void **state)
{
    (void)state;
    trace[0] = 0;
    const char *msg = NULL;
    assert_false(gort_try(body_nested, NULL, &msg));
    assert_string_equal(msg, "outer");
    /* inner defers 2,1 ran at the inner recovery; the outer body's "o" only
     * when the outer panic unwound */
    assert_string_equal(trace, "21|inner:boom 42|o");
}

static void body_panic_in_defer(void *arg)
{
    (void)arg;
    gort_defer(note, "z");
    gort_defer(panics, "second");
    gort_panic("first");
}

static void test_panic_in_deferred_call_replaces(void **state)
{
    (void)state;
    trace[0] = 0;
    const char *msg = NULL;
    /* Go: recover() returns the newest panic; the rest of the deferred
     * calls still run. */
    assert_false(gort_try(body_panic_in_defer, NULL, &msg));
    assert_string_equal(msg, "second");
    assert_string_equal(trace, "z");
}

static void defer_recovers_inner(void *arg)
{
    (void)arg;
    const char *msg = NULL;
    bool ok = gort_try(panics, "P2-inner", &msg);
    note(ok ? "!" : "inner:");
    note((void *)msg);
}

static void body_outer_panic_survives(void *arg)
{
    (void)arg;
    gort_defer(defer_recovers_inner, NULL);
    gort_panic("P1-outer");
}

static void test_recovery_in_deferred_call_keeps_outer_panic(void **state)
{
    (void)state;
    trace[0] = 0;
    const char *msg = NULL;
    assert_false(gort_try(body_outer_panic_survives, NULL, &msg));
    assert_string_equal(trace, "inner:P2-inner");
    assert_string_equal(msg, "P1-outer");
}

static gort_waitgroup wg;
static char gtrace[64];

static void gnote(void *arg)
{
    strncat(gtrace, arg, sizeof gtrace - strlen(gtrace) - 1);
}

static void signal_done(void *arg)
{
    (void)arg;
    gort_wg_done(&wg);
}

static void goroutine_with_defers(void *arg)
{
    gort_defer(signal_done, NULL); /* runs last */
    gort_defer(gnote, "x");
    gort_defer(gnote, "y");
    if (arg) gort_exit(); /* also runs them */
    gnote("-");
}

static void test_goroutine_end_and_exit_run_defers(void **state)
{
    (void)state;
    gtrace[0] = 0;
    gort_wg_add(&wg, 1);
    gort_go(goroutine_with_defers, NULL);
    gort_wg_wait(&wg);
    assert_string_equal(gtrace, "-yx");
    gtrace[0] = 0;
    gort_wg_add(&wg, 1);
    gort_go(goroutine_with_defers, (void *)1);
    gort_wg_wait(&wg);
    assert_string_equal(gtrace, "yx");
}

static void body_exit_inside_try(void *arg)
{
    (void)arg;
    gort_defer(gnote, "t");
    gort_exit();
}

static void exits_inside_try(void *arg)
{
    (void)arg;
    gort_defer(signal_done, NULL);
    gort_defer(gnote, "g");
    gort_try(body_exit_inside_try, NULL, NULL);
    gnote("!resumed");
}

static void test_exit_inside_try_runs_all_defers(void **state)
{
    (void)state;
    gtrace[0] = 0;
    gort_wg_add(&wg, 1);
    gort_go(exits_inside_try, NULL);
    gort_wg_wait(&wg);
    assert_string_equal(gtrace, "tg");
}

/* Channel and waitgroup panics are ordinary panics: recoverable. */
static void closes_twice(void *c)
{
    gort_chan_close(c);
    gort_chan_close(c);
}

static void negative_wg(void *arg)
{
    (void)arg;
    gort_waitgroup w = {0};
    gort_wg_done(&w);
}

static void test_runtime_panics_are_recoverable(void **state)
{
    (void)state;
    const char *msg = NULL;
    assert_false(gort_try(closes_twice, gort_chan_make(0, 0), &msg));
    assert_string_equal(msg, "close of closed channel");
    assert_false(gort_try(negative_wg, NULL, &msg));
    assert_string_equal(msg, "sync: negative WaitGroup counter");
}

/* ---- subprocess scenarios -------------------------------------------------- */

static void unrecovered_body(void *arg)
{
    (void)arg;
    gort_defer(note, "never-printed-by-itself");
}

static void print_defer(void *arg)
{
    printf("deferred %s\n", (const char *)arg);
    fflush(stdout);
}

static void exit_with_panicking_defer(void *arg)
{
    (void)arg;
    gort_defer(panics, "in-defer");
    gort_exit();
}

static void goroutine_exit_panicking_defer(void *arg)
{
    (void)arg;
    gort_try(exit_with_panicking_defer, NULL, NULL);
    printf("BUG: resumed after gort_exit\n");
    fflush(stdout);
    gort_wg_done(&wg);
}

static int scenario_main(int argc, char **argv)
{
    const char *s = argc > 2 ? argv[2] : "";
    if (!strcmp(s, "unrecovered")) {
        /* deferred calls run before the process dies */
        gort_defer(print_defer, "outer");
        gort_try(unrecovered_body, NULL, NULL);
        gort_defer(print_defer, "inner");
        gort_panic("final words");
    } else if (!strcmp(s, "chain")) {
        gort_defer(panics, "second");
        gort_panic("first");
    } else if (!strcmp(s, "exit-panicking-defer")) {
        gort_wg_add(&wg, 1);
        gort_go(goroutine_exit_panicking_defer, NULL);
        gort_wg_wait(&wg);
        return 0;
    }
    return 100;
}

static struct run scenario(const char *name)
{
    char *args[] = {(char *)"test_panic", (char *)SCENARIO_FLAG, (char *)name, NULL};
    struct run r;
    run_prog_blocking("/proc/self/exe", args, NULL, 20000, &r);
    assert_false(r.timed_out);
    return r;
}

static void test_unrecovered_panic_runs_defers_then_dies(void **state)
{
    (void)state;
    struct run r = scenario("unrecovered");
    CHECK(&r, "unrecovered", exited_with(&r, 2));
    CHECK(&r, "unrecovered", strcmp(r.out, "deferred inner\ndeferred outer\n") == 0);
    CHECK(&r, "unrecovered", strncmp(r.err, "panic: final words\n", 19) == 0);
    CHECK(&r, "unrecovered", strstr(r.err, "goroutine 1 [running]:") != NULL);
    run_free(&r);
}

static void test_unrecovered_chain_printed_oldest_first(void **state)
{
    (void)state;
    struct run r = scenario("chain");
    CHECK(&r, "chain", exited_with(&r, 2));
    CHECK(&r, "chain", strncmp(r.err, "panic: first\n\tpanic: second\n", 28) == 0);
    run_free(&r);
}

static void test_exit_is_not_undone_by_a_panicking_defer(void **state)
{
    (void)state;
    /* An abandoned gort_try frame must not catch a panic raised by a
     * deferred call that gort_exit runs: the panic is unrecovered (Go). */
    struct run r = scenario("exit-panicking-defer");
    CHECK(&r, "exit-panicking-defer", exited_with(&r, 2));
    CHECK(&r, "exit-panicking-defer", strstr(r.out, "BUG") == NULL);
    CHECK(&r, "exit-panicking-defer", strncmp(r.err, "panic: in-defer\n", 16) == 0);
    run_free(&r);
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gort_lock_thread(); /* cmocka keeps its state per thread */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defers_run_lifo_at_try_end),
        cmocka_unit_test(test_panic_runs_defers_and_recovers),
        cmocka_unit_test(test_nested_try),
        cmocka_unit_test(test_panic_in_deferred_call_replaces),
        cmocka_unit_test(test_recovery_in_deferred_call_keeps_outer_panic),
        cmocka_unit_test(test_goroutine_end_and_exit_run_defers),
        cmocka_unit_test(test_exit_inside_try_runs_all_defers),
        cmocka_unit_test(test_runtime_panics_are_recoverable),
        cmocka_unit_test(test_unrecovered_panic_runs_defers_then_dies),
        cmocka_unit_test(test_unrecovered_chain_printed_oldest_first),
        cmocka_unit_test(test_exit_is_not_undone_by_a_panicking_defer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return gort_main(scenario_main, argc, argv);
    return gort_main(run, argc, argv);
}
