/* tests/test_context.c: Go's context package (sync/context.c).
 *
 * Tree semantics (a cancel goes down, never up; idempotent; a cancelled
 * child leaves its parent's children list; done channels closed; err and
 * its words), values up the chain, deadlines (timeouts fire with
 * -ETIMEDOUT, an earlier parent deadline wins, a cancel before the deadline
 * sticks), the context exercises of EXERCISES.md (items 6-10, periods scaled
 * down from seconds to milliseconds), a fan-out stopped by one cancel, and
 * races between cancels, timers and constructors.
 *
 * Same rules as the other suites: the cmocka run is the main goroutine,
 * wired to its thread (cmocka's state is in __thread variables); goroutines
 * record what they saw and the main goroutine asserts after waiting for them;
 * every wait is bounded. Timing checks are lower bounds only (a timer never
 * fires early); nothing asserts that something happened quickly, except
 * against bounds of seconds.
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

#include <cmocka.h>

#include "gort.h"

#include "gort_test.h"

/* sync/context.c, for tests: the length of c's children list. */
int gort__ctx_nchildren(gort_ctx *c);

/* ---- helpers ------------------------------------------------------------ */

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

/* Is ch closed (a non-blocking receive reports closed)? ch must hold no
 * values (done channels never do). */
static bool is_closed(gort_chan *ch)
{
    bool ok = true;
    gort_case cs[] = {GORT_RECV(ch, NULL, &ok)};
    return gort_select(cs, 1, false) == 0 && !ok;
}

/* Is ctx's done channel ready now? */
static bool done_now(gort_ctx *ctx)
{
    gort_chan *d = gort_ctx_done(ctx);
    return d && is_closed(d);
}

/* Block until ctx is done or timeout passes; true when done. */
static bool wait_done(gort_ctx *ctx, int64_t timeout)
{
    gort_case cs[] = {GORT_RECV(gort_ctx_done(ctx), NULL, NULL),
                      GORT_RECV(gort_after(timeout), NULL, NULL)};
    return gort_select(cs, 2, true) == 0;
}

static bool try_msg(void (*fn)(void *), void *arg, char *buf, size_t len)
{
    const char *msg = NULL;
    bool ok = gort_try(fn, arg, &msg);
    snprintf(buf, len, "%s", ok ? "" : msg ? msg : "(null message)");
    return ok;
}

/* Main goroutine only: fn(arg) must panic with exactly want. */
static void expect_panic(void (*fn)(void *), void *arg, const char *want)
{
    char buf[256];
    if (try_msg(fn, arg, buf, sizeof buf)) fail_msg("no panic (expected \"%s\")", want);
    if (strcmp(buf, want) != 0) fail_msg("panic \"%s\", expected \"%s\"", buf, want);
}

/* ==== background and words ============================================== */

static void test_background(void **state)
{
    (void)state;
    gort_ctx *bg = gort_ctx_background();
    assert_non_null(bg);
    assert_ptr_equal(bg, gort_ctx_background());
    assert_null(gort_ctx_done(bg));
    assert_int_equal(gort_ctx_err(bg), 0);
    static const char key;
    assert_null(gort_ctx_value(bg, &key));
    int64_t dl = 42;
    assert_false(gort_ctx_deadline(bg, &dl));
    assert_int_equal(dl, 42);
    gort_ctx_cancel(bg); /* does nothing */
    assert_int_equal(gort_ctx_err(bg), 0);

    /* A value context under the background can never be cancelled either. */
    gort_ctx *v = gort_ctx_with_value(bg, &key, (void *)1);
    assert_null(gort_ctx_done(v));
    gort_ctx_cancel(v); /* does nothing */
    assert_int_equal(gort_ctx_err(v), 0);
    assert_false(gort_ctx_deadline(v, NULL));
}

static void test_errstr(void **state)
{
    (void)state;
    assert_string_equal(gort_ctx_errstr(-ECANCELED), "context canceled");
    assert_string_equal(gort_ctx_errstr(-ETIMEDOUT), "context deadline exceeded");
    assert_string_equal(gort_ctx_errstr(0), "");
    assert_string_equal(gort_ctx_errstr(-EINVAL), "unknown context error");
}

static void nil_parent_cancel(void *arg)
{
    (void)arg;
    gort_ctx_with_cancel(NULL);
}
static void nil_parent_timeout(void *arg)
{
    (void)arg;
    gort_ctx_with_timeout(NULL, SEC);
}
static void nil_parent_deadline(void *arg)
{
    (void)arg;
    gort_ctx_with_deadline(NULL, gort_now() + SEC);
}
static void nil_parent_value(void *arg)
{
    gort_ctx_with_value(NULL, arg, NULL);
}
static void nil_key(void *arg)
{
    (void)arg;
    gort_ctx_with_value(gort_ctx_background(), NULL, NULL);
}
static void nil_ctx_err(void *arg)
{
    (void)arg;
    gort_ctx_err(NULL);
}

static void test_misuse_panics(void **state)
{
    (void)state;
    static const char key;
    expect_panic(nil_parent_cancel, NULL, "gort_ctx_with_cancel: nil parent");
    expect_panic(nil_parent_timeout, NULL, "gort_ctx_with_timeout: nil parent");
    expect_panic(nil_parent_deadline, NULL, "gort_ctx_with_deadline: nil parent");
    expect_panic(nil_parent_value, (void *)&key, "gort_ctx_with_value: nil parent");
    expect_panic(nil_key, NULL, "gort_ctx_with_value: nil key");
    expect_panic(nil_ctx_err, NULL, "gort_ctx_err: nil context");
}
/* ==== the tree ============================================================ */

static void test_cancel_parent_cancels_descendants(void **state)
{
    (void)state;
    static const char key;
    gort_ctx *root = gort_ctx_with_cancel(gort_ctx_background());
    gort_ctx *a = gort_ctx_with_cancel(root);
    gort_ctx *v = gort_ctx_with_value(a, &key, "v");
    gort_ctx *g = gort_ctx_with_cancel(v); /* grandchild, through a value context */
    gort_ctx *t = gort_ctx_with_timeout(a, 3600 * SEC);
    gort_ctx *gg = gort_ctx_with_cancel(t);
    gort_ctx *all[] = {root, a, v, g, t, gg};
    enum { N = sizeof all / sizeof all[0] };

    assert_int_equal(gort__ctx_nchildren(root), 1);
    assert_int_equal(gort__ctx_nchildren(a), 2); /* g (through v) and t */
    assert_int_equal(gort__ctx_nchildren(t), 1);
    /* Ask for some done channels before the cancel (made then) and leave
     * the others to after it (lazy: the shared closed channel). */
    gort_chan *da = gort_ctx_done(a), *dg = gort_ctx_done(g);
    assert_non_null(da);
    assert_ptr_equal(gort_ctx_done(a), da); /* the same channel every time */
    assert_ptr_equal(gort_ctx_done(v), da); /* a value context shares its parent's */
    for (int i = 0; i < N; i++) {
        assert_int_equal(gort_ctx_err(all[i]), 0);
        assert_false(is_closed(gort_ctx_done(all[i])));
    }

    gort_ctx_cancel(root);
    for (int i = 0; i < N; i++) {
        assert_int_equal(gort_ctx_err(all[i]), -ECANCELED);
        assert_string_equal(gort_ctx_errstr(gort_ctx_err(all[i])), "context canceled");
        assert_true(done_now(all[i]));
    }
    assert_true(is_closed(da));
    assert_true(is_closed(dg));
    assert_int_equal(gort__ctx_nchildren(root), 0);
    assert_int_equal(gort__ctx_nchildren(a), 0);
    assert_int_equal(gort__ctx_nchildren(t), 0);

    /* A child made from a cancelled parent is born cancelled. */
    gort_ctx *late = gort_ctx_with_cancel(a);
    assert_int_equal(gort_ctx_err(late), -ECANCELED);
    assert_true(done_now(late));
    gort_ctx *late_t = gort_ctx_with_timeout(v, 3600 * SEC);
    assert_int_equal(gort_ctx_err(late_t), -ECANCELED);
    assert_int_equal(gort__ctx_nchildren(a), 0);
}

static void test_cancel_child_leaves_parent(void **state)
{
    (void)state;
    gort_ctx *parent = gort_ctx_with_cancel(gort_ctx_background());
    gort_ctx *c1 = gort_ctx_with_cancel(parent);
    gort_ctx *c2 = gort_ctx_with_cancel(parent);
    gort_ctx *c1a = gort_ctx_with_cancel(c1);
    gort_ctx *t = gort_ctx_with_timeout(parent, 3600 * SEC);
    assert_int_equal(gort__ctx_nchildren(parent), 3);

    gort_ctx_cancel(c1);
    assert_int_equal(gort_ctx_err(c1), -ECANCELED);
    assert_int_equal(gort_ctx_err(c1a), -ECANCELED); /* down */
    assert_int_equal(gort_ctx_err(parent), 0);       /* never up */
    assert_int_equal(gort_ctx_err(c2), 0);           /* nor sideways */
    assert_false(done_now(parent));
    assert_false(done_now(c2));
    assert_int_equal(gort__ctx_nchildren(parent), 2); /* c1 left the list */

    gort_ctx_cancel(t); /* a timer context leaves too, its timer stopped */
    assert_int_equal(gort_ctx_err(t), -ECANCELED);
    assert_int_equal(gort__ctx_nchildren(parent), 1);
    assert_int_equal(gort_ctx_err(parent), 0);

    gort_ctx_cancel(parent);
    assert_int_equal(gort_ctx_err(c2), -ECANCELED);
    assert_int_equal(gort__ctx_nchildren(parent), 0);
}

static void test_cancel_idempotent(void **state)
{
    (void)state;
    gort_ctx *p = gort_ctx_with_cancel(gort_ctx_background());
    gort_ctx *c = gort_ctx_with_cancel(p);
    gort_chan *d = gort_ctx_done(c);
    gort_ctx_cancel(c);
    gort_ctx_cancel(c);
    assert_int_equal(gort_ctx_err(c), -ECANCELED);
    assert_ptr_equal(gort_ctx_done(c), d);
    assert_true(is_closed(d)); /* closed once: a second close would have panicked */
    gort_ctx_cancel(p);
    gort_ctx_cancel(p);
    assert_int_equal(gort_ctx_err(p), -ECANCELED);
    assert_int_equal(gort_ctx_err(c), -ECANCELED);

    /* A timed-out context keeps -ETIMEDOUT when cancelled later. */
    gort_ctx *t = gort_ctx_with_deadline(gort_ctx_background(), gort_now() - 1);
    assert_int_equal(gort_ctx_err(t), -ETIMEDOUT); /* past deadline: at once */
    assert_true(done_now(t));
    gort_ctx_cancel(t);
    assert_int_equal(gort_ctx_err(t), -ETIMEDOUT);
}

/* A deep chain is cancelled without recursion (a goroutine stack is small):
 * run it in a goroutine, not on the main goroutine's big stack. */
#define DEEP 20000
static struct {
    gort_ctx *root, *leaf;
    _Atomic bool done;
} deep;

static void deep_cancel(void *arg)
{
    (void)arg;
    gort_ctx_cancel(deep.root);
    atomic_store(&deep.done, true);
}

static void test_deep_chain(void **state)
{
    (void)state;
    static const char key;
    deep.root = gort_ctx_with_cancel(gort_ctx_background());
    gort_ctx *c = deep.root;
    for (int i = 0; i < DEEP; i++)
        c = i % 3 == 2 ? gort_ctx_with_value(c, &key, (void *)(intptr_t)i)
                       : gort_ctx_with_cancel(c);
    deep.leaf = c;
    assert_int_equal(gort_ctx_err(deep.leaf), 0);
    gort_go(deep_cancel, NULL);
    assert_true(WAIT_FOR(atomic_load(&deep.done)));
    assert_int_equal(gort_ctx_err(deep.leaf), -ECANCELED);
    assert_true(done_now(deep.leaf));
    /* The value nearest the leaf wins: i = DEEP-1 - (DEEP-1)%3 ... the last i%3==2. */
    intptr_t last = DEEP - 1;
    while (last % 3 != 2)
        last--;
    assert_int_equal((intptr_t)gort_ctx_value(deep.leaf, &key), last);
    settle();
}

/* ==== values ================================================================== */

static void test_values(void **state)
{
    (void)state;
    static const char k1[] = "key", k2[] = "key"; /* same bytes, different keys */
    static const int k3 = 0;
    gort_ctx *bg = gort_ctx_background();
    gort_ctx *a = gort_ctx_with_value(bg, k1, "one");
    gort_ctx *b = gort_ctx_with_cancel(a);
    gort_ctx *c = gort_ctx_with_value(b, k2, "two");
    gort_ctx *d = gort_ctx_with_timeout(c, 3600 * SEC);
    gort_ctx *e = gort_ctx_with_value(d, k1, "shadow");

    assert_string_equal(gort_ctx_value(a, k1), "one");
    assert_null(gort_ctx_value(a, k2)); /* identity, not contents */
    assert_string_equal(gort_ctx_value(b, k1), "one");
    assert_string_equal(gort_ctx_value(d, k1), "one"); /* through cancel and timer contexts */
    assert_string_equal(gort_ctx_value(d, k2), "two");
    assert_string_equal(gort_ctx_value(e, k1), "shadow"); /* nearest wins */
    assert_string_equal(gort_ctx_value(e, k2), "two");
    assert_string_equal(gort_ctx_value(c, k1), "one"); /* shadowing is below c only */
    assert_null(gort_ctx_value(e, &k3));
    assert_null(gort_ctx_value(e, NULL));

    /* NULL is a storable value; a later NULL shadows an earlier value. */
    gort_ctx *f = gort_ctx_with_value(e, k2, NULL);
    assert_null(gort_ctx_value(f, k2));
    /* Cancelling changes no value. */
    gort_ctx_cancel(b);
    assert_string_equal(gort_ctx_value(e, k1), "shadow");
    assert_int_equal(gort_ctx_err(f), -ECANCELED);
    gort_ctx_cancel(d);
}

/* ==== deadlines ================================================================ */

static void test_timeout_fires(void **state)
{
    (void)state;
    int64_t start = gort_now();
    gort_ctx *c = gort_ctx_with_timeout(gort_ctx_background(), 20 * MS);
    int64_t dl = 0;
    assert_true(gort_ctx_deadline(c, &dl));
    assert_true(dl >= start + 20 * MS && dl <= gort_now() + 20 * MS);
    gort_ctx *child = gort_ctx_with_cancel(c);
    assert_true(gort_ctx_deadline(child, NULL)); /* inherited */
    assert_int_equal(gort_ctx_err(c), 0);

    assert_true(wait_done(c, 10 * SEC));
    int64_t waited = gort_now() - start;
    assert_true(waited >= 20 * MS); /* never early */
    assert_int_equal(gort_ctx_err(c), -ETIMEDOUT);
    assert_string_equal(gort_ctx_errstr(gort_ctx_err(c)), "context deadline exceeded");
    /* The parent's reason goes down. As in Go, children are cancelled
     * after the parent's done channel is closed: a receiver that sees the
     * parent done (at once, on another P) may find the child not yet. */
    assert_true(wait_done(child, 10 * SEC));
    assert_int_equal(gort_ctx_err(child), -ETIMEDOUT);
    settle(); /* the timer's goroutine has ended */
}

static void test_earlier_parent_deadline_wins(void **state)
{
    (void)state;
    int64_t start = gort_now();
    gort_ctx *p = gort_ctx_with_timeout(gort_ctx_background(), 30 * MS);
    int64_t pdl, cdl;
    assert_true(gort_ctx_deadline(p, &pdl));
    gort_ctx *c = gort_ctx_with_timeout(p, 3600 * SEC);
    assert_true(gort_ctx_deadline(c, &cdl));
    assert_int_equal(cdl, pdl); /* the earlier deadline */
    gort_ctx *c2 = gort_ctx_with_deadline(p, pdl + 1);
    assert_true(gort_ctx_deadline(c2, &cdl));
    assert_int_equal(cdl, pdl);

    assert_true(wait_done(c, 10 * SEC));
    assert_true(gort_now() - start >= 30 * MS);
    assert_int_equal(gort_ctx_err(p), -ETIMEDOUT);
    assert_int_equal(gort_ctx_err(c), -ETIMEDOUT);
    assert_true(wait_done(c2, 10 * SEC)); /* a sibling: cancelled after c (see above) */
    assert_int_equal(gort_ctx_err(c2), -ETIMEDOUT);

    /* A child's earlier deadline fires first; the parent lives on. */
    gort_ctx *lp = gort_ctx_with_timeout(gort_ctx_background(), 3600 * SEC);
    start = gort_now();
    gort_ctx *lc = gort_ctx_with_timeout(lp, 20 * MS);
    assert_true(gort_ctx_deadline(lc, &cdl));
    assert_true(cdl >= start + 20 * MS);
    assert_true(wait_done(lc, 10 * SEC));
    assert_true(gort_now() - start >= 20 * MS);
    assert_int_equal(gort_ctx_err(lc), -ETIMEDOUT);
    assert_int_equal(gort_ctx_err(lp), 0);
    assert_int_equal(gort__ctx_nchildren(lp), 0); /* the timer took lc off the list */
    gort_ctx_cancel(lp);
    settle();
}

static void test_cancel_before_deadline(void **state)
{
    (void)state;
    gort_ctx *c = gort_ctx_with_timeout(gort_ctx_background(), 20 * MS);
    gort_ctx_cancel(c);
    assert_int_equal(gort_ctx_err(c), -ECANCELED);
    assert_true(done_now(c));

    /* Cancelled through the parent before its own deadline. */
    gort_ctx *p = gort_ctx_with_cancel(gort_ctx_background());
    gort_ctx *t = gort_ctx_with_timeout(p, 20 * MS);
    gort_ctx_cancel(p);
    assert_int_equal(gort_ctx_err(t), -ECANCELED);

    gort_sleep(50 * MS); /* past both deadlines: nothing changes */
    assert_int_equal(gort_ctx_err(c), -ECANCELED);
    assert_int_equal(gort_ctx_err(t), -ECANCELED);
    assert_string_equal(gort_ctx_errstr(gort_ctx_err(t)), "context canceled");
    settle(); /* stopped timers spawned no goroutine that stays */
}

/* ==== EXERCISES.md 8: a worker loop polling done with a default branch ======== */

static struct {
    gort_ctx *ctx;
    _Atomic bool cancel_returned; /* set by main right after gort_ctx_cancel */
    _Atomic int iterations;
    _Atomic int late_sleeps; /* sleeps begun though done must already be closed */
    _Atomic int err;
    _Atomic int64_t exited_at;
    _Atomic bool exited;
} wl;

static void worker_loop(void *arg)
{
    (void)arg;
    for (;;) {
        bool after_cancel = atomic_load(&wl.cancel_returned); /* read before the select */
        gort_case cs[] = {GORT_RECV(gort_ctx_done(wl.ctx), NULL, NULL)};
        if (gort_select(cs, 1, false) == 0) break; /* done */
        if (after_cancel) atomic_fetch_add(&wl.late_sleeps, 1);
        atomic_fetch_add(&wl.iterations, 1);
        gort_sleep(10 * MS); /* the default branch: one period of work */
    }
    atomic_store(&wl.err, gort_ctx_err(wl.ctx));
    atomic_store(&wl.exited_at, gort_now());
    atomic_store(&wl.exited, true);
}

static void test_worker_loop_exits_after_cancel(void **state)
{
    (void)state;
    wl.ctx = gort_ctx_with_cancel(gort_ctx_background());
    gort_go(worker_loop, NULL);
    assert_true(WAIT_FOR(atomic_load(&wl.iterations) >= 3));
    assert_false(atomic_load(&wl.exited));
    int64_t cancelled_at = gort_now();
    gort_ctx_cancel(wl.ctx);
    atomic_store(&wl.cancel_returned, true);
    assert_true(WAIT_FOR(atomic_load(&wl.exited)));
    assert_int_equal(atomic_load(&wl.err), -ECANCELED);
    assert_true(atomic_load(&wl.exited_at) >= cancelled_at);
    /* Within one period: the worker never starts another sleep once the
     * cancel has returned (done is closed by then). */
    assert_int_equal(atomic_load(&wl.late_sleeps), 0);
    settle();
}

/* ==== EXERCISES.md 9 ============================================================ */

/* "Work" of the given length that gives up when ctx ends: 0 when it
 * finished, else ctx's error. */
static int slow_work(gort_ctx *ctx, int64_t len)
{
    gort_case cs[] = {GORT_RECV(gort_ctx_done(ctx), NULL, NULL),
                      GORT_RECV(gort_after(len), NULL, NULL)};
    return gort_select(cs, 2, true) == 0 ? gort_ctx_err(ctx) : 0;
}

static void test_timeout_against_longer_work(void **state)
{
    (void)state;
    /* with_timeout(2 s) against 3 s of work, scaled to 30 ms against 300 ms. */
    int64_t start = gort_now();
    gort_ctx *ctx = gort_ctx_with_timeout(gort_ctx_background(), 30 * MS);
    int err = slow_work(ctx, 300 * MS);
    assert_true(gort_now() - start >= 30 * MS);
    assert_int_equal(err, -ETIMEDOUT);
    assert_string_equal(gort_ctx_errstr(err), "context deadline exceeded");
    gort_ctx_cancel(ctx); /* Go's defer cancel(): harmless after the timeout */
    assert_int_equal(gort_ctx_err(ctx), -ETIMEDOUT);

    /* Shorter work finishes with the context still live. */
    ctx = gort_ctx_with_timeout(gort_ctx_background(), 10 * SEC);
    assert_int_equal(slow_work(ctx, 5 * MS), 0);
    assert_int_equal(gort_ctx_err(ctx), 0);
    gort_ctx_cancel(ctx);
}

static struct {
    gort_ctx *ctx;
    _Atomic int ticks;
    _Atomic bool done;
} tk;

/* Cancel tk.ctx after three ticks (of 10 ms rather than 1 s). */
static void cancel_after_three_ticks(void *arg)
{
    (void)arg;
    gort_ticker *t = gort_ticker_new(10 * MS);
    for (int i = 0; i < 3; i++) {
        int64_t when;
        gort_chan_recv(gort_ticker_chan(t), &when);
        atomic_fetch_add(&tk.ticks, 1);
    }
    gort_ticker_stop(t);
    gort_ctx_cancel(tk.ctx);
    atomic_store(&tk.done, true);
}

static void test_cancel_after_three_ticks(void **state)
{
    (void)state;
    int64_t start = gort_now();
    tk.ctx = gort_ctx_with_cancel(gort_ctx_background());
    gort_go(cancel_after_three_ticks, NULL);
    int err = slow_work(tk.ctx, 10 * SEC);
    assert_int_equal(err, -ECANCELED);
    assert_string_equal(gort_ctx_errstr(err), "context canceled");
    assert_int_equal(atomic_load(&tk.ticks), 3);
    assert_true(gort_now() - start >= 30 * MS);
    assert_true(WAIT_FOR(atomic_load(&tk.done)));
    settle();
}

/* with_value carries a user id down a call chain: handler -> middleware
 * (adds a request id) -> service -> repository, in another goroutine. */
static const char user_key, request_key;

static struct {
    char seen[128];
    _Atomic bool done;
} vc;

static void repository(gort_ctx *ctx, char *out, size_t n)
{
    const char *user = gort_ctx_value(ctx, &user_key);
    const char *req = gort_ctx_value(ctx, &request_key);
    snprintf(out, n, "user=%s req=%s err=%d", user ? user : "?", req ? req : "?",
             gort_ctx_err(ctx));
}

static void service(gort_ctx *ctx, char *out, size_t n)
{
    gort_ctx *c = gort_ctx_with_timeout(ctx, 10 * SEC); /* values pass through */
    repository(c, out, n);
    gort_ctx_cancel(c);
}

static void middleware(void *arg)
{
    gort_ctx *ctx = gort_ctx_with_value(arg, &request_key, "r-17");
    service(ctx, vc.seen, sizeof vc.seen);
    atomic_store(&vc.done, true);
}

static void test_value_down_call_chain(void **state)
{
    (void)state;
    gort_ctx *root = gort_ctx_with_cancel(gort_ctx_background());
    gort_ctx *handler = gort_ctx_with_value(root, &user_key, "alice");
    gort_go(middleware, handler);
    assert_true(WAIT_FOR(atomic_load(&vc.done)));
    assert_string_equal(vc.seen, "user=alice req=r-17 err=0");
    assert_null(gort_ctx_value(handler, &request_key)); /* values never go up */
    gort_ctx_cancel(root);
    settle();
}

/* ==== EXERCISES.md 10: select with a timeout case =============================== */

static void send_later(void *arg)
{
    gort_sleep(10 * MS);
    int v = 7;
    gort_chan_send(arg, &v);
}

static void test_select_timeout_case(void **state)
{
    (void)state;
    int v = 0;
    bool ok = false;

    /* Without default, the first ready case wins: the value, before a 10 s
     * timeout. */
    gort_chan *ch = gort_chan_make(sizeof(int), 0);
    gort_go(send_later, ch);
    gort_case cs[] = {GORT_RECV(ch, &v, &ok), GORT_RECV(gort_after(10 * SEC), NULL, NULL)};
    assert_int_equal(gort_select(cs, 2, true), 0);
    assert_true(ok);
    assert_int_equal(v, 7);

    /* Nothing else ready: the timeout wins, not before its time; a nil
     * channel case (switched off) is never chosen. */
    int64_t start = gort_now();
    int64_t when = 0;
    gort_case ts[] = {GORT_RECV(ch, &v, &ok), GORT_RECV(NULL, &v, &ok),
                      GORT_RECV(gort_after(20 * MS), &when, NULL)};
    assert_int_equal(gort_select(ts, 3, true), 2);
    assert_true(gort_now() - start >= 20 * MS);
    assert_true(when >= start + 20 * MS);

    /* With default it never waits: -1 at once, though a timeout is pending. */
    start = gort_now();
    gort_case ds[] = {GORT_RECV(ch, &v, &ok), GORT_RECV(NULL, &v, &ok),
                      GORT_RECV(gort_after(10 * SEC), NULL, NULL)};
    assert_int_equal(gort_select(ds, 3, false), -1);
    assert_true(gort_now() - start < 5 * SEC); /* i.e. not the 10 s */

    /* A context's done against a timeout case: the cancel wins. */
    gort_ctx *ctx = gort_ctx_with_timeout(gort_ctx_background(), 10 * MS);
    gort_case xs[] = {GORT_RECV(gort_ctx_done(ctx), NULL, &ok),
                      GORT_RECV(gort_after(10 * SEC), NULL, NULL)};
    assert_int_equal(gort_select(xs, 2, true), 0);
    assert_false(ok); /* closed */
    assert_int_equal(gort_ctx_err(ctx), -ETIMEDOUT);
    /* The background's done is a nil channel: with default, never chosen. */
    gort_case bs[] = {GORT_RECV(gort_ctx_done(gort_ctx_background()), NULL, NULL)};
    assert_int_equal(gort_select(bs, 1, false), -1);
    settle();
}

/* ==== EXERCISES.md 6: a token bucket fed by a ticker ============================= */

static struct {
    gort_chan *tokens; /* capacity BURST */
    gort_ctx *stop;    /* cancels the refiller */
    _Atomic bool refiller_done;
} tb;
#define BURST 3

static void refiller(void *arg)
{
    (void)arg;
    gort_ticker *t = gort_ticker_new(2 * MS);
    char tok = 1;
    for (;;) {
        int64_t when;
        gort_case cs[] = {GORT_RECV(gort_ctx_done(tb.stop), NULL, NULL),
                          GORT_RECV(gort_ticker_chan(t), &when, NULL)};
        if (gort_select(cs, 2, true) == 0) break;
        gort_case put[] = {GORT_SEND(tb.tokens, &tok)};
        gort_select(put, 1, false); /* bucket full: the token is lost */
    }
    gort_ticker_stop(t);
    atomic_store(&tb.refiller_done, true);
}

/* Take a token, or give up when ctx ends: 0 or ctx's error. */
static int bucket_wait(gort_ctx *ctx)
{
    char tok;
    gort_case cs[] = {GORT_RECV(tb.tokens, &tok, NULL), GORT_RECV(gort_ctx_done(ctx), NULL, NULL)};
    return gort_select(cs, 2, true) == 0 ? 0 : gort_ctx_err(ctx);
}

static struct {
    gort_ctx *ctx;
    _Atomic int result; /* 1 while waiting */
} waiter;

static void bucket_waiter(void *arg)
{
    (void)arg;
    atomic_store(&waiter.result, bucket_wait(waiter.ctx));
}

static void test_rate_limiter_gives_up_on_cancel(void **state)
{
    (void)state;
    tb.tokens = gort_chan_make(1, BURST);
    tb.stop = gort_ctx_with_cancel(gort_ctx_background());
    gort_go(refiller, NULL);
    gort_ctx *live = gort_ctx_with_timeout(gort_ctx_background(), 10 * SEC);
    for (int i = 0; i < 10; i++) /* the refiller keeps up */
        assert_int_equal(bucket_wait(live), 0);
    gort_ctx_cancel(live);

    gort_ctx_cancel(tb.stop); /* no more tokens */
    assert_true(WAIT_FOR(atomic_load(&tb.refiller_done)));
    for (char tok;;) { /* drain the bucket */
        gort_case cs[] = {GORT_RECV(tb.tokens, &tok, NULL)};
        if (gort_select(cs, 1, false) < 0) break;
    }
    /* A caller with a timeout gives up with deadline exceeded... */
    int64_t start = gort_now();
    gort_ctx *t = gort_ctx_with_timeout(gort_ctx_background(), 20 * MS);
    assert_int_equal(bucket_wait(t), -ETIMEDOUT);
    assert_true(gort_now() - start >= 20 * MS);
    /* ...and one waiting with a cancelable context gives up on cancel. */
    waiter.ctx = gort_ctx_with_cancel(gort_ctx_background());
    atomic_store(&waiter.result, 1);
    gort_go(bucket_waiter, NULL);
    gort_sleep(10 * MS); /* let it block (not needed for correctness) */
    assert_int_equal(atomic_load(&waiter.result), 1);
    gort_ctx_cancel(waiter.ctx);
    assert_true(WAIT_FOR(atomic_load(&waiter.result) != 1));
    assert_int_equal(atomic_load(&waiter.result), -ECANCELED);
    settle();
}

/* ==== EXERCISES.md 7: errgroup-like first-error cancel ============================ */

#define EG_N 8
static struct {
    gort_ctx *ctx;
    gort_waitgroup wg;
    gort_mutex mu;
    int first_err; /* under mu: the first worker error, as errgroup's */
    int first_who; /* under mu */
    _Atomic int stopped_by_ctx;
} eg;

static void eg_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int err = 0;
    if (id == 3) {
        gort_sleep(5 * MS);
        err = -EIO; /* this one fails */
    } else {
        err = slow_work(eg.ctx, 10 * SEC); /* the others would run long */
        if (err) atomic_fetch_add(&eg.stopped_by_ctx, 1);
    }
    if (err) {
        gort_mutex_lock(&eg.mu);
        if (!eg.first_err) {
            eg.first_err = err;
            eg.first_who = id;
            gort_ctx_cancel(eg.ctx); /* errgroup.WithContext's cancel */
        }
        gort_mutex_unlock(&eg.mu);
    }
    gort_wg_done(&eg.wg);
}

static void test_first_error_cancels_group(void **state)
{
    (void)state;
    eg.ctx = gort_ctx_with_cancel(gort_ctx_background());
    gort_wg_add(&eg.wg, EG_N);
    for (int i = 0; i < EG_N; i++)
        gort_go(eg_worker, (void *)(intptr_t)i);
    assert_true(wg_wait_bounded(&eg.wg));
    assert_int_equal(eg.first_err, -EIO);
    assert_int_equal(eg.first_who, 3);
    assert_int_equal(atomic_load(&eg.stopped_by_ctx), EG_N - 1);
    assert_int_equal(gort_ctx_err(eg.ctx), -ECANCELED);
    settle();
}

/* ==== a fan-out stopped by one cancel ============================================== */

#define FAN 50
static struct {
    gort_ctx *ctx;
    _Atomic int started, stopped;
    _Atomic int errs[FAN];
} fan;

static void fan_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    /* Half block in a select on done, half poll with a default branch. */
    gort_ctx *mine = gort_ctx_with_cancel(fan.ctx); /* each its own child, too */
    atomic_fetch_add(&fan.started, 1);
    if (i % 2) {
        gort_case cs[] = {GORT_RECV(gort_ctx_done(mine), NULL, NULL)};
        gort_select(cs, 1, true);
    } else {
        for (;;) {
            gort_case cs[] = {GORT_RECV(gort_ctx_done(mine), NULL, NULL)};
            if (gort_select(cs, 1, false) == 0) break;
            gort_sleep(2 * MS);
        }
    }
    atomic_store(&fan.errs[i], gort_ctx_err(mine));
    gort_ctx_cancel(mine);
    atomic_fetch_add(&fan.stopped, 1);
}

static void test_fan_out_one_cancel(void **state)
{
    (void)state;
    settle();
    int before = gort_num_goroutine();
    fan.ctx = gort_ctx_with_cancel(gort_ctx_background());
    for (int i = 0; i < FAN; i++)
        gort_go(fan_worker, (void *)(intptr_t)i);
    assert_true(WAIT_FOR(atomic_load(&fan.started) == FAN));
    assert_int_equal(gort__ctx_nchildren(fan.ctx), FAN);
    assert_int_equal(atomic_load(&fan.stopped), 0);
    gort_ctx_cancel(fan.ctx);
    assert_true(WAIT_FOR(atomic_load(&fan.stopped) == FAN));
    for (int i = 0; i < FAN; i++)
        assert_int_equal(atomic_load(&fan.errs[i]), -ECANCELED);
    assert_true(WAIT_FOR(gort_num_goroutine() == before));
    assert_int_equal(gort__ctx_nchildren(fan.ctx), 0);
}

/* ==== races ============================================================================ */

/* Goroutines keep deriving and cancelling children of one parent while the
 * main goroutine cancels the parent: afterwards every context derived from
 * it is cancelled, and its list is empty. */
#define RACE_G   8
#define RACE_PER 200
static struct {
    gort_ctx *parent;
    gort_ctx *made[RACE_G][RACE_PER];
    _Atomic int made_n[RACE_G];
    _Atomic bool go;
    gort_waitgroup wg;
} rc;

static void race_deriver(void *arg)
{
    int g = (int)(intptr_t)arg;
    static const char key;
    while (!atomic_load(&rc.go))
        gort_yield();
    for (int i = 0; i < RACE_PER; i++) {
        gort_ctx *c;
        switch (i % 4) {
        case 0:
            c = gort_ctx_with_cancel(rc.parent);
            break;
        case 1:
            c = gort_ctx_with_timeout(rc.parent, (i % 3) * US);
            break;
        case 2:
            c = gort_ctx_with_cancel(gort_ctx_with_value(rc.parent, &key, NULL));
            break;
        default:
            c = gort_ctx_with_timeout(rc.parent, 3600 * SEC);
            break;
        }
        if (i % 5 == 0) gort_ctx_done(c);
        if (i % 7 == 0) gort_ctx_cancel(c);
        rc.made[g][i] = c;
        atomic_store(&rc.made_n[g], i + 1);
        if (i % 16 == 0) gort_yield();
    }
    gort_wg_done(&rc.wg);
}

static void test_race_derive_and_cancel(void **state)
{
    (void)state;
    int old = procs_at_least(4);
    for (int round = 0; round < 4; round++) {
        rc.parent = gort_ctx_with_cancel(gort_ctx_background());
        memset(rc.made_n, 0, sizeof rc.made_n);
        atomic_store(&rc.go, false);
        gort_wg_add(&rc.wg, RACE_G);
        for (int g = 0; g < RACE_G; g++)
            gort_go(race_deriver, (void *)(intptr_t)g);
        atomic_store(&rc.go, true);
        assert_true(WAIT_FOR(atomic_load(&rc.made_n[round % RACE_G]) >= RACE_PER / 2));
        gort_ctx_cancel(rc.parent);
        assert_true(wg_wait_bounded(&rc.wg));
        for (int g = 0; g < RACE_G; g++)
            for (int i = 0; i < RACE_PER; i++) {
                int err = gort_ctx_err(rc.made[g][i]);
                assert_true(err == -ECANCELED || err == -ETIMEDOUT);
                assert_true(done_now(rc.made[g][i]));
            }
        assert_int_equal(gort__ctx_nchildren(rc.parent), 0);
    }
    gort_maxprocs(old);
    settle();
}

/* Timers firing while goroutines cancel the same contexts: each context ends
 * exactly once, with one of the two reasons, and keeps it. */
#define TR_N 400
static struct {
    gort_ctx *c[TR_N];
    gort_waitgroup wg;
} tr;

static void timer_racer(void *arg)
{
    int from = (int)(intptr_t)arg;
    for (int i = from; i < TR_N; i += 2) {
        if (i % 3 == 0) gort_yield();
        gort_ctx_cancel(tr.c[i]);
    }
    gort_wg_done(&tr.wg);
}

static void test_race_timer_and_cancel(void **state)
{
    (void)state;
    int old = procs_at_least(4);
    gort_ctx *parent = gort_ctx_with_cancel(gort_ctx_background());
    for (int i = 0; i < TR_N; i++)
        tr.c[i] = gort_ctx_with_timeout(parent, (i % 50) * US);
    gort_wg_add(&tr.wg, 2);
    gort_go(timer_racer, (void *)0);
    gort_go(timer_racer, (void *)1);
    assert_true(wg_wait_bounded(&tr.wg));
    int ncancel = 0, ntimeout = 0;
    for (int i = 0; i < TR_N; i++) {
        int err = gort_ctx_err(tr.c[i]);
        assert_true(err == -ECANCELED || err == -ETIMEDOUT);
        ncancel += err == -ECANCELED;
        ntimeout += err == -ETIMEDOUT;
    }
    assert_int_equal(ncancel + ntimeout, TR_N);
    assert_int_equal(gort__ctx_nchildren(parent), 0); /* all left, either way */
    gort_sleep(5 * MS);
    for (int i = 0; i < TR_N; i++) /* nothing changed afterwards */
        assert_true(gort_ctx_err(tr.c[i]) == -ECANCELED || gort_ctx_err(tr.c[i]) == -ETIMEDOUT);
    assert_int_equal(gort_ctx_err(parent), 0);
    gort_ctx_cancel(parent);
    gort_maxprocs(old);
    settle();
}

/* ==== main ================================================================================ */

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka keeps its state in __thread variables: stay on one thread. */
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_background),
        cmocka_unit_test(test_errstr),
        cmocka_unit_test(test_misuse_panics),
        cmocka_unit_test(test_cancel_parent_cancels_descendants),
        cmocka_unit_test(test_cancel_child_leaves_parent),
        cmocka_unit_test(test_cancel_idempotent),
        cmocka_unit_test(test_deep_chain),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_timeout_fires),
        cmocka_unit_test(test_earlier_parent_deadline_wins),
        cmocka_unit_test(test_cancel_before_deadline),
        cmocka_unit_test(test_worker_loop_exits_after_cancel),
        cmocka_unit_test(test_timeout_against_longer_work),
        cmocka_unit_test(test_cancel_after_three_ticks),
        cmocka_unit_test(test_value_down_call_chain),
        cmocka_unit_test(test_select_timeout_case),
        cmocka_unit_test(test_rate_limiter_gives_up_on_cancel),
        cmocka_unit_test(test_first_error_cancels_group),
        cmocka_unit_test(test_fan_out_one_cancel),
        cmocka_unit_test(test_race_derive_and_cancel),
        cmocka_unit_test(test_race_timer_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}
