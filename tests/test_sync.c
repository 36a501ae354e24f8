/* tests/test_sync.c: gort_once, gort_cond and gort_pool (sync/once.c,
 * sync/cond.c, sync/pool.c).
 *
 * Same rules as the other suites: the cmocka run is the main goroutine,
 * wired to its thread (cmocka's state is in __thread variables); goroutines
 * record what they saw and the test asserts after waiting for them; every
 * wait is bounded (WAIT_FOR), so a lost wake-up fails a test instead of
 * hanging it. Nothing asserts on timing.
 *
 * Pool tests call sync_pool_cleanup() directly (the collector calls it with
 * the world stopped): each such test makes sure no other goroutine is using
 * any pool meanwhile (settle() first, and only the main goroutine touches
 * pools around the call).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gort.h"
#include "sched/sched.h"
#include "sync/pool.h"
#include "sync/sync.h"

#include "gort_test.h"

/* ---- helpers ------------------------------------------------------------ */

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

/* Yield for about ns, letting others run. */
static void busy_yield(int64_t ns)
{
    int64_t end = gort_now() + ns;
    while (gort_now() < end)
        gort_yield();
}

/* ==== once ================================================================== */

#define ONCE_G 8

static struct {
    gort_once once;
    _Atomic bool go;
    _Atomic int calls;
    int value; /* plain: written by fn, read by every caller after once_do */
    _Atomic int seen[ONCE_G];
    gort_waitgroup wg;
} oc;

static void once_slow_init(void *arg)
{
    atomic_fetch_add(&oc.calls, 1);
    busy_yield(5 * MS); /* the other callers arrive and wait meanwhile */
    oc.value = (int)(intptr_t)arg;
}

static void once_caller(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    while (!atomic_load(&oc.go))
        gort_yield();
    gort_once_do(&oc.once, once_slow_init, (void *)(intptr_t)42);
    atomic_store(&oc.seen[i], oc.value);
    gort_wg_done(&oc.wg);
}

/* Concurrent callers: fn runs once, and every caller returns only after it
 * has finished (sees its result). */
static void test_once_concurrent(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&oc, 0, sizeof oc);
    gort_wg_add(&oc.wg, ONCE_G);
    for (uintptr_t i = 0; i < ONCE_G; i++)
        gort_go(once_caller, (void *)i);
    atomic_store(&oc.go, true);
    assert_true(wg_wait_bounded(&oc.wg));
    gort_maxprocs(old);
    assert_int_equal(atomic_load(&oc.calls), 1);
    for (int i = 0; i < ONCE_G; i++)
        assert_int_equal(atomic_load(&oc.seen[i]), 42);
    /* Later calls: fast path, fn not called. */
    gort_once_do(&oc.once, once_slow_init, (void *)(intptr_t)7);
    assert_int_equal(atomic_load(&oc.calls), 1);
    assert_int_equal(oc.value, 42);
    assert_int_equal(oc.once.done, 1);
    assert_int_equal(oc.once.m.state, 0);
}

static struct {
    gort_once once;
    _Atomic int calls;
    _Atomic bool in_fn;
    _Atomic int other_calls;
    _Atomic int waiter_done;
    bool try_ok;
    char msg[64];
    gort_waitgroup wg;
} op;

static void once_boom(void *arg)
{
    (void)arg;
    atomic_fetch_add(&op.calls, 1);
    atomic_store(&op.in_fn, true);
    busy_yield(5 * MS); /* a second caller queues on the once meanwhile */
    gort_panic("boom %d", 7);
}

static void once_other(void *arg)
{
    (void)arg;
    atomic_fetch_add(&op.other_calls, 1);
}

static void once_do_boom(void *arg)
{
    gort_once_do(arg, once_boom, NULL);
}

static void once_panicker(void *arg)
{
    (void)arg;
    const char *msg = NULL;
    op.try_ok = gort_try(once_do_boom, &op.once, &msg);
    snprintf(op.msg, sizeof op.msg, "%s", msg ? msg : "(null)");
    gort_wg_done(&op.wg);
}

static void once_waiter(void *arg)
{
    (void)arg;
    gort_once_do(&op.once, once_other, NULL); /* waits for the panicking fn */
    atomic_store(&op.waiter_done, 1);
    gort_wg_done(&op.wg);
}

/* A panicking fn counts as done: the panic reaches the caller's gort_try,
 * a caller that was waiting returns without running its fn, and later
 * callers do not run theirs. */
static void test_once_panic(void **state)
{
    (void)state;
    settle();
    memset(&op, 0, sizeof op);
    gort_wg_add(&op.wg, 2);
    gort_go(once_panicker, NULL);
    assert_true(WAIT_FOR(atomic_load(&op.in_fn)));
    gort_go(once_waiter, NULL);
    assert_true(wg_wait_bounded(&op.wg));
    assert_false(op.try_ok);
    assert_string_equal(op.msg, "boom 7");
    assert_int_equal(atomic_load(&op.calls), 1);
    assert_int_equal(atomic_load(&op.waiter_done), 1);
    assert_int_equal(atomic_load(&op.other_calls), 0);
    assert_int_equal(op.once.done, 1);
    assert_int_equal(op.once.m.state, 0);
    /* In the main goroutine too: recovered here, and fn never runs again. */
    const char *msg = NULL;
    gort_once o = {0};
    assert_false(gort_try(once_do_boom, &o, &msg));
    assert_string_equal(msg, "boom 7");
    gort_once_do(&o, once_other, NULL);
    assert_int_equal(atomic_load(&op.other_calls), 0);
    assert_int_equal(atomic_load(&op.calls), 2);
}

static struct {
    gort_once once;
    _Atomic int exited_in_fn;
    _Atomic int other_calls;
    _Atomic int after_done;
} oe;

static void once_exit_fn(void *arg)
{
    (void)arg;
    atomic_store(&oe.exited_in_fn, 1);
    gort_exit(); /* Goexit inside fn: the once must still complete */
}

static void once_exiter(void *arg)
{
    (void)arg;
    gort_once_do(&oe.once, once_exit_fn, NULL);
    atomic_store(&oe.exited_in_fn, 2); /* not reached */
}

static void once_exit_other(void *arg)
{
    (void)arg;
    atomic_fetch_add(&oe.other_calls, 1);
}

static void once_after(void *arg)
{
    (void)arg;
    gort_once_do(&oe.once, once_exit_other, NULL);
    atomic_store(&oe.after_done, 1);
}

/* fn ends its goroutine with gort_exit: the once is done and unlocked, as
 * Go's deferred Unlock/Store do for runtime.Goexit. */
static void test_once_goexit(void **state)
{
    (void)state;
    settle();
    memset(&oe, 0, sizeof oe);
    gort_go(once_exiter, NULL);
    assert_true(WAIT_FOR(atomic_load(&oe.exited_in_fn) != 0 && gort_num_goroutine() == 1));
    assert_int_equal(atomic_load(&oe.exited_in_fn), 1);
    gort_go(once_after, NULL);
    assert_true(WAIT_FOR(atomic_load(&oe.after_done) == 1));
    assert_int_equal(atomic_load(&oe.other_calls), 0);
    assert_int_equal(oe.once.done, 1);
    assert_int_equal(oe.once.m.state, 0);
}

/* ==== cond ================================================================== */

#define SIG_G 4

static struct {
    gort_mutex mu;
    gort_cond c;
    int tokens;          /* under mu */
    int order[SIG_G];    /* under mu: who consumed the k-th token */
    int nconsumed;       /* under mu */
    _Atomic int wakeups; /* returns from gort_cond_wait */
    gort_waitgroup wg;
} cs;

static uint32_t cond_tickets(gort_cond *c)
{
    return __atomic_load_n(&c->wait, __ATOMIC_ACQUIRE);
}

static void sig_waiter(void *arg)
{
    int id = (int)(intptr_t)arg;
    gort_mutex_lock(&cs.mu);
    while (cs.tokens == 0) {
        gort_cond_wait(&cs.c, &cs.mu);
        atomic_fetch_add(&cs.wakeups, 1);
    }
    cs.tokens--;
    cs.order[cs.nconsumed++] = id;
    gort_mutex_unlock(&cs.mu);
    gort_wg_done(&cs.wg);
}

/* Signal wakes exactly one waiter, the one that has waited longest. */
static void test_cond_signal_wakes_one(void **state)
{
    (void)state;
    settle();
    memset(&cs, 0, sizeof cs);
    gort_wg_add(&cs.wg, SIG_G);
    for (int i = 0; i < SIG_G; i++) {
        gort_go(sig_waiter, (void *)(intptr_t)i);
        /* Its ticket is taken (it is inside gort_cond_wait): queue order is
         * start order. */
        assert_true(WAIT_FOR(cond_tickets(&cs.c) == (uint32_t)i + 1));
    }
    for (int k = 0; k < SIG_G; k++) {
        gort_mutex_lock(&cs.mu);
        cs.tokens++;
        gort_cond_signal(&cs.c);
        gort_mutex_unlock(&cs.mu);
        assert_true(WAIT_FOR(atomic_load(&cs.wakeups) == k + 1));
        nap(5 * MS); /* nobody else wakes */
        assert_int_equal(atomic_load(&cs.wakeups), k + 1);
        gort_mutex_lock(&cs.mu);
        assert_int_equal(cs.nconsumed, k + 1);
        assert_int_equal(cs.order[k], k);
        gort_mutex_unlock(&cs.mu);
    }
    assert_true(wg_wait_bounded(&cs.wg));
    assert_int_equal(cs.c.wait, cs.c.notify);
    assert_null(cs.c.head);
    assert_null(cs.c.tail);
}

/* A signal with nobody waiting is not remembered: a later waiter sleeps
 * until the next signal. */
static void test_cond_signal_without_waiters(void **state)
{
    (void)state;
    settle();
    memset(&cs, 0, sizeof cs);
    gort_cond_signal(&cs.c);
    gort_cond_broadcast(&cs.c);
    assert_int_equal(cs.c.wait, 0);
    assert_int_equal(cs.c.notify, 0);
    gort_wg_add(&cs.wg, 1);
    gort_go(sig_waiter, (void *)(intptr_t)0);
    assert_true(WAIT_FOR(cond_tickets(&cs.c) == 1));
    nap(5 * MS);
    assert_int_equal(atomic_load(&cs.wakeups), 0);
    gort_mutex_lock(&cs.mu);
    cs.tokens = 1;
    gort_cond_signal(&cs.c);
    gort_mutex_unlock(&cs.mu);
    assert_true(wg_wait_bounded(&cs.wg));
    assert_int_equal(atomic_load(&cs.wakeups), 1);
}

#define BC_G 8

static struct {
    gort_mutex mu;
    gort_cond c;
    bool flag; /* under mu */
    _Atomic int wakeups, done;
    gort_waitgroup wg;
} bc;

static void bc_waiter(void *arg)
{
    (void)arg;
    gort_mutex_lock(&bc.mu);
    while (!bc.flag) {
        gort_cond_wait(&bc.c, &bc.mu);
        atomic_fetch_add(&bc.wakeups, 1);
    }
    atomic_fetch_add(&bc.done, 1);
    gort_mutex_unlock(&bc.mu);
    gort_wg_done(&bc.wg);
}

/* Broadcast wakes every waiter. */
static void test_cond_broadcast_wakes_all(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&bc, 0, sizeof bc);
    gort_wg_add(&bc.wg, BC_G);
    for (int i = 0; i < BC_G; i++)
        gort_go(bc_waiter, NULL);
    assert_true(WAIT_FOR(cond_tickets(&bc.c) == BC_G));
    nap(2 * MS);
    assert_int_equal(atomic_load(&bc.wakeups), 0);
    gort_mutex_lock(&bc.mu);
    bc.flag = true;
    gort_cond_broadcast(&bc.c);
    gort_mutex_unlock(&bc.mu);
    assert_true(wg_wait_bounded(&bc.wg));
    gort_maxprocs(old);
    assert_int_equal(atomic_load(&bc.done), BC_G);
    assert_int_equal(atomic_load(&bc.wakeups), BC_G);
    assert_int_equal(bc.c.wait, bc.c.notify);
    assert_null(bc.c.head);
}

/* Three goroutines, one mutex, three conds: each prints its word when it is
 * its turn and signals the next. Exactly 300 words, in order. */
#define PETS_ROUNDS 100

static const char *const pet_names[3] = {"cat", "dog", "fish"};

static struct {
    gort_mutex mu;
    gort_cond turn_cond[3];
    int turn; /* under mu */
    char buf[PETS_ROUNDS * 3 * 5 + 1];
    size_t len; /* under mu */
    int words;  /* under mu */
    gort_waitgroup wg;
} pets;

static void pet(void *arg)
{
    int i = (int)(intptr_t)arg;
    for (int k = 0; k < PETS_ROUNDS; k++) {
        gort_mutex_lock(&pets.mu);
        while (pets.turn != i)
            gort_cond_wait(&pets.turn_cond[i], &pets.mu);
        pets.len += (size_t)sprintf(pets.buf + pets.len, "%s\n", pet_names[i]);
        pets.words++;
        pets.turn = (i + 1) % 3;
        gort_cond_signal(&pets.turn_cond[(i + 1) % 3]);
        gort_mutex_unlock(&pets.mu);
    }
    gort_wg_done(&pets.wg);
}

static void run_pets(void)
{
    memset(&pets, 0, sizeof pets);
    gort_wg_add(&pets.wg, 3);
    for (int i = 2; i >= 0; i--) /* fish first: start order must not matter */
        gort_go(pet, (void *)(intptr_t)i);
    assert_true(wg_wait_bounded(&pets.wg));
    char want[sizeof pets.buf];
    size_t n = 0;
    for (int k = 0; k < PETS_ROUNDS; k++)
        for (int i = 0; i < 3; i++)
            n += (size_t)sprintf(want + n, "%s\n", pet_names[i]);
    assert_int_equal(pets.words, 3 * PETS_ROUNDS);
    assert_int_equal(pets.len, n);
    assert_string_equal(pets.buf, want);
}

static void test_cond_cat_dog_fish(void **state)
{
    (void)state;
    settle();
    int old = gort_maxprocs(1);
    run_pets();
    gort_maxprocs(2);
    run_pets();
    gort_maxprocs(old);
}

/* Ping-pong through one cond, many round trips on 2+ processors: a
 * notification lost between a waiter's ticket and its sleep would hang it. */
#define PP_ROUNDS 20000

static struct {
    gort_mutex mu;
    gort_cond c;
    long turn; /* under mu: even = ping's turn, odd = pong's */
    gort_waitgroup wg;
} pp;

static void pp_player(void *arg)
{
    long me = (long)(intptr_t)arg;
    for (long k = 0; k < PP_ROUNDS; k++) {
        gort_mutex_lock(&pp.mu);
        while ((pp.turn & 1) != me)
            gort_cond_wait(&pp.c, &pp.mu);
        pp.turn++;
        gort_mutex_unlock(&pp.mu);
        gort_cond_signal(&pp.c); /* outside the lock: the racy case */
    }
    gort_wg_done(&pp.wg);
}

static void test_cond_ping_pong(void **state)
{
    (void)state;
    settle();
    int old = procs_at_least(2);
    memset(&pp, 0, sizeof pp);
    gort_wg_add(&pp.wg, 2);
    gort_go(pp_player, (void *)(intptr_t)0);
    gort_go(pp_player, (void *)(intptr_t)1);
    assert_true(wg_wait_bounded(&pp.wg));
    gort_maxprocs(old);
    assert_int_equal(pp.turn, 2 * PP_ROUNDS);
}

/* ==== pool ================================================================== */

#define OBJ_MAGIC 0x9e3779b97f4a7c15ULL

struct obj {
    uint64_t magic;
    _Atomic int in_use; /* 1 while some goroutine holds it (not in the pool) */
    uint64_t owner;
};

static _Atomic long obj_news;

static void *obj_new(void)
{
    struct obj *o = calloc(1, sizeof *o);
    if (!o) abort();
    o->magic = OBJ_MAGIC;
    atomic_fetch_add(&obj_news, 1);
    return o;
}

/* Drop everything a test pool holds (two cleanups) so tests start clean. */
static void pools_reset(void)
{
    sync_pool_cleanup();
    sync_pool_cleanup();
}

static void test_pool_get_put_same_p(void **state)
{
    (void)state;
    settle();
    pools_reset();
    static gort_pool p; /* no new */
    int a, b, c;
    assert_null(gort_pool_get(&p));
    gort_pool_put(&p, NULL); /* ignored, as Go ignores nil */
    assert_null(gort_pool_get(&p));
    gort_pool_put(&p, &a);
    assert_ptr_equal(gort_pool_get(&p), &a);
    assert_null(gort_pool_get(&p));
    /* Private slot, then the shared stack. */
    gort_pool_put(&p, &a);
    gort_pool_put(&p, &b);
    gort_pool_put(&p, &c);
    void *got[3] = {gort_pool_get(&p), gort_pool_get(&p), gort_pool_get(&p)};
    assert_ptr_equal(got[0], &a); /* private first */
    assert_true((got[1] == &c && got[2] == &b) || (got[1] == &b && got[2] == &c));
    assert_null(gort_pool_get(&p));
    pools_reset();
}

static struct {
    _Atomic long calls;
} pn;

static int pn_obj;

static void *pn_new(void)
{
    atomic_fetch_add(&pn.calls, 1);
    return &pn_obj;
}

static void test_pool_new_when_empty(void **state)
{
    (void)state;
    settle();
    static gort_pool p = {.new = pn_new};
    int x;
    atomic_store(&pn.calls, 0);
    assert_ptr_equal(gort_pool_get(&p), &pn_obj);
    assert_int_equal(atomic_load(&pn.calls), 1);
    gort_pool_put(&p, &x);
    assert_ptr_equal(gort_pool_get(&p), &x); /* cached: new not called */
    assert_int_equal(atomic_load(&pn.calls), 1);
    assert_ptr_equal(gort_pool_get(&p), &pn_obj);
    assert_int_equal(atomic_load(&pn.calls), 2);
    pools_reset();
}

/* Objects survive one cleanup (in the victim cache) and are dropped by the
 * second; a pool unused for two cleanups holds no memory. */
static void test_pool_cleanup(void **state)
{
    (void)state;
    settle();
    pools_reset();
    static gort_pool p;
    int a, b;
    gort_pool_put(&p, &a);
    gort_pool_put(&p, &b);
    assert_non_null(p.local);
    sync_pool_cleanup();
    assert_null(p.local);
    assert_non_null(p.victim);
    void *g1 = gort_pool_get(&p), *g2 = gort_pool_get(&p);
    assert_true((g1 == &a && g2 == &b) || (g1 == &b && g2 == &a)); /* from the victim */
    assert_null(gort_pool_get(&p));

    gort_pool_put(&p, &a);
    gort_pool_put(&p, &b);
    sync_pool_cleanup();
    sync_pool_cleanup();
    assert_null(p.local); /* off the pool list, holding nothing */
    assert_null(p.victim);
    assert_null(gort_pool_get(&p)); /* dropped */

    /* With new: after two cleanups, get falls back to new. */
    static gort_pool q = {.new = pn_new};
    atomic_store(&pn.calls, 0);
    gort_pool_put(&q, &a);
    sync_pool_cleanup();
    assert_ptr_equal(gort_pool_get(&q), &a);
    gort_pool_put(&q, &a);
    sync_pool_cleanup();
    sync_pool_cleanup();
    assert_ptr_equal(gort_pool_get(&q), &pn_obj);
    assert_int_equal(atomic_load(&pn.calls), 1);
    pools_reset();
    assert_null(q.local);
    assert_null(q.victim);
}

/* Another goroutine (perhaps on another P) gets what main put: its own
 * caches are empty, so it steals main's shared stack. */
#define STEAL_N 100

static struct {
    gort_pool p;
    void *got[STEAL_N];
    int ngot;
    gort_waitgroup wg;
} st;

static void steal_getter(void *arg)
{
    (void)arg;
    void *x;
    while (st.ngot < STEAL_N && (x = gort_pool_get(&st.p)))
        st.got[st.ngot++] = x;
    gort_wg_done(&st.wg);
}

static void test_pool_steal(void **state)
{
    (void)state;
    settle();
    pools_reset();
    static char items[STEAL_N];
    memset(&st, 0, sizeof st);
    for (int i = 0; i < STEAL_N; i++)
        gort_pool_put(&st.p, &items[i]);
    gort_wg_add(&st.wg, 1);
    gort_go(steal_getter, NULL);
    assert_true(wg_wait_bounded(&st.wg));
    /* All but main's private slot are reachable from any P; everything
     * from the same P. No duplicates, nothing foreign. */
    assert_true(st.ngot >= STEAL_N - 1);
    bool seen[STEAL_N] = {0};
    for (int i = 0; i < st.ngot; i++) {
        char *c = st.got[i];
        assert_true(c >= items && c < items + STEAL_N);
        assert_false(seen[c - items]);
        seen[c - items] = true;
    }
    pools_reset();
}

/* Threads gort did not create (and goroutines without a P) use the pool
 * through the locked fallback. */
static struct {
    gort_pool p;
    void *got1, *got2;
} fp;

static int fp_a, fp_b;

static void *foreign_thread(void *arg)
{
    (void)arg;
    gort_pool_put(&fp.p, &fp_a);
    fp.got1 = gort_pool_get(&fp.p);
    gort_pool_put(&fp.p, &fp_b); /* left for the goroutine */
    return NULL;
}

static void test_pool_foreign_thread(void **state)
{
    (void)state;
    settle();
    pools_reset();
    memset(&fp, 0, sizeof fp);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, foreign_thread, NULL), 0);
    gort_blocking_begin();
    pthread_join(t, NULL);
    gort_blocking_end();
    assert_ptr_equal(fp.got1, &fp_a);
    assert_ptr_equal(gort_pool_get(&fp.p), &fp_b); /* stolen from entry 0 */
    assert_null(gort_pool_get(&fp.p));
    /* A goroutine inside a blocking region has no P: the same fallback. */
    gort_blocking_begin();
    gort_pool_put(&fp.p, &fp_a);
    void *got = gort_pool_get(&fp.p);
    gort_pool_put(&fp.p, &fp_b);
    gort_blocking_end();
    assert_ptr_equal(got, &fp_a);
    assert_ptr_equal(gort_pool_get(&fp.p), &fp_b);
    pools_reset();
}

/* Stress: goroutines get and put objects in small batches, checking that no
 * object is ever handed to two holders at once and none is corrupted. */
#define STRESS_G     4
#define STRESS_ITER  100000
#define STRESS_BATCH 8

static struct {
    gort_pool p;
    _Atomic long errors;
    _Atomic long ops;
    gort_waitgroup wg;
} ps;

static void stress_worker(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg + 1;
    struct obj *held[STRESS_BATCH];
    uint64_t r = id * 0x9e3779b97f4a7c15ULL;
    long done = 0;
    while (done < STRESS_ITER) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int k = 1 + (int)(r % STRESS_BATCH);
        for (int i = 0; i < k; i++) {
            struct obj *o = gort_pool_get(&ps.p);
            int zero = 0;
            if (!o || o->magic != OBJ_MAGIC ||
                !atomic_compare_exchange_strong(&o->in_use, &zero, 1))
                atomic_fetch_add(&ps.errors, 1);
            if (o) o->owner = id;
            held[i] = o;
        }
        if (r % 64 == 0) gort_yield(); /* hold across a switch (maybe another P) */
        for (int i = 0; i < k; i++) {
            struct obj *o = held[i];
            if (!o) continue;
            if (o->owner != id || o->magic != OBJ_MAGIC) atomic_fetch_add(&ps.errors, 1);
            atomic_store(&o->in_use, 0);
            gort_pool_put(&ps.p, o);
        }
        done += k;
    }
    atomic_fetch_add(&ps.ops, done);
    gort_wg_done(&ps.wg);
}

static void run_stress(int ngoroutines)
{
    gort_wg_add(&ps.wg, ngoroutines);
    for (uintptr_t i = 0; i < (uintptr_t)ngoroutines; i++)
        gort_go(stress_worker, (void *)i);
    assert_true(wg_wait_bounded(&ps.wg));
}

static void test_pool_stress(void **state)
{
    (void)state;
    settle();
    pools_reset();
    memset(&ps, 0, sizeof ps);
    ps.p.new = obj_new;
    atomic_store(&obj_news, 0);
    int old = procs_at_least(2);
    run_stress(STRESS_G);
    gort_maxprocs(old);
    print_message("    pool: %ld gets, %ld objects made\n", atomic_load(&ps.ops),
                  atomic_load(&obj_news));
    assert_int_equal(atomic_load(&ps.errors), 0);
    assert_true(atomic_load(&ps.ops) >= (long)STRESS_G * STRESS_ITER);
    pools_reset();
}

/* The per-P array grows when gomaxprocs does (P ids beyond the array), also
 * while goroutines are using the pool; cleanup then frees the replaced
 * arrays (ASan checks nobody still reads them). */
static void test_pool_maxprocs_grows(void **state)
{
    (void)state;
    settle();
    pools_reset();
    memset(&ps, 0, sizeof ps);
    ps.p.new = obj_new;
    int old = gort_maxprocs(1);
    int x;
    gort_pool_put(&ps.p, &x);
    assert_int_equal(ps.p.localn, 1);
    assert_ptr_equal(gort_pool_get(&ps.p), &x);
    gort_maxprocs(4);
    run_stress(8);
    assert_true(ps.p.localn >= 1 && ps.p.localn <= 4);
    gort_maxprocs(6);
    run_stress(8);
    gort_maxprocs(old);
    assert_int_equal(atomic_load(&ps.errors), 0);
    sync_pool_cleanup();
    run_stress(4);
    assert_int_equal(atomic_load(&ps.errors), 0);
    pools_reset();
    assert_null(ps.p.local);
    assert_null(ps.p.victim);
}

/* ==== main ================================================================== */

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka keeps its state in __thread variables: stay on one thread. */
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_concurrent),
        cmocka_unit_test(test_once_panic),
        cmocka_unit_test(test_once_goexit),
        cmocka_unit_test(test_cond_signal_wakes_one),
        cmocka_unit_test(test_cond_signal_without_waiters),
        cmocka_unit_test(test_cond_broadcast_wakes_all),
        cmocka_unit_test(test_cond_cat_dog_fish),
        cmocka_unit_test(test_cond_ping_pong),
        cmocka_unit_test(test_pool_get_put_same_p),
        cmocka_unit_test(test_pool_new_when_empty),
        cmocka_unit_test(test_pool_cleanup),
        cmocka_unit_test(test_pool_steal),
        cmocka_unit_test(test_pool_foreign_thread),
        cmocka_unit_test(test_pool_stress),
        cmocka_unit_test(test_pool_maxprocs_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}
