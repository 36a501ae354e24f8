/* tests/test_timer.c: gort's timers (sched/timer.c, sync/time.c, and the
 * scheduler parts that run them: findrunnable, stopm_timed, pick_local).
 *
 * Same harness as the other programs: the cmocka run is the main goroutine,
 * wired to its thread (cmocka keeps its state in __thread variables);
 * assertions only in the test functions; goroutines record what they saw and
 * the test asserts after a bounded wait.
 *
 * Timing rules: lower bounds are exact (a timer never fires, a sleep never
 * returns, before its deadline: gort_now is the clock the deadline was taken
 * on); upper bounds are only far above what a loaded 2-core machine needs.
 * Properties that depend on how late the scheduler is (the order in which
 * AfterFunc goroutines start) are retried with wider spacing, as Go's own
 * TestAfterQueuing does.
 *
 * Scenarios that need their own process (GORT_MAXPROCS=1, an expected fatal
 * deadlock) run this very program (/proc/self/exe) with --scenario NAME.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"

#include "gort_test.h"

#ifdef GORT_SANITIZE
#define MILLION_TIMERS 100000
#else
#define MILLION_TIMERS 1000000
#endif

/* ---- helpers ------------------------------------------------------------------------ */

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) /* main goroutine only */
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* VmRSS in bytes from /proc/self/status (the benchmarks' method), -1 on error. */
static long long rss_bytes(void)
{
    static char buf[16384];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof buf - 1) break;
    }
    close(fd);
    buf[len] = 0;
    const char *p = strstr(buf, "\nVmRSS:");
    if (!p) return -1;
    return strtoll(p + strlen("\nVmRSS:"), NULL, 10) * 1024;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * US;
}

/* ---- scenarios (run as a subprocess) ------------------------------------------------- */

#define SCENARIO_FLAG "--scenario"

static gort_chan *sc_ch;

static void sc_send_one(void *arg)
{
    (void)arg;
    int v = 42;
    gort_chan_send(sc_ch, &v);
}

static void sc_sleep_20ms(void *arg)
{
    (void)arg;
    gort_sleep(20 * MS);
}

static gort_chan *pp_a, *pp_b;

static void pinger(void *arg)
{
    (void)arg;
    for (int v = 0;; v++) {
        gort_chan_send(pp_a, &v);
        gort_chan_recv(pp_b, &v);
    }
}

static void ponger(void *arg)
{
    (void)arg;
    for (int v;;) {
        gort_chan_recv(pp_a, &v);
        gort_chan_send(pp_b, &v);
    }
}

static void sc_sleeper_5ms(void *arg)
{
    (void)arg;
    int64_t t0 = gort_now();
    gort_sleep(5 * MS);
    int64_t late = gort_now() - t0 - 5 * MS;
    gort_chan_send(sc_ch, &late);
}

/* concurrent-reset: two goroutines resetting one timer at once (Go 1.19 allows it:
 * modtimer waits out a concurrent timerModifying). */
static gort_timer *cr_timer;
static gort_waitgroup cr_wg;

static void cr_nop(void *arg)
{
    (void)arg;
}

static void cr_resetter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        gort_timer_reset(cr_timer, (i % 3) * US);
    gort_wg_done(&cr_wg);
}

static int scenario_main(int argc, char **argv)
{
    if (argc < 3) return 3;
    const char *s = argv[2];
    if (strcmp(s, "idle-sleep") == 0) {
        /* Only main exists: every wake-up has to come from an idle M's timed sleep. */
        for (int i = 0; i < 5; i++) {
            int64_t t0 = gort_now();
            gort_sleep(20 * MS);
            if (gort_now() - t0 < 20 * MS) return 4;
        }
        int64_t t0 = gort_now(), fired = 0;
        gort_chan_recv(gort_after(10 * MS), &fired);
        if (fired < t0 + 10 * MS) return 5;
        sc_ch = gort_chan_make(sizeof(int), 0);
        gort_timer_after_func(10 * MS, sc_send_one, NULL);
        int v = 0;
        gort_chan_recv(sc_ch, &v);
        if (v != 42) return 6;
        printf("ok\n");
        return 0;
    }
    if (strcmp(s, "timer-only-wait") == 0) {
        /* Main blocks on a channel nobody can send on until a timer fires. */
        sc_ch = gort_chan_make(sizeof(int), 0);
        int64_t t0 = gort_now();
        gort_timer_after_func(50 * MS, sc_send_one, NULL);
        int v = 0;
        gort_chan_recv(sc_ch, &v);
        if (v != 42 || gort_now() - t0 < 50 * MS) return 4;
        printf("ok\n");
        return 0;
    }
    if (strcmp(s, "deadlock-after-timers") == 0) {
        gort_go(sc_sleep_20ms, NULL);
        gort_chan_recv(NULL, NULL); /* nil channel: forever */
        return 0;                   /* not reached */
    }
    if (strcmp(s, "switch-direct") == 0) {
        pp_a = gort_chan_make(sizeof(int), 0);
        pp_b = gort_chan_make(sizeof(int), 0);
        sc_ch = gort_chan_make(sizeof(int64_t), 1);
        gort_go(pinger, NULL);
        gort_go(ponger, NULL);
        gort_go(sc_sleeper_5ms, NULL);
        int64_t late = -1;
        gort_chan_recv(sc_ch, &late);
        printf("late_ns %lld\n", (long long)late);
        fflush(stdout);
        return 0; /* the ping-pong pair dies with the process */
    }
    if (strcmp(s, "concurrent-reset") == 0) {
        cr_timer = gort_timer_after_func(3600 * SEC, cr_nop, NULL);
        gort_wg_add(&cr_wg, 2);
        gort_go(cr_resetter, NULL);
        gort_go(cr_resetter, NULL);
        gort_wg_wait(&cr_wg);
        gort_timer_stop(cr_timer);
        printf("ok\n");
        return 0;
    }
    return 3;
}

/* Run this program with --scenario NAME and extra environment env. */
static void run_scenario(const char *name, const char *const *env, struct run *r)
{
    char *args[] = {(char *)"test_timer", (char *)SCENARIO_FLAG, (char *)name, NULL};
    run_prog_blocking("/proc/self/exe", args, env, 30000, r);
}

static const char *const one_proc[] = {"GORT_MAXPROCS=1", NULL};

/* ---- sleep ------------------------------------------------------------------------------- */

static void test_sleep_never_early(void **state)
{
    (void)state;
    int64_t worst = 0;
    for (int i = 0; i < 200; i++) {
        int64_t d = (int64_t)(rnd() % (2 * MS + 1));
        int64_t t0 = gort_now();
        gort_sleep(d);
        int64_t took = gort_now() - t0;
        if (took < d)
            fail_msg("sleep(%lld ns) returned after %lld ns", (long long)d, (long long)took);
        if (took - d > worst) worst = took - d;
    }
    print_message("sleep: worst lateness over 200 sleeps %.3f ms\n", worst / 1e6);
    assert_true(worst < 5 * SEC);
}

static _Atomic int zero_sleeper_ran;

static void set_zero_sleeper_ran(void *arg)
{
    (void)arg;
    atomic_store(&zero_sleeper_ran, 1);
}

static void test_sleep_zero_and_negative(void **state)
{
    (void)state;
    settle();
    const int64_t ds[] = {0, -1, -SEC, INT64_MIN};
    int64_t t0 = gort_now();
    for (int r = 0; r < 1000; r++)
        for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
            gort_sleep(ds[i]);
    int64_t took = gort_now() - t0;
    print_message("4000 non-positive sleeps: %.3f ms\n", took / 1e6);
    assert_true(took < 2 * SEC);
    /* Returning at once: not even a yield, with one goroutine runnable on this P. */
    atomic_store(&zero_sleeper_ran, 0);
    int old = gort_maxprocs(1);
    gort_go(set_zero_sleeper_ran, NULL);
    gort_sleep(0);
    gort_sleep(-5);
    int ran = atomic_load(&zero_sleeper_ran);
    gort_maxprocs(old);
    assert_int_equal(ran, 0);
    settle();
}

enum { NSLEEPERS = 1000 };

static struct {
    gort_waitgroup wg;
    _Atomic int early;
    _Atomic int woke;
    _Atomic int64_t worst_late;
    int64_t d[NSLEEPERS];
} ms;

static void many_sleeper(void *arg)
{
    int64_t d = ms.d[(uintptr_t)arg];
    int64_t t0 = gort_now();
    gort_sleep(d);
    int64_t took = gort_now() - t0;
    if (took < d) atomic_fetch_add(&ms.early, 1);
    int64_t late = took - d, w = atomic_load(&ms.worst_late);
    while (late > w && !atomic_compare_exchange_weak(&ms.worst_late, &w, late)) {
    }
    atomic_fetch_add(&ms.woke, 1);
    gort_wg_done(&ms.wg);
}

static void test_many_sleepers(void **state)
{
    (void)state;
    settle();
    memset(&ms, 0, sizeof ms);
    for (int i = 0; i < NSLEEPERS; i++)
        ms.d[i] = (int64_t)(rnd() % (20 * MS)) + 1;
    gort_wg_add(&ms.wg, NSLEEPERS);
    for (uintptr_t i = 0; i < NSLEEPERS; i++)
        gort_go(many_sleeper, (void *)i);
    assert_true(wg_wait_bounded(&ms.wg));
    print_message("1000 sleepers: worst lateness %.3f ms\n", atomic_load(&ms.worst_late) / 1e6);
    assert_int_equal(atomic_load(&ms.woke), NSLEEPERS);
    assert_int_equal(atomic_load(&ms.early), 0);
    settle();
}

/* ---- AfterFunc order ------------------------------------------------------------------------ */

enum { NORDER = 20 };

static struct {
    gort_mutex mu;
    int n;
    int runs[NORDER];
    int64_t deadline[NORDER];
    int64_t ran_at[NORDER];
    gort_waitgroup wg;
} ord;

static void order_fn(void *arg)
{
    int i = (int)(uintptr_t)arg;
    int64_t now = gort_now();
    gort_mutex_lock(&ord.mu);
    ord.ran_at[i] = now;
    ord.runs[i]++;
    ord.n++;
    gort_mutex_unlock(&ord.mu);
    gort_wg_done(&ord.wg);
}

/* Timers i = 0..19 fire at start + (i+1) ms, created in shuffled order: every
 * callback runs exactly once and never before its deadline. The order in which
 * the callbacks start is not asserted: callbacks of timers that fire in one
 * pass start in run-queue order (the newest in runnext first, as in Go), so on
 * a stalled machine their order only says how late the pass was. Fire order
 * itself is asserted below through gort_after's fire times. */
static void test_after_func_all_run(void **state)
{
    (void)state;
    settle();
    memset(&ord, 0, sizeof ord);
    int perm[NORDER];
    for (int i = 0; i < NORDER; i++)
        perm[i] = i;
    for (int i = NORDER - 1; i > 0; i--) {
        int j = (int)(rnd() % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    gort_wg_add(&ord.wg, NORDER);
    int64_t start = gort_now() + 2 * MS;
    for (int k = 0; k < NORDER; k++) {
        int i = perm[k];
        ord.deadline[i] = start + (i + 1) * MS;
        gort_timer_after_func(ord.deadline[i] - gort_now(), order_fn, (void *)(uintptr_t)i);
    }
    assert_true(wg_wait_bounded(&ord.wg));
    gort_sleep(5 * MS); /* a second run of any callback would show now */
    gort_mutex_lock(&ord.mu);
    assert_int_equal(ord.n, NORDER);
    for (int i = 0; i < NORDER; i++) {
        assert_int_equal(ord.runs[i], 1);
        assert_true(ord.ran_at[i] >= ord.deadline[i]); /* never early */
    }
    gort_mutex_unlock(&ord.mu);
    settle();
}

/* gort_after timers fire in deadline order: their fire times (the clock
 * reading of the pass that ran them) never decrease along the deadlines. */
static void test_after_fire_times_ordered(void **state)
{
    (void)state;
    gort_chan *cs[NORDER];
    int64_t start = gort_now();
    for (int k = NORDER - 1; k >= 0; k--)
        cs[k] = gort_after(start + (k + 1) * MS - gort_now());
    int64_t prev = 0;
    for (int k = 0; k < NORDER; k++) {
        int64_t v = 0;
        assert_true(gort_chan_recv(cs[k], &v));
        assert_true(v >= start + (k + 1) * MS);
        assert_true(v >= prev);
        prev = v;
    }
}

/* ---- stop / reset ------------------------------------------------------------------------- */

static _Atomic int fn_count;
static _Atomic int64_t fn_at;

static void count_fn(void *arg)
{
    (void)arg;
    atomic_store(&fn_at, gort_now());
    atomic_fetch_add(&fn_count, 1);
}

static void test_stop_before_fire(void **state)
{
    (void)state;
    settle();
    atomic_store(&fn_count, 0);
    gort_timer *t = gort_timer_after_func(20 * MS, count_fn, NULL);
    assert_true(gort_timer_stop(t));
    assert_false(gort_timer_stop(t)); /* twice: false */
    gort_sleep(60 * MS);              /* 3x the deadline */
    assert_int_equal(atomic_load(&fn_count), 0);
    assert_false(gort_timer_stop(t));
    settle();
}

static void test_stop_after_fire(void **state)
{
    (void)state;
    settle();
    atomic_store(&fn_count, 0);
    gort_timer *t = gort_timer_after_func(1 * MS, count_fn, NULL);
    assert_true(WAIT_FOR(atomic_load(&fn_count) == 1));
    assert_false(gort_timer_stop(t));
    assert_false(gort_timer_stop(t));
    gort_sleep(5 * MS);
    assert_int_equal(atomic_load(&fn_count), 1);
    settle();
}

static void test_reset_pending(void **state)
{
    (void)state;
    settle();
    atomic_store(&fn_count, 0);
    gort_timer *t = gort_timer_after_func(3600 * SEC, count_fn, NULL);
    int64_t t0 = gort_now();
    assert_true(gort_timer_reset(t, 10 * MS));
    assert_true(WAIT_FOR(atomic_load(&fn_count) == 1));
    assert_true(atomic_load(&fn_at) >= t0 + 10 * MS);
    gort_sleep(30 * MS);
    assert_int_equal(atomic_load(&fn_count), 1); /* once */
    /* Earlier to later: a pending 5 ms timer moved to 30 ms does not fire at 5. */
    atomic_store(&fn_count, 0);
    gort_timer *u = gort_timer_after_func(5 * MS, count_fn, NULL);
    int64_t t1 = gort_now();
    assert_true(gort_timer_reset(u, 30 * MS));
    assert_true(WAIT_FOR(atomic_load(&fn_count) == 1));
    assert_true(atomic_load(&fn_at) >= t1 + 30 * MS);
    gort_sleep(40 * MS);
    assert_int_equal(atomic_load(&fn_count), 1);
    settle();
}

static void test_reset_fired_or_stopped(void **state)
{
    (void)state;
    settle();
    /* fired: reset returns false and it fires again */
    atomic_store(&fn_count, 0);
    gort_timer *t = gort_timer_after_func(1 * MS, count_fn, NULL);
    assert_true(WAIT_FOR(atomic_load(&fn_count) == 1));
    int64_t t0 = gort_now();
    assert_false(gort_timer_reset(t, 5 * MS));
    assert_true(WAIT_FOR(atomic_load(&fn_count) == 2));
    assert_true(atomic_load(&fn_at) >= t0 + 5 * MS);
    /* stopped: likewise */
    atomic_store(&fn_count, 0);
    gort_timer *u = gort_timer_after_func(3600 * SEC, count_fn, NULL);
    assert_true(gort_timer_stop(u));
    int64_t t1 = gort_now();
    assert_false(gort_timer_reset(u, 5 * MS));
    assert_true(WAIT_FOR(atomic_load(&fn_count) == 1));
    assert_true(atomic_load(&fn_at) >= t1 + 5 * MS);
    gort_sleep(20 * MS);
    assert_int_equal(atomic_load(&fn_count), 1);
    /* reset after reset-fire, then stop: true (pending again) */
    assert_false(gort_timer_reset(u, 3600 * SEC));
    assert_true(gort_timer_stop(u));
    settle();
}

/* ---- gort_after --------------------------------------------------------------------------- */

static void test_after_delivers_once(void **state)
{
    (void)state;
    int64_t t0 = gort_now();
    gort_chan *c = gort_after(5 * MS);
    assert_int_equal(gort_chan_cap(c), 1);
    int64_t v = 0;
    assert_true(gort_chan_recv(c, &v));
    int64_t t1 = gort_now();
    assert_true(v >= t0 + 5 * MS);
    assert_true(v <= t1);
    assert_true(t1 - t0 < 5 * SEC);
    gort_sleep(20 * MS);
    assert_int_equal(gort_chan_len(c), 0); /* exactly one value */
    gort_case cs[] = {GORT_RECV(c, &v, NULL)};
    assert_int_equal(gort_select(cs, 1, false), -1);
    /* non-positive: fires at once (still through the timer) */
    int64_t t2 = gort_now();
    c = gort_after(0);
    assert_true(gort_chan_recv(c, &v));
    assert_true(v >= t2);
    c = gort_after(-SEC);
    assert_true(gort_chan_recv(c, &v));
}

/* ---- ticker ------------------------------------------------------------------------------------
 */

static void test_ticker_ticks(void **state)
{
    (void)state;
    const int64_t period = 5 * MS, window = 200 * MS;
    int64_t t0 = gort_now();
    gort_ticker *tk = gort_ticker_new(period);
    gort_chan *c = gort_ticker_chan(tk);
    assert_int_equal(gort_chan_cap(c), 1);
    int n = 0;
    int64_t prev = 0, min_gap = INT64_MAX;
    while (gort_now() - t0 < window) {
        int64_t v = 0;
        assert_true(gort_chan_recv(c, &v));
        /* The n-th tick received (0-based) stands for a distinct multiple of the period:
         * it is never earlier than creation + (n+1) periods. Ticks are skipped, not
         * bunched. */
        if (v < t0 + (int64_t)(n + 1) * period)
            fail_msg("tick %d at %lld ns, before %d periods", n, (long long)(v - t0), n + 1);
        assert_true(v > prev);
        assert_true(v <= gort_now());
        if (prev && v - prev < min_gap) min_gap = v - prev;
        prev = v;
        n++;
    }
    gort_ticker_stop(tk);
    print_message("ticker: %d ticks of 5 ms in 200 ms, closest pair %.3f ms apart\n", n,
                  min_gap / 1e6);
    assert_true(n >= 5); /* 40 expected; generous */
}

static void test_ticker_slow_receiver(void **state)
{
    (void)state;
    const int64_t period = 2 * MS;
    gort_ticker *tk = gort_ticker_new(period);
    gort_chan *c = gort_ticker_chan(tk);
    gort_sleep(10 * period);
    assert_int_equal(gort_chan_len(c), 1); /* missed ticks are dropped, not queued */
    gort_sleep(10 * period);
    assert_int_equal(gort_chan_len(c), 1);
    int64_t v;
    assert_true(gort_chan_recv(c, &v));
    assert_true(gort_chan_len(c) <= 1);
    gort_ticker_stop(tk);
}

static void test_ticker_stop(void **state)
{
    (void)state;
    const int64_t period = 2 * MS;
    gort_ticker *tk = gort_ticker_new(period);
    gort_chan *c = gort_ticker_chan(tk);
    int64_t v;
    assert_true(gort_chan_recv(c, &v));
    assert_true(gort_chan_recv(c, &v));
    gort_ticker_stop(tk);
    /* A tick sent before the stop may still sit in the buffer; nothing after. */
    if (gort_chan_len(c) == 1) assert_true(gort_chan_recv(c, &v));
    gort_sleep(10 * period);
    assert_int_equal(gort_chan_len(c), 0);
    gort_ticker_stop(tk); /* twice: harmless */
    gort_ticker_stop(NULL);
}

static void new_ticker_fn(void *arg)
{
    gort_ticker_new(*(int64_t *)arg);
}

static void test_ticker_nonpositive_panics(void **state)
{
    (void)state;
    const int64_t bad[] = {0, -1, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *msg = NULL;
        int64_t p = bad[i];
        assert_false(gort_try(new_ticker_fn, &p, &msg));
        assert_non_null(msg);
        assert_string_equal(msg, "non-positive interval for gort_ticker_new");
    }
}

/* ---- select with a timeout ------------------------------------------------------------------ */

static gort_chan *sel_ch;

static void send_after_10ms(void *arg)
{
    (void)arg;
    gort_sleep(10 * MS);
    int v = 7;
    gort_chan_send(sel_ch, &v);
}

static void test_select_timeout(void **state)
{
    (void)state;
    settle();
    sel_ch = gort_chan_make(sizeof(int), 0);
    int v = 0;
    int64_t fired = 0;
    /* Nothing else ready: the timeout case wins, not before its time. */
    int64_t t0 = gort_now();
    gort_case cs[] = {GORT_RECV(sel_ch, &v, NULL), GORT_RECV(gort_after(20 * MS), &fired, NULL)};
    assert_int_equal(gort_select(cs, 2, true), 1);
    int64_t took = gort_now() - t0;
    assert_true(took >= 20 * MS);
    assert_true(fired >= t0 + 20 * MS);
    assert_true(took < 5 * SEC);
    /* The channel is ready first: it wins, long before the timeout. */
    t0 = gort_now();
    gort_go(send_after_10ms, NULL);
    gort_case cs2[] = {GORT_RECV(sel_ch, &v, NULL), GORT_RECV(gort_after(10 * SEC), &fired, NULL)};
    assert_int_equal(gort_select(cs2, 2, true), 0);
    took = gort_now() - t0;
    assert_int_equal(v, 7);
    assert_true(took >= 10 * MS);
    assert_true(took < 5 * SEC);
    /* With default: never waits. */
    t0 = gort_now();
    gort_case cs3[] = {GORT_RECV(sel_ch, &v, NULL), GORT_RECV(gort_after(10 * MS), &fired, NULL)};
    assert_int_equal(gort_select(cs3, 2, false), -1);
    assert_true(gort_now() - t0 < SEC);
    settle();
}

/* ---- idle processors ----------------------------------------------------------------------------
 */

static void test_timer_wakes_idle_program(void **state)
{
    (void)state;
    settle();
    for (int i = 0; i < 3; i++) {
        int64_t t0 = gort_now();
        gort_sleep(20 * MS);
        int64_t took = gort_now() - t0;
        assert_true(took >= 20 * MS);
        assert_true(took < 5 * SEC);
    }
    struct run r;
    run_scenario("idle-sleep", one_proc, &r);
    CHECK(&r, "idle-sleep (GORT_MAXPROCS=1)", exited_with(&r, 0) && has(r.out, "ok\n"));
    run_free(&r);
    run_scenario("idle-sleep", NULL, &r);
    CHECK(&r, "idle-sleep", exited_with(&r, 0) && has(r.out, "ok\n"));
    run_free(&r);
}

static gort_chan *fd_ch;

static void fd_send(void *arg)
{
    (void)arg;
    int v = 9;
    gort_chan_send(fd_ch, &v);
}

static void test_no_false_deadlock(void **state)
{
    (void)state;
    settle();
    fd_ch = gort_chan_make(sizeof(int), 0);
    int64_t t0 = gort_now();
    gort_timer_after_func(50 * MS, fd_send, NULL);
    int v = 0;
    assert_true(gort_chan_recv(fd_ch, &v));
    assert_int_equal(v, 9);
    assert_true(gort_now() - t0 >= 50 * MS);
    struct run r;
    run_scenario("timer-only-wait", one_proc, &r);
    CHECK(&r, "timer-only-wait (GORT_MAXPROCS=1)", exited_with(&r, 0) && has(r.out, "ok\n"));
    run_free(&r);
    run_scenario("timer-only-wait", NULL, &r);
    CHECK(&r, "timer-only-wait", exited_with(&r, 0) && has(r.out, "ok\n"));
    run_free(&r);
    settle();
}

static void test_deadlock_after_timers(void **state)
{
    (void)state;
    const char *const *envs[] = {one_proc, NULL};
    for (int i = 0; i < 2; i++) {
        struct run r;
        run_scenario("deadlock-after-timers", envs[i], &r);
        CHECK(&r, "deadlock-after-timers",
              exited_with(&r, 2) &&
                  has(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        run_free(&r);
    }
}

enum { NIDLE = 100 };

static gort_waitgroup idle_wg;

static void idle_sleeper(void *arg)
{
    (void)arg;
    gort_sleep(SEC);
    gort_wg_done(&idle_wg);
}

static void test_idle_cpu(void **state)
{
    (void)state;
    settle();
    gort_wg_add(&idle_wg, NIDLE);
    for (int i = 0; i < NIDLE; i++)
        gort_go(idle_sleeper, NULL);
    gort_sleep(10 * MS); /* let them all park */
    int64_t c0 = cpu_ns(), t0 = gort_now();
    gort_sleep(SEC);
    int64_t c1 = cpu_ns(), t1 = gort_now();
    assert_true(wg_wait_bounded(&idle_wg));
    print_message("idle: %.1f ms CPU over %.1f ms\n", (c1 - c0) / 1e6, (t1 - t0) / 1e6);
    assert_true(c1 - c0 < 100 * MS);
    settle();
}

/* ---- a million pending timers ---------------------------------------------------------------- */

static void never_fn(void *arg)
{
    (void)arg;
}

static void test_million_timers(void **state)
{
    (void)state;
    settle();
    gort_timer **ts = calloc(MILLION_TIMERS, sizeof *ts);
    assert_non_null(ts);
    /* touch the array first so that it is not counted */
    memset(ts, 0xff, MILLION_TIMERS * sizeof *ts);
    long long rss0 = rss_bytes();
    int64_t t0 = gort_now();
    for (int i = 0; i < MILLION_TIMERS; i++)
        ts[i] = gort_timer_after_func(3600 * SEC, never_fn, NULL);
    int64_t t1 = gort_now();
    long long rss1 = rss_bytes();
    int bad = 0;
    for (int i = 0; i < MILLION_TIMERS; i++)
        if (!gort_timer_stop(ts[i])) bad++;
    int64_t t2 = gort_now();
    free(ts); /* the timers themselves are the runtime's */
    assert_true(rss0 > 0 && rss1 > 0);
    double per = (double)(rss1 - rss0) / MILLION_TIMERS;
    print_error("million timers: %d pending timers, %.1f bytes RSS each; create %.1f ns, "
                "stop %.1f ns\n",
                MILLION_TIMERS, per, (double)(t1 - t0) / MILLION_TIMERS,
                (double)(t2 - t1) / MILLION_TIMERS);
    assert_int_equal(bad, 0);
    assert_true(per < 512);
    settle();
}

/* ---- goroutines that switch directly ------------------------------------------------------------
 */

static void test_timer_fires_amid_direct_switches(void **state)
{
    (void)state;
    struct run r;
    run_scenario("switch-direct", one_proc, &r);
    CHECK(&r, "switch-direct (GORT_MAXPROCS=1)", exited_with(&r, 0) && has(r.out, "late_ns "));
    long long late = strtoll(strstr(r.out, "late_ns ") + 8, NULL, 10);
    print_message("5 ms sleep amid a ping-pong pair on one P: %.3f ms late\n", late / 1e6);
    CHECK(&r, "switch-direct (GORT_MAXPROCS=1)", late >= 0 && late < SEC);
    run_free(&r);
}

/* ---- concurrent stop/reset ----------------------------------------------------------------------
 */

/* Two goroutines resetting the same AfterFunc timer on two processors, as Go
 * allows. Fails today: gort_timer_reset is timer_del + timer_add with no lock
 * across the pair, so both resetters can reach timer_add after one del
 * ("fatal error: timer_add: timer already queued", or the timer pushed onto
 * two heaps when both pass timer_add's unlocked check). */
static void test_concurrent_reset(void **state)
{
    (void)state;
    static const char *const two_procs[] = {"GORT_MAXPROCS=2", NULL};
    struct run r;
    run_scenario("concurrent-reset", two_procs, &r);
    CHECK(&r, "concurrent-reset (GORT_MAXPROCS=2)", exited_with(&r, 0) && has(r.out, "ok\n"));
    run_free(&r);
}

/* ---- main ---------------------------------------------------------------------------------------
 */

/* Goroutines receiving from their own fast tickers, by plain receive and by
 * select: a timer function sends on the very channel whose lock a parking
 * receiver holds until it is off its stack. Timers must never run in that
 * window (they deadlocked there once, every time). */
static gort_waitgroup tick_wg;

static void tick_receiver(void *arg)
{
    gort_ticker *tk = gort_ticker_new(20 * US);
    int64_t v;
    for (int i = 0; i < 100; i++) {
        if ((uintptr_t)arg & 1) {
            gort_case cs[] = {GORT_RECV(gort_ticker_chan(tk), &v, NULL)};
            gort_select(cs, 1, true);
        } else {
            gort_case cs[] = {GORT_RECV(gort_ticker_chan(tk), &v, NULL),
                              GORT_RECV(NULL, NULL, NULL)};
            gort_select(cs, 2, true);
        }
        gort_chan_recv(gort_ticker_chan(tk), &v);
    }
    gort_ticker_stop(tk);
    gort_wg_done(&tick_wg);
}

static void test_ticker_receive_loops(void **state)
{
    (void)state;
    for (int procs = 1; procs <= 2; procs++) {
        int old = gort_maxprocs(procs);
        gort_wg_add(&tick_wg, 32);
        for (uintptr_t i = 0; i < 32; i++)
            gort_go(tick_receiver, (void *)i);
        gort_wg_wait(&tick_wg);
        gort_maxprocs(old);
    }
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka keeps its state in __thread variables: stay on one thread. */
    gort_lock_thread();
    rng_state ^= (uint64_t)gort_now();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleep_never_early),
        cmocka_unit_test(test_sleep_zero_and_negative),
        cmocka_unit_test(test_many_sleepers),
        cmocka_unit_test(test_after_func_all_run),
        cmocka_unit_test(test_after_fire_times_ordered),
        cmocka_unit_test(test_stop_before_fire),
        cmocka_unit_test(test_stop_after_fire),
        cmocka_unit_test(test_reset_pending),
        cmocka_unit_test(test_reset_fired_or_stopped),
        cmocka_unit_test(test_after_delivers_once),
        cmocka_unit_test(test_ticker_ticks),
        cmocka_unit_test(test_ticker_slow_receiver),
        cmocka_unit_test(test_ticker_stop),
        cmocka_unit_test(test_ticker_nonpositive_panics),
        cmocka_unit_test(test_select_timeout),
        cmocka_unit_test(test_timer_wakes_idle_program),
        cmocka_unit_test(test_no_false_deadlock),
        cmocka_unit_test(test_deadlock_after_timers),
        cmocka_unit_test(test_idle_cpu),
        cmocka_unit_test(test_million_timers),
        cmocka_unit_test(test_timer_fires_amid_direct_switches),
        cmocka_unit_test(test_concurrent_reset),
        cmocka_unit_test(test_ticker_receive_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return gort_main(scenario_main, argc, argv);
    return gort_main(run, argc, argv);
}
