/* tests/test_sched_1p.c: scheduling order with one processor
 * (GORT_MAXPROCS=1), where Go's order is deterministic.
 *
 * Same harness as test_sched.c: the cmocka run is the main goroutine, wired
 * to its thread (cmocka keeps its state in __thread variables), assertions
 * only in the test functions, goroutines record what they saw and the test
 * asserts after waiting for them. Waits are bounded polls.
 *
 * Go behaviour checked here:
 *   - a new goroutine goes to runnext: spawning 0..4 and then blocking runs
 *     4 0 1 2 3 (newest first, the kicked ones FIFO);
 *   - every 61st schedule tick takes the global queue first, so two
 *     goroutines yielding to each other cannot starve a goroutine that a
 *     foreign thread queued globally;
 *   - Gosched with nothing else runnable returns at once;
 *   - two goroutines yielding alternate strictly.
 */
#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"
#include "sched/sched.h"

#include "gort_test.h"

/* ---- helpers (tid, nap, WAIT_FOR: gort_test.h) ------------------------------------------------
 */

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
    assert_int_equal(gort_self(), 1);
    assert_int_equal(gort_maxprocs(0), 1);
}

/* ---- runnext ------------------------------------------------------------------- */

static struct {
    gort_waitgroup wg;
    _Atomic int n;
    int order[16];
} ord;

static void record_order(void *arg)
{
    int i = atomic_fetch_add(&ord.n, 1);
    ord.order[i] = (int)(uintptr_t)arg;
    gort_wg_done(&ord.wg);
}

/* g1 then g2 spawned, then main blocks: g2 (in runnext) runs first. */
static void test_runnext_two(void **state)
{
    (void)state;
    settle();
    memset(&ord, 0, sizeof ord);
    gort_wg_add(&ord.wg, 2);
    gort_go(record_order, (void *)1);
    gort_go(record_order, (void *)2);
    assert_int_equal(atomic_load(&ord.n), 0); /* nothing ran before main blocked */
    gort_wg_wait(&ord.wg);
    assert_int_equal(atomic_load(&ord.n), 2);
    assert_int_equal(ord.order[0], 2);
    assert_int_equal(ord.order[1], 1);
}

/* Go prints 4 0 1 2 3 for goroutines 0..4: here 1..5 run as 5 1 2 3 4. */
static void test_runnext_five(void **state)
{
    (void)state;
    settle();
    memset(&ord, 0, sizeof ord);
    gort_wg_add(&ord.wg, 5);
    for (uintptr_t i = 1; i <= 5; i++)
        gort_go(record_order, (void *)i);
    gort_wg_wait(&ord.wg);
    const int want[5] = {5, 1, 2, 3, 4};
    assert_int_equal(atomic_load(&ord.n), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ord.order[i], want[i]);
}

/* ---- the 61-tick rule ------------------------------------------------------------- */

enum { SPIN_LIMIT = 100000, SPIN_STARTED = 1000 };

static struct {
    gort_waitgroup wg;
    _Atomic bool flag;        /* set by the globally queued goroutine */
    _Atomic bool go_returned; /* set by the pthread right after gort_go */
    _Atomic int64_t yields;   /* by both spinners */
    _Atomic int64_t after;    /* yields after go_returned while flag unset */
    _Atomic uint64_t setter_id;
    uint64_t spawned_id;
    _Atomic bool timed_out;
} tk;

static void setter(void *arg)
{
    (void)arg;
    atomic_store(&tk.setter_id, gort_self());
    atomic_store(&tk.flag, true);
}

static void spinner(void *arg)
{
    (void)arg;
    int64_t deadline = gort_now() + 10 * SEC;
    int64_t after = 0;
    for (uint64_t i = 0; !atomic_load(&tk.flag); i++) {
        if (atomic_load(&tk.go_returned)) {
            atomic_fetch_add(&tk.after, 1);
            if (++after >= SPIN_LIMIT) break; /* starved: the test fails */
        } else if (i % 1024 == 0 && gort_now() > deadline) {
            atomic_store(&tk.timed_out, true);
            break;
        }
        atomic_fetch_add(&tk.yields, 1);
        gort_yield();
    }
    gort_wg_done(&tk.wg);
}

/* A thread gort did not create: its gort_go queues the goroutine globally. */
static void *foreign_thread(void *arg)
{
    (void)arg;
    int64_t deadline = gort_now() + 10 * SEC;
    while (atomic_load(&tk.yields) < SPIN_STARTED && gort_now() < deadline) {
        struct timespec ts = {0, 100 * US};
        nanosleep(&ts, NULL);
    }
    tk.spawned_id = gort_go(setter, NULL);
    atomic_store(&tk.go_returned, true);
    return NULL;
}

static void test_global_queue_every_61_ticks(void **state)
{
    (void)state;
    settle();
    memset(&tk, 0, sizeof tk);
    gort_wg_add(&tk.wg, 2);
    gort_go(spinner, NULL);
    gort_go(spinner, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, foreign_thread, NULL), 0);
    gort_wg_wait(&tk.wg);
    gort_blocking_begin();
    pthread_join(th, NULL);
    gort_blocking_end();
    assert_false(atomic_load(&tk.timed_out));
    assert_true(atomic_load(&tk.go_returned));
    assert_true(atomic_load(&tk.flag));
    assert_int_equal(atomic_load(&tk.setter_id), tk.spawned_id);
    print_message("61-tick: %lld yields before the foreign spawn, %lld after\n",
                  (long long)(atomic_load(&tk.yields) - atomic_load(&tk.after)),
                  (long long)atomic_load(&tk.after));
    assert_true(atomic_load(&tk.yields) - atomic_load(&tk.after) >= SPIN_STARTED);
    assert_true(atomic_load(&tk.after) < 1000);
}

/* ---- yield ------------------------------------------------------------------------ */

/* Nothing else runnable: gort_yield returns without a switch (no new
 * schedule tick, same thread). */
static void test_yield_alone_returns(void **state)
{
    (void)state;
    settle();
    struct m *m = gort_m();
    struct p *p = m->p;
    uint32_t tick = p->schedtick;
    pid_t t0 = tid();
    for (int i = 0; i < 1000; i++)
        gort_yield();
    assert_ptr_equal(gort_m(), m);
    assert_ptr_equal(gort_m()->p, p);
    assert_int_equal(p->schedtick, tick);
    assert_int_equal(tid(), t0);
    assert_int_equal(gort_self(), 1);
}

enum { ALT_YIELDS = 1000 };

static struct {
    gort_waitgroup wg;
    _Atomic int n;
    char log[2 * ALT_YIELDS + 8];
} alt;

static void alternator(void *arg)
{
    char me = (char)(uintptr_t)arg;
    for (int i = 0; i < ALT_YIELDS; i++) {
        int k = atomic_fetch_add(&alt.n, 1);
        if (k < (int)sizeof alt.log) alt.log[k] = me;
        gort_yield();
    }
    gort_wg_done(&alt.wg);
}

/* A and B each yield 1000 times: at one P they alternate strictly (B first:
 * it was spawned last, into runnext). */
static void test_yield_alternates(void **state)
{
    (void)state;
    settle();
    memset(&alt, 0, sizeof alt);
    gort_wg_add(&alt.wg, 2);
    gort_go(alternator, (void *)'A');
    gort_go(alternator, (void *)'B');
    gort_wg_wait(&alt.wg);
    assert_int_equal(atomic_load(&alt.n), 2 * ALT_YIELDS);
    assert_int_equal(alt.log[0], 'B');
    int na = 0, nb = 0, breaks = 0;
    for (int i = 0; i < 2 * ALT_YIELDS; i++) {
        na += alt.log[i] == 'A';
        nb += alt.log[i] == 'B';
        if (i > 0 && alt.log[i] == alt.log[i - 1]) breaks++;
    }
    assert_int_equal(na, ALT_YIELDS);
    assert_int_equal(nb, ALT_YIELDS);
    assert_int_equal(breaks, 0);
}

/* ---- main --------------------------------------------------------------------------- */

/* The switch saves MXCSR and the x87 control word per goroutine: a rounding
 * mode set by one goroutine must not leak into another that runs on the same
 * thread between its yields, and must still be there when it resumes. */
static _Atomic int fp_bad_a, fp_bad_b;
static volatile double fp_one = 1.0, fp_three = 3.0;

static void fp_upward(void *arg)
{
    fesetround(FE_UPWARD);
    for (int i = 0; i < 1000; i++) {
        gort_yield();
        /* 1/3 rounded up differs from 1/3 rounded to nearest in the last bit */
        if (fegetround() != FE_UPWARD || fp_one / fp_three != 0x1.5555555555556p-2)
            atomic_fetch_add(&fp_bad_a, 1);
    }
    fesetround(FE_TONEAREST);
    gort_wg_done(arg);
}

static void fp_nearest(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        gort_yield();
        if (fegetround() != FE_TONEAREST || fp_one / fp_three != 0x1.5555555555555p-2)
            atomic_fetch_add(&fp_bad_b, 1);
    }
    gort_wg_done(arg);
}

static void test_fp_control_per_goroutine(void **state)
{
    (void)state;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 2);
    gort_go(fp_upward, &wg);
    gort_go(fp_nearest, &wg);
    gort_wg_wait(&wg);
    assert_int_equal(atomic_load(&fp_bad_a), 0);
    assert_int_equal(atomic_load(&fp_bad_b), 0);
    assert_int_equal(fegetround(), FE_TONEAREST);
}

/* With one P idle and every M asleep, a thread gort did not create readies
 * the main goroutine: it lands on the global queue, and wakep must start an
 * M for the idle P even though gomaxprocs is 1 (only a caller that holds the
 * P may skip that). A lost wake-up here hangs the test (killed by the
 * runner's timeout). */
static gort_waitgroup foreign_wg;

static void *foreign_done(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gort_wg_done(&foreign_wg);
    return NULL;
}

static void test_foreign_thread_wakes_idle_p(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        gort_wg_add(&foreign_wg, 1);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, foreign_done, NULL), 0);
        gort_wg_wait(&foreign_wg);
        pthread_join(t, NULL);
    }
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka's state is in __thread variables: keep the main goroutine on
     * one thread while cmocka runs (see test_sched.c). */
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runnext_two),
        cmocka_unit_test(test_runnext_five),
        cmocka_unit_test(test_yield_alone_returns),
        cmocka_unit_test(test_yield_alternates),
        cmocka_unit_test(test_global_queue_every_61_ticks),
        cmocka_unit_test(test_fp_control_per_goroutine),
        cmocka_unit_test(test_foreign_thread_wakes_idle_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    setenv("GORT_MAXPROCS", "1", 1);
    return gort_main(run, argc, argv);
}
