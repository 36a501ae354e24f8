/* tests/test_sched.c: scheduler behaviour through the public API, with the
 * default number of processors (at least 2: tests that need two set it).
 *
 * The whole cmocka run is the main goroutine (main() hands run() to
 * gort_main), wired to its thread with gort_lock_thread() because cmocka
 * keeps its state in __thread variables. cmocka's assertions longjmp, so
 * they are only ever called from the test functions themselves, never inside
 * spawned goroutines: those record what they saw in shared variables and
 * atomics, and the test asserts after waiting for them (gort_wg_wait).
 *
 * Every wait for another goroutine or thread is a bounded poll (WAIT_FOR:
 * gort_yield, with short naps inside a blocking region) so a bug fails a test
 * instead of hanging it. Nothing asserts on timing except the idle-CPU bound,
 * which is generous (100 ms of CPU in a 1 s idle window). Each test starts
 * with only the main goroutine alive (settle()).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"
#include "sched/sched.h"
#include "sync/sync.h"

#include "gort_test.h"

/* ---- helpers ------------------------------------------------------------ */

/* Goroutine exit is asynchronous (the G is freed after it switches away):
 * wait until only the main goroutine is left. */
static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
    assert_int_equal(gort_self(), 1);
}

/* ---- ids -------------------------------------------------------------------- */

#define NIDS 64

static struct {
    gort_waitgroup wg;
    _Atomic uint64_t seen[NIDS];
    _Atomic uint64_t seen_m[NIDS]; /* gort_m()->curg->goid */
} ids;

static void record_self(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    atomic_store(&ids.seen[i], gort_self());
    struct m *m = gort_m();
    atomic_store(&ids.seen_m[i], m && m->curg ? m->curg->goid : 0);
    gort_wg_done(&ids.wg);
}

/* main is goroutine 1; gort_go returns the id the goroutine sees; ids from
 * one burst of spawns are distinct and increasing. */
static void test_self_ids(void **state)
{
    (void)state;
    settle();
    assert_int_equal(gort_self(), 1);
    struct m *m = gort_m();
    assert_non_null(m);
    assert_non_null(m->curg);
    assert_int_equal(m->curg->goid, 1);

    memset(&ids, 0, sizeof ids);
    uint64_t got[NIDS];
    gort_wg_add(&ids.wg, NIDS);
    for (uintptr_t i = 0; i < NIDS; i++)
        got[i] = gort_go(record_self, (void *)i);
    gort_wg_wait(&ids.wg);
    for (int i = 0; i < NIDS; i++) {
        assert_true(got[i] > 1);
        if (i > 0) assert_true(got[i] > got[i - 1]);
        assert_int_equal(atomic_load(&ids.seen[i]), got[i]);
        assert_int_equal(atomic_load(&ids.seen_m[i]), got[i]);
    }
    /* A second burst: new ids, all above the first burst's. */
    memset(&ids, 0, sizeof ids);
    uint64_t last = got[NIDS - 1];
    gort_wg_add(&ids.wg, NIDS);
    for (uintptr_t i = 0; i < NIDS; i++)
        got[i] = gort_go(record_self, (void *)i);
    gort_wg_wait(&ids.wg);
    for (int i = 0; i < NIDS; i++) {
        assert_true(got[i] > last);
        last = got[i];
        assert_int_equal(atomic_load(&ids.seen[i]), got[i]);
    }
    assert_int_equal(gort_self(), 1);
}

/* ---- gort_num_goroutine ------------------------------------------------------ */

static struct {
    gort_waitgroup gate, started, finished;
} ng;

static void gated(void *arg)
{
    (void)arg;
    gort_wg_done(&ng.started);
    gort_wg_wait(&ng.gate);
    gort_wg_done(&ng.finished);
}

static void test_num_goroutine(void **state)
{
    (void)state;
    enum { N = 100 };
    settle();
    int base = gort_num_goroutine();
    assert_int_equal(base, 1);

    memset(&ng, 0, sizeof ng);
    gort_wg_add(&ng.gate, 1);
    gort_wg_add(&ng.started, N);
    gort_wg_add(&ng.finished, N);
    for (int i = 0; i < N; i++)
        gort_go(gated, NULL);
    assert_int_equal(gort_num_goroutine(), base + N); /* counted at spawn */
    gort_wg_wait(&ng.started);
    assert_true(WAIT_FOR(sema_nwait(&ng.gate.sema) == N)); /* all parked */
    assert_int_equal(gort_num_goroutine(), base + N);

    gort_wg_done(&ng.gate);
    gort_wg_wait(&ng.finished);
    assert_true(WAIT_FOR(gort_num_goroutine() == base));
    assert_int_equal(gort_num_goroutine(), base);
}

/* ---- many goroutines ------------------------------------------------------------- */

static gort_waitgroup many_wg;
static _Atomic int64_t many_count;

static void incr(void *arg)
{
    (void)arg;
    atomic_fetch_add(&many_count, 1);
    gort_wg_done(&many_wg);
}

static void test_spawn_10000(void **state)
{
    (void)state;
    enum { N = 10000 };
    settle();
    atomic_store(&many_count, 0);
    gort_wg_add(&many_wg, N);
    for (int i = 0; i < N; i++)
        gort_go(incr, NULL);
    gort_wg_wait(&many_wg);
    assert_int_equal(atomic_load(&many_count), N);
    /* Again, reusing the dead Gs. */
    gort_wg_add(&many_wg, N);
    for (int i = 0; i < N; i++)
        gort_go(incr, NULL);
    gort_wg_wait(&many_wg);
    assert_int_equal(atomic_load(&many_count), 2 * N);
}

/* A tree: every node below the leaves spawns FAN children. */
enum { FAN = 10, DEPTH = 4 }; /* 1 + 10 + 100 + 1000 + 10000 = 11111 nodes */

static gort_waitgroup tree_wg;
static _Atomic int64_t tree_count;

static void tree_node(void *arg)
{
    uintptr_t depth = (uintptr_t)arg;
    atomic_fetch_add(&tree_count, 1);
    if (depth < DEPTH) {
        gort_wg_add(&tree_wg, FAN); /* before our Done: the counter stays > 0 */
        for (int i = 0; i < FAN; i++)
            gort_go(tree_node, (void *)(depth + 1));
    }
    gort_wg_done(&tree_wg);
}

static void test_spawn_tree(void **state)
{
    (void)state;
    settle();
    int64_t want = 0, level = 1;
    for (int d = 0; d <= DEPTH; d++, level *= FAN)
        want += level;
    atomic_store(&tree_count, 0);
    gort_wg_add(&tree_wg, 1);
    gort_go(tree_node, (void *)0);
    gort_wg_wait(&tree_wg);
    assert_int_equal(atomic_load(&tree_count), want);
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

/* ---- migration --------------------------------------------------------------------- */

/* Make sure at least two processors run; returns the value to restore. */
static int ensure_two_procs(void)
{
    int old = gort_maxprocs(0);
    if (old < 2) assert_int_equal(gort_maxprocs(2), old);
    return old;
}

static void restore_procs(int old)
{
    if (gort_maxprocs(0) != old) gort_maxprocs(old);
    assert_int_equal(gort_maxprocs(0), old);
}

enum { NMIG = 4, MIG_ITERS = 20000 };

static struct {
    gort_waitgroup wg;
    uint64_t id[NMIG]; /* as seen by the goroutine */
    _Atomic int64_t bad_self, bad_m, bad_tid;
    _Atomic int64_t moves;
} mig;

/* After every yield: gort_self() is still ours, the runtime's current M
 * runs us, and that M is the thread we are on (checked through gort_m()'s
 * uncacheable TLS read and the kernel's thread id, not a __thread copy). */
static void migrator(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    uint64_t me = gort_self();
    mig.id[k] = me;
    pid_t last = tid();
    int64_t moves = 0, bad_self = 0, bad_m = 0, bad_tid = 0;
    for (int i = 0; i < MIG_ITERS; i++) {
        /* Now and then a short blocking region: the P goes to another M,
         * and leaving the region without a P queues us for any M. */
        if (i % 500 == 250) nap(20 * US);
        gort_yield();
        if (gort_self() != me) bad_self++;
        struct m *m = gort_m();
        if (!m || !m->curg || m->curg->goid != me || !m->p) bad_m++;
        pid_t now = tid();
        if (m && m->tid != now) bad_tid++;
        if (now != last) {
            moves++;
            last = now;
        }
    }
    atomic_fetch_add(&mig.bad_self, bad_self);
    atomic_fetch_add(&mig.bad_m, bad_m);
    atomic_fetch_add(&mig.bad_tid, bad_tid);
    atomic_fetch_add(&mig.moves, moves);
    gort_wg_done(&mig.wg);
}

static void test_migration_self_consistent(void **state)
{
    (void)state;
    settle();
    int old = ensure_two_procs();
    memset(&mig, 0, sizeof mig);
    uint64_t got[NMIG];
    gort_wg_add(&mig.wg, NMIG);
    for (uintptr_t k = 0; k < NMIG; k++)
        got[k] = gort_go(migrator, (void *)k);
    gort_wg_wait(&mig.wg);
    for (int k = 0; k < NMIG; k++)
        assert_int_equal(mig.id[k], got[k]);
    assert_int_equal(atomic_load(&mig.bad_self), 0);
    assert_int_equal(atomic_load(&mig.bad_m), 0);
    assert_int_equal(atomic_load(&mig.bad_tid), 0);
    print_message("migration: %lld thread changes in %d yields\n",
                  (long long)atomic_load(&mig.moves), NMIG * MIG_ITERS);
    assert_int_equal(gort_self(), 1);
    restore_procs(old);
}

/* ---- gort_lock_thread ----------------------------------------------------------------- */

enum { NCHURN = 4, LOCKED_YIELDS = 2000 };

static struct {
    gort_waitgroup wg;
    _Atomic int started;
    _Atomic bool done;
    _Atomic int64_t churn;
    bool churners_ok;
    int64_t locked_bad, locked_yields, unlocked_bad, unlocked_moves;
    uint64_t id;
} lt;

static void churner(void *arg)
{
    (void)arg;
    atomic_fetch_add(&lt.started, 1);
    int64_t deadline = gort_now() + 20 * SEC;
    while (!atomic_load(&lt.done) && gort_now() < deadline) {
        atomic_fetch_add(&lt.churn, 1);
        gort_yield();
    }
    gort_wg_done(&lt.wg);
}

static void locked_worker(void *arg)
{
    (void)arg;
    uint64_t me = gort_self();
    lt.id = me;
    lt.churners_ok = WAIT_FOR(atomic_load(&lt.started) == NCHURN);

    gort_lock_thread();
    pid_t t0 = tid();
    struct m *m0 = gort_m();
    int64_t bad = 0;
    for (int i = 0; i < LOCKED_YIELDS; i++) {
        if (i % 200 == 100) nap(20 * US); /* leaving it must not move us */
        gort_yield();
        struct m *m = gort_m();
        if (tid() != t0 || m != m0 || gort_self() != me || !m->curg || m->curg->goid != me ||
            m->curg->lockedm != m || m->lockedg != m->curg)
            bad++;
    }
    lt.locked_bad = bad;
    lt.locked_yields = LOCKED_YIELDS;
    gort_unlock_thread();

    /* Free to move again: only self-consistency is checked. */
    pid_t last = tid();
    bad = 0;
    int64_t moves = 0;
    for (int i = 0; i < LOCKED_YIELDS; i++) {
        if (i % 200 == 100) nap(20 * US);
        gort_yield();
        struct m *m = gort_m();
        if (gort_self() != me || !m->curg || m->curg->goid != me || m->tid != tid() ||
            m->curg->lockedm || m->lockedg)
            bad++;
        if (tid() != last) {
            moves++;
            last = tid();
        }
    }
    lt.unlocked_bad = bad;
    lt.unlocked_moves = moves;
    atomic_store(&lt.done, true);
    gort_wg_done(&lt.wg);
}

static void test_lock_thread_pins(void **state)
{
    (void)state;
    settle();
    int old = ensure_two_procs();
    memset(&lt, 0, sizeof lt);
    gort_wg_add(&lt.wg, NCHURN + 1);
    for (int i = 0; i < NCHURN; i++)
        gort_go(churner, NULL);
    uint64_t id = gort_go(locked_worker, NULL);
    gort_wg_wait(&lt.wg);
    assert_true(lt.churners_ok);
    assert_int_equal(lt.id, id);
    assert_int_equal(lt.locked_yields, LOCKED_YIELDS);
    assert_int_equal(lt.locked_bad, 0);
    assert_int_equal(lt.unlocked_bad, 0);
    assert_true(atomic_load(&lt.done));
    assert_true(atomic_load(&lt.churn) > 0);
    print_message("lock_thread: %lld churner yields, %lld moves after unlock\n",
                  (long long)atomic_load(&lt.churn), (long long)lt.unlocked_moves);
    restore_procs(old);
}

static struct {
    gort_waitgroup wg;
    _Atomic bool done;
    uint32_t count_after_2, count_after_1, count_after_0, count_after_extra;
    bool locked_after_1, pinned_after_1, unlocked_after_0;
} nest;

static void nest_churner(void *arg)
{
    (void)arg;
    int64_t deadline = gort_now() + 20 * SEC;
    while (!atomic_load(&nest.done) && gort_now() < deadline)
        gort_yield();
    gort_wg_done(&nest.wg);
}

static void nest_worker(void *arg)
{
    (void)arg;
    gort_lock_thread();
    gort_lock_thread();
    nest.count_after_2 = gort_g()->lockcount;
    gort_unlock_thread();
    nest.count_after_1 = gort_g()->lockcount;
    struct m *m = gort_m();
    nest.locked_after_1 = gort_g()->lockedm == m && m->lockedg == gort_g();
    pid_t t0 = tid();
    bool pinned = true;
    for (int i = 0; i < 200; i++) {
        gort_yield();
        if (tid() != t0 || gort_m() != m) pinned = false;
    }
    nest.pinned_after_1 = pinned;
    gort_unlock_thread();
    m = gort_m();
    nest.count_after_0 = gort_g()->lockcount;
    nest.unlocked_after_0 = gort_g()->lockedm == NULL && m->lockedg == NULL;
    gort_unlock_thread(); /* one too many: ignored */
    nest.count_after_extra = gort_g()->lockcount;
    atomic_store(&nest.done, true);
    gort_wg_done(&nest.wg);
}

static void test_lock_thread_nested(void **state)
{
    (void)state;
    settle();
    memset(&nest, 0, sizeof nest);
    gort_wg_add(&nest.wg, 2);
    gort_go(nest_churner, NULL);
    gort_go(nest_worker, NULL);
    gort_wg_wait(&nest.wg);
    assert_int_equal(nest.count_after_2, 2);
    assert_int_equal(nest.count_after_1, 1);
    assert_true(nest.locked_after_1);
    assert_true(nest.pinned_after_1);
    assert_int_equal(nest.count_after_0, 0);
    assert_true(nest.unlocked_after_0);
    assert_int_equal(nest.count_after_extra, 0);
}

/* ---- blocking regions ---------------------------------------------------------------- */

static struct {
    gort_waitgroup wg;
    _Atomic bool counter_started;
    _Atomic int sleepers_done;
    _Atomic int64_t ticks;
    int64_t progress[2];
    bool ok[2];
} blk;

static void tick_counter(void *arg)
{
    (void)arg;
    atomic_store(&blk.counter_started, true);
    int64_t deadline = gort_now() + 20 * SEC;
    while (atomic_load(&blk.sleepers_done) < 2 && gort_now() < deadline) {
        atomic_fetch_add(&blk.ticks, 1);
        gort_yield();
    }
    gort_wg_done(&blk.wg);
}

static void sleeper(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    blk.ok[k] = WAIT_FOR(atomic_load(&blk.counter_started));
    gort_blocking_begin();
    int64_t before = atomic_load(&blk.ticks);
    struct timespec ts = {0, 200 * MS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    int64_t after = atomic_load(&blk.ticks);
    gort_blocking_end();
    blk.progress[k] = after - before;
    atomic_fetch_add(&blk.sleepers_done, 1);
    gort_wg_done(&blk.wg);
}

/* Two goroutines sleep 200 ms in blocking regions (as many as there are
 * processors by default): another goroutine keeps running meanwhile. */
static void test_blocking_region_progress(void **state)
{
    (void)state;
    settle();
    memset(&blk, 0, sizeof blk);
    gort_wg_add(&blk.wg, 3);
    gort_go(sleeper, (void *)0);
    gort_go(sleeper, (void *)1);
    gort_go(tick_counter, NULL);
    gort_wg_wait(&blk.wg);
    assert_true(blk.ok[0]);
    assert_true(blk.ok[1]);
    assert_int_equal(atomic_load(&blk.sleepers_done), 2);
    print_message("blocking: %lld and %lld ticks during the sleeps\n", (long long)blk.progress[0],
                  (long long)blk.progress[1]);
    assert_true(blk.progress[0] > 0);
    assert_true(blk.progress[1] > 0);
}

enum { NREAD = 3, NWORK = 1000 };

static struct {
    gort_waitgroup readers, workers;
    int fds[NREAD][2];
    _Atomic int entered;
    ssize_t n[NREAD];
    char byte[NREAD];
    _Atomic int64_t work;
} rd;

static void pipe_reader(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    char c = 0;
    gort_blocking_begin();
    atomic_fetch_add(&rd.entered, 1);
    ssize_t n;
    do
        n = read(rd.fds[k][0], &c, 1);
    while (n < 0 && errno == EINTR);
    gort_blocking_end();
    rd.n[k] = n;
    rd.byte[k] = c;
    gort_wg_done(&rd.readers);
}

static void work_item(void *arg)
{
    (void)arg;
    atomic_fetch_add(&rd.work, 1);
    gort_yield();
    gort_wg_done(&rd.workers);
}

/* More goroutines than processors block in read() inside blocking regions;
 * everything else still runs. */
static void test_blocking_region_pipe_read(void **state)
{
    (void)state;
    settle();
    memset(&rd, 0, sizeof rd);
    for (int k = 0; k < NREAD; k++)
        assert_int_equal(pipe(rd.fds[k]), 0);
    gort_wg_add(&rd.readers, NREAD);
    for (uintptr_t k = 0; k < NREAD; k++)
        gort_go(pipe_reader, (void *)k);
    assert_true(WAIT_FOR(atomic_load(&rd.entered) == NREAD));

    gort_wg_add(&rd.workers, NWORK);
    for (int i = 0; i < NWORK; i++)
        gort_go(work_item, NULL);
    gort_wg_wait(&rd.workers);
    assert_int_equal(atomic_load(&rd.work), NWORK);
    for (int k = 0; k < NREAD; k++)
        assert_int_equal(rd.n[k], 0); /* still blocked */

    for (int k = 0; k < NREAD; k++) {
        char c = (char)('a' + k);
        assert_int_equal(write(rd.fds[k][1], &c, 1), 1);
    }
    gort_wg_wait(&rd.readers);
    for (int k = 0; k < NREAD; k++) {
        assert_int_equal(rd.n[k], 1);
        assert_int_equal(rd.byte[k], 'a' + k);
        close(rd.fds[k][0]);
        close(rd.fds[k][1]);
    }
}

/* ---- gort_maxprocs ----------------------------------------------------------------------- */

static void test_maxprocs_query(void **state)
{
    (void)state;
    settle();
    int n = gort_maxprocs(0);
    assert_true(n >= 1);
    assert_int_equal(gort_maxprocs(-1), n);
    assert_int_equal(gort_maxprocs(0), n);
    assert_int_equal(gort_maxprocs(n), n); /* setting the same value: no change */
    assert_int_equal(gort_maxprocs(0), n);
}

enum { NBUSY = 100, BUSY_ITERS = 2000 };

static struct {
    gort_waitgroup wg;
    _Atomic int64_t count;
} busy;

static void busy_yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < BUSY_ITERS; i++) {
        atomic_fetch_add(&busy.count, 1);
        gort_yield();
    }
    gort_wg_done(&busy.wg);
}

/* Shrinking to one processor and growing back while 100 goroutines yield
 * loses none of them; each call returns the previous value. */
static void test_maxprocs_change_under_load(void **state)
{
    (void)state;
    settle();
    int orig = gort_maxprocs(0);
    int hi = orig >= 2 ? orig : 2;
    if (orig != hi) assert_int_equal(gort_maxprocs(hi), orig);

    memset(&busy, 0, sizeof busy);
    gort_wg_add(&busy.wg, NBUSY);
    for (int i = 0; i < NBUSY; i++)
        gort_go(busy_yielder, NULL);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 50; i++)
            gort_yield();
        assert_int_equal(gort_maxprocs(1), hi);
        assert_int_equal(gort_maxprocs(0), 1);
        for (int i = 0; i < 50; i++)
            gort_yield();
        assert_int_equal(gort_maxprocs(hi), 1);
        assert_int_equal(gort_maxprocs(0), hi);
    }
    gort_wg_wait(&busy.wg);
    assert_int_equal(atomic_load(&busy.count), (int64_t)NBUSY * BUSY_ITERS);
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
    restore_procs(orig);
}

/* ---- gort_exit ----------------------------------------------------------------------------- */

static struct {
    gort_waitgroup wg;
    _Atomic int after_exit;
    _Atomic int reached;
} ex;

static void exit_now(void)
{
    gort_exit();
}

/* The compiler must not know that the call does not return. */
static void (*volatile exit_fn)(void) = exit_now;

static void exiter(void *arg)
{
    uintptr_t depth = (uintptr_t)arg;
    atomic_fetch_add(&ex.reached, 1);
    if (depth > 0) {
        exiter((void *)(depth - 1)); /* gort_exit unwinds through our frames */
        atomic_fetch_add(&ex.after_exit, 1);
        return;
    }
    gort_wg_done(&ex.wg);
    exit_fn();
    atomic_fetch_add(&ex.after_exit, 1);
}

static void test_exit_from_goroutine(void **state)
{
    (void)state;
    enum { N = 20 };
    settle();
    memset(&ex, 0, sizeof ex);
    gort_wg_add(&ex.wg, N);
    for (uintptr_t i = 0; i < N; i++)
        gort_go(exiter, (void *)(i % 4));
    gort_wg_wait(&ex.wg);
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
    assert_int_equal(atomic_load(&ex.after_exit), 0);
    int reached = 0;
    for (int i = 0; i < N; i++)
        reached += i % 4 + 1;
    assert_int_equal(atomic_load(&ex.reached), reached);

    /* The exited goroutines' Gs are reused without trouble. */
    atomic_store(&many_count, 0);
    gort_wg_add(&many_wg, 2 * N);
    for (int i = 0; i < 2 * N; i++)
        gort_go(incr, NULL);
    gort_wg_wait(&many_wg);
    assert_int_equal(atomic_load(&many_count), 2 * N);
}

/* ---- waitgroup ------------------------------------------------------------------------------ */

static void wg_incr(void *arg)
{
    gort_waitgroup *wg = arg;
    atomic_fetch_add(&many_count, 1);
    gort_wg_done(wg);
}

static void test_wg_reuse(void **state)
{
    (void)state;
    enum { ROUNDS = 50, N = 20 };
    settle();
    gort_waitgroup wg = {0};
    atomic_store(&many_count, 0);
    for (int r = 0; r < ROUNDS; r++) {
        gort_wg_add(&wg, N);
        for (int i = 0; i < N; i++)
            gort_go(wg_incr, &wg);
        gort_wg_wait(&wg);
        assert_int_equal(atomic_load(&many_count), (int64_t)(r + 1) * N);
    }
    gort_wg_wait(&wg); /* counter zero: returns at once */
}

enum { NWAITERS = 50 };

static struct {
    gort_waitgroup gate, all;
    _Atomic int released;
} mw;

static void wg_waiter(void *arg)
{
    (void)arg;
    gort_wg_wait(&mw.gate);
    atomic_fetch_add(&mw.released, 1);
    gort_wg_done(&mw.all);
}

static void test_wg_many_waiters(void **state)
{
    (void)state;
    settle();
    memset(&mw, 0, sizeof mw);
    gort_wg_add(&mw.gate, 1);
    gort_wg_add(&mw.all, NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        gort_go(wg_waiter, NULL);
    assert_true(WAIT_FOR(sema_nwait(&mw.gate.sema) == NWAITERS));
    assert_int_equal(atomic_load(&mw.released), 0);
    gort_wg_done(&mw.gate); /* one Done releases every waiter */
    gort_wg_wait(&mw.all);
    assert_int_equal(atomic_load(&mw.released), NWAITERS);
    assert_int_equal(sema_nwait(&mw.gate.sema), 0);
    gort_wg_wait(&mw.gate);
}

static struct {
    gort_waitgroup wg;
    _Atomic uint64_t who[64];
} an;

static void done_from(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    for (int k = 0; k < (int)(i % 7); k++)
        gort_yield();
    atomic_store(&an.who[i], gort_self());
    gort_wg_done(&an.wg);
}

/* Add(n) once, then n Done calls, each from a different goroutine. */
static void test_wg_add_n_done(void **state)
{
    (void)state;
    enum { N = 64 };
    settle();
    memset(&an, 0, sizeof an);
    gort_wg_add(&an.wg, N);
    uint64_t ids_[N];
    for (uintptr_t i = 0; i < N; i++)
        ids_[i] = gort_go(done_from, (void *)i);
    gort_wg_wait(&an.wg);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&an.who[i]), ids_[i]);
}

/* ---- sema ----------------------------------------------------------------------------------- */

static struct {
    gort_waitgroup wg;
    uint32_t sem;
    _Atomic int acquired;
    _Atomic int order_n;
    int order[8];
} sm;

static void sema_waiter(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    sema_acquire(&sm.sem, false, WAIT_TEST);
    int i = atomic_fetch_add(&sm.order_n, 1);
    sm.order[i] = (int)k;
    atomic_fetch_add(&sm.acquired, 1);
    gort_wg_done(&sm.wg);
}

static void test_sema_blocks_until_release(void **state)
{
    (void)state;
    settle();
    memset(&sm, 0, sizeof sm);
    gort_wg_add(&sm.wg, 1);
    gort_go(sema_waiter, (void *)0);
    assert_true(WAIT_FOR(sema_nwait(&sm.sem) == 1));
    for (int i = 0; i < 100; i++)
        gort_yield();
    nap(10 * MS);
    assert_int_equal(atomic_load(&sm.acquired), 0);
    assert_int_equal(sema_nwait(&sm.sem), 1);
    sema_release(&sm.sem, false);
    gort_wg_wait(&sm.wg);
    assert_int_equal(atomic_load(&sm.acquired), 1);
    assert_int_equal(sm.sem, 0);
    assert_int_equal(sema_nwait(&sm.sem), 0);

    /* A count released first is taken without blocking. */
    sema_release(&sm.sem, false);
    assert_int_equal(sm.sem, 1);
    sema_acquire(&sm.sem, false, WAIT_TEST);
    assert_int_equal(sm.sem, 0);
}

/* Five waiters queued in a known order are released in that order, one per
 * release (one processor, so each runs before the next release). */
static void test_sema_fifo(void **state)
{
    (void)state;
    enum { N = 5 };
    settle();
    int old = gort_maxprocs(1);
    memset(&sm, 0, sizeof sm);
    gort_wg_add(&sm.wg, N);
    for (uintptr_t k = 0; k < N; k++) {
        gort_go(sema_waiter, (void *)k);
        assert_true(WAIT_FOR(sema_nwait(&sm.sem) == k + 1));
    }
    for (int k = 0; k < N; k++) {
        assert_int_equal(atomic_load(&sm.order_n), k);
        sema_release(&sm.sem, false);
        assert_true(WAIT_FOR(atomic_load(&sm.order_n) == k + 1));
        assert_int_equal(sema_nwait(&sm.sem), N - k - 1);
    }
    gort_wg_wait(&sm.wg);
    for (int k = 0; k < N; k++)
        assert_int_equal(sm.order[k], k);
    assert_int_equal(gort_maxprocs(old), 1);
}

/* ---- idle CPU ------------------------------------------------------------------------------- */

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * US;
}

/* Voluntary context switches of every thread of this process so far. */
static long wakeups(void)
{
    long total = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* the thread exited meanwhile */
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "voluntary_ctxt_switches:", 24)) total += atol(line + 24);
        fclose(f);
    }
    closedir(d);
    return total;
}

/* With every goroutine parked and main in a blocking region, no thread
 * spins: the process uses (almost) no CPU, and its threads (sysmon above all)
 * stay asleep: a sysmon that polled for 20 ms after each of its bounded
 * sleeps woke 700 times a second here, too little CPU for the first check. */
static void test_idle_uses_no_cpu(void **state)
{
    (void)state;
    settle();
    memset(&mw, 0, sizeof mw);
    gort_wg_add(&mw.gate, 1);
    gort_wg_add(&mw.all, NWAITERS);
    for (int i = 0; i < NWAITERS; i++)
        gort_go(wg_waiter, NULL);
    assert_true(WAIT_FOR(sema_nwait(&mw.gate.sema) == NWAITERS));

    nap(50 * MS); /* sysmon notices that every P is idle */
    long s0 = wakeups();
    int64_t c0 = cpu_ns(), w0 = gort_now();
    nap(1 * SEC);
    int64_t c1 = cpu_ns(), w1 = gort_now();
    long s1 = wakeups();
    print_message("idle: %.1f ms CPU and %ld thread wake-ups in %.0f ms\n", (c1 - c0) / 1e6,
                  s1 - s0, (w1 - w0) / 1e6);
    assert_true(w1 - w0 >= 1 * SEC);
    assert_true(c1 - c0 < 100 * MS);
    assert_true(s0 >= 0 && s1 - s0 < 300); /* about 130 here; 600+ with the bug */

    gort_wg_done(&mw.gate);
    gort_wg_wait(&mw.all);
    assert_int_equal(atomic_load(&mw.released), NWAITERS);
}

/* ---- runtime bug: a wired main goroutine and checkdead ----------------------------------------
 */

#define REPRO_LOCKED_MAIN "--repro-locked-main"

static void done_arg(void *arg)
{
    gort_wg_done(arg);
}

/* The reproduction, run as a child process (the bug is a fatal error). The
 * main goroutine wires itself to its thread, then repeatedly blocks on a
 * waitgroup that other goroutines release. */
static int repro_locked_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gort_lock_thread();
    for (int r = 0; r < 100; r++) {
        gort_waitgroup wg = {0};
        gort_wg_add(&wg, 4);
        for (int i = 0; i < 4; i++)
            gort_go(done_arg, &wg);
        gort_wg_wait(&wg);
    }
    return 0;
}

/* Regression test for a runtime bug found by this suite (sched/proc.c,
 * stoplockedm/startlockedm): the wired M sleeping in stoplockedm counted
 * itself in sched.nmidlelocked and only decremented it after waking up.
 * startlockedm (another M) woke it and then went idle in stopm, whose
 * checkdead still counted the wired M as idle, saw no running M and died
 * with "fatal error: all goroutines are asleep - deadlock!" although the
 * wired goroutine was about to run. Go decrements the count in
 * startlockedm, before the wake-up. The reproduction runs in a child (the
 * bug was fatal) and must exit 0. */
static void test_locked_main_no_false_deadlock(void **state)
{
    (void)state;
    settle();
    char *args[] = {(char *)"test_sched", (char *)REPRO_LOCKED_MAIN, NULL};
    struct run r;
    run_prog_blocking("/proc/self/exe", args, NULL, 20000, &r);
    if (r.timed_out) {
        dump(&r, REPRO_LOCKED_MAIN, "to end");
        fail_msg("the reproduction hung");
    }
    if (!WIFEXITED(r.wstatus) || WEXITSTATUS(r.wstatus) != 0) dump(&r, REPRO_LOCKED_MAIN, "exit 0");
    assert_true(WIFEXITED(r.wstatus));
    assert_int_equal(WEXITSTATUS(r.wstatus), 0);
    run_free(&r);
}

/* ---- main ------------------------------------------------------------------------------------ */

/* fork() from a goroutine while others run on other threads: the child
 * keeps a usable runtime of one thread (proc.c's atfork handlers) and can
 * spawn goroutines, wait and hand values over channels. */
static _Atomic int fork_stop;

static void fork_busy(void *arg)
{
    while (!atomic_load(&fork_stop))
        gort_yield();
    gort_wg_done(arg);
}

static void fork_child_worker(void *arg)
{
    gort_wg_done(arg);
}

static void fork_pong(void *arg)
{
    gort_chan *c = arg;
    int v;
    while (gort_chan_recv(c, &v)) {
        v++;
        gort_chan_send(c, &v);
        if (v > 2000) break;
    }
}

static int fork_child_main(void)
{
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 200);
    for (int i = 0; i < 200; i++)
        gort_go(fork_child_worker, &wg);
    gort_wg_wait(&wg);
    gort_chan *c = gort_chan_make(sizeof(int), 0);
    gort_go(fork_pong, c);
    int v = 0;
    for (int i = 0; i < 1000; i++) {
        v++;
        gort_chan_send(c, &v);
        gort_chan_recv(c, &v);
    }
    return v == 2000 ? 42 : 1;
}

static void test_fork_child_keeps_runtime(void **state)
{
    (void)state;
    gort_waitgroup busy = {0};
    atomic_store(&fork_stop, 0);
    gort_wg_add(&busy, 4);
    for (int i = 0; i < 4; i++)
        gort_go(fork_busy, &busy);
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(fork_child_main());
        int status = 0;
        gort_blocking_begin();
        int ended = waitpid_bounded(pid, now_ms() + 20000, &status);
        gort_blocking_end();
        if (ended == 0) fail_msg("forked child hung");
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 42);
    }
    atomic_store(&fork_stop, 1);
    gort_wg_wait(&busy);
}

/* Several goroutines change gort_maxprocs at once while others run: stop-
 * the-world is serialised (a second stopper used to overwrite the first's
 * count and both slept forever). Every call returns a value in range and
 * no goroutine is lost. */
static _Atomic int mp_stop;
static _Atomic long mp_work;

static void mp_spinner(void *arg)
{
    while (!atomic_load(&mp_stop)) {
        atomic_fetch_add(&mp_work, 1);
        gort_yield();
    }
    gort_wg_done(arg);
}

static _Atomic int mp_bad;
static gort_waitgroup mp_changers;

static void mp_changer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 500; i++) {
        seed = seed * 1103515245 + 12345;
        int old = gort_maxprocs(2 + (int)((seed >> 16) % 3)); /* >= 2: stoppers overlap */
        if (old < 2 || old > 4) atomic_fetch_add(&mp_bad, 1);
    }
}

static void mp_changer_main(void *arg)
{
    mp_changer(arg);
    gort_wg_done(&mp_changers);
}

static void test_maxprocs_concurrent_changers(void **state)
{
    (void)state;
    int orig = gort_maxprocs(0);
    gort_maxprocs(2);
    gort_waitgroup spin = {0};
    atomic_store(&mp_stop, 0);
    gort_wg_add(&spin, 8);
    for (int i = 0; i < 8; i++)
        gort_go(mp_spinner, &spin);
    gort_wg_add(&mp_changers, 4);
    for (int i = 0; i < 4; i++)
        gort_go(mp_changer_main, (void *)(uintptr_t)(i + 1));
    gort_wg_wait(&mp_changers);
    atomic_store(&mp_stop, 1);
    gort_wg_wait(&spin);
    gort_maxprocs(orig);
    assert_int_equal(atomic_load(&mp_bad), 0);
    assert_true(atomic_load(&mp_work) > 0);
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka keeps its state (the running test, the jmp_buf its assertions
     * longjmp to) in __thread variables: the main goroutine must stay on
     * one thread while cmocka runs, or a later assertion reads another
     * thread's copy and cmocka exits with status 255 or crashes. */
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_ids),
        cmocka_unit_test(test_num_goroutine),
        cmocka_unit_test(test_spawn_10000),
        cmocka_unit_test(test_spawn_tree),
        cmocka_unit_test(test_migration_self_consistent),
        cmocka_unit_test(test_lock_thread_pins),
        cmocka_unit_test(test_lock_thread_nested),
        cmocka_unit_test(test_blocking_region_progress),
        cmocka_unit_test(test_blocking_region_pipe_read),
        cmocka_unit_test(test_maxprocs_query),
        cmocka_unit_test(test_maxprocs_change_under_load),
        cmocka_unit_test(test_exit_from_goroutine),
        cmocka_unit_test(test_wg_reuse),
        cmocka_unit_test(test_wg_many_waiters),
        cmocka_unit_test(test_wg_add_n_done),
        cmocka_unit_test(test_sema_blocks_until_release),
        cmocka_unit_test(test_sema_fifo),
        cmocka_unit_test(test_idle_uses_no_cpu),
        cmocka_unit_test(test_locked_main_no_false_deadlock),
        cmocka_unit_test(test_fork_child_keeps_runtime),
        cmocka_unit_test(test_maxprocs_concurrent_changers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], REPRO_LOCKED_MAIN) == 0)
        return gort_main(repro_locked_main, argc, argv);
    return gort_main(run, argc, argv);
}
