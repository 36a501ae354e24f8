/* tests/test_mutex.c: gort_mutex and gort_rwmutex (sync/mutex.c,
 * sync/rwmutex.c).
 *
 * The whole cmocka run is the main goroutine, wired to its thread
 * (gort_lock_thread) because cmocka keeps its state in __thread variables.
 * Assertions run only in the test functions: goroutines record what they saw
 * in shared variables, and the test asserts after waiting for them. Every
 * wait for another goroutine is bounded (WAIT_FOR), so a lost wake-up fails a
 * test instead of hanging it. Tests that need parallelism set two or more
 * processors themselves and restore the old count.
 *
 * Misuse that Go makes fatal ("sync: unlock of unlocked mutex", the two
 * RWMutex ones) is checked from outside: the test runs this very program
 * (/proc/self/exe) with a scenario flag, captures its stderr and expects
 * exit status 2 with the exact words.
 *
 * Timing is asserted only with bounds far above what a loaded 2-core machine
 * needs (seconds for what takes milliseconds); the timings themselves are
 * printed for information.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"
#include "sched/sched.h"
#include "sync/sync.h"

#include "gort_test.h"

/* Mirrors sync/mutex.c's state bits (white-box checks). */
#define MUTEX_LOCKED       1
#define MUTEX_STARVING     4
#define MUTEX_WAITER_SHIFT 3

/* ---- helpers ------------------------------------------------------------ */

/* Busy-wait ns without yielding (holds the CPU, and any lock held). */
static void spin_for(int64_t ns)
{
    int64_t end = gort_now() + ns;
    while (gort_now() < end)
        __builtin_ia32_pause();
}

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

/* ---- fatal scenarios (run as a subprocess) --------------------------------- */

#define SCENARIO_FLAG "--scenario"

static int scenario_main(int argc, char **argv)
{
    if (argc < 3) return 3;
    const char *s = argv[2];
    if (strcmp(s, "unlock-unlocked") == 0) {
        static gort_mutex m;
        gort_mutex_unlock(&m);
    } else if (strcmp(s, "unlock-twice") == 0) {
        static gort_mutex m;
        gort_mutex_lock(&m);
        gort_mutex_unlock(&m);
        gort_mutex_unlock(&m);
    } else if (strcmp(s, "runlock-unlocked") == 0) {
        static gort_rwmutex rw;
        gort_rwmutex_runlock(&rw);
    } else if (strcmp(s, "runlock-write-locked") == 0) {
        static gort_rwmutex rw;
        gort_rwmutex_lock(&rw);
        gort_rwmutex_runlock(&rw);
    } else if (strcmp(s, "rw-unlock-unlocked") == 0) {
        static gort_rwmutex rw;
        gort_rwmutex_unlock(&rw);
    } else {
        return 3;
    }
    return 0; /* not reached when the misuse is fatal */
}

/* Run this program with `--scenario name` (bounded 20 s); its stderr must
 * start with "fatal error: WORDS" and its exit status be 2. */
static void expect_fatal(const char *scenario, const char *words)
{
    char *args[] = {(char *)"test_mutex", (char *)SCENARIO_FLAG, (char *)scenario, NULL};
    struct run c;
    run_prog_blocking("/proc/self/exe", args, NULL, 20000, &c);
    assert_false(c.timed_out);
    if (!WIFEXITED(c.wstatus) || WEXITSTATUS(c.wstatus) != 2)
        fail_msg("scenario %s: status 0x%x, stderr:\n%s", scenario, c.wstatus, c.err);
    char want[256];
    snprintf(want, sizeof want, "fatal error: %s\n", words);
    if (strncmp(c.err, want, strlen(want)) != 0)
        fail_msg("scenario %s: stderr does not start with \"%s\":\n%s", scenario, want, c.err);
    run_free(&c);
}

static void test_mutex_unlock_unlocked_is_fatal(void **state)
{
    (void)state;
    expect_fatal("unlock-unlocked", "sync: unlock of unlocked mutex");
    expect_fatal("unlock-twice", "sync: unlock of unlocked mutex");
}

static void test_rwmutex_misuse_is_fatal(void **state)
{
    (void)state;
    expect_fatal("runlock-unlocked", "sync: RUnlock of unlocked RWMutex");
    expect_fatal("runlock-write-locked", "sync: RUnlock of unlocked RWMutex");
    expect_fatal("rw-unlock-unlocked", "sync: Unlock of unlocked RWMutex");
}

/* ---- mutual exclusion -------------------------------------------------------- */

#define EXCL_G    8
#define EXCL_ITER 10000

static struct {
    gort_mutex mu;
    long counter;         /* plain: protected by mu */
    _Atomic int inside;   /* goroutines inside the critical section */
    _Atomic int overlaps; /* times someone found another one inside */
    gort_waitgroup wg;
} excl;

static void excl_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < EXCL_ITER; i++) {
        gort_mutex_lock(&excl.mu);
        if (atomic_fetch_add(&excl.inside, 1) != 0) atomic_fetch_add(&excl.overlaps, 1);
        long v = excl.counter;
        /* Now and then stay inside across a yield so that others queue
         * and park while the lock is held. */
        if ((i + id) % 512 == 0) gort_yield();
        excl.counter = v + 1;
        atomic_fetch_sub(&excl.inside, 1);
        gort_mutex_unlock(&excl.mu);
    }
    gort_wg_done(&excl.wg);
}

/* 8 goroutines x 10k increments of a plain counter: exact result, and never
 * two goroutines inside at once. */
static void test_mutex_exclusion(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&excl, 0, sizeof excl);
    gort_wg_add(&excl.wg, EXCL_G);
    for (uintptr_t i = 0; i < EXCL_G; i++)
        gort_go(excl_worker, (void *)i);
    assert_true(wg_wait_bounded(&excl.wg));
    gort_maxprocs(old);
    assert_int_equal(excl.counter, (long)EXCL_G * EXCL_ITER);
    assert_int_equal(atomic_load(&excl.overlaps), 0);
    assert_int_equal(excl.mu.state, 0);
    assert_int_equal(sema_nwait(&excl.mu.sema), 0);
}

/* The same on one processor (no spinning: every contended lock parks). */
static void test_mutex_exclusion_1p(void **state)
{
    (void)state;
    settle();
    int old = gort_maxprocs(1);
    memset(&excl, 0, sizeof excl);
    gort_wg_add(&excl.wg, EXCL_G);
    for (uintptr_t i = 0; i < EXCL_G; i++)
        gort_go(excl_worker, (void *)i);
    assert_true(wg_wait_bounded(&excl.wg));
    gort_maxprocs(old);
    assert_int_equal(excl.counter, (long)EXCL_G * EXCL_ITER);
    assert_int_equal(atomic_load(&excl.overlaps), 0);
    assert_int_equal(excl.mu.state, 0);
}

/* ---- trylock ------------------------------------------------------------------ */

static struct {
    gort_mutex mu;
    _Atomic int result; /* -1 not yet, else the trylock result */
    gort_waitgroup wg;
} tl;

static void trylock_other(void *arg)
{
    (void)arg;
    bool ok = gort_mutex_trylock(&tl.mu);
    atomic_store(&tl.result, ok);
    if (ok) gort_mutex_unlock(&tl.mu);
    gort_wg_done(&tl.wg);
}

static void test_mutex_trylock(void **state)
{
    (void)state;
    settle();
    gort_mutex m = {0};
    assert_true(gort_mutex_trylock(&m)); /* free: taken */
    assert_int_equal(m.state, MUTEX_LOCKED);
    assert_false(gort_mutex_trylock(&m)); /* held (by us): fails, never blocks */
    gort_mutex_unlock(&m);
    assert_int_equal(m.state, 0);
    gort_mutex_lock(&m);
    assert_false(gort_mutex_trylock(&m));
    gort_mutex_unlock(&m);
    assert_true(gort_mutex_trylock(&m));
    gort_mutex_unlock(&m);

    /* Held by us: another goroutine's trylock fails; free: it succeeds. */
    memset(&tl, 0, sizeof tl);
    gort_mutex_lock(&tl.mu);
    atomic_store(&tl.result, -1);
    gort_wg_add(&tl.wg, 1);
    gort_go(trylock_other, NULL);
    assert_true(wg_wait_bounded(&tl.wg));
    assert_int_equal(atomic_load(&tl.result), 0);
    gort_mutex_unlock(&tl.mu);
    atomic_store(&tl.result, -1);
    gort_wg_add(&tl.wg, 1);
    gort_go(trylock_other, NULL);
    assert_true(wg_wait_bounded(&tl.wg));
    assert_int_equal(atomic_load(&tl.result), 1);

    /* Starvation mode: the mutex belongs to its queue even though LOCKED is
     * clear (white-box: a waiter is about to receive it); trylock must not
     * take it. */
    gort_mutex s = {.state = MUTEX_STARVING | (1 << MUTEX_WAITER_SHIFT)};
    assert_false(gort_mutex_trylock(&s));
    assert_int_equal(s.state, MUTEX_STARVING | (1 << MUTEX_WAITER_SHIFT));
}

/* ---- lock and unlock by different goroutines ----------------------------------- */

static struct {
    gort_mutex mu;
    _Atomic int step;
    gort_waitgroup wg;
} xo;

static void xo_unlocker(void *arg)
{
    (void)arg;
    gort_mutex_unlock(&xo.mu); /* locked by main */
    atomic_store(&xo.step, 1);
    gort_wg_done(&xo.wg);
}

static void xo_locker(void *arg)
{
    (void)arg;
    gort_mutex_lock(&xo.mu); /* main unlocks it */
    atomic_store(&xo.step, 2);
    gort_wg_done(&xo.wg);
}

static void xo_blocked_locker(void *arg)
{
    (void)arg;
    atomic_store(&xo.step, 3);
    gort_mutex_lock(&xo.mu); /* blocks until main's lock is released by xo_unlocker */
    atomic_store(&xo.step, 4);
    gort_mutex_unlock(&xo.mu);
    gort_wg_done(&xo.wg);
}

static void test_mutex_cross_goroutine_unlock(void **state)
{
    (void)state;
    settle();
    memset(&xo, 0, sizeof xo);
    /* Main locks, another goroutine unlocks. */
    gort_mutex_lock(&xo.mu);
    gort_wg_add(&xo.wg, 1);
    gort_go(xo_unlocker, NULL);
    assert_true(wg_wait_bounded(&xo.wg));
    assert_int_equal(xo.mu.state, 0);
    /* Another goroutine locks, main unlocks. */
    gort_wg_add(&xo.wg, 1);
    gort_go(xo_locker, NULL);
    assert_true(wg_wait_bounded(&xo.wg));
    assert_int_equal(atomic_load(&xo.step), 2);
    gort_mutex_unlock(&xo.mu);
    assert_int_equal(xo.mu.state, 0);
    /* Main locks; a goroutine blocks in lock; a third one unlocks main's
     * lock, which releases the blocked one. */
    atomic_store(&xo.step, 0);
    gort_mutex_lock(&xo.mu);
    gort_wg_add(&xo.wg, 1);
    gort_go(xo_blocked_locker, NULL);
    assert_true(WAIT_FOR(sema_nwait(&xo.mu.sema) == 1)); /* it parked */
    assert_int_equal(atomic_load(&xo.step), 3);
    assert_int_equal(xo.mu.state >> MUTEX_WAITER_SHIFT, 1);
    gort_wg_add(&xo.wg, 1);
    gort_go(xo_unlocker, NULL);
    assert_true(wg_wait_bounded(&xo.wg));
    assert_int_equal(atomic_load(&xo.step), 4);
    assert_int_equal(xo.mu.state, 0);
}

/* ---- parked waiters are counted and all released ----------------------------------- */

#define PARK_G 16

static struct {
    gort_mutex mu;
    _Atomic int got;
    gort_waitgroup wg;
} pk;

static void pk_worker(void *arg)
{
    (void)arg;
    gort_mutex_lock(&pk.mu);
    atomic_fetch_add(&pk.got, 1);
    gort_mutex_unlock(&pk.mu);
    gort_wg_done(&pk.wg);
}

static void test_mutex_waiters_park(void **state)
{
    (void)state;
    settle();
    memset(&pk, 0, sizeof pk);
    gort_mutex_lock(&pk.mu);
    gort_wg_add(&pk.wg, PARK_G);
    for (int i = 0; i < PARK_G; i++)
        gort_go(pk_worker, NULL);
    /* Each spins at most a few rounds, then counts itself and parks. */
    assert_true(WAIT_FOR(sema_nwait(&pk.mu.sema) == PARK_G));
    assert_int_equal(pk.mu.state >> MUTEX_WAITER_SHIFT, PARK_G);
    assert_int_equal(atomic_load(&pk.got), 0);
    gort_mutex_unlock(&pk.mu);
    assert_true(wg_wait_bounded(&pk.wg));
    assert_int_equal(atomic_load(&pk.got), PARK_G);
    assert_int_equal(pk.mu.state, 0);
    assert_int_equal(sema_nwait(&pk.mu.sema), 0);
}

/* ---- starvation mode ------------------------------------------------------------- */

#define FAIR_ROUNDS 10

static struct {
    gort_mutex mu;
    _Atomic bool stop;
    _Atomic int rounds;        /* acquisitions by the waiter */
    _Atomic int64_t max_wait;  /* longest single lock() of the waiter, ns */
    _Atomic long barger_iters; /* the barger's acquisitions */
    _Atomic bool saw_starving; /* the barger saw STARVING while holding it */
    gort_waitgroup wg;
} fair;

/* Holds the lock 100 us at a time, never yields, relocks at once. */
static void fair_barger(void *arg)
{
    (void)arg;
    while (!atomic_load(&fair.stop)) {
        gort_mutex_lock(&fair.mu);
        spin_for(100 * US);
        if (__atomic_load_n(&fair.mu.state, __ATOMIC_RELAXED) & MUTEX_STARVING)
            atomic_store(&fair.saw_starving, true);
        gort_mutex_unlock(&fair.mu);
        atomic_fetch_add(&fair.barger_iters, 1);
    }
    gort_wg_done(&fair.wg);
}

static void fair_waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < FAIR_ROUNDS; i++) {
        spin_for(100 * US);
        int64_t t0 = gort_now();
        gort_mutex_lock(&fair.mu);
        int64_t w = gort_now() - t0;
        gort_mutex_unlock(&fair.mu);
        if (w > atomic_load(&fair.max_wait)) atomic_store(&fair.max_wait, w);
        atomic_fetch_add(&fair.rounds, 1);
    }
    gort_wg_done(&fair.wg);
}

/* Go's TestMutexFairness: a goroutine that keeps the lock busy cannot keep
 * another from getting it. In normal mode the woken waiter loses every race
 * to the barger (which is running and relocks at once); after 1 ms of that
 * it turns the mutex starving and the next unlock hands it over. Bound: all
 * 10 acquisitions within 10 s and none over 2 s (each takes about 1-2 ms). */
static void test_mutex_starvation_bounds_wait(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&fair, 0, sizeof fair);
    gort_wg_add(&fair.wg, 2);
    gort_go(fair_barger, NULL);
    assert_true(WAIT_FOR(atomic_load(&fair.barger_iters) > 10));
    gort_go(fair_waiter, NULL);
    bool done = WAIT_FOR(atomic_load(&fair.rounds) == FAIR_ROUNDS);
    long iters = atomic_load(&fair.barger_iters);
    atomic_store(&fair.stop, true);
    assert_true(wg_wait_bounded(&fair.wg));
    gort_maxprocs(old);
    print_message("    starvation: waiter's longest lock %.3f ms, barger iterations %ld, "
                  "starving seen %d\n",
                  atomic_load(&fair.max_wait) / 1e6, iters, (int)atomic_load(&fair.saw_starving));
    assert_true(done);
    assert_true(atomic_load(&fair.max_wait) < 2 * SEC);
    assert_int_equal(fair.mu.state, 0);
}

/* One processor, a barger that yields while holding the lock: every time it
 * unlocks, the woken waiter is queued behind it and finds the lock retaken
 * when it runs. In normal mode the waiter would never get the lock; after
 * 1 ms of waiting it makes the mutex starving and the next unlock hands the
 * lock to it. Deterministic: the waiter's 10 rounds must all complete while
 * the barger keeps running (bounded at 10 s; each takes about 1 ms). */
static void fair1_barger(void *arg)
{
    (void)arg;
    while (!atomic_load(&fair.stop)) {
        gort_mutex_lock(&fair.mu);
        spin_for(20 * US);
        gort_yield(); /* the waiter runs now and finds the lock held */
        if (__atomic_load_n(&fair.mu.state, __ATOMIC_RELAXED) & MUTEX_STARVING)
            atomic_store(&fair.saw_starving, true);
        gort_mutex_unlock(&fair.mu);
        atomic_fetch_add(&fair.barger_iters, 1);
    }
    gort_wg_done(&fair.wg);
}

static void fair1_waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < FAIR_ROUNDS; i++) {
        int64_t t0 = gort_now();
        gort_mutex_lock(&fair.mu);
        int64_t w = gort_now() - t0;
        gort_mutex_unlock(&fair.mu);
        if (w > atomic_load(&fair.max_wait)) atomic_store(&fair.max_wait, w);
        atomic_fetch_add(&fair.rounds, 1);
        gort_yield();
    }
    gort_wg_done(&fair.wg);
}

static void test_mutex_starvation_handoff_1p(void **state)
{
    (void)state;
    settle();
    int old = gort_maxprocs(1);
    memset(&fair, 0, sizeof fair);
    gort_wg_add(&fair.wg, 2);
    gort_go(fair1_barger, NULL);
    assert_true(WAIT_FOR(atomic_load(&fair.barger_iters) > 10));
    gort_go(fair1_waiter, NULL);
    bool done = WAIT_FOR(atomic_load(&fair.rounds) == FAIR_ROUNDS);
    long iters = atomic_load(&fair.barger_iters);
    atomic_store(&fair.stop, true);
    assert_true(wg_wait_bounded(&fair.wg));
    gort_maxprocs(old);
    print_message("    starvation (1 P): waiter's longest lock %.3f ms, barger iterations %ld\n",
                  atomic_load(&fair.max_wait) / 1e6, iters);
    assert_true(done);
    assert_true(atomic_load(&fair.saw_starving));
    assert_int_equal(fair.mu.state, 0);
}

/* ---- rwmutex ------------------------------------------------------------------- */

static struct {
    gort_rwmutex rw;
    _Atomic int step;
    _Atomic int readers_inside;
    _Atomic int max_inside;
    gort_waitgroup wg;
} rr;

static void rr_second_reader(void *arg)
{
    (void)arg;
    gort_rwmutex_rlock(&rr.rw); /* main holds a read lock: must not block */
    atomic_store(&rr.step, 1);
    gort_rwmutex_runlock(&rr.rw);
    gort_wg_done(&rr.wg);
}

static void rr_reader_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        gort_rwmutex_rlock(&rr.rw);
        int n = atomic_fetch_add(&rr.readers_inside, 1) + 1;
        int m = atomic_load(&rr.max_inside);
        while (n > m && !atomic_compare_exchange_weak(&rr.max_inside, &m, n)) {
        }
        spin_for(2 * US);
        atomic_fetch_sub(&rr.readers_inside, 1);
        gort_rwmutex_runlock(&rr.rw);
    }
    gort_wg_done(&rr.wg);
}

/* Readers share: a reader gets in while another holds a read lock (exact),
 * and with 2+ processors several readers are seen inside at once
 * (reported, not asserted: timing). */
static void test_rwmutex_readers_share(void **state)
{
    (void)state;
    settle();
    memset(&rr, 0, sizeof rr);
    gort_rwmutex_rlock(&rr.rw);
    gort_wg_add(&rr.wg, 1);
    gort_go(rr_second_reader, NULL);
    assert_true(wg_wait_bounded(&rr.wg)); /* it finished while we hold ours */
    assert_int_equal(atomic_load(&rr.step), 1);
    gort_rwmutex_runlock(&rr.rw);
    assert_int_equal(rr.rw.reader_count, 0);

    int old = procs_at_least(2);
    gort_wg_add(&rr.wg, 4);
    for (int i = 0; i < 4; i++)
        gort_go(rr_reader_loop, NULL);
    assert_true(wg_wait_bounded(&rr.wg));
    gort_maxprocs(old);
    print_message("    rwmutex: at most %d readers inside at once\n", atomic_load(&rr.max_inside));
    assert_true(atomic_load(&rr.max_inside) >= 1);
    assert_int_equal(rr.rw.reader_count, 0);
    assert_int_equal(rr.rw.reader_wait, 0);
}

#define RWX_WRITERS 4
#define RWX_READERS 4
#define RWX_ITER    5000

static struct {
    gort_rwmutex rw;
    long a, b;                  /* plain; writers keep a == b under the lock */
    _Atomic int writers_inside; /* must be 0 or 1; 0 while a reader is inside */
    _Atomic int readers_inside;
    _Atomic int violations;
    gort_waitgroup wg;
} rwx;

static void rwx_writer(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < RWX_ITER; i++) {
        gort_rwmutex_lock(&rwx.rw);
        if (atomic_fetch_add(&rwx.writers_inside, 1) != 0 || atomic_load(&rwx.readers_inside) != 0)
            atomic_fetch_add(&rwx.violations, 1);
        rwx.a++;
        if ((i + id) % 256 == 0) gort_yield(); /* others queue behind us */
        rwx.b++;
        atomic_fetch_sub(&rwx.writers_inside, 1);
        gort_rwmutex_unlock(&rwx.rw);
    }
    gort_wg_done(&rwx.wg);
}

static void rwx_reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < RWX_ITER; i++) {
        gort_rwmutex_rlock(&rwx.rw);
        atomic_fetch_add(&rwx.readers_inside, 1);
        if (atomic_load(&rwx.writers_inside) != 0 || rwx.a != rwx.b)
            atomic_fetch_add(&rwx.violations, 1);
        atomic_fetch_sub(&rwx.readers_inside, 1);
        gort_rwmutex_runlock(&rwx.rw);
    }
    gort_wg_done(&rwx.wg);
}

/* Writers exclude each other and readers: exact counters, and readers never
 * see a half-done update. */
static void test_rwmutex_writer_exclusion(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&rwx, 0, sizeof rwx);
    gort_wg_add(&rwx.wg, RWX_WRITERS + RWX_READERS);
    for (uintptr_t i = 0; i < RWX_WRITERS; i++) {
        gort_go(rwx_writer, (void *)i);
        gort_go(rwx_reader, NULL);
    }
    assert_true(wg_wait_bounded(&rwx.wg));
    gort_maxprocs(old);
    assert_int_equal(rwx.a, (long)RWX_WRITERS * RWX_ITER);
    assert_int_equal(rwx.b, (long)RWX_WRITERS * RWX_ITER);
    assert_int_equal(atomic_load(&rwx.violations), 0);
    assert_int_equal(rwx.rw.reader_count, 0);
    assert_int_equal(rwx.rw.reader_wait, 0);
    assert_int_equal(rwx.rw.w.state, 0);
}

/* A writer holds the lock: a reader blocks until it unlocks, then sees the
 * write. */
static struct {
    gort_rwmutex rw;
    int value; /* plain: written under the write lock */
    _Atomic int seen;
    _Atomic int started;
    gort_waitgroup wg;
} rwb;

static void rwb_reader(void *arg)
{
    (void)arg;
    atomic_store(&rwb.started, 1);
    gort_rwmutex_rlock(&rwb.rw);
    atomic_store(&rwb.seen, rwb.value);
    gort_rwmutex_runlock(&rwb.rw);
    gort_wg_done(&rwb.wg);
}

static void test_rwmutex_reader_waits_for_writer(void **state)
{
    (void)state;
    settle();
    memset(&rwb, 0, sizeof rwb);
    gort_rwmutex_lock(&rwb.rw);
    gort_wg_add(&rwb.wg, 1);
    gort_go(rwb_reader, NULL);
    assert_true(WAIT_FOR(sema_nwait(&rwb.rw.reader_sem) == 1)); /* parked */
    assert_int_equal(atomic_load(&rwb.seen), 0);
    rwb.value = 42;
    gort_rwmutex_unlock(&rwb.rw);
    assert_true(wg_wait_bounded(&rwb.wg));
    assert_int_equal(atomic_load(&rwb.seen), 42);
    assert_int_equal(rwb.rw.reader_count, 0);
}

#define WS_READERS 4

static struct {
    gort_rwmutex rw;
    int written;                 /* plain: set under the write lock */
    _Atomic bool stop;           /* fallback, should the writer never get in */
    _Atomic int readers_running; /* readers that have taken the lock once */
    _Atomic int readers_saw;     /* readers that observed the write */
    _Atomic bool writer_done;
    _Atomic int64_t writer_wait;
    gort_waitgroup wg;
} ws;

/* Keeps re-acquiring the read lock, overlapping with the other readers,
 * until it observes the writer's store. */
static void ws_reader(void *arg)
{
    (void)arg;
    bool counted = false;
    unsigned k = 0;
    while (!atomic_load(&ws.stop)) {
        gort_rwmutex_rlock(&ws.rw);
        int w = ws.written;
        if (!counted) {
            atomic_fetch_add(&ws.readers_running, 1);
            counted = true;
        }
        spin_for(20 * US);
        gort_rwmutex_runlock(&ws.rw);
        if (w) {
            atomic_fetch_add(&ws.readers_saw, 1);
            break;
        }
        if (++k % 8 == 0) gort_yield();
    }
    gort_wg_done(&ws.wg);
}

static void ws_writer(void *arg)
{
    (void)arg;
    int64_t t0 = gort_now();
    gort_rwmutex_lock(&ws.rw);
    atomic_store(&ws.writer_wait, gort_now() - t0);
    ws.written = 1;
    gort_rwmutex_unlock(&ws.rw);
    atomic_store(&ws.writer_done, true);
    gort_wg_done(&ws.wg);
}

/* Writer preference: a continuous stream of overlapping readers does not
 * keep a writer out; once it has written, every reader observes it. */
static void test_rwmutex_writer_not_starved(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&ws, 0, sizeof ws);
    gort_wg_add(&ws.wg, WS_READERS + 1);
    for (int i = 0; i < WS_READERS; i++)
        gort_go(ws_reader, NULL);
    assert_true(WAIT_FOR(atomic_load(&ws.readers_running) == WS_READERS));
    gort_go(ws_writer, NULL);
    bool writer_in = WAIT_FOR(atomic_load(&ws.writer_done));
    bool all_saw = WAIT_FOR(atomic_load(&ws.readers_saw) == WS_READERS);
    atomic_store(&ws.stop, true);
    assert_true(wg_wait_bounded(&ws.wg));
    gort_maxprocs(old);
    print_message("    rwmutex: writer waited %.3f ms for %d readers\n",
                  atomic_load(&ws.writer_wait) / 1e6, WS_READERS);
    assert_true(writer_in);
    assert_true(all_saw);
    assert_int_equal(ws.rw.reader_count, 0);
}

/* ---- main ------------------------------------------------------------------------ */

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka keeps its state in __thread variables: stay on one thread. */
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutex_exclusion),
        cmocka_unit_test(test_mutex_exclusion_1p),
        cmocka_unit_test(test_mutex_trylock),
        cmocka_unit_test(test_mutex_cross_goroutine_unlock),
        cmocka_unit_test(test_mutex_waiters_park),
        cmocka_unit_test(test_mutex_starvation_bounds_wait),
        cmocka_unit_test(test_mutex_starvation_handoff_1p),
        cmocka_unit_test(test_mutex_unlock_unlocked_is_fatal),
        cmocka_unit_test(test_rwmutex_readers_share),
        cmocka_unit_test(test_rwmutex_writer_exclusion),
        cmocka_unit_test(test_rwmutex_reader_waits_for_writer),
        cmocka_unit_test(test_rwmutex_writer_not_starved),
        cmocka_unit_test(test_rwmutex_misuse_is_fatal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return gort_main(scenario_main, argc, argv);
    return gort_main(run, argc, argv);
}
