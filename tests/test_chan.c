/* tests/test_chan.c: channels and select (sync/chan.c, sync/select.c),
 * checked against Go's semantics, plus the classic channel exercises of
 * EXERCISES.md and the failure modes that must be loud (in a subprocess).
 *
 * Harness (as test_sched.c): the cmocka run is the main goroutine, wired to
 * its thread (cmocka keeps its state in __thread variables); assertions only
 * in the test functions; spawned goroutines record what they saw in shared
 * variables and the test asserts after waiting for them. Waits are bounded
 * (WAIT_FOR: 10 s), never sleeps that a slow machine could outrun. "Blocked"
 * is observed exactly: chan_waiters() counts the sudogs queued on a channel
 * (under its lock), so a test knows a peer is parked before it acts.
 *
 * Runs with the default number of processors (GORT_MAXPROCS from the
 * environment); nothing asserted here depends on scheduling order except
 * through channel hand-offs.
 *
 * What is covered:
 *   - Go's table of channel operations (nil / closed / open unbuffered and
 *     buffered x send / receive / close), len and cap, zero-size elements,
 *     makechan limits, exact byte copies of a 1 KiB element in every hand-off
 *     path (blocked receiver, blocked sender, buffer, select both ways);
 *   - close: wakes every blocked receiver (false, zeroed element) and makes
 *     every blocked sender panic (recovered inside that goroutine);
 *   - FIFO per sender, a prime sieve of goroutine filters, a 10,000-goroutine
 *     daisy chain;
 *   - select: default, the ready case wins, nil cases are never chosen, a
 *     woken select leaves every other queue at once, two racing wakers (one
 *     wins, the other stays blocked, nothing lost), same channel twice, more
 *     cases than the on-stack arrays (heap path), closed channels (a select
 *     sending and receiving on one channel that gets closed takes the
 *     receive, as Go), fairness (a closed channel counts as ready);
 *   - Go's own regressions from runtime/chan_test.go: TestSelfSelect,
 *     TestNonblockRecvRace, TestNonblockSelectRace(2),
 *     TestSelectDuplicateChannel (ordering by chan_waiters, not sleeps);
 *   - misuse of the C API (NULL element, case without direction, negative
 *     case count) panics recoverably with a message naming it;
 *   - stress: 8 producers and 8 consumers, 100k items, through a buffered, an
 *     unbuffered channel and a select over two channels (nil-ing closed
 *     channels out, the fan-in idiom), exact sums, every item exactly once;
 *     random 1-3 case selects by 8 goroutines over four channels while main
 *     closes them (every value sent is received exactly once, every panic is
 *     "send on closed channel"); 16 ping-pong pairs while gort_maxprocs
 *     changes under them;
 *   - exercises: cat/dog/fish ring, odd/even, a semaphore channel limiting
 *     concurrency, a worker pool with recovered panics and drain on close;
 *   - subprocess (tests/helpers/chan_victim): one send too many (deadlock),
 *     a child's panic not caught by its parent, select with no cases forever,
 *     a leaked blocked sender counted by gort_num_goroutine.
 *
 * Goroutines that block forever on purpose (nil channels) are counted in
 * `leaked`; settle() expects exactly 1 + leaked goroutines between tests.
 */
#include <errno.h>
#include <limits.h>
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
#include "sync/sync.h"

#include "gort_test.h"

/* ---- helpers (nap, WAIT_FOR: gort_test.h) ------------------------------------------ */

static int leaked; /* goroutines left blocked forever on purpose */

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1 + leaked));
    assert_int_equal(gort_self(), 1);
}

/* Sudogs queued on c (dir GORT_CASE_SEND: sendq, else recvq). live: skip
 * the stale sudogs of a select that another case already won (they stay
 * queued until that select cleans up); !live: count every queued sudog. */
static int chan_waiters_(gort_chan *ch, int dir, bool live)
{
    struct hchan *c = (struct hchan *)ch;
    int n = 0;
    sched_proc_pin(); /* no preemption while holding a runtime lock */
    rlock_acquire(&c->lock);
    struct waitq *q = dir == GORT_CASE_SEND ? &c->sendq : &c->recvq;
    for (struct sudog *sg = q->first; sg; sg = sg->next)
        if (!live || !sg->is_select ||
            atomic_load_explicit(&sg->g->selectdone, memory_order_relaxed) == 0)
            n++;
    rlock_release(&c->lock);
    sched_proc_unpin();
    return n;
}
#define chan_waiters(c, dir) chan_waiters_((c), (dir), true)
#define chan_queued(c, dir)  chan_waiters_((c), (dir), false)

/* Run fn(arg) under gort_try; on a panic copy its message into buf.
 * Usable in any goroutine. */
static bool try_msg(void (*fn)(void *), void *arg, char *buf, size_t len)
{
    const char *msg = NULL;
    bool ok = gort_try(fn, arg, &msg);
    if (buf && len) snprintf(buf, len, "%s", ok ? "" : msg ? msg : "(null message)");
    return ok;
}

/* Main goroutine only: fn(arg) must panic with exactly want. */
static void expect_panic_(void (*fn)(void *), void *arg, const char *want, const char *what)
{
    char buf[256];
    if (try_msg(fn, arg, buf, sizeof buf)) fail_msg("%s: no panic (expected \"%s\")", what, want);
    if (strcmp(buf, want) != 0) fail_msg("%s: panic \"%s\", expected \"%s\"", what, buf, want);
}
#define expect_panic(fn, arg, want) expect_panic_((fn), (arg), (want), #fn)

static bool all_bytes(const void *p, int byte, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)byte) return false;
    return true;
}

static int nonblock_send(gort_chan *c, const void *elem)
{
    gort_case cs = GORT_SEND(c, elem);
    return gort_select(&cs, 1, false);
}

static int nonblock_recv(gort_chan *c, void *elem, bool *ok)
{
    gort_case cs = GORT_RECV(c, elem, ok);
    return gort_select(&cs, 1, false);
}

/* A 24-byte element: big enough to see partial zeroing. */
struct e24 {
    uint64_t a, b, c;
};

/* Operations that panic, for gort_try. */
static void op_close(void *c)
{
    gort_chan_close(c);
}

static void op_send_e24(void *c)
{
    struct e24 v = {1, 2, 3};
    gort_chan_send(c, &v);
}

static void op_select_send_one(void *c) /* single case: the chan_send path */
{
    struct e24 v = {1, 2, 3};
    gort_case cs = GORT_SEND(c, &v);
    gort_select(&cs, 1, true);
}

static void op_select_send_two(void *c) /* two cases: the selectgo path */
{
    struct e24 v = {1, 2, 3};
    gort_case cs[] = {GORT_RECV(NULL, NULL, NULL), GORT_SEND(c, &v)};
    gort_select(cs, 2, false);
}

/* ---- the operation table: nil channels -------------------------------------------- */

static void test_nil_chan_nonblocking(void **state)
{
    (void)state;
    settle();
    assert_int_equal(gort_chan_len(NULL), 0);
    assert_int_equal(gort_chan_cap(NULL), 0);
    int v = 0x5a5a;
    bool ok = true;
    assert_int_equal(nonblock_send(NULL, &v), -1);
    assert_int_equal(nonblock_recv(NULL, &v, &ok), -1);
    assert_int_equal(v, 0x5a5a); /* untouched */
    assert_true(ok);
    gort_case both[] = {GORT_SEND(NULL, &v), GORT_RECV(NULL, &v, &ok)};
    assert_int_equal(gort_select(both, 2, false), -1);
    assert_int_equal(v, 0x5a5a);
    assert_true(ok);
    expect_panic(op_close, NULL, "close of nil channel");
}

static struct {
    _Atomic int started, returned;
} nilb;

static void nil_sender(void *arg)
{
    (void)arg;
    int v = 1;
    atomic_fetch_add(&nilb.started, 1);
    gort_chan_send(NULL, &v);
    atomic_fetch_add(&nilb.returned, 1);
}

static void nil_receiver(void *arg)
{
    int v = 0;
    atomic_fetch_add(&nilb.started, 1);
    gort_chan_recv(NULL, arg ? &v : NULL);
    atomic_fetch_add(&nilb.returned, 1);
}

static void nil_selector(void *arg)
{
    (void)arg;
    int v = 1;
    gort_case cs[] = {GORT_SEND(NULL, &v), GORT_RECV(NULL, &v, NULL)};
    atomic_fetch_add(&nilb.started, 1);
    gort_select(cs, 2, true);
    atomic_fetch_add(&nilb.returned, 1);
}

static void nil_selector_one(void *arg)
{
    (void)arg;
    int v = 1;
    gort_case cs = GORT_RECV(NULL, &v, NULL);
    atomic_fetch_add(&nilb.started, 1);
    gort_select(&cs, 1, true);
    atomic_fetch_add(&nilb.returned, 1);
}

/* Send, receive and a select on nil channels block forever: the goroutines
 * stay counted and never return (they are left blocked for good). */
static void test_nil_chan_blocks_forever(void **state)
{
    (void)state;
    settle();
    int base = gort_num_goroutine();
    gort_go(nil_sender, NULL);
    gort_go(nil_receiver, (void *)1);
    gort_go(nil_receiver, NULL);
    gort_go(nil_selector, NULL);
    gort_go(nil_selector_one, NULL);
    leaked += 5;
    assert_true(WAIT_FOR(atomic_load(&nilb.started) == 5));
    for (int i = 0; i < 100; i++)
        gort_yield();
    nap(20 * MS);
    assert_int_equal(atomic_load(&nilb.returned), 0);
    assert_int_equal(gort_num_goroutine(), base + 5);
}

/* ---- the operation table: closed channels ----------------------------------------- */

static void test_closed_chan(void **state)
{
    (void)state;
    settle();
    static const size_t caps[] = {0, 1, 4};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        gort_chan *c = gort_chan_make(sizeof(struct e24), caps[k]);
        gort_chan_close(c);
        expect_panic(op_send_e24, c, "send on closed channel");
        expect_panic(op_select_send_one, c, "send on closed channel");
        expect_panic(op_select_send_two, c, "send on closed channel");
        expect_panic(op_close, c, "close of closed channel");

        struct e24 e;
        memset(&e, 0xA5, sizeof e);
        assert_false(gort_chan_recv(c, &e));
        assert_true(all_bytes(&e, 0, sizeof e));
        assert_false(gort_chan_recv(c, NULL));

        bool ok = true;
        memset(&e, 0xA5, sizeof e);
        assert_int_equal(nonblock_recv(c, &e, &ok), 0);
        assert_false(ok);
        assert_true(all_bytes(&e, 0, sizeof e));

        gort_case cs[] = {GORT_RECV(NULL, &e, &ok), GORT_RECV(c, &e, &ok)};
        ok = true;
        memset(&e, 0xA5, sizeof e);
        assert_int_equal(gort_select(cs, 2, true), 1);
        assert_false(ok);
        assert_true(all_bytes(&e, 0, sizeof e));
        ok = true;
        memset(&e, 0xA5, sizeof e);
        assert_int_equal(gort_select(cs, 2, false), 1);
        assert_false(ok);
        assert_true(all_bytes(&e, 0, sizeof e));

        assert_int_equal(gort_chan_len(c), 0);
        assert_int_equal(gort_chan_cap(c), caps[k]);
    }
}

/* A closed channel still delivers what it holds, in order, before reporting
 * closed. */
static void test_closed_buffered_drains_first(void **state)
{
    (void)state;
    settle();
    gort_chan *c = gort_chan_make(sizeof(int), 4);
    for (int i = 1; i <= 3; i++)
        gort_chan_send(c, &i);
    gort_chan_close(c);
    assert_int_equal(gort_chan_len(c), 3);
    assert_int_equal(gort_chan_cap(c), 4);
    for (int i = 1; i <= 3; i++) {
        int v = -1;
        assert_true(gort_chan_recv(c, &v));
        assert_int_equal(v, i);
        assert_int_equal(gort_chan_len(c), 3 - i);
    }
    int v = -1;
    assert_false(gort_chan_recv(c, &v));
    assert_int_equal(v, 0);

    /* the same through select */
    gort_chan *d = gort_chan_make(sizeof(int), 2);
    int x = 10;
    gort_chan_send(d, &x);
    x = 20;
    gort_chan_send(d, &x);
    gort_chan_close(d);
    bool ok = false;
    v = -1;
    assert_int_equal(nonblock_recv(d, &v, &ok), 0);
    assert_true(ok);
    assert_int_equal(v, 10);
    gort_case cs[] = {GORT_RECV(NULL, NULL, NULL), GORT_RECV(d, &v, &ok)};
    ok = false;
    v = -1;
    assert_int_equal(gort_select(cs, 2, true), 1);
    assert_true(ok);
    assert_int_equal(v, 20);
    v = -1;
    assert_int_equal(gort_select(cs, 2, true), 1);
    assert_false(ok);
    assert_int_equal(v, 0);
}

/* ---- the operation table: open channels -------------------------------------------- */

static void test_open_chan_ops(void **state)
{
    (void)state;
    settle();
    int v = 5;
    bool ok = false;

    gort_chan *u = gort_chan_make(sizeof(int), 0);
    assert_int_equal(nonblock_send(u, &v), -1);
    assert_int_equal(nonblock_recv(u, &v, &ok), -1);
    /* a select cannot pair with itself */
    gort_case self[] = {GORT_SEND(u, &v), GORT_RECV(u, &v, &ok)};
    assert_int_equal(gort_select(self, 2, false), -1);
    assert_int_equal(gort_chan_len(u), 0);
    assert_int_equal(gort_chan_cap(u), 0);
    gort_chan_close(u); /* close of an open channel nobody waits on */
    assert_false(gort_chan_recv(u, &v));
    assert_int_equal(v, 0);

    gort_chan *b = gort_chan_make(sizeof(int), 2);
    assert_int_equal(nonblock_recv(b, &v, &ok), -1);
    v = 1;
    gort_chan_send(b, &v);
    v = 2;
    assert_int_equal(nonblock_send(b, &v), 0);
    v = 3;
    assert_int_equal(nonblock_send(b, &v), -1); /* full */
    assert_int_equal(gort_chan_len(b), 2);
    assert_int_equal(gort_chan_cap(b), 2);
    assert_true(gort_chan_recv(b, &v));
    assert_int_equal(v, 1);
    ok = false;
    assert_int_equal(nonblock_recv(b, &v, &ok), 0);
    assert_true(ok);
    assert_int_equal(v, 2);
    assert_int_equal(nonblock_recv(b, &v, &ok), -1);
    /* wrap around the ring a few times */
    for (int i = 0; i < 10; i++) {
        int a = 100 + i, c = 200 + i;
        gort_chan_send(b, &a);
        gort_chan_send(b, &c);
        assert_true(gort_chan_recv(b, &v));
        assert_int_equal(v, a);
        assert_true(gort_chan_recv(b, &v));
        assert_int_equal(v, c);
    }
    gort_chan_close(b);
    assert_false(gort_chan_recv(b, &v));
}

static struct {
    gort_chan *c;
    gort_waitgroup wg;
} lc;

static void one_int_sender(void *arg)
{
    int v = (int)(intptr_t)arg;
    gort_chan_send(lc.c, &v);
    gort_wg_done(&lc.wg);
}

static void test_len_cap(void **state)
{
    (void)state;
    settle();
    gort_chan *c = gort_chan_make(sizeof(int), 10);
    assert_int_equal(gort_chan_cap(c), 10);
    assert_int_equal(gort_chan_len(c), 0);
    for (int i = 0; i < 7; i++)
        gort_chan_send(c, &i);
    assert_int_equal(gort_chan_len(c), 7);
    gort_chan_recv(c, NULL);
    gort_chan_recv(c, NULL);
    assert_int_equal(gort_chan_len(c), 5);
    gort_chan_close(c);
    assert_int_equal(gort_chan_len(c), 5);
    assert_int_equal(gort_chan_cap(c), 10);

    /* unbuffered: a blocked sender is not "in" the channel */
    lc.c = gort_chan_make(sizeof(int), 0);
    gort_wg_add(&lc.wg, 1);
    gort_go(one_int_sender, (void *)42);
    assert_true(WAIT_FOR(chan_waiters(lc.c, GORT_CASE_SEND) == 1));
    assert_int_equal(gort_chan_len(lc.c), 0);
    assert_int_equal(gort_chan_cap(lc.c), 0);
    int v = 0;
    assert_true(gort_chan_recv(lc.c, &v));
    assert_int_equal(v, 42);
    gort_wg_wait(&lc.wg);

    /* full buffer plus a blocked sender: len is the buffer's */
    lc.c = gort_chan_make(sizeof(int), 2);
    int a = 1, b = 2;
    gort_chan_send(lc.c, &a);
    gort_chan_send(lc.c, &b);
    gort_wg_add(&lc.wg, 1);
    gort_go(one_int_sender, (void *)3);
    assert_true(WAIT_FOR(chan_waiters(lc.c, GORT_CASE_SEND) == 1));
    assert_int_equal(gort_chan_len(lc.c), 2);
    for (int i = 1; i <= 3; i++) { /* FIFO: the blocked value comes last */
        assert_true(gort_chan_recv(lc.c, &v));
        assert_int_equal(v, i);
    }
    gort_wg_wait(&lc.wg);
    assert_int_equal(gort_chan_len(lc.c), 0);

    assert_int_equal(gort_chan_cap(gort_chan_make(0, 5)), 5);
    assert_int_equal(gort_chan_cap(gort_chan_make(0, 0)), 0);
}

static void op_make_too_big_elem(void *arg)
{
    (void)arg;
    gort_chan_make((64u << 10) + 1, 1);
}

static void op_make_too_big_cap(void *arg)
{
    (void)arg;
    gort_chan_make(8, SIZE_MAX / 4);
}

/* makechan limits; the largest element (64 KiB) still round-trips. */
static void test_makechan_limits(void **state)
{
    (void)state;
    settle();
    expect_panic(op_make_too_big_elem, NULL, "makechan: size out of range");
    expect_panic(op_make_too_big_cap, NULL, "makechan: size out of range");
    static unsigned char in[64 << 10], out[64 << 10];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 31 + (i >> 9));
    gort_chan *c = gort_chan_make(sizeof in, 1);
    gort_chan_send(c, in);
    assert_true(gort_chan_recv(c, out));
    assert_memory_equal(in, out, sizeof in);
}

/* ---- close wakes every waiter ----------------------------------------------------- */

enum { NBLOCKED = 3 };

static struct sender_rec {
    gort_chan *c;
    gort_chan *never; /* select mode: a channel nobody uses */
    int val;
    bool use_select;
    _Atomic int after; /* the send returned */
    bool ok;
    char msg[64];
} srec[NBLOCKED];
static gort_waitgroup swg;

static void send_body(void *arg)
{
    struct sender_rec *r = arg;
    if (r->use_select) {
        gort_case cs[] = {GORT_SEND(r->c, &r->val), GORT_RECV(r->never, NULL, NULL)};
        gort_select(cs, 2, true);
    } else {
        gort_chan_send(r->c, &r->val);
    }
    atomic_store(&r->after, 1);
}

static void blocked_sender(void *arg)
{
    struct sender_rec *r = arg;
    r->ok = try_msg(send_body, r, r->msg, sizeof r->msg);
    gort_wg_done(&swg);
}

/* Senders blocked on a channel (unbuffered, or buffered and full; plain send
 * or a select send case) panic "send on closed channel" when it is closed;
 * each recovers inside its own goroutine. The buffered values stay
 * receivable. */
static void test_close_panics_blocked_senders(void **state)
{
    (void)state;
    settle();
    for (int mode = 0; mode < 4; mode++) {
        size_t cap = mode & 1 ? 2 : 0;
        bool sel = mode & 2;
        gort_chan *c = gort_chan_make(sizeof(int), cap);
        gort_chan *never = gort_chan_make(sizeof(int), 0);
        for (int i = 0; i < (int)cap; i++) {
            int v = 100 + i;
            gort_chan_send(c, &v);
        }
        memset(srec, 0, sizeof srec);
        gort_wg_add(&swg, NBLOCKED);
        for (int i = 0; i < NBLOCKED; i++) {
            srec[i].c = c;
            srec[i].never = never;
            srec[i].val = i + 1;
            srec[i].use_select = sel;
            srec[i].ok = true;
            gort_go(blocked_sender, &srec[i]);
        }
        assert_true(WAIT_FOR(chan_waiters(c, GORT_CASE_SEND) == NBLOCKED));
        assert_int_equal(gort_chan_len(c), cap);
        gort_chan_close(c);
        gort_wg_wait(&swg);
        for (int i = 0; i < NBLOCKED; i++) {
            assert_false(srec[i].ok);
            assert_string_equal(srec[i].msg, "send on closed channel");
            assert_int_equal(atomic_load(&srec[i].after), 0);
        }
        for (int i = 0; i < (int)cap; i++) {
            int v = -1;
            assert_true(gort_chan_recv(c, &v));
            assert_int_equal(v, 100 + i);
        }
        int v = -1;
        assert_false(gort_chan_recv(c, &v));
        assert_int_equal(v, 0);
        /* the selects took their sudogs off the other channel */
        assert_int_equal(chan_queued(never, GORT_CASE_RECV), 0);
        assert_int_equal(chan_queued(c, GORT_CASE_SEND), 0);
    }
}

enum { NRECV = 6 };

static struct recv_rec {
    gort_chan *c, *never;
    int mode; /* 0 plain receive, 1 select with a nil case, 2 select with an idle channel */
    struct e24 e;
    bool got, ok;
} rrec[NRECV];
static gort_waitgroup rwg;

static void blocked_receiver(void *arg)
{
    struct recv_rec *r = arg;
    if (r->mode == 0) {
        r->got = gort_chan_recv(r->c, &r->e);
        r->ok = r->got;
    } else {
        gort_case cs[] = {GORT_RECV(r->mode == 1 ? NULL : r->never, NULL, NULL),
                          GORT_RECV(r->c, &r->e, &r->ok)};
        r->got = gort_select(cs, 2, true) == 1;
    }
    gort_wg_done(&rwg);
}

/* Close wakes every blocked receiver (plain or in a select) with false and a
 * zeroed element. */
static void test_close_wakes_all_receivers(void **state)
{
    (void)state;
    settle();
    static const size_t caps[] = {0, 3};
    for (size_t k = 0; k < 2; k++) {
        gort_chan *c = gort_chan_make(sizeof(struct e24), caps[k]);
        gort_chan *never = gort_chan_make(sizeof(int), 0);
        gort_wg_add(&rwg, NRECV);
        for (int i = 0; i < NRECV; i++) {
            rrec[i] = (struct recv_rec){.c = c, .never = never, .mode = i % 3, .ok = true};
            memset(&rrec[i].e, 0xA5, sizeof rrec[i].e);
            gort_go(blocked_receiver, &rrec[i]);
        }
        assert_true(WAIT_FOR(chan_waiters(c, GORT_CASE_RECV) == NRECV));
        gort_chan_close(c);
        gort_wg_wait(&rwg);
        for (int i = 0; i < NRECV; i++) {
            if (rrec[i].mode == 0)
                assert_false(rrec[i].got);
            else
                assert_true(rrec[i].got); /* the channel's case was chosen */
            assert_false(rrec[i].ok);
            assert_true(all_bytes(&rrec[i].e, 0, sizeof rrec[i].e));
        }
        assert_int_equal(chan_queued(never, GORT_CASE_RECV), 0);
        assert_int_equal(chan_queued(c, GORT_CASE_RECV), 0);
    }
}

/* ---- zero-size elements ------------------------------------------------------------ */

static struct {
    gort_chan *sig, *done;
    gort_waitgroup wg;
    _Atomic int woke_false;
} zs;

static void signaller(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        gort_chan_send(zs.sig, NULL);
    gort_chan_close(zs.sig);
}

static void done_waiter(void *arg)
{
    (void)arg;
    if (!gort_chan_recv(zs.done, NULL)) atomic_fetch_add(&zs.woke_false, 1);
    gort_wg_done(&zs.wg);
}

enum { ZS_WAITERS = 2000 };

static void test_zero_size_elems(void **state)
{
    (void)state;
    settle();
    /* unbuffered signals, NULL elements */
    zs.sig = gort_chan_make(0, 0);
    gort_go(signaller, NULL);
    int n = 0;
    while (gort_chan_recv(zs.sig, NULL))
        n++;
    assert_int_equal(n, 100);

    /* buffered: counts without storage; a non-NULL element is never written */
    gort_chan *b = gort_chan_make(0, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nonblock_send(b, NULL), 0);
    assert_int_equal(nonblock_send(b, NULL), -1);
    assert_int_equal(gort_chan_len(b), 3);
    assert_int_equal(gort_chan_cap(b), 3);
    uint64_t canary = 0x0123456789abcdefULL;
    assert_true(gort_chan_recv(b, &canary));
    bool ok = false;
    assert_int_equal(nonblock_recv(b, &canary, &ok), 0);
    assert_true(ok);
    gort_chan_send(b, NULL);
    assert_int_equal(gort_chan_len(b), 2);
    assert_true(gort_chan_recv(b, NULL));
    assert_true(gort_chan_recv(b, NULL));
    assert_int_equal(nonblock_recv(b, NULL, NULL), -1);
    gort_chan_close(b);
    assert_false(gort_chan_recv(b, &canary));
    assert_int_equal(canary, 0x0123456789abcdefULL);

    /* close as a broadcast */
    zs.done = gort_chan_make(0, 0);
    atomic_store(&zs.woke_false, 0);
    gort_wg_add(&zs.wg, ZS_WAITERS);
    for (int i = 0; i < ZS_WAITERS; i++)
        gort_go(done_waiter, NULL);
    assert_true(WAIT_FOR(chan_waiters(zs.done, GORT_CASE_RECV) == ZS_WAITERS));
    gort_chan_close(zs.done);
    gort_wg_wait(&zs.wg);
    assert_int_equal(atomic_load(&zs.woke_false), ZS_WAITERS);
}

/* ---- exact copies of a 1 KiB element ------------------------------------------------- */

struct kib {
    unsigned char b[1024];
};

static void kib_fill(struct kib *k, unsigned seed)
{
    for (unsigned i = 0; i < sizeof k->b; i++)
        k->b[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8) + 1u);
}

static struct {
    gort_chan *c, *never;
    struct kib in, out;
    int mode;
    int bad;
    gort_waitgroup wg;
} kb;

enum { KIB_STREAM = 200 };

static void kib_peer(void *arg)
{
    (void)arg;
    struct kib local; /* on this goroutine's stack: the blocked peer's copy */
    switch (kb.mode) {
    case 0: /* blocked receiver */
        gort_chan_recv(kb.c, &kb.out);
        break;
    case 1: /* blocked sender */
        local = kb.in;
        gort_chan_send(kb.c, &local);
        break;
    case 2: /* stream of distinct values */
        for (unsigned s = 0; s < KIB_STREAM; s++) {
            kib_fill(&local, s);
            gort_chan_send(kb.c, &local);
        }
        break;
    case 3: { /* blocked select receive */
        gort_case cs[] = {GORT_RECV(kb.never, NULL, NULL), GORT_RECV(kb.c, &local, NULL)};
        if (gort_select(cs, 2, true) != 1) kb.bad++;
        kb.out = local;
        break;
    }
    case 5: /* blocked receiver; main sends from a select (pass 1) */
        gort_chan_recv(kb.c, &kb.out);
        break;
    case 6: /* blocked sender; main receives in a select (pass 1) */
        local = kb.in;
        gort_chan_send(kb.c, &local);
        break;
    case 4: { /* blocked select send */
        local = kb.in;
        gort_case cs[] = {GORT_SEND(kb.c, &local), GORT_RECV(kb.never, NULL, NULL)};
        if (gort_select(cs, 2, true) != 0) kb.bad++;
        break;
    }
    }
    gort_wg_done(&kb.wg);
}

static void test_handoff_copies_1kib(void **state)
{
    (void)state;
    settle();
    assert_int_equal(sizeof(struct kib), 1024);
    kb.never = gort_chan_make(sizeof(int), 0);
    for (int mode = 0; mode < 7; mode++) {
        kb.c = gort_chan_make(sizeof(struct kib), 0);
        kb.mode = mode;
        kb.bad = 0;
        kib_fill(&kb.in, 1000u + (unsigned)mode);
        memset(&kb.out, 0, sizeof kb.out);
        gort_wg_add(&kb.wg, 1);
        gort_go(kib_peer, NULL);
        struct kib got;
        switch (mode) {
        case 0:
        case 3:
            assert_true(WAIT_FOR(chan_waiters(kb.c, GORT_CASE_RECV) == 1));
            gort_chan_send(kb.c, &kb.in);
            gort_wg_wait(&kb.wg);
            assert_memory_equal(&kb.out, &kb.in, sizeof kb.in);
            break;
        case 1:
        case 4:
            assert_true(WAIT_FOR(chan_waiters(kb.c, GORT_CASE_SEND) == 1));
            memset(&got, 0, sizeof got);
            assert_true(gort_chan_recv(kb.c, &got));
            gort_wg_wait(&kb.wg);
            assert_memory_equal(&got, &kb.in, sizeof kb.in);
            break;
        case 5: {
            assert_true(WAIT_FOR(chan_waiters(kb.c, GORT_CASE_RECV) == 1));
            gort_case cs[] = {GORT_RECV(kb.never, NULL, NULL), GORT_SEND(kb.c, &kb.in)};
            assert_int_equal(gort_select(cs, 2, false), 1);
            gort_wg_wait(&kb.wg);
            assert_memory_equal(&kb.out, &kb.in, sizeof kb.in);
            break;
        }
        case 6: {
            assert_true(WAIT_FOR(chan_waiters(kb.c, GORT_CASE_SEND) == 1));
            memset(&got, 0, sizeof got);
            bool ok = false;
            gort_case cs[] = {GORT_RECV(kb.c, &got, &ok), GORT_RECV(kb.never, NULL, NULL)};
            assert_int_equal(gort_select(cs, 2, false), 0);
            assert_true(ok);
            gort_wg_wait(&kb.wg);
            assert_memory_equal(&got, &kb.in, sizeof kb.in);
            break;
        }
        case 2:
            for (unsigned s = 0; s < KIB_STREAM; s++) {
                struct kib want;
                kib_fill(&want, s);
                memset(&got, 0, sizeof got);
                assert_true(gort_chan_recv(kb.c, &got));
                if (memcmp(&got, &want, sizeof got) != 0) fail_msg("stream value %u differs", s);
            }
            gort_wg_wait(&kb.wg);
            break;
        }
        assert_int_equal(kb.bad, 0);
        assert_int_equal(chan_queued(kb.never, GORT_CASE_RECV), 0);
    }
    /* through a buffer, wrapping around it */
    gort_chan *b = gort_chan_make(sizeof(struct kib), 3);
    for (unsigned s = 0; s < 10; s++) {
        struct kib in, out;
        kib_fill(&in, s + 7);
        gort_chan_send(b, &in);
        memset(&out, 0, sizeof out);
        assert_true(gort_chan_recv(b, &out));
        assert_memory_equal(&out, &in, sizeof in);
    }
}

/* ---- FIFO per sender ------------------------------------------------------------------ */

enum { FIFO_SENDERS = 4, FIFO_N = 10000 };

struct idseq {
    int id, seq;
};

static struct {
    gort_chan *c;
} ff;

static void fifo_sender(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int s = 0; s < FIFO_N; s++) {
        struct idseq v = {id, s};
        gort_chan_send(ff.c, &v);
    }
}

/* 4 senders share a 16-slot channel: the receiver sees each sender's values
 * in the order it sent them. */
static void test_fifo_per_sender(void **state)
{
    (void)state;
    settle();
    ff.c = gort_chan_make(sizeof(struct idseq), 16);
    for (int i = 0; i < FIFO_SENDERS; i++)
        gort_go(fifo_sender, (void *)(intptr_t)i);
    int next[FIFO_SENDERS] = {0};
    int bad = 0;
    for (int k = 0; k < FIFO_SENDERS * FIFO_N; k++) {
        struct idseq v = {-1, -1};
        assert_true(gort_chan_recv(ff.c, &v));
        assert_in_range(v.id, 0, FIFO_SENDERS - 1);
        if (v.seq != next[v.id]) bad++;
        next[v.id] = v.seq + 1;
    }
    assert_int_equal(bad, 0);
    for (int i = 0; i < FIFO_SENDERS; i++)
        assert_int_equal(next[i], FIFO_N);
    assert_int_equal(gort_chan_len(ff.c), 0);
}

/* ---- prime sieve ------------------------------------------------------------------------ */

enum { NPRIMES = 100, SIEVE_LIMIT = 600 };

static gort_chan *sieve_ch[NPRIMES + 1];
static int sieve_prime[NPRIMES];

static void generate(void *arg)
{
    gort_chan *out = arg;
    for (int i = 2; i <= SIEVE_LIMIT; i++)
        gort_chan_send(out, &i);
    gort_chan_close(out);
}

static void filter(void *arg)
{
    int k = (int)(intptr_t)arg;
    int v;
    while (gort_chan_recv(sieve_ch[k], &v))
        if (v % sieve_prime[k] != 0) gort_chan_send(sieve_ch[k + 1], &v);
    gort_chan_close(sieve_ch[k + 1]);
}

/* Go's concurrent prime sieve: a generator, then one filter goroutine per
 * prime found. The generator stops at 600 and each filter closes its output
 * when its input closes, so the whole chain ends. */
static void test_prime_sieve(void **state)
{
    (void)state;
    settle();
    /* the table, computed in C */
    static bool composite[SIEVE_LIMIT + 1];
    int want[SIEVE_LIMIT], nwant = 0;
    for (int i = 2; i <= SIEVE_LIMIT; i++) {
        if (composite[i]) continue;
        want[nwant++] = i;
        for (int j = i * i; j <= SIEVE_LIMIT; j += i)
            composite[j] = true;
    }
    assert_true(nwant > NPRIMES);
    assert_int_equal(want[NPRIMES - 1], 541);

    sieve_ch[0] = gort_chan_make(sizeof(int), 0);
    gort_go(generate, sieve_ch[0]);
    for (int k = 0; k < NPRIMES; k++) {
        int p = 0;
        assert_true(gort_chan_recv(sieve_ch[k], &p));
        assert_int_equal(p, want[k]);
        sieve_prime[k] = p;
        sieve_ch[k + 1] = gort_chan_make(sizeof(int), 0);
        gort_go(filter, (void *)(intptr_t)k);
    }
    /* what passes all 100 filters: the primes above 541 */
    int k = NPRIMES, p;
    while (gort_chan_recv(sieve_ch[NPRIMES], &p)) {
        assert_true(k < nwant);
        assert_int_equal(p, want[k]);
        k++;
    }
    assert_int_equal(k, nwant);
    assert_true(WAIT_FOR(gort_num_goroutine() == 1 + leaked));
}

/* ---- daisy chain --------------------------------------------------------------------------- */

enum { CHAIN = 10000 };

static gort_chan *chain[CHAIN + 1];

static void whisper(void *arg)
{
    int i = (int)(intptr_t)arg;
    int v;
    gort_chan_recv(chain[i + 1], &v);
    v++;
    gort_chan_send(chain[i], &v);
}

static void chain_feeder(void *arg)
{
    (void)arg;
    int v = 0;
    gort_chan_send(chain[CHAIN], &v);
}

/* Go's daisy chain: 10,000 goroutines, each receives from its right
 * neighbour and passes the value + 1 to its left. */
static void test_daisy_chain(void **state)
{
    (void)state;
    settle();
    for (int i = 0; i <= CHAIN; i++)
        chain[i] = gort_chan_make(sizeof(int), 0);
    for (int i = 0; i < CHAIN; i++)
        gort_go(whisper, (void *)(intptr_t)i);
    assert_int_equal(gort_num_goroutine(), 1 + leaked + CHAIN);
    gort_go(chain_feeder, NULL);
    int v = -1;
    assert_true(gort_chan_recv(chain[0], &v));
    assert_int_equal(v, CHAIN);
    assert_true(WAIT_FOR(gort_num_goroutine() == 1 + leaked));
}

/* ---- select ---------------------------------------------------------------------------------- */

/* Nothing ready: -1 (default), no element touched. */
static void test_select_default(void **state)
{
    (void)state;
    settle();
    gort_chan *u = gort_chan_make(sizeof(int), 0);
    gort_chan *full = gort_chan_make(sizeof(int), 1);
    gort_chan *empty = gort_chan_make(sizeof(int), 1);
    int one = 1;
    gort_chan_send(full, &one);
    int e[6] = {11, 12, 13, 14, 15, 16};
    bool ok[6] = {true, true, true, true, true, true};
    gort_case cs[] = {GORT_RECV(u, &e[0], &ok[0]),    GORT_SEND(u, &e[1]),
                      GORT_SEND(full, &e[2]),         GORT_RECV(empty, &e[3], &ok[3]),
                      GORT_RECV(NULL, &e[4], &ok[4]), GORT_SEND(NULL, &e[5])};
    for (int i = 0; i < 100; i++)
        assert_int_equal(gort_select(cs, 6, false), -1);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e[i], 11 + i);
        assert_true(ok[i]);
    }
    assert_int_equal(gort_chan_len(full), 1);
    assert_int_equal(gort_chan_len(empty), 0);
    assert_int_equal(gort_select(NULL, 0, false), -1);
    assert_int_equal(gort_select(cs, 0, false), -1);
}

static struct {
    gort_chan *c[3];
    int which; /* the channel the helper uses */
    bool recv; /* the helper receives (else sends) */
    int val;
    gort_waitgroup wg;
} rd;

/* Waits until main is blocked on rd.c[which], then completes it. */
static void ready_later(void *arg)
{
    (void)arg;
    gort_chan *c = rd.c[rd.which];
    int64_t dl = gort_now() + 10 * SEC;
    while (chan_waiters(c, rd.recv ? GORT_CASE_SEND : GORT_CASE_RECV) == 0 && gort_now() < dl)
        gort_yield();
    if (rd.recv) {
        gort_chan_recv(c, &rd.val);
    } else {
        int v = 1000 + rd.which;
        gort_chan_send(c, &v);
    }
    gort_wg_done(&rd.wg);
}

/* The ready case runs: already ready (non-blocking and blocking), or made
 * ready by a peer while the select is blocked, for receive and send cases. */
static void test_select_picks_ready(void **state)
{
    (void)state;
    settle();
    gort_chan *a = gort_chan_make(sizeof(int), 1);
    gort_chan *b = gort_chan_make(sizeof(int), 1);
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    for (int i = 0; i < 100; i++) {
        gort_chan_send(b, &i);
        int v = -1;
        bool ok = false;
        gort_case cs[] = {GORT_RECV(a, &v, &ok), GORT_RECV(b, &v, &ok), GORT_RECV(c, &v, &ok)};
        assert_int_equal(gort_select(cs, 3, i % 2 == 0), 1);
        assert_int_equal(v, i);
        assert_true(ok);
    }
    /* a send case with room beats send cases on full channels */
    int x = 7, y = 8;
    gort_chan_send(a, &x);
    gort_chan_send(c, &x);
    gort_case ss[] = {GORT_SEND(a, &y), GORT_SEND(b, &y), GORT_SEND(c, &y)};
    assert_int_equal(gort_select(ss, 3, true), 1);
    int v = -1;
    assert_true(gort_chan_recv(b, &v));
    assert_int_equal(v, 8);

    /* a full buffer with a blocked sender: the select takes the head and
     * moves the sender's value into the freed slot (FIFO kept) */
    lc.c = gort_chan_make(sizeof(int), 2);
    for (int i = 1; i <= 2; i++)
        gort_chan_send(lc.c, &i);
    gort_wg_add(&lc.wg, 1);
    gort_go(one_int_sender, (void *)3);
    assert_true(WAIT_FOR(chan_waiters(lc.c, GORT_CASE_SEND) == 1));
    for (int i = 1; i <= 3; i++) {
        bool ok = false;
        v = -1;
        gort_case cs[] = {GORT_RECV(b, NULL, NULL), GORT_RECV(lc.c, &v, &ok)};
        assert_int_equal(gort_select(cs, 2, false), 1);
        assert_true(ok);
        assert_int_equal(v, i);
        if (i == 1) assert_int_equal(gort_chan_len(lc.c), 2);
    }
    gort_wg_wait(&lc.wg);
    gort_chan_recv(a, NULL); /* a held x */
    gort_chan_recv(c, NULL); /* c held x */

    /* blocked, then readied by a peer: receive case */
    for (int which = 0; which < 3; which++) {
        for (int i = 0; i < 3; i++)
            rd.c[i] = gort_chan_make(sizeof(int), 0);
        rd.which = which;
        rd.recv = false;
        gort_wg_add(&rd.wg, 1);
        gort_go(ready_later, NULL);
        int got = -1;
        bool ok = false;
        gort_case cs[] = {GORT_RECV(rd.c[0], &got, &ok), GORT_RECV(rd.c[1], &got, &ok),
                          GORT_RECV(rd.c[2], &got, &ok)};
        assert_int_equal(gort_select(cs, 3, true), which);
        assert_int_equal(got, 1000 + which);
        assert_true(ok);
        gort_wg_wait(&rd.wg);
        for (int i = 0; i < 3; i++)
            assert_int_equal(chan_queued(rd.c[i], GORT_CASE_RECV), 0);
    }
    /* blocked, then readied by a peer: send case */
    for (int which = 0; which < 3; which++) {
        for (int i = 0; i < 3; i++)
            rd.c[i] = gort_chan_make(sizeof(int), 0);
        rd.which = which;
        rd.recv = true;
        rd.val = -1;
        gort_wg_add(&rd.wg, 1);
        gort_go(ready_later, NULL);
        int s0 = 500, s1 = 501, s2 = 502;
        gort_case cs[] = {GORT_SEND(rd.c[0], &s0), GORT_SEND(rd.c[1], &s1),
                          GORT_SEND(rd.c[2], &s2)};
        assert_int_equal(gort_select(cs, 3, true), which);
        gort_wg_wait(&rd.wg);
        assert_int_equal(rd.val, 500 + which);
        for (int i = 0; i < 3; i++)
            assert_int_equal(chan_queued(rd.c[i], GORT_CASE_SEND), 0);
    }
}

/* A case on a nil channel is never chosen, even with other cases ready. */
static void test_select_nil_case_never_chosen(void **state)
{
    (void)state;
    settle();
    gort_chan *a = gort_chan_make(sizeof(int), 1);
    gort_chan *room = gort_chan_make(sizeof(int), 1);
    int counts[4] = {0};
    for (int i = 0; i < 1000; i++) {
        gort_chan_send(a, &i);
        int v = -1, w = i;
        gort_case cs[] = {GORT_RECV(NULL, &v, NULL), GORT_RECV(a, &v, NULL), GORT_SEND(NULL, &w),
                          GORT_SEND(room, &w)};
        int r = gort_select(cs, 4, i % 2 == 0);
        assert_in_range(r, 0, 3);
        counts[r]++;
        if (r == 1) assert_int_equal(v, i);
        if (gort_chan_len(room)) gort_chan_recv(room, NULL);
        if (gort_chan_len(a)) gort_chan_recv(a, NULL);
        /* only nil cases besides one ready receive */
        gort_chan_send(a, &i);
        gort_case ns[] = {GORT_SEND(NULL, &w), GORT_RECV(a, &v, NULL), GORT_RECV(NULL, &v, NULL)};
        assert_int_equal(gort_select(ns, 3, i % 2 == 1), 1);
        assert_int_equal(v, i);
    }
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[1] + counts[3], 1000);
}

enum { WAKE_ROUNDS = 1000 };

static struct {
    gort_chan *a, *b;
    int mode; /* 0 recv on a/b, 1 recv twice on a, 2 send on a/b */
    int idx, val;
    gort_chan *done;
} sw;

static void waking_selector(void *arg)
{
    (void)arg;
    int v = -1, x = 71, y = 72;
    gort_case cs[2];
    if (sw.mode == 0) {
        cs[0] = GORT_RECV(sw.a, &v, NULL);
        cs[1] = GORT_RECV(sw.b, &v, NULL);
    } else if (sw.mode == 1) {
        cs[0] = GORT_RECV(sw.a, &v, NULL);
        cs[1] = GORT_RECV(sw.a, &v, NULL);
    } else {
        cs[0] = GORT_SEND(sw.a, &x);
        cs[1] = GORT_SEND(sw.b, &y);
    }
    sw.idx = gort_select(cs, 2, true);
    sw.val = v;
    gort_chan_send(sw.done, NULL);
}

/* A blocked select woken through one channel takes itself off the others at
 * once: right after the wake-up, a non-blocking operation on another of its
 * channels finds nobody (even before the select goroutine has run again),
 * and once it returned no sudog of it is left anywhere. Unbuffered channels;
 * receive cases, the same channel twice, and send cases. */
static void test_select_wakeup_leaves_other_queues(void **state)
{
    (void)state;
    settle();
    sw.done = gort_chan_make(0, 0);
    for (int mode = 0; mode < 3; mode++) {
        int late = 0; /* rounds where the other queue still had the stale sudog */
        for (int r = 0; r < WAKE_ROUNDS; r++) {
            sw.a = gort_chan_make(sizeof(int), 0);
            sw.b = gort_chan_make(sizeof(int), 0);
            sw.mode = mode;
            sw.idx = -2;
            gort_go(waking_selector, NULL);
            int dir = mode == 2 ? GORT_CASE_SEND : GORT_CASE_RECV;
            if (mode == 1)
                assert_true(WAIT_FOR(chan_waiters(sw.a, dir) == 2));
            else
                assert_true(WAIT_FOR(chan_waiters(sw.a, dir) == 1 && chan_waiters(sw.b, dir) == 1));
            bool flip = r % 2 && mode != 1; /* wake through b every other round */
            gort_chan *waker = flip ? sw.b : sw.a;
            gort_chan *other = mode == 1 ? sw.a : flip ? sw.a : sw.b; /* mode 1: a again */
            int v = 1000 + r, got = -1;
            if (mode == 2)
                assert_true(gort_chan_recv(waker, &got));
            else
                gort_chan_send(waker, &v);
            if (chan_queued(other, dir) > 0) late++;
            int w = 5;
            if (mode == 2)
                assert_int_equal(nonblock_recv(other, &w, NULL), -1);
            else
                assert_int_equal(nonblock_send(other, &w), -1);
            assert_true(gort_chan_recv(sw.done, NULL));
            if (mode == 1) {
                assert_in_range(sw.idx, 0, 1);
                assert_int_equal(sw.val, v);
            } else if (mode == 0) {
                assert_int_equal(sw.idx, flip ? 1 : 0);
                assert_int_equal(sw.val, v);
            } else {
                assert_int_equal(sw.idx, flip ? 1 : 0);
                assert_int_equal(got, flip ? 72 : 71);
            }
            assert_int_equal(chan_queued(sw.a, dir), 0);
            assert_int_equal(chan_queued(sw.b, dir), 0);
        }
        print_message("select wake-up mode %d: %d/%d rounds saw the stale sudog still queued\n",
                      mode, late, WAKE_ROUNDS);
    }
}

enum { RACE_ROUNDS = 500 };

static struct {
    gort_chan *ch[2];
    int idx, val;
    bool ok;
    bool closer; /* the second waker closes its channel instead of sending */
    gort_waitgroup sel_wg, snd_wg;
    _Atomic int go; /* both wakers start together */
} tw;

static void race_selector(void *arg)
{
    (void)arg;
    int v = -1;
    bool ok = false;
    gort_case cs[] = {GORT_RECV(tw.ch[0], &v, &ok), GORT_RECV(tw.ch[1], &v, &ok)};
    tw.idx = gort_select(cs, 2, true);
    tw.val = v;
    tw.ok = ok;
    gort_wg_done(&tw.sel_wg);
}

static void race_waker(void *arg)
{
    int i = (int)(intptr_t)arg;
    int v = 10 + i;
    while (!atomic_load(&tw.go))
        gort_yield();
    if (i == 1 && tw.closer)
        gort_chan_close(tw.ch[1]);
    else
        gort_chan_send(tw.ch[i], &v);
    gort_wg_done(&tw.snd_wg);
}

/* Two wakers race for one blocked select: exactly one wins. A losing sender
 * stays blocked on its channel (not lost, not delivered twice) until main
 * takes its value. Second mode: the other waker closes its channel; if the
 * close wins the select reports ok = false. */
static void test_select_two_wakers(void **state)
{
    (void)state;
    settle();
    for (int mode = 0; mode < 2; mode++) {
        int wins[2] = {0, 0};
        tw.closer = mode == 1;
        for (int r = 0; r < RACE_ROUNDS; r++) {
            tw.ch[0] = gort_chan_make(sizeof(int), 0);
            tw.ch[1] = gort_chan_make(sizeof(int), 0);
            atomic_store(&tw.go, 0);
            gort_wg_add(&tw.sel_wg, 1);
            gort_wg_add(&tw.snd_wg, 2);
            gort_go(race_selector, NULL);
            assert_true(WAIT_FOR(chan_waiters(tw.ch[0], GORT_CASE_RECV) == 1 &&
                                 chan_waiters(tw.ch[1], GORT_CASE_RECV) == 1));
            gort_go(race_waker, (void *)(intptr_t)(r % 2)); /* either may start first */
            gort_go(race_waker, (void *)(intptr_t)(1 - r % 2));
            atomic_store(&tw.go, 1);
            gort_wg_wait(&tw.sel_wg);
            assert_in_range(tw.idx, 0, 1);
            wins[tw.idx]++;
            if (tw.closer && tw.idx == 1) {
                assert_false(tw.ok);
                assert_int_equal(tw.val, 0);
            } else {
                assert_true(tw.ok);
                assert_int_equal(tw.val, 10 + tw.idx);
            }
            int loser = 1 - tw.idx;
            if (!(tw.closer && loser == 1)) { /* a losing sender is still blocked */
                assert_true(WAIT_FOR(chan_waiters(tw.ch[loser], GORT_CASE_SEND) == 1));
                int v = -1;
                assert_int_equal(nonblock_recv(tw.ch[loser], &v, NULL), 0);
                assert_int_equal(v, 10 + loser);
            }
            gort_wg_wait(&tw.snd_wg);
            for (int i = 0; i < 2; i++) {
                assert_int_equal(chan_queued(tw.ch[i], GORT_CASE_RECV), 0);
                assert_int_equal(chan_queued(tw.ch[i], GORT_CASE_SEND), 0);
            }
        }
        print_message("two wakers (%s): first won %d, second won %d of %d\n",
                      mode ? "send vs close" : "send vs send", wins[0], wins[1], RACE_ROUNDS);
    }
}

static struct {
    gort_chan *c;
    int idx;
    bool ok;
    struct e24 e;
    gort_waitgroup wg;
} scl;

static void select_recv_closed(void *arg)
{
    gort_chan *never = arg;
    gort_case cs[] = {GORT_RECV(never, NULL, NULL), GORT_RECV(scl.c, &scl.e, &scl.ok)};
    scl.idx = gort_select(cs, 2, true);
    gort_wg_done(&scl.wg);
}

/* Select and closed channels: a send case panics (ready at once, or when
 * the channel is closed under a blocked select: test_close_panics_...); a
 * receive case reports ok = false with a zeroed element, also when the
 * close wakes a blocked select. */
static void test_select_closed(void **state)
{
    (void)state;
    settle();
    gort_chan *c = gort_chan_make(sizeof(struct e24), 0);
    gort_chan *live = gort_chan_make(sizeof(struct e24), 1);
    gort_chan_close(c);
    expect_panic(op_select_send_two, c, "send on closed channel");
    struct e24 e;
    bool ok = true;
    memset(&e, 0xA5, sizeof e);
    gort_case cs[] = {GORT_RECV(live, NULL, NULL), GORT_RECV(c, &e, &ok)};
    assert_int_equal(gort_select(cs, 2, false), 1);
    assert_false(ok);
    assert_true(all_bytes(&e, 0, sizeof e));

    gort_chan *never = gort_chan_make(sizeof(int), 0);
    scl.c = gort_chan_make(sizeof(struct e24), 0);
    scl.ok = true;
    scl.idx = -2;
    memset(&scl.e, 0xA5, sizeof scl.e);
    gort_wg_add(&scl.wg, 1);
    gort_go(select_recv_closed, never);
    assert_true(WAIT_FOR(chan_waiters(scl.c, GORT_CASE_RECV) == 1));
    gort_chan_close(scl.c);
    gort_wg_wait(&scl.wg);
    assert_int_equal(scl.idx, 1);
    assert_false(scl.ok);
    assert_true(all_bytes(&scl.e, 0, sizeof scl.e));
    assert_int_equal(chan_queued(never, GORT_CASE_RECV), 0);
}

static struct {
    gort_chan *c;
    int idx, v;
    bool ok, panicked;
    char msg[64];
    gort_waitgroup wg;
} sr;

static void send_recv_body(void *arg)
{
    (void)arg;
    int out = 5;
    gort_case cs[] = {GORT_SEND(sr.c, &out), GORT_RECV(sr.c, &sr.v, &sr.ok)};
    sr.idx = gort_select(cs, 2, true);
}

static void send_recv_selector(void *arg)
{
    sr.panicked = !try_msg(send_recv_body, arg, sr.msg, sizeof sr.msg);
    gort_wg_done(&sr.wg);
}

/* A select blocked sending and receiving on the same channel when it is
 * closed: close wakes receivers before senders, so the receive case runs
 * with ok = false and nothing panics (Go prints "recv 0 false"). */
static void test_select_send_recv_same_closed(void **state)
{
    (void)state;
    settle();
    for (int r = 0; r < 100; r++) {
        sr.c = gort_chan_make(sizeof(int), 0);
        sr.idx = -2;
        sr.v = -1;
        sr.ok = true;
        sr.panicked = false;
        gort_wg_add(&sr.wg, 1);
        gort_go(send_recv_selector, NULL);
        assert_true(WAIT_FOR(chan_waiters(sr.c, GORT_CASE_SEND) == 1 &&
                             chan_waiters(sr.c, GORT_CASE_RECV) == 1));
        gort_chan_close(sr.c);
        gort_wg_wait(&sr.wg);
        if (sr.panicked) fail_msg("round %d: select panicked: %s", r, sr.msg);
        assert_int_equal(sr.idx, 1);
        assert_false(sr.ok);
        assert_int_equal(sr.v, 0);
    }
}

enum { FAIR_N = 10000, MANY = 70, MANY_N = 7000 };

/* Among ready cases each is equally likely. With p = 1/2 and n = 10000 the
 * 40-60 % band is 20 standard deviations wide: this cannot flake. */
static void test_select_fairness(void **state)
{
    (void)state;
    settle();
    gort_chan *a = gort_chan_make(sizeof(int), 1);
    gort_chan *b = gort_chan_make(sizeof(int), 1);
    int one = 1, v;
    gort_chan_send(a, &one);
    gort_chan_send(b, &one);
    int n[2] = {0, 0};
    for (int i = 0; i < FAIR_N; i++) {
        gort_case cs[] = {GORT_RECV(a, &v, NULL), GORT_RECV(b, &v, NULL)};
        int r = gort_select(cs, 2, true);
        assert_in_range(r, 0, 1);
        n[r]++;
        gort_chan_send(r == 0 ? a : b, &one); /* both always ready */
    }
    print_message("fairness: %d / %d\n", n[0], n[1]);
    assert_in_range(n[0], FAIR_N * 4 / 10, FAIR_N * 6 / 10);
    assert_in_range(n[1], FAIR_N * 4 / 10, FAIR_N * 6 / 10);

    /* three ready cases, one a send: each about 1/3 (+-600 is 12 sd) */
    gort_chan *room = gort_chan_make(sizeof(int), 1);
    int m[3] = {0, 0, 0};
    for (int i = 0; i < FAIR_N; i++) {
        gort_case cs[] = {GORT_RECV(a, &v, NULL), GORT_SEND(room, &one), GORT_RECV(b, &v, NULL)};
        int r = gort_select(cs, 3, i % 2 == 0);
        assert_in_range(r, 0, 2);
        m[r]++;
        if (r == 0) gort_chan_send(a, &one);
        if (r == 1) gort_chan_recv(room, NULL);
        if (r == 2) gort_chan_send(b, &one);
    }
    print_message("fairness, 3 cases: %d / %d / %d\n", m[0], m[1], m[2]);
    for (int i = 0; i < 3; i++)
        assert_in_range(m[i], FAIR_N / 3 - 600, FAIR_N / 3 + 600);

    /* a closed channel's receive case counts as ready */
    gort_chan *closed = gort_chan_make(sizeof(int), 0);
    gort_chan_close(closed);
    n[0] = n[1] = 0;
    for (int i = 0; i < FAIR_N; i++) {
        bool ok;
        gort_case cs[] = {GORT_RECV(closed, &v, &ok), GORT_RECV(a, &v, &ok)};
        int r = gort_select(cs, 2, i % 2 == 0);
        assert_in_range(r, 0, 1);
        assert_int_equal(ok, r == 1);
        n[r]++;
        if (r == 1) gort_chan_send(a, &one);
    }
    print_message("fairness, closed vs value: %d / %d\n", n[0], n[1]);
    assert_in_range(n[0], FAIR_N * 4 / 10, FAIR_N * 6 / 10);

    /* the same channel twice */
    n[0] = n[1] = 0;
    for (int i = 0; i < FAIR_N; i++) {
        gort_case cs[] = {GORT_RECV(a, &v, NULL), GORT_RECV(a, &v, NULL)};
        int r = gort_select(cs, 2, true);
        assert_in_range(r, 0, 1);
        n[r]++;
        gort_chan_send(a, &one);
    }
    print_message("fairness, same channel twice: %d / %d\n", n[0], n[1]);
    assert_in_range(n[0], FAIR_N * 4 / 10, FAIR_N * 6 / 10);

    /* more cases than fit on the stack (the heap path): 70 ready cases,
     * 7000 rounds, each case expected 100 times (sd ~10): 40..160 */
    static gort_chan *many[MANY];
    static gort_case mcs[MANY];
    int count[MANY] = {0};
    for (int i = 0; i < MANY; i++) {
        many[i] = gort_chan_make(sizeof(int), 1);
        gort_chan_send(many[i], &i);
    }
    for (int k = 0; k < MANY_N; k++) {
        for (int i = 0; i < MANY; i++)
            mcs[i] = GORT_RECV(many[i], &v, NULL);
        int r = gort_select(mcs, MANY, true);
        assert_in_range(r, 0, MANY - 1);
        assert_int_equal(v, r);
        count[r]++;
        gort_chan_send(many[r], &r);
    }
    int lo = MANY_N, hi = 0;
    for (int i = 0; i < MANY; i++) {
        lo = count[i] < lo ? count[i] : lo;
        hi = count[i] > hi ? count[i] : hi;
    }
    print_message("fairness, %d cases: min %d max %d (expected %d)\n", MANY, lo, hi, MANY_N / MANY);
    assert_in_range(lo, 40, 160);
    assert_in_range(hi, 40, 160);
}

enum { BIG_SEL = 100, BIG_PICK = 73 };

static struct {
    gort_chan *c[BIG_SEL];
    gort_waitgroup wg;
} bs;

static void big_sender(void *arg)
{
    (void)arg;
    int64_t dl = gort_now() + 10 * SEC;
    while (chan_waiters(bs.c[BIG_PICK], GORT_CASE_RECV) == 0 && gort_now() < dl)
        gort_yield();
    int v = 7373;
    gort_chan_send(bs.c[BIG_PICK], &v);
    gort_wg_done(&bs.wg);
}

/* A blocking select over 100 channels (heap-allocated state) woken through
 * one of them leaves no sudog on the other 99. */
static void test_select_many_cases_blocking(void **state)
{
    (void)state;
    settle();
    static gort_case cs[BIG_SEL];
    int v = -1;
    for (int i = 0; i < BIG_SEL; i++) {
        bs.c[i] = gort_chan_make(sizeof(int), 0);
        cs[i] = GORT_RECV(bs.c[i], &v, NULL);
    }
    gort_wg_add(&bs.wg, 1);
    gort_go(big_sender, NULL);
    assert_int_equal(gort_select(cs, BIG_SEL, true), BIG_PICK);
    assert_int_equal(v, 7373);
    gort_wg_wait(&bs.wg);
    for (int i = 0; i < BIG_SEL; i++)
        assert_int_equal(chan_queued(bs.c[i], GORT_CASE_RECV), 0);
}

/* ---- Go's own channel regression tests (runtime/chan_test.go), adapted ----------------- */

enum { SELF_ITERS = 1000 };

static struct {
    gort_chan *c;
    size_t cap;
    _Atomic int self_recv;
    gort_waitgroup wg;
} ss;

static void self_selector(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < SELF_ITERS; i++) {
        int out = p, in = -1;
        bool ok = false;
        gort_case cs[2];
        if (p == 0 || i % 2 == 0) {
            cs[0] = GORT_SEND(ss.c, &out);
            cs[1] = GORT_RECV(ss.c, &in, &ok);
        } else {
            cs[0] = GORT_RECV(ss.c, &in, &ok);
            cs[1] = GORT_SEND(ss.c, &out);
        }
        int r = gort_select(cs, 2, true);
        bool was_recv = cs[r].dir == GORT_CASE_RECV;
        if (was_recv && ss.cap == 0 && in == p) atomic_fetch_add(&ss.self_recv, 1);
    }
    gort_wg_done(&ss.wg);
}

/* TestSelfSelect: two goroutines each select over a send and a receive on
 * the same channel; neither crashes nor deadlocks, and on an unbuffered
 * channel a select never receives its own value. */
static void test_self_select(void **state)
{
    (void)state;
    settle();
    static const size_t caps[] = {0, 10};
    for (int k = 0; k < 2; k++) {
        ss.c = gort_chan_make(sizeof(int), caps[k]);
        ss.cap = caps[k];
        atomic_store(&ss.self_recv, 0);
        gort_wg_add(&ss.wg, 2);
        gort_go(self_selector, (void *)0);
        gort_go(self_selector, (void *)1);
        gort_wg_wait(&ss.wg);
        assert_int_equal(atomic_load(&ss.self_recv), 0);
    }
}

enum { RACE_N = 10000 };

static struct {
    gort_chan *c1, *c2, *done;
    _Atomic int not_ready;
} nb;

static void nonblock_recv_closing(void *arg)
{
    (void)arg;
    if (nonblock_recv(nb.c1, NULL, NULL) != 0) atomic_fetch_add(&nb.not_ready, 1);
    gort_chan_send(nb.done, NULL);
}

/* TestNonblockRecvRace: a buffered channel holding a value is being closed;
 * a non-blocking receive must succeed (the value, or closed), never find it
 * "not ready" (the lock-free fast path checks empty, closed, empty). */
static void test_nonblock_recv_race(void **state)
{
    (void)state;
    settle();
    nb.done = gort_chan_make(0, 0);
    atomic_store(&nb.not_ready, 0);
    for (int i = 0; i < RACE_N; i++) {
        nb.c1 = gort_chan_make(sizeof(int), 1);
        gort_chan_send(nb.c1, &i);
        gort_go(nonblock_recv_closing, NULL);
        gort_chan_close(nb.c1);
        gort_chan_recv(nb.c1, NULL);
        gort_chan_recv(nb.done, NULL);
    }
    assert_int_equal(atomic_load(&nb.not_ready), 0);
}

static void nonblock_select_two(void *arg)
{
    (void)arg;
    gort_case cs[] = {GORT_RECV(nb.c1, NULL, NULL), GORT_RECV(nb.c2, NULL, NULL)};
    if (gort_select(cs, 2, false) < 0) atomic_fetch_add(&nb.not_ready, 1);
    gort_chan_send(nb.done, NULL);
}

/* TestNonblockSelectRace and ...Race2: c1 holds a value that main may take
 * while c2 gets one (or is closed): a non-blocking select over both must
 * always find one ready (pass 1 looks at all cases under all locks). */
static void test_nonblock_select_race(void **state)
{
    (void)state;
    settle();
    nb.done = gort_chan_make(0, 0);
    for (int variant = 0; variant < 2; variant++) {
        atomic_store(&nb.not_ready, 0);
        for (int i = 0; i < RACE_N; i++) {
            nb.c1 = gort_chan_make(sizeof(int), 1);
            nb.c2 = gort_chan_make(sizeof(int), 1);
            gort_chan_send(nb.c1, &i);
            gort_go(nonblock_select_two, NULL);
            if (variant == 0)
                gort_chan_send(nb.c2, &i);
            else
                gort_chan_close(nb.c2);
            nonblock_recv(nb.c1, NULL, NULL);
            gort_chan_recv(nb.done, NULL);
        }
        assert_int_equal(atomic_load(&nb.not_ready), 0);
    }
}

static struct {
    gort_chan *c, *d, *e;
    int b_got;
    gort_waitgroup wg;
} dupc;

static void dup_a(void *arg)
{
    (void)arg;
    gort_case cs[] = {GORT_RECV(dupc.c, NULL, NULL), GORT_RECV(dupc.c, NULL, NULL),
                      GORT_RECV(dupc.d, NULL, NULL)};
    gort_select(cs, 3, true);
    int nine = 9;
    gort_chan_send(dupc.e, &nine);
}

static void dup_b(void *arg)
{
    (void)arg;
    gort_chan_recv(dupc.c, &dupc.b_got);
    gort_wg_done(&dupc.wg);
}

/* TestSelectDuplicateChannel: A selects on c twice and on d; B then queues
 * on c behind A's two sudogs. Waking A through d must take both of A's
 * sudogs off c and leave B's intact, so that a send on c reaches B. */
static void test_select_duplicate_channel(void **state)
{
    (void)state;
    settle();
    dupc.c = gort_chan_make(sizeof(int), 0);
    dupc.d = gort_chan_make(sizeof(int), 0);
    dupc.e = gort_chan_make(sizeof(int), 0);
    dupc.b_got = -1;
    gort_go(dup_a, NULL);
    assert_true(WAIT_FOR(chan_waiters(dupc.c, GORT_CASE_RECV) == 2));
    gort_wg_add(&dupc.wg, 1);
    gort_go(dup_b, NULL);
    assert_true(WAIT_FOR(chan_waiters(dupc.c, GORT_CASE_RECV) == 3));
    int seven = 7, eight = 8, v = -1;
    gort_chan_send(dupc.d, &seven); /* wakes A */
    assert_true(gort_chan_recv(dupc.e, &v));
    assert_int_equal(v, 9);
    assert_int_equal(chan_queued(dupc.c, GORT_CASE_RECV), 1); /* B only */
    gort_chan_send(dupc.c, &eight);                           /* wakes B */
    gort_wg_wait(&dupc.wg);
    assert_int_equal(dupc.b_got, 8);
    assert_int_equal(chan_queued(dupc.c, GORT_CASE_RECV), 0);
}

/* Misuse of the C API panics (recoverably) with a message that names it. */
static void op_send_null_elem(void *c)
{
    gort_chan_send(c, NULL);
}

static void op_select_no_dir(void *c)
{
    int v = 0;
    gort_case cs[] = {GORT_RECV(c, &v, NULL), {.ch = c, .dir = 0, .elem = &v}};
    gort_select(cs, 2, false);
}

static void op_select_null_send_elem(void *c)
{
    gort_case cs[] = {GORT_RECV(NULL, NULL, NULL), GORT_SEND(c, NULL)};
    gort_select(cs, 2, false);
}

static void op_select_negative(void *c)
{
    (void)c;
    gort_select(NULL, -1, false);
}

static void test_api_misuse(void **state)
{
    (void)state;
    settle();
    gort_chan *c = gort_chan_make(sizeof(int), 1);
    expect_panic(op_send_null_elem, c, "gort_chan_send: NULL element pointer");
    expect_panic(op_select_no_dir, c,
                 "gort_select: case 1 has no direction (use GORT_SEND/GORT_RECV)");
    expect_panic(op_select_null_send_elem, c,
                 "gort_select: send case 1 has a NULL element pointer");
    expect_panic(op_select_negative, NULL, "gort_select: -1 cases (0..65536 allowed)");
    assert_int_equal(gort_chan_len(c), 0);
}

/* ---- stress: 8 producers, 8 consumers, 100k items ------------------------------------------- */

enum { NPROD = 8, NCONS = 8, ITEMS = 100000 };

static struct {
    gort_chan *c, *d; /* d: second channel, select mode */
    bool use_select;
    gort_waitgroup pwg, cwg;
    _Atomic uint64_t sum;
    _Atomic int count, dup, via[2];
    unsigned char seen[ITEMS];
} st;

static void producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = p; i < ITEMS; i += NPROD) {
        uint32_t v = (uint32_t)i + 1;
        if (st.use_select) {
            gort_case cs[] = {GORT_SEND(st.c, &v), GORT_SEND(st.d, &v)};
            gort_select(cs, 2, true);
        } else {
            gort_chan_send(st.c, &v);
        }
    }
    gort_wg_done(&st.pwg);
}

static void note_item(uint32_t v, uint64_t *sum, int *count)
{
    if (v == 0 || v > ITEMS || __atomic_fetch_add(&st.seen[v - 1], 1, __ATOMIC_RELAXED) != 0)
        atomic_fetch_add(&st.dup, 1);
    *sum += v;
    (*count)++;
}

static void consumer(void *arg)
{
    (void)arg;
    uint64_t sum = 0;
    int count = 0, via[2] = {0, 0};
    uint32_t v;
    if (st.use_select) {
        /* Go's fan-in: a closed channel's case is switched off by setting it
         * to nil, until both are off. */
        gort_chan *in[2] = {st.c, st.d};
        while (in[0] || in[1]) {
            bool ok = false;
            gort_case cs[] = {GORT_RECV(in[0], &v, &ok), GORT_RECV(in[1], &v, &ok)};
            int r = gort_select(cs, 2, true);
            if (r < 0) break; /* cannot happen: counted as a loss below */
            if (!ok) {
                in[r] = NULL;
                continue;
            }
            via[r]++;
            note_item(v, &sum, &count);
        }
    } else {
        while (gort_chan_recv(st.c, &v))
            note_item(v, &sum, &count);
    }
    atomic_fetch_add(&st.sum, sum);
    atomic_fetch_add(&st.count, count);
    atomic_fetch_add(&st.via[0], via[0]);
    atomic_fetch_add(&st.via[1], via[1]);
    gort_wg_done(&st.cwg);
}

static void run_stress(size_t cap, bool use_select)
{
    settle();
    memset(&st, 0, sizeof st);
    st.c = gort_chan_make(sizeof(uint32_t), cap);
    st.d = use_select ? gort_chan_make(sizeof(uint32_t), 0) : NULL;
    st.use_select = use_select;
    gort_wg_add(&st.pwg, NPROD);
    gort_wg_add(&st.cwg, NCONS);
    for (int i = 0; i < NCONS; i++)
        gort_go(consumer, NULL);
    for (int i = 0; i < NPROD; i++)
        gort_go(producer, (void *)(intptr_t)i);
    int64_t t0 = gort_now();
    gort_wg_wait(&st.pwg);
    gort_chan_close(st.c);
    if (st.d) gort_chan_close(st.d);
    gort_wg_wait(&st.cwg);
    int64_t t1 = gort_now();
    print_message("stress cap=%zu select=%d: %d items in %.1f ms (via %d / %d), %d procs\n", cap,
                  use_select, atomic_load(&st.count), (double)(t1 - t0) / 1e6,
                  atomic_load(&st.via[0]), atomic_load(&st.via[1]), gort_maxprocs(0));
    assert_int_equal(atomic_load(&st.count), ITEMS);
    assert_int_equal(atomic_load(&st.dup), 0);
    assert_int_equal(atomic_load(&st.sum), (uint64_t)ITEMS * (ITEMS + 1) / 2);
    for (int i = 0; i < ITEMS; i++)
        if (st.seen[i] != 1) fail_msg("item %d seen %d times", i + 1, st.seen[i]);
    assert_int_equal(gort_chan_len(st.c), 0);
}

static void test_stress_buffered(void **state)
{
    (void)state;
    run_stress(64, false);
}

static void test_stress_unbuffered(void **state)
{
    (void)state;
    run_stress(0, false);
}

static void test_stress_select(void **state)
{
    (void)state;
    run_stress(8, true);
}

/* ---- stress: random selects racing with close ----------------------------------------- */

enum { CR_CHANS = 4, CR_WORKERS = 8, CR_ITERS = 2000, CR_VALUES = CR_WORKERS * CR_ITERS };

static struct {
    gort_chan *c[CR_CHANS];
    _Atomic int progress, closed;
    _Atomic uint64_t sent_sum, recv_sum;
    _Atomic int sent, recvd, dup, panics, bad_panic, zero_ok;
    unsigned char seen[CR_VALUES + 1];
    gort_waitgroup wg;
} cr;

struct cr_op {
    gort_case cs[3];
    int n;
    bool block;
    int r;
    uint32_t out[3], in[3];
    bool ok[3];
};

static void cr_select(void *arg)
{
    struct cr_op *op = arg;
    op->r = gort_select(op->cs, op->n, op->block);
}

static void cr_note_recv(uint32_t v)
{
    if (v == 0 || v > CR_VALUES || __atomic_fetch_add(&cr.seen[v], 1, __ATOMIC_RELAXED) != 0)
        atomic_fetch_add(&cr.dup, 1);
    atomic_fetch_add(&cr.recv_sum, v);
    atomic_fetch_add(&cr.recvd, 1);
}

static void cr_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
    for (int it = 0; it < CR_ITERS; it++) {
        struct cr_op op;
        op.n = 1 + (int)(x % 3);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        op.block = x % 5 != 0;
        for (int k = 0; k < op.n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            gort_chan *c = cr.c[x % CR_CHANS];
            op.out[k] = (uint32_t)(id * CR_ITERS + it + 1);
            op.in[k] = 0xdeadbeef;
            op.ok[k] = false;
            op.cs[k] = (x >> 8) % 2 ? GORT_SEND(c, &op.out[k]) : GORT_RECV(c, &op.in[k], &op.ok[k]);
        }
        char msg[64];
        op.r = -2;
        if (!try_msg(cr_select, &op, msg, sizeof msg)) {
            atomic_fetch_add(&cr.panics, 1);
            if (strcmp(msg, "send on closed channel") != 0) atomic_fetch_add(&cr.bad_panic, 1);
        } else if (op.r >= 0) {
            if (op.cs[op.r].dir == GORT_CASE_SEND) {
                atomic_fetch_add(&cr.sent_sum, op.out[op.r]);
                atomic_fetch_add(&cr.sent, 1);
            } else if (op.ok[op.r]) {
                cr_note_recv(op.in[op.r]);
            } else if (op.in[op.r] != 0) {
                atomic_fetch_add(&cr.zero_ok, 1); /* closed, but element not zeroed */
            }
        }
        atomic_fetch_add(&cr.progress, 1);
    }
    gort_wg_done(&cr.wg);
}

/* 8 goroutines run random selects (1-3 cases, send or receive, blocking
 * or not) over two unbuffered and two buffered channels while main closes
 * them one by one. Whatever the interleaving, a value counts as sent only if
 * it was received exactly once, by a select or by the final drain; every
 * panic is "send on closed channel"; a receive reporting closed has a zeroed
 * element. */
static void test_stress_close_race(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        settle();
        memset(&cr, 0, sizeof cr);
        static const size_t caps[CR_CHANS] = {0, 0, 1, 8};
        for (int i = 0; i < CR_CHANS; i++)
            cr.c[i] = gort_chan_make(sizeof(uint32_t), caps[i]);
        gort_wg_add(&cr.wg, CR_WORKERS);
        for (int w = 0; w < CR_WORKERS; w++)
            gort_go(cr_worker, (void *)(intptr_t)w);
        /* let them run a while (they may all block: the closes free them) */
        int target = CR_WORKERS * CR_ITERS * (round + 1) / 8;
        for (int k = 0, last = -1, still = 0; k < 100 && still < 3; k++) {
            int now = atomic_load(&cr.progress);
            if (now >= target) break;
            still = now == last ? still + 1 : 0; /* all blocked: stop waiting */
            last = now;
            nap(1 * MS);
        }
        int at_close = atomic_load(&cr.progress);
        for (int i = 0; i < CR_CHANS; i++) {
            gort_chan_close(cr.c[(i + round) % CR_CHANS]);
            for (int k = 0; k < 20; k++)
                gort_yield();
        }
        gort_wg_wait(&cr.wg);
        for (int i = 0; i < CR_CHANS; i++) {
            uint32_t v;
            while (gort_chan_recv(cr.c[i], &v))
                cr_note_recv(v);
        }
        print_message("close race %d: %d sent, %d received, %d panics, %d selects before the "
                      "closes\n",
                      round, atomic_load(&cr.sent), atomic_load(&cr.recvd), atomic_load(&cr.panics),
                      at_close);
        assert_int_equal(atomic_load(&cr.dup), 0);
        assert_int_equal(atomic_load(&cr.bad_panic), 0);
        assert_int_equal(atomic_load(&cr.zero_ok), 0);
        assert_int_equal(atomic_load(&cr.sent), atomic_load(&cr.recvd));
        assert_int_equal(atomic_load(&cr.sent_sum), atomic_load(&cr.recv_sum));
    }
}

/* ---- channels across gort_maxprocs changes ----------------------------------------------- */

enum { MP_PAIRS = 16, MP_TRIPS = 20000 };

static struct {
    gort_chan *ping[MP_PAIRS], *pong[MP_PAIRS];
    _Atomic int finished, bad;
    gort_waitgroup wg;
} mp;

static void mp_ponger(void *arg)
{
    int p = (int)(intptr_t)arg;
    int v;
    while (gort_chan_recv(mp.ping[p], &v)) {
        v++;
        gort_chan_send(mp.pong[p], &v);
    }
    gort_wg_done(&mp.wg);
}

static void mp_pinger(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < MP_TRIPS; i++) {
        int v = i;
        gort_chan_send(mp.ping[p], &v);
        gort_chan_recv(mp.pong[p], &v);
        if (v != i + 1) atomic_fetch_add(&mp.bad, 1);
        if (i % 64 == 63) gort_yield(); /* no preemption yet: let main in */
    }
    gort_chan_close(mp.ping[p]);
    atomic_fetch_add(&mp.finished, 1);
    gort_wg_done(&mp.wg);
}

/* 16 ping-pong pairs run while main changes the number of processors
 * (stop-the-world, Ps destroyed with readied goroutines in their queues):
 * every round trip completes with the right value. */
static void test_chan_across_maxprocs(void **state)
{
    (void)state;
    settle();
    int orig = gort_maxprocs(0);
    memset(&mp, 0, sizeof mp);
    gort_wg_add(&mp.wg, 2 * MP_PAIRS);
    for (int p = 0; p < MP_PAIRS; p++) {
        mp.ping[p] = gort_chan_make(sizeof(int), 0);
        mp.pong[p] = gort_chan_make(sizeof(int), p % 2); /* half buffered */
        gort_go(mp_ponger, (void *)(intptr_t)p);
        gort_go(mp_pinger, (void *)(intptr_t)p);
    }
    static const int procs[] = {1, 3, 2, 4, 1};
    int changes = 0;
    for (int k = 0; atomic_load(&mp.finished) < MP_PAIRS && k < 10000; k++) {
        gort_maxprocs(procs[k % 5]);
        changes++;
        gort_yield();
    }
    gort_maxprocs(orig);
    gort_wg_wait(&mp.wg);
    print_message("maxprocs: %d changes while %d pairs ran\n", changes, MP_PAIRS);
    assert_int_equal(atomic_load(&mp.finished), MP_PAIRS);
    assert_int_equal(atomic_load(&mp.bad), 0);
    assert_int_equal(gort_maxprocs(0), orig);
}

/* ---- exercises
 * ----------------------------------------------------------------------------------- */

enum { CDF_ROUNDS = 100 };

static const char *const animals[3] = {"cat", "dog", "fish"};

static struct {
    gort_chan *ring[3];
    char buf[4096];
    size_t len;
    int bad_token;
    gort_waitgroup wg;
} cdf;

static void animal(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < CDF_ROUNDS; r++) {
        int token = -1;
        gort_chan_recv(cdf.ring[me], &token);
        if (token != 3 * r + me) cdf.bad_token++;
        /* holding the token: nobody else writes the buffer */
        cdf.len +=
            (size_t)snprintf(cdf.buf + cdf.len, sizeof cdf.buf - cdf.len, "%s\n", animals[me]);
        token++;
        if (!(me == 2 && r == CDF_ROUNDS - 1)) /* fish keeps the last token */
            gort_chan_send(cdf.ring[(me + 1) % 3], &token);
    }
    gort_wg_done(&cdf.wg);
}

/* Exercise 1a: a ring of three unbuffered channels passing a token prints
 * exactly 300 words, cat dog fish in order. */
static void test_cat_dog_fish(void **state)
{
    (void)state;
    settle();
    memset(&cdf, 0, sizeof cdf);
    for (int i = 0; i < 3; i++)
        cdf.ring[i] = gort_chan_make(sizeof(int), 0);
    gort_wg_add(&cdf.wg, 3);
    for (int i = 0; i < 3; i++)
        gort_go(animal, (void *)(intptr_t)i);
    int token = 0;
    gort_chan_send(cdf.ring[0], &token);
    gort_wg_wait(&cdf.wg);
    char want[4096];
    size_t n = 0;
    for (int r = 0; r < CDF_ROUNDS; r++)
        for (int i = 0; i < 3; i++)
            n += (size_t)snprintf(want + n, sizeof want - n, "%s\n", animals[i]);
    assert_int_equal(cdf.bad_token, 0);
    assert_int_equal(cdf.len, n);
    assert_string_equal(cdf.buf, want);
    int words = 0;
    for (size_t i = 0; i < cdf.len; i++)
        words += cdf.buf[i] == '\n';
    assert_int_equal(words, 300);
    for (int i = 0; i < 3; i++)
        assert_int_equal(chan_queued(cdf.ring[i], GORT_CASE_SEND), 0);
}

static struct {
    gort_chan *odd_turn, *even_turn;
    int log[128];
    uint64_t who[128];
    int n;
    gort_waitgroup wg;
} oe;

static void odd_printer(void *arg)
{
    (void)arg;
    for (int k = 1; k <= 99; k += 2) {
        gort_chan_recv(oe.odd_turn, NULL);
        oe.who[oe.n] = gort_self();
        oe.log[oe.n++] = k;
        gort_chan_send(oe.even_turn, NULL);
    }
    gort_wg_done(&oe.wg);
}

static void even_printer(void *arg)
{
    (void)arg;
    for (int k = 2; k <= 100; k += 2) {
        gort_chan_recv(oe.even_turn, NULL);
        oe.who[oe.n] = gort_self();
        oe.log[oe.n++] = k;
        if (k < 100) gort_chan_send(oe.odd_turn, NULL);
    }
    gort_wg_done(&oe.wg);
}

/* Exercise 2: two goroutines print odd and even numbers alternately up to
 * 100. */
static void test_odd_even(void **state)
{
    (void)state;
    settle();
    memset(&oe, 0, sizeof oe);
    oe.odd_turn = gort_chan_make(0, 0);
    oe.even_turn = gort_chan_make(0, 0);
    gort_wg_add(&oe.wg, 2);
    uint64_t odd_id = gort_go(odd_printer, NULL);
    uint64_t even_id = gort_go(even_printer, NULL);
    gort_chan_send(oe.odd_turn, NULL);
    gort_wg_wait(&oe.wg);
    assert_int_equal(oe.n, 100);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(oe.log[i], i + 1);
        assert_int_equal(oe.who[i], i % 2 == 0 ? odd_id : even_id);
    }
}

enum { LIMIT = 4, LIMIT_TASKS = 10000 };

static struct {
    gort_chan *sem;
    gort_waitgroup wg;
    _Atomic int running, max, done;
} lim;

static void limited_task(void *arg)
{
    (void)arg;
    int now = atomic_fetch_add(&lim.running, 1) + 1;
    int m = atomic_load(&lim.max);
    while (now > m && !atomic_compare_exchange_weak(&lim.max, &m, now)) {
    }
    for (int i = 0; i < 3; i++) /* stay a while: let others start */
        gort_yield();
    atomic_fetch_sub(&lim.running, 1);
    atomic_fetch_add(&lim.done, 1);
    gort_chan_recv(lim.sem, NULL); /* release the slot */
    gort_wg_done(&lim.wg);
}

/* Exercise 4: a buffered channel of capacity 4 as a semaphore; 10,000
 * tasks, never more than 4 running; main waits with a wait group. */
static void test_limiter(void **state)
{
    (void)state;
    settle();
    memset(&lim, 0, sizeof lim);
    lim.sem = gort_chan_make(0, LIMIT);
    for (int t = 0; t < LIMIT_TASKS; t++) {
        gort_chan_send(lim.sem, NULL); /* acquire before starting the task */
        gort_wg_add(&lim.wg, 1);
        gort_go(limited_task, NULL);
    }
    gort_wg_wait(&lim.wg);
    print_message("limiter: at most %d of %d running at once\n", atomic_load(&lim.max), LIMIT);
    assert_int_equal(atomic_load(&lim.done), LIMIT_TASKS);
    assert_in_range(atomic_load(&lim.max), 1, LIMIT);
    assert_int_equal(atomic_load(&lim.running), 0);
    assert_int_equal(gort_chan_len(lim.sem), 0);
}

enum { WORKERS = 4, POOL_TASKS = 100 };

struct pool_result {
    int id;
    bool ok;
    long value;
    char msg[48];
};

struct pool_job {
    int id;
    long value;
};

static struct {
    gort_chan *tasks, *results;
    gort_waitgroup wg;
    _Atomic int deferred;
} wp;

static void count_deferred(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wp.deferred, 1);
}

static void run_job(void *arg)
{
    struct pool_job *j = arg;
    gort_defer(count_deferred, NULL); /* runs also while panicking */
    if (j->id % 7 == 3) gort_panic("task %d failed", j->id);
    j->value = (long)j->id * j->id;
}

static void pool_worker(void *arg)
{
    (void)arg;
    int id;
    while (gort_chan_recv(wp.tasks, &id)) {
        struct pool_job j = {id, 0};
        struct pool_result r = {.id = id};
        r.ok = try_msg(run_job, &j, r.msg, sizeof r.msg);
        r.value = j.value;
        gort_chan_send(wp.results, &r);
    }
    gort_wg_done(&wp.wg);
}

static void pool_closer(void *arg)
{
    (void)arg;
    gort_wg_wait(&wp.wg);
    gort_chan_close(wp.results);
}

static void pool_submitter(void *arg)
{
    (void)arg;
    for (int i = 0; i < POOL_TASKS; i++)
        gort_chan_send(wp.tasks, &i);
    gort_chan_close(wp.tasks);
}

/* Exercise 5: a worker pool. N workers read tasks from a channel and send a
 * result, or the recovered panic message of a failing task, to a results
 * channel; closing the task channel lets the workers drain what is queued,
 * then the results channel is closed. Run twice: with every task queued and
 * the task channel closed before any worker starts, and with a submitter
 * feeding a small channel while the workers run. */
static void test_worker_pool(void **state)
{
    (void)state;
    for (int phase = 0; phase < 2; phase++) {
        settle();
        atomic_store(&wp.deferred, 0);
        wp.results = gort_chan_make(sizeof(struct pool_result), 0);
        if (phase == 0) {
            wp.tasks = gort_chan_make(sizeof(int), POOL_TASKS);
            for (int i = 0; i < POOL_TASKS; i++)
                gort_chan_send(wp.tasks, &i);
            gort_chan_close(wp.tasks); /* queued work must still be done */
        } else {
            wp.tasks = gort_chan_make(sizeof(int), 8);
            gort_go(pool_submitter, NULL);
        }
        gort_wg_add(&wp.wg, WORKERS);
        for (int w = 0; w < WORKERS; w++)
            gort_go(pool_worker, NULL);
        gort_go(pool_closer, NULL);
        int seen[POOL_TASKS] = {0}, nres = 0, npanic = 0;
        struct pool_result r;
        while (gort_chan_recv(wp.results, &r)) {
            nres++;
            assert_in_range(r.id, 0, POOL_TASKS - 1);
            seen[r.id]++;
            if (r.id % 7 == 3) {
                npanic++;
                char want[48];
                snprintf(want, sizeof want, "task %d failed", r.id);
                assert_false(r.ok);
                assert_string_equal(r.msg, want);
            } else {
                assert_true(r.ok);
                assert_int_equal(r.value, (long)r.id * r.id);
            }
        }
        assert_int_equal(nres, POOL_TASKS);
        for (int i = 0; i < POOL_TASKS; i++)
            assert_int_equal(seen[i], 1);
        assert_int_equal(npanic, 14); /* 3, 10, ..., 94 */
        assert_int_equal(atomic_load(&wp.deferred), POOL_TASKS);
        assert_int_equal(r.id, 0); /* the closed receive zeroed the element */
        assert_false(r.ok);
    }
    settle();
}

/* ---- subprocess: failures that must be loud (tests/helpers/chan_victim) ------------------ */

#define RUN_TIMEOUT_MS 20000

static char victim_path[PATH_MAX];

/* Run chan_victim SCENARIO with this environment plus overrides env
 * ("NAME=VALUE", NULL-terminated, may be NULL); bounded by RUN_TIMEOUT_MS. */
static void run_victim(const char *scenario, const char *const *env, struct run *r)
{
    char *argv[] = {victim_path, (char *)scenario, NULL};
    run_prog_blocking(victim_path, argv, env, RUN_TIMEOUT_MS, r);
}

static int count_lines(const char *s, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *l = s; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, prefix, n) == 0) c++;
    return c;
}

static int group_setup(void **state)
{
    (void)state;
    return helper_path("chan_victim", victim_path);
}

static const char *const procs_variants[][2] = {
    {NULL}, {"GORT_MAXPROCS=1", NULL}, {"GORT_MAXPROCS=2", NULL}, {"GORT_MAXPROCS=4", NULL}};
#define NPROCS_VARIANTS (sizeof procs_variants / sizeof *procs_variants)

/* The broken cat/dog/fish (one send more than receives) dies with Go's
 * deadlock error, main reported blocked in "chan send"; every one of the 300
 * receives happened first, 100 per receiver, each counter value once. */
static void test_victim_one_send_too_many(void **state)
{
    (void)state;
    for (size_t v = 0; v < NPROCS_VARIANTS; v++) {
        const char *sc = "one-send-too-many";
        struct run r;
        run_victim(sc, procs_variants[v], &r);
        CHECK(&r, sc, exited_with(&r, 2));
        CHECK(&r, sc, has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        CHECK(&r, sc, has_line(r.err, "goroutine 1 [chan send]:"));
        CHECK(&r, sc, !has(r.out, "unreachable"));
        CHECK(&r, sc, count_lines(r.out, "") == 300);
        CHECK(&r, sc, count_lines(r.out, "cat ") == 100);
        CHECK(&r, sc, count_lines(r.out, "dog ") == 100);
        CHECK(&r, sc, count_lines(r.out, "fish ") == 100);
        static bool got[300];
        memset(got, 0, sizeof got);
        int dup = 0;
        for (const char *l = r.out; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
            const char *sp = strchr(l, ' ');
            int n = sp ? atoi(sp + 1) : -1;
            if (n < 0 || n >= 300 || got[n]) dup++;
            if (n >= 0 && n < 300) got[n] = true;
        }
        CHECK(&r, sc, dup == 0);
        run_free(&r);
    }
}

/* A panic in a child goroutine is not recovered by the gort_try its parent
 * is running: "panic: child boom", the child's goroutine header, exit 2. */
static void test_victim_child_panic(void **state)
{
    (void)state;
    for (size_t v = 0; v < 2; v++) {
        const char *sc = "child-panic";
        struct run r;
        run_victim(sc, procs_variants[v], &r);
        char *end;
        unsigned long long id = strtoull(r.out, &end, 10);
        char hdr[64];
        snprintf(hdr, sizeof hdr, "goroutine %llu [running]:", id);
        CHECK(&r, sc, exited_with(&r, 2));
        CHECK(&r, sc, id > 1 && *end == '\n');
        CHECK(&r, sc, has_line(r.err, "panic: child boom"));
        CHECK(&r, sc, has_line(r.err, hdr));
        CHECK(&r, sc, !has(r.out, "recovered"));
        CHECK(&r, sc, !has(r.err, "fatal error"));
        run_free(&r);
    }
}

/* select {} with nothing else alive: deadlock, "select (no cases)". */
static void test_victim_select_forever(void **state)
{
    (void)state;
    for (size_t v = 0; v < NPROCS_VARIANTS; v++) {
        const char *sc = "select-forever";
        struct run r;
        run_victim(sc, procs_variants[v], &r);
        CHECK(&r, sc, exited_with(&r, 2));
        CHECK(&r, sc, has_line(r.err, "fatal error: all goroutines are asleep - deadlock!"));
        CHECK(&r, sc, has_line(r.err, "goroutine 1 [select (no cases)]:"));
        CHECK(&r, sc, !has(r.out, "unreachable"));
        run_free(&r);
    }
}

/* A goroutine blocked forever on a send is a leak, not an error: it is
 * counted, and main's return still ends the program with status 0. */
static void test_victim_leak(void **state)
{
    (void)state;
    for (size_t v = 0; v < 2; v++) {
        const char *sc = "leak";
        struct run r;
        run_victim(sc, procs_variants[v], &r);
        CHECK(&r, sc, exited_with(&r, 0));
        CHECK(&r, sc, strcmp(r.out, "goroutines 2\n") == 0);
        CHECK(&r, sc, !has(r.err, "fatal error"));
        CHECK(&r, sc, !has(r.err, "panic"));
        run_free(&r);
    }
}

/* ---- main
 * ------------------------------------------------------------------------------------------- */

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* cmocka's state is in __thread variables: keep the main goroutine on
     * one thread while cmocka runs (see test_sched.c). */
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nil_chan_nonblocking),
        cmocka_unit_test(test_nil_chan_blocks_forever),
        cmocka_unit_test(test_closed_chan),
        cmocka_unit_test(test_closed_buffered_drains_first),
        cmocka_unit_test(test_open_chan_ops),
        cmocka_unit_test(test_len_cap),
        cmocka_unit_test(test_makechan_limits),
        cmocka_unit_test(test_close_panics_blocked_senders),
        cmocka_unit_test(test_close_wakes_all_receivers),
        cmocka_unit_test(test_zero_size_elems),
        cmocka_unit_test(test_handoff_copies_1kib),
        cmocka_unit_test(test_fifo_per_sender),
        cmocka_unit_test(test_prime_sieve),
        cmocka_unit_test(test_daisy_chain),
        cmocka_unit_test(test_select_default),
        cmocka_unit_test(test_select_picks_ready),
        cmocka_unit_test(test_select_nil_case_never_chosen),
        cmocka_unit_test(test_select_wakeup_leaves_other_queues),
        cmocka_unit_test(test_select_two_wakers),
        cmocka_unit_test(test_select_closed),
        cmocka_unit_test(test_select_send_recv_same_closed),
        cmocka_unit_test(test_select_fairness),
        cmocka_unit_test(test_select_many_cases_blocking),
        cmocka_unit_test(test_self_select),
        cmocka_unit_test(test_nonblock_recv_race),
        cmocka_unit_test(test_nonblock_select_race),
        cmocka_unit_test(test_select_duplicate_channel),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_stress_buffered),
        cmocka_unit_test(test_stress_unbuffered),
        cmocka_unit_test(test_stress_select),
        cmocka_unit_test(test_stress_close_race),
        cmocka_unit_test(test_chan_across_maxprocs),
        cmocka_unit_test(test_cat_dog_fish),
        cmocka_unit_test(test_odd_even),
        cmocka_unit_test(test_limiter),
        cmocka_unit_test(test_worker_pool),
        cmocka_unit_test(test_victim_one_send_too_many),
        cmocka_unit_test(test_victim_child_panic),
        cmocka_unit_test(test_victim_select_forever),
        cmocka_unit_test(test_victim_leak),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}
