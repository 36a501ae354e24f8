/* tests/test_runq.c: the local run queue (sched/runq.c) without the runtime.
 *
 * The Ps here are plain allocations and the Gs are tokens: the run queues
 * only use a G's identity, so a calloc'd array of struct g stands in for
 * goroutines and a token's index is its position in the array. gomaxprocs
 * is set to the number of Ps in use because globrunq_get divides by it; the
 * global queue is drained before and after each test (through the API, so
 * the test does not depend on its representation).
 *
 * The concurrent test runs one owner thread and three thieves, each thief
 * owning its own P (runq_steal needs the thief's queue empty, so a thief
 * drains its queue completely before stealing again). Every token must be
 * consumed exactly once: a per-token atomic counter catches both losses and
 * duplicates. Loops are bounded by a 2 s deadline (the test normally takes
 * a few tens of milliseconds), so a bug fails instead of hanging.
 */
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

#include <cmocka.h>

#include "sched/sched.h"

#define SEC 1000000000LL

static struct p *p_alloc(void)
{
    struct p *p = aligned_alloc(CACHE_LINE, sizeof *p);
    assert_non_null(p);
    memset(p, 0, sizeof *p);
    return p;
}

static struct g *tokens_alloc(size_t n)
{
    struct g *t = calloc(n, sizeof *t);
    assert_non_null(t);
    return t;
}

/* Empty the global queue (through the API: one G at a time into a scratch
 * P, taken back from it at once). */
static void global_reset(void)
{
    struct p *scratch = p_alloc();
    bool inherit;
    while (globrunq_get(scratch, 1))
        assert_null(runq_get(scratch, &inherit));
    free(scratch);
    assert_int_equal(atomic_load(&sched.runqsize), 0);
}

static int setup(void **state)
{
    (void)state;
    global_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    global_reset();
    atomic_store(&gomaxprocs, 0);
    return 0;
}

/* Count every G left in p's local queue and in the global queue into seen[]
 * (indexed by token); returns how many were taken. */
static size_t drain_all(struct p *p, struct g *base, size_t ntok, _Atomic uint32_t *seen)
{
    size_t n = 0;
    bool inherit;
    struct g *gp;
    for (;;) {
        while ((gp = runq_get(p, &inherit))) {
            assert_true(gp >= base && gp < base + ntok);
            atomic_fetch_add(&seen[gp - base], 1);
            n++;
        }
        gp = globrunq_get(p, 0);
        if (!gp) break;
        assert_true(gp >= base && gp < base + ntok);
        atomic_fetch_add(&seen[gp - base], 1);
        n++;
    }
    return n;
}

/* ---- single-threaded ------------------------------------------------------ */

/* FIFO order of the local queue; runnext goes first, with inherit set. */
static void test_fifo_and_runnext(void **state)
{
    (void)state;
    atomic_store(&gomaxprocs, 1);
    struct p *p = p_alloc();
    struct g *t = tokens_alloc(16);
    bool inherit = true;

    assert_true(runq_empty(p));
    assert_null(runq_get(p, &inherit));
    assert_false(inherit);

    for (int i = 0; i < 10; i++)
        runq_put(p, &t[i], false);
    assert_int_equal(runq_len(p), 10);
    assert_false(runq_empty(p));
    for (int i = 0; i < 10; i++) {
        inherit = true;
        assert_ptr_equal(runq_get(p, &inherit), &t[i]);
        assert_false(inherit);
    }
    assert_true(runq_empty(p));

    /* runnext: a new G goes first and inherits; the old one is not lost. */
    runq_put(p, &t[0], false);
    runq_put(p, &t[1], true);
    assert_ptr_equal(atomic_load(&p->runnext), &t[1]);
    assert_int_equal(runq_len(p), 1);
    inherit = false;
    assert_ptr_equal(runq_get(p, &inherit), &t[1]);
    assert_true(inherit);
    assert_ptr_equal(runq_get(p, &inherit), &t[0]);
    assert_false(inherit);
    assert_true(runq_empty(p));

    /* A second runnext replaces the first, which is kicked to the tail
     * (behind what was queued before): order r2, q1, q2, r1. */
    runq_put(p, &t[2], false); /* q1 */
    runq_put(p, &t[3], false); /* q2 */
    runq_put(p, &t[4], true);  /* r1 */
    runq_put(p, &t[5], true);  /* r2 kicks r1 */
    assert_ptr_equal(atomic_load(&p->runnext), &t[5]);
    assert_int_equal(runq_len(p), 3);
    const int want[] = {5, 2, 3, 4};
    const bool want_inherit[] = {true, false, false, false};
    for (int i = 0; i < 4; i++) {
        inherit = !want_inherit[i];
        assert_ptr_equal(runq_get(p, &inherit), &t[want[i]]);
        assert_int_equal(inherit, want_inherit[i]);
    }
    assert_null(runq_get(p, &inherit));
    assert_true(runq_empty(p));

    /* Go's exercise: spawn 0..4 with runnext each time: 4 0 1 2 3. */
    for (int i = 0; i < 5; i++)
        runq_put(p, &t[i], true);
    for (int i = 0; i < 5; i++) {
        int w = i == 0 ? 4 : i - 1;
        assert_ptr_equal(runq_get(p, &inherit), &t[w]);
        assert_int_equal(inherit, i == 0);
    }
    assert_true(runq_empty(p));

    /* Wrap around the ring several times: order still FIFO. */
    for (int round = 0; round < 5 * RUNQ_LEN / 10; round++) {
        for (int i = 0; i < 10; i++)
            runq_put(p, &t[i], false);
        for (int i = 0; i < 10; i++)
            assert_ptr_equal(runq_get(p, &inherit), &t[i]);
    }
    assert_int_equal(atomic_load(&sched.runqsize), 0);
    free(t);
    free(p);
}

/* runq_steal takes half (rounded up) of the victim's queue from its head,
 * runs the last stolen G and queues the others on the thief; runnext only
 * when asked and the victim's queue is empty. */
static void test_steal_single_threaded(void **state)
{
    (void)state;
    atomic_store(&gomaxprocs, 2);
    struct p *victim = p_alloc();
    struct p *thief = p_alloc();
    struct g *t = tokens_alloc(16);
    bool inherit;

    assert_null(runq_steal(thief, victim, true));

    for (int i = 0; i < 10; i++)
        runq_put(victim, &t[i], false);
    assert_ptr_equal(runq_steal(thief, victim, false), &t[4]);
    assert_int_equal(runq_len(victim), 5);
    assert_int_equal(runq_len(thief), 4);
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(runq_get(thief, &inherit), &t[i]);
    assert_true(runq_empty(thief));
    for (int i = 5; i < 10; i++)
        assert_ptr_equal(runq_get(victim, &inherit), &t[i]);

    /* One queued G: it is stolen and returned, nothing queued on the thief. */
    runq_put(victim, &t[0], false);
    assert_ptr_equal(runq_steal(thief, victim, false), &t[0]);
    assert_true(runq_empty(thief));
    assert_true(runq_empty(victim));

    /* runnext alone: only stolen with steal_next. */
    runq_put(victim, &t[7], true);
    assert_null(runq_steal(thief, victim, false));
    assert_ptr_equal(runq_steal(thief, victim, true), &t[7]);
    assert_null(atomic_load(&victim->runnext));
    assert_true(runq_empty(victim));
    assert_true(runq_empty(thief));

    /* A queue with entries and runnext: the queue is stolen, runnext stays. */
    runq_put(victim, &t[1], false);
    runq_put(victim, &t[2], true);
    assert_ptr_equal(runq_steal(thief, victim, true), &t[1]);
    assert_ptr_equal(atomic_load(&victim->runnext), &t[2]);
    assert_ptr_equal(runq_get(victim, &inherit), &t[2]);
    assert_true(runq_empty(victim));
    free(t);
    free(thief);
    free(victim);
}

/* 300 Gs into one P: the 257th put moves half the queue plus itself to the
 * global queue in one batch (FIFO kept), and nothing is lost. */
static void test_overflow_to_global(void **state)
{
    (void)state;
    enum { N = 300 };
    atomic_store(&gomaxprocs, 1);
    struct p *p = p_alloc();
    struct g *t = tokens_alloc(N);
    _Atomic uint32_t *seen = calloc(N, sizeof *seen);
    assert_non_null(seen);

    for (int i = 0; i < N; i++)
        runq_put(p, &t[i], false);
    int32_t gsize = atomic_load(&sched.runqsize);
    assert_true(gsize > 0);
    assert_true(runq_len(p) <= RUNQ_LEN);
    assert_int_equal(gsize + (int32_t)runq_len(p), N);
    /* Go's runqputslow: half of the full queue plus the new G. */
    assert_int_equal(gsize, RUNQ_LEN / 2 + 1);

    /* The local queue holds 128..255 then 257..299, in order. */
    bool inherit;
    struct g *gp;
    int want = RUNQ_LEN / 2;
    while ((gp = runq_get(p, &inherit))) {
        assert_ptr_equal(gp, &t[want]);
        atomic_fetch_add(&seen[gp - t], 1);
        want = want + 1 == RUNQ_LEN ? RUNQ_LEN + 1 : want + 1;
    }
    assert_int_equal(want, N);

    /* The global queue holds 0..127 then 256, in order (taken one by one:
     * max 1 returns it without touching the local queue). */
    for (int k = 0; k < gsize; k++) {
        gp = globrunq_get(p, 1);
        assert_ptr_equal(gp, &t[k < RUNQ_LEN / 2 ? k : RUNQ_LEN]);
        assert_true(runq_empty(p));
        atomic_fetch_add(&seen[gp - t], 1);
    }
    assert_null(globrunq_get(p, 0));
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&seen[i]), 1);
    assert_int_equal(atomic_load(&sched.runqsize), 0);
    assert_true(runq_empty(p));

    /* Refill beyond capacity several times with runnext mixed in: still
     * every token exactly once. */
    memset(seen, 0, N * sizeof *seen);
    for (int i = 0; i < N; i++)
        runq_put(p, &t[i], i % 5 == 0);
    assert_true(atomic_load(&sched.runqsize) > 0);
    assert_int_equal(drain_all(p, t, N, seen), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&seen[i]), 1);
    free(seen);
    free(t);
    free(p);
}

/* globrunq_get takes a fair share (size / gomaxprocs + 1, at most half a
 * local queue), returns the first and queues the rest locally in order. */
static void test_global_fair_share(void **state)
{
    (void)state;
    enum { N = 40 };
    atomic_store(&gomaxprocs, 4);
    struct p *p = p_alloc();
    struct g *t = tokens_alloc(N);
    for (int i = 0; i < N; i++)
        globrunq_put(&t[i]);
    assert_int_equal(atomic_load(&sched.runqsize), N);
    struct g *gp = globrunq_get(p, 0);
    assert_ptr_equal(gp, &t[0]);
    assert_int_equal(runq_len(p), N / 4); /* 11 taken: 1 returned, 10 queued */
    assert_int_equal(atomic_load(&sched.runqsize), N - N / 4 - 1);
    bool inherit;
    for (int i = 1; i <= N / 4; i++)
        assert_ptr_equal(runq_get(p, &inherit), &t[i]);
    /* max limits the batch */
    gp = globrunq_get(p, 1);
    assert_ptr_equal(gp, &t[N / 4 + 1]);
    assert_true(runq_empty(p));
    free(t);
    free(p);
}

/* ---- concurrent stealing --------------------------------------------------- */

enum { NTOK = 200000, NTHIEF = 3 };

static struct {
    struct p *owner;
    struct p *thief[NTHIEF];
    struct g *tok;
    _Atomic uint32_t *seen;
    _Atomic bool done;       /* owner put everything */
    _Atomic bool abort;      /* deadline passed */
    _Atomic uint64_t stolen; /* Gs consumed by thieves */
    _Atomic uint64_t owner_got;
    int64_t deadline;
} cs;

static void consume(struct g *gp)
{
    size_t i = (size_t)(gp - cs.tok);
    if (gp < cs.tok || i >= NTOK) {
        atomic_store(&cs.abort, true); /* reported as a miscount below */
        return;
    }
    atomic_fetch_add_explicit(&cs.seen[i], 1, memory_order_relaxed);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *owner_main(void *arg)
{
    (void)arg;
    uint64_t rnd = 0x1234567;
    bool inherit;
    for (size_t i = 0; i < NTOK; i++) {
        runq_put(cs.owner, &cs.tok[i], xorshift(&rnd) % 8 == 0);
        if (xorshift(&rnd) % 4 == 0) {
            struct g *gp = runq_get(cs.owner, &inherit);
            if (gp) {
                consume(gp);
                atomic_fetch_add(&cs.owner_got, 1);
            }
        }
        if (i % 4096 == 0 && ki_nanotime() > cs.deadline) {
            atomic_store(&cs.abort, true);
            break;
        }
    }
    atomic_store(&cs.done, true);
    /* Drain what is left, racing with the thieves. */
    struct g *gp;
    while ((gp = runq_get(cs.owner, &inherit))) {
        consume(gp);
        atomic_fetch_add(&cs.owner_got, 1);
    }
    return NULL;
}

static void *thief_main(void *arg)
{
    struct p *me = arg;
    uint64_t rnd = 0x9e3779b97f4a7c15ULL ^ (uintptr_t)me;
    bool inherit;
    for (uint64_t iter = 0;; iter++) {
        bool done = atomic_load(&cs.done);
        struct g *gp = runq_steal(me, cs.owner, xorshift(&rnd) & 1);
        if (gp) {
            /* Drain our own queue completely before the next steal. */
            do {
                consume(gp);
                atomic_fetch_add(&cs.stolen, 1);
            } while ((gp = runq_get(me, &inherit)));
        } else if (iter % 16 == 0 && atomic_load(&sched.runqsize) > 0) {
            /* Also take from the global queue the owner's overflow fills. */
            gp = globrunq_get(me, 0);
            while (gp) {
                consume(gp);
                atomic_fetch_add(&cs.stolen, 1);
                gp = runq_get(me, &inherit);
            }
        } else if (done && runq_empty(cs.owner)) {
            break;
        } else {
            sched_yield();
        }
        if (!runq_empty(me)) atomic_store(&cs.abort, true); /* must have drained */
        if (iter % 1024 == 0 && ki_nanotime() > cs.deadline) {
            atomic_store(&cs.abort, true);
            break;
        }
        if (atomic_load(&cs.abort)) break;
    }
    return NULL;
}

static void test_concurrent_steal(void **state)
{
    (void)state;
    memset(&cs, 0, sizeof cs);
    atomic_store(&gomaxprocs, 1 + NTHIEF);
    cs.owner = p_alloc();
    atomic_store(&cs.owner->status, P_RUNNING); /* thieves wait briefly for its runnext */
    for (int i = 0; i < NTHIEF; i++)
        cs.thief[i] = p_alloc();
    cs.tok = tokens_alloc(NTOK);
    cs.seen = calloc(NTOK, sizeof *cs.seen);
    assert_non_null(cs.seen);
    int64_t start = ki_nanotime();
    /* The whole exchange takes a few tens of milliseconds; past 2 s the
     * threads give up (cs.abort) and the test fails instead of hanging. */
    cs.deadline = start + 2 * SEC;

    pthread_t th[NTHIEF], ow;
    for (int i = 0; i < NTHIEF; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thief_main, cs.thief[i]), 0);
    assert_int_equal(pthread_create(&ow, NULL, owner_main, NULL), 0);
    pthread_join(ow, NULL);
    for (int i = 0; i < NTHIEF; i++)
        pthread_join(th[i], NULL);
    int64_t elapsed = ki_nanotime() - start;
    assert_false(atomic_load(&cs.abort));

    /* Whatever the overflow left on the global queue. */
    size_t rest = 0;
    for (int i = 0; i < NTHIEF; i++)
        assert_true(runq_empty(cs.thief[i]));
    assert_true(runq_empty(cs.owner));
    rest = drain_all(cs.thief[0], cs.tok, NTOK, cs.seen);

    size_t missing = 0, dup = 0;
    for (size_t i = 0; i < NTOK; i++) {
        uint32_t s = atomic_load(&cs.seen[i]);
        if (s == 0) missing++;
        if (s > 1) dup++;
    }
    print_message("concurrent steal: %.0f ms, owner %llu, thieves %llu, global left %zu\n",
                  elapsed / 1e6, (unsigned long long)atomic_load(&cs.owner_got),
                  (unsigned long long)atomic_load(&cs.stolen), rest);
    assert_int_equal(missing, 0);
    assert_int_equal(dup, 0);
    assert_int_equal(atomic_load(&cs.owner_got) + atomic_load(&cs.stolen) + rest, NTOK);
    assert_int_equal(atomic_load(&sched.runqsize), 0);

    free(cs.seen);
    free(cs.tok);
    for (int i = 0; i < NTHIEF; i++)
        free(cs.thief[i]);
    free(cs.owner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_runnext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_steal_single_threaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_to_global, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_fair_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_steal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
