/* tests/test_chan_stress.c: stress for the buffered channels' lock-free
 * paths (sync/chan.c: the ring claimed by CAS while nobody waits, the waiter
 * flags that send the fast paths to the lock, the waits for an operation in
 * flight) and for select over buffered and unbuffered channels
 * (sync/select.c: the second look after freezing the fast paths).
 *
 * Harness as test_chan.c: the cmocka run is the main goroutine, wired to
 * its thread; spawned goroutines record what they saw and the test asserts
 * afterwards. No timing assertion anywhere: every wait is on a wait group,
 * bounded (wg_wait_bounded: 10 s without progress is a hang, a lost
 * wake-up), and "enough progress before the close" is counted in items,
 * not time. Sizes keep a sanitizer build on a busy 2-CPU machine within
 * seconds per test.
 *
 * What is covered:
 *   - one goroutine, hundreds of laps of rings of capacity 1, 2, 3, 5, 7, 8,
 *     64 (8-byte and zero-size elements): fill, overfill, partial drains,
 *     len at every step, order, non-blocking answers on full and empty,
 *     close draining the rest;
 *   - many producers and consumers through one buffered channel (caps 1, 2,
 *     3, 5, 64; 8- and 24-byte elements, the latter checksummed against
 *     torn copies), each side mixing plain operations, single-case and
 *     two-case selects, blocking and non-blocking (retried): every value
 *     arrives exactly once, each consumer sees each sender's values in
 *     increasing order, and a single consumer sees each sender's sequence
 *     exactly 0, 1, 2, ...; len stays within [0, cap];
 *   - the same with close racing the senders: main closes while they send;
 *     each sender stops at "send on closed channel"; what a sender's calls
 *     returned from is exactly what the consumers got, in order;
 *   - zero-size elements (count mode): sends and receives balance across a
 *     racing close; a capacity-k channel as a semaphore admits at most k; a
 *     capacity-1 channel as a mutex protects a plain counter (the receive
 *     publishes the critical section to the next send);
 *   - select mixing buffered (cap 1, cap 4) and unbuffered cases, senders
 *     with only send cases, "mixed" goroutines with receive and send cases
 *     in one select, receivers with blocking and non-blocking selects, then
 *     closes and the fan-in idiom: exactly once, per (sender, channel)
 *     order;
 *   - a non-blocking select over two buffered channels, one of which always
 *     holds a value while lock-free sends and receives move it (Go's
 *     TestNonblockSelectRace, persistent and jittered), never fails;
 *   - wake-ups: token rings of goroutines over buffered channels of cap 1
 *     and 2 with 1 and 3 tokens (every hop parks or races a park);
 *   - pointers in elements while the collector runs: gort_new objects sent
 *     through a buffered channel with gort_gc() looping; each object keeps
 *     its contents (nothing freed while in the buffer or in flight).
 */
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

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

static uint64_t xs(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A random pause of 0 to n-1 PAUSEs (up to a couple of microseconds):
 * moves a peer's operation across every step of the other side's slow path
 * (the spin, the lock, the waiter flag, the last look, the park), where a
 * lost wake-up would hide. */
static void jitter(uint64_t *x, unsigned n)
{
    for (unsigned k = (unsigned)(xs(x) % n); k > 0; k--)
        __builtin_ia32_pause();
}

static uint64_t check_of(uint32_t sender, uint32_t seq)
{
    return ((uint64_t)sender << 32 | seq) * 0x9e3779b97f4a7c15ULL ^ 0x5bd1e9955bd1e995ULL;
}

/* A value: who sent it, its number in that sender's sequence, and (24-byte
 * elements) two words that must match them. */
struct item {
    uint32_t sender, seq;
    uint64_t check[2];
};

/* ---- one goroutine, many laps of the ring --------------------------------------------- */

static int nb_send(gort_chan *c, const void *v)
{
    gort_case cs = GORT_SEND(c, v);
    return gort_select(&cs, 1, false);
}

static int nb_recv(gort_chan *c, void *v, bool *ok)
{
    gort_case cs = GORT_RECV(c, v, ok);
    return gort_select(&cs, 1, false);
}

/* Deterministic: fill, overfill (fails), drain part, refill, for hundreds
 * of laps of rings whose capacity is and is not a power of two (the lap
 * stamps wrap at one_lap, not at cap); len tracks every step, values come
 * out in order, a full or empty ring answers non-blocking operations at
 * once. Also through two-case selects (the select path's ring operations)
 * and for zero-size elements (counts). */
static void test_ring_laps(void **state)
{
    (void)state;
    static const size_t caps[] = {1, 2, 3, 5, 7, 8, 64};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        size_t cap = caps[k];
        for (int zero = 0; zero < 2; zero++) {
            gort_chan *c = gort_chan_make(zero ? 0 : sizeof(uint64_t), cap);
            gort_chan *never = gort_chan_make(0, 0);
            uint64_t next_in = 0, next_out = 0;
            size_t len = 0;
            for (int lap = 0; lap < 300; lap++) {
                /* fill to cap, by plain sends and selects in turn */
                while (len < cap) {
                    uint64_t v = next_in;
                    if (lap % 2) {
                        gort_case cs[] = {GORT_RECV(never, NULL, NULL), GORT_SEND(c, &v)};
                        assert_int_equal(gort_select(cs, 2, false), 1);
                    } else {
                        gort_chan_send(c, &v);
                    }
                    next_in++;
                    assert_int_equal(gort_chan_len(c), ++len);
                }
                uint64_t v = 12345;
                assert_int_equal(nb_send(c, &v), -1); /* full */
                assert_int_equal(gort_chan_len(c), cap);
                /* drain lap % cap + 1 values */
                for (size_t d = 0; d < (size_t)lap % cap + 1; d++) {
                    uint64_t got = 0xdead;
                    bool ok = false;
                    if (lap % 3 == 0) {
                        assert_int_equal(nb_recv(c, &got, &ok), 0);
                        assert_true(ok);
                    } else {
                        assert_true(gort_chan_recv(c, &got));
                    }
                    if (!zero) assert_int_equal(got, next_out);
                    next_out++;
                    assert_int_equal(gort_chan_len(c), --len);
                }
                if (len == 0) {
                    bool ok = true;
                    assert_int_equal(nb_recv(c, &v, &ok), -1); /* empty */
                }
            }
            gort_chan_close(c);
            while (len > 0) { /* closed: the buffer drains first */
                uint64_t got = 0;
                assert_true(gort_chan_recv(c, &got));
                if (!zero) assert_int_equal(got, next_out);
                next_out++;
                len--;
            }
            uint64_t got = 77;
            assert_false(gort_chan_recv(c, &got));
            if (!zero) assert_int_equal(got, 0);
            assert_int_equal(next_in, next_out);
            assert_int_equal(gort_chan_len(c), 0);
            assert_int_equal(gort_chan_cap(c), cap);
        }
    }
}

/* ---- one channel, many producers and consumers --------------------------------------- */

enum { MP_MAXPROD = 6, MP_MAXCONS = 5, MP_MAXITEMS = 6000 };

static struct {
    gort_chan *c, *never; /* never: a channel nobody sends on (second select case) */
    size_t cap, esize;
    int nprod, ncons, items; /* items per producer (close race: the most it may send) */
    bool close_race;
    _Atomic int sent[MP_MAXPROD]; /* sends that returned */
    _Atomic int received, bad, bad_len, bad_panic, closed_seen;
    _Atomic unsigned char seen[MP_MAXPROD][MP_MAXITEMS];
    char msg[128];
    gort_waitgroup pwg, cwg;
} mp;

static void mp_fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&mp.bad, 1) != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mp.msg, sizeof mp.msg, fmt, ap);
    va_end(ap);
}

/* Send one value by way k (0 plain, 1 select with a never-ready case, 2 a
 * non-blocking single-case select retried, 3 the same with two cases). */
static void send_by(gort_chan *c, gort_chan *never, const void *v, int k)
{
    switch (k) {
    case 0:
        gort_chan_send(c, v);
        break;
    case 1: {
        gort_case cs[] = {GORT_RECV(never, NULL, NULL), GORT_SEND(c, v)};
        if (gort_select(cs, 2, true) != 1) mp_fail("blocking select send took case -1/0");
        break;
    }
    default: {
        gort_case cs[] = {GORT_SEND(c, v), GORT_RECV(never, NULL, NULL)};
        int n = k == 2 ? 1 : 2;
        int r;
        while ((r = gort_select(cs, n, false)) < 0)
            gort_yield();
        if (r != 0) mp_fail("non-blocking select send took case %d", r);
        break;
    }
    }
}

/* Receive one value by way k (as send_by); returns ok (false: closed). */
static bool recv_by(gort_chan *c, gort_chan *never, void *v, int k)
{
    bool ok = false;
    switch (k) {
    case 0:
        return gort_chan_recv(c, v);
    case 1: {
        gort_case cs[] = {GORT_RECV(never, NULL, NULL), GORT_RECV(c, v, &ok)};
        if (gort_select(cs, 2, true) != 1) mp_fail("blocking select recv took case -1/0");
        return ok;
    }
    default: {
        gort_case cs[] = {GORT_RECV(c, v, &ok), GORT_RECV(never, NULL, NULL)};
        int n = k == 2 ? 1 : 2;
        int r;
        while ((r = gort_select(cs, n, false)) < 0)
            gort_yield();
        if (r != 0) mp_fail("non-blocking select recv took case %d", r);
        return ok;
    }
    }
}

static void mp_produce(void *arg)
{
    uint32_t id = (uint32_t)(intptr_t)arg;
    uint64_t x = 0x2545f4914f6cdd1dULL * (id + 1);
    for (int i = 0; i < mp.items; i++) {
        struct item v = {id, (uint32_t)i, {check_of(id, (uint32_t)i), ~check_of(id, (uint32_t)i)}};
        if (i % 4 == 0) jitter(&x, 64);
        send_by(mp.c, mp.never, &v, (int)(xs(&x) % 4));
        atomic_store_explicit(&mp.sent[id], i + 1, memory_order_relaxed);
    }
}

static void mp_producer(void *arg)
{
    const char *msg = NULL;
    if (!gort_try(mp_produce, arg, &msg)) {
        /* Only the close race ends a producer early, and only so. */
        if (!mp.close_race || !msg || strcmp(msg, "send on closed channel") != 0)
            atomic_fetch_add(&mp.bad_panic, 1);
    }
    gort_wg_done(&mp.pwg);
}

static void mp_consumer(void *arg)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL * ((uint64_t)(intptr_t)arg + 7);
    int64_t last[MP_MAXPROD];
    for (int s = 0; s < MP_MAXPROD; s++)
        last[s] = -1;
    int got = 0;
    for (;;) {
        struct item v;
        memset(&v, 0xa5, sizeof v);
        if (got % 4 == 0) jitter(&x, 64);
        if (!recv_by(mp.c, mp.never, &v, (int)(xs(&x) % 4))) {
            /* closed and drained: the element is zeroed */
            unsigned char z[sizeof v];
            memset(z, 0, sizeof z);
            if (memcmp(&v, z, mp.esize) != 0) mp_fail("closed receive left the element unzeroed");
            atomic_fetch_add(&mp.closed_seen, 1);
            break;
        }
        if (v.sender >= (uint32_t)mp.nprod || v.seq >= (uint32_t)mp.items) {
            mp_fail("value out of range: sender %u seq %u", v.sender, v.seq);
            continue;
        }
        if (mp.esize == sizeof v &&
            (v.check[0] != check_of(v.sender, v.seq) || v.check[1] != ~check_of(v.sender, v.seq)))
            mp_fail("torn element: sender %u seq %u", v.sender, v.seq);
        if ((int64_t)v.seq <= last[v.sender])
            mp_fail("sender %u: seq %u after %lld", v.sender, v.seq, (long long)last[v.sender]);
        /* One consumer: each sender's values come exactly in sequence. */
        if (mp.ncons == 1 && (int64_t)v.seq != last[v.sender] + 1)
            mp_fail("sender %u: seq %u after %lld (gap)", v.sender, v.seq,
                    (long long)last[v.sender]);
        last[v.sender] = v.seq;
        if (atomic_fetch_add(&mp.seen[v.sender][v.seq], 1) != 0)
            mp_fail("sender %u seq %u received twice", v.sender, v.seq);
        atomic_fetch_add_explicit(&mp.received, 1, memory_order_relaxed);
        if (++got % 16 == 0 && gort_chan_len(mp.c) > mp.cap) atomic_fetch_add(&mp.bad_len, 1);
    }
    gort_wg_done(&mp.cwg);
}

static void run_mpmc(size_t cap, size_t esize, int nprod, int ncons, int items, bool close_race)
{
    settle();
    memset(&mp, 0, sizeof mp);
    mp.cap = cap;
    mp.esize = esize;
    mp.nprod = nprod;
    mp.ncons = ncons;
    mp.items = items;
    mp.close_race = close_race;
    mp.c = gort_chan_make(esize, cap);
    mp.never = gort_chan_make(0, 0);
    gort_wg_add(&mp.pwg, nprod);
    gort_wg_add(&mp.cwg, ncons);
    for (int i = 0; i < ncons; i++)
        gort_go(mp_consumer, (void *)(intptr_t)i);
    for (int i = 0; i < nprod; i++)
        gort_go(mp_producer, (void *)(intptr_t)i);
    if (close_race) {
        /* Close while the producers are mid-way (counted in items: a slow
         * machine only makes it later), racing their fast paths. */
        int target = nprod * items / 3;
        if (!WAIT_FOR(atomic_load(&mp.received) >= target))
            fail_msg("close race: only %d of %d items arrived", atomic_load(&mp.received), target);
        gort_chan_close(mp.c);
        if (!wg_wait_bounded(&mp.pwg)) fail_msg("producers hang after the close");
    } else {
        if (!wg_wait_bounded(&mp.pwg)) fail_msg("producers hang (cap %zu)", cap);
        gort_chan_close(mp.c);
    }
    if (!wg_wait_bounded(&mp.cwg)) fail_msg("consumers hang (cap %zu)", cap);
    if (atomic_load(&mp.bad)) fail_msg("cap %zu esize %zu: %s", cap, esize, mp.msg);
    assert_int_equal(atomic_load(&mp.bad_panic), 0);
    assert_int_equal(atomic_load(&mp.bad_len), 0);
    assert_int_equal(atomic_load(&mp.closed_seen), ncons);
    int total = 0;
    for (int s = 0; s < nprod; s++) {
        int n = atomic_load(&mp.sent[s]);
        if (!close_race && n != items) fail_msg("sender %d sent %d of %d", s, n, items);
        total += n;
        /* Exactly the values whose send returned; in a close race the one
         * send that panicked (if any) must not have arrived. */
        for (int i = 0; i < items; i++)
            if (mp.seen[s][i] != (i < n))
                fail_msg("sender %d seq %d (of %d sent) received %d times", s, i, n, mp.seen[s][i]);
    }
    assert_int_equal(atomic_load(&mp.received), total);
    assert_int_equal(gort_chan_len(mp.c), 0);
}

static const size_t mp_caps[] = {1, 2, 3, 5, 64};

static void test_mpmc_exactly_once_in_order(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof mp_caps / sizeof *mp_caps; k++) {
        run_mpmc(mp_caps[k], 8, MP_MAXPROD, MP_MAXCONS, 3000, false);
        run_mpmc(mp_caps[k], sizeof(struct item), 4, 3, 2000, false);
    }
}

static void test_mpmc_single_consumer_sequence(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof mp_caps / sizeof *mp_caps; k++)
        run_mpmc(mp_caps[k], sizeof(struct item), 4, 1, 3000, false);
}

static void test_mpmc_close_race(void **state)
{
    (void)state;
    /* More Ps than CPUs too: threads preempted by the kernel mid-operation
     * leave slots in flight for the others to wait out. */
    int old = gort_maxprocs(0);
    static const int procs[] = {2, 4};
    for (size_t p = 0; p < sizeof procs / sizeof *procs; p++) {
        gort_maxprocs(procs[p]);
        for (size_t k = 0; k < sizeof mp_caps / sizeof *mp_caps; k++) {
            run_mpmc(mp_caps[k], 8, MP_MAXPROD, MP_MAXCONS, MP_MAXITEMS, true);
            run_mpmc(mp_caps[k], sizeof(struct item), 3, 2, MP_MAXITEMS, true);
        }
    }
    gort_maxprocs(old);
}

/* ---- zero-size elements ------------------------------------------------------------- */

enum { ZS_PROD = 4, ZS_CONS = 4, ZS_MAX = 20000 };

static struct {
    gort_chan *c, *never;
    _Atomic int sent, received, bad_panic, bad;
    gort_waitgroup pwg, cwg;
} zs;

static void zs_produce(void *arg)
{
    uint64_t x = 0x2545f4914f6cdd1dULL * ((uint64_t)(intptr_t)arg + 1);
    for (int i = 0; i < ZS_MAX; i++) {
        send_by(zs.c, zs.never, NULL, (int)(xs(&x) % 4));
        atomic_fetch_add(&zs.sent, 1);
    }
}

static void zs_producer(void *arg)
{
    const char *msg = NULL;
    if (!gort_try(zs_produce, arg, &msg) && (!msg || strcmp(msg, "send on closed channel") != 0))
        atomic_fetch_add(&zs.bad_panic, 1);
    gort_wg_done(&zs.pwg);
}

static void zs_consumer(void *arg)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL * ((uint64_t)(intptr_t)arg + 3);
    uint64_t canary = 0x0123456789abcdefULL;
    while (recv_by(zs.c, zs.never, &canary, (int)(xs(&x) % 4)))
        atomic_fetch_add(&zs.received, 1);
    if (canary != 0x0123456789abcdefULL) atomic_fetch_add(&zs.bad, 1); /* nothing to write */
    gort_wg_done(&zs.cwg);
}

/* Zero-size elements with a close racing the senders: every send that
 * returned was received, nothing more. */
static void test_zero_size_close_race(void **state)
{
    (void)state;
    static const size_t caps[] = {1, 3, 1000};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        settle();
        memset(&zs, 0, sizeof zs);
        zs.c = gort_chan_make(0, caps[k]);
        zs.never = gort_chan_make(0, 0);
        gort_wg_add(&zs.pwg, ZS_PROD);
        gort_wg_add(&zs.cwg, ZS_CONS);
        for (int i = 0; i < ZS_CONS; i++)
            gort_go(zs_consumer, (void *)(intptr_t)i);
        for (int i = 0; i < ZS_PROD; i++)
            gort_go(zs_producer, (void *)(intptr_t)i);
        if (!WAIT_FOR(atomic_load(&zs.received) >= ZS_PROD * ZS_MAX / 4))
            fail_msg("zero-size: no progress");
        gort_chan_close(zs.c);
        if (!wg_wait_bounded(&zs.pwg) || !wg_wait_bounded(&zs.cwg))
            fail_msg("zero-size cap %zu: hang", caps[k]);
        assert_int_equal(atomic_load(&zs.bad_panic), 0);
        assert_int_equal(atomic_load(&zs.bad), 0);
        assert_int_equal(atomic_load(&zs.received), atomic_load(&zs.sent));
        assert_int_equal(gort_chan_len(zs.c), 0);
    }
}

enum { SEM_WORKERS = 8, SEM_ROUNDS = 4000 };

static struct {
    gort_chan *sem, *mu, *never;
    _Atomic int inside, max_inside;
    long plain; /* protected by mu only */
    gort_waitgroup wg;
} sem;

static void sem_worker(void *arg)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL * ((uint64_t)(intptr_t)arg + 1);
    for (int i = 0; i < SEM_ROUNDS; i++) {
        int k = (int)(xs(&x) % 4);
        /* semaphore: a send acquires, a receive releases */
        send_by(sem.sem, sem.never, NULL, k);
        int n = atomic_fetch_add(&sem.inside, 1) + 1;
        int m = atomic_load(&sem.max_inside);
        while (n > m && !atomic_compare_exchange_weak(&sem.max_inside, &m, n)) {
        }
        if (i % 8 == 0) gort_yield();
        atomic_fetch_sub(&sem.inside, 1);
        gort_chan_recv(sem.sem, NULL);
        /* mutex: cap 1; the plain counter is ordered by the channel alone */
        gort_chan_send(sem.mu, NULL);
        sem.plain++;
        gort_chan_recv(sem.mu, NULL);
    }
    gort_wg_done(&sem.wg);
}

/* A capacity-3 zero-size channel admits at most 3 holders; a capacity-1
 * one used as a mutex loses no increment of a plain counter (Go's memory
 * model: the k-th receive is synchronised before the (k+cap)-th send
 * completes). */
static void test_zero_size_semaphore_and_mutex(void **state)
{
    (void)state;
    settle();
    memset(&sem, 0, sizeof sem);
    sem.sem = gort_chan_make(0, 3);
    sem.mu = gort_chan_make(0, 1);
    sem.never = gort_chan_make(0, 0);
    gort_wg_add(&sem.wg, SEM_WORKERS);
    for (int i = 0; i < SEM_WORKERS; i++)
        gort_go(sem_worker, (void *)(intptr_t)i);
    if (!wg_wait_bounded(&sem.wg)) fail_msg("semaphore workers hang");
    assert_true(atomic_load(&sem.max_inside) <= 3);
    assert_true(atomic_load(&sem.max_inside) >= 1);
    assert_int_equal(sem.plain, (long)SEM_WORKERS * SEM_ROUNDS);
    assert_int_equal(gort_chan_len(sem.sem), 0);
    assert_int_equal(gort_chan_len(sem.mu), 0);
}

/* ---- select over buffered and unbuffered channels ----------------------------------- */

enum {
    SX_SEND = 4,  /* senders: only send cases */
    SX_MIXED = 2, /* mixed: receive cases and a send case */
    SX_RECV = 3,  /* receivers: only receive cases */
    SX_ITEMS = 4000,
    SX_SENDERS = SX_SEND + SX_MIXED,
    SX_CHANS = 4 /* b1 (cap 1), b4 (cap 4), u (unbuffered), side (cap 2, mixed -> drainer) */
};

static struct {
    gort_chan *ch[SX_CHANS];
    _Atomic int sent[SX_SENDERS];
    _Atomic int received, bad;
    _Atomic unsigned char seen[SX_SENDERS][SX_ITEMS];
    char msg[128];
    gort_waitgroup swg, rwg, dwg;
} sx;

static void sx_fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&sx.bad, 1) != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sx.msg, sizeof sx.msg, fmt, ap);
    va_end(ap);
}

/* A received value: exactly once, and per (sender, channel) increasing. */
static void sx_note(const struct item *v, int chan, int64_t last[SX_SENDERS][SX_CHANS])
{
    if (v->sender >= SX_SENDERS || v->seq >= SX_ITEMS) {
        sx_fail("value out of range: sender %u seq %u", v->sender, v->seq);
        return;
    }
    if (v->check[0] != check_of(v->sender, v->seq)) sx_fail("torn element");
    if ((int64_t)v->seq <= last[v->sender][chan])
        sx_fail("sender %u on chan %d: seq %u after %lld", v->sender, chan, v->seq,
                (long long)last[v->sender][chan]);
    last[v->sender][chan] = v->seq;
    if (atomic_fetch_add(&sx.seen[v->sender][v->seq], 1) != 0)
        sx_fail("sender %u seq %u twice", v->sender, v->seq);
    atomic_fetch_add(&sx.received, 1);
}

static void sx_sender(void *arg)
{
    uint32_t id = (uint32_t)(intptr_t)arg;
    uint64_t x = 0x2545f4914f6cdd1dULL * (id + 1);
    for (int i = 0; i < SX_ITEMS; i++) {
        struct item v = {id, (uint32_t)i, {check_of(id, (uint32_t)i), 0}};
        /* 2 or 3 send cases over b1, b4, u in a random order */
        gort_case cs[3];
        int n = 2 + (int)(xs(&x) % 2), first = (int)(xs(&x) % 3);
        for (int k = 0; k < n; k++)
            cs[k] = (gort_case)GORT_SEND(sx.ch[(first + k) % 3], &v);
        bool block = xs(&x) % 4 != 0;
        int r;
        while ((r = gort_select(cs, n, block)) < 0)
            gort_yield();
        if (r >= n) sx_fail("select returned %d of %d", r, n);
        atomic_store(&sx.sent[id], i + 1);
    }
    gort_wg_done(&sx.swg);
}

/* Receives from b4 and u (recording what arrives) while offering its own
 * values on side, in one select; ends once b4 and u are closed. */
static void sx_mixed(void *arg)
{
    uint32_t id = (uint32_t)(intptr_t)arg;
    uint64_t x = 0x51afd7ed558ccd3dULL * (id + 1);
    int64_t last[SX_SENDERS][SX_CHANS];
    memset(last, 0xff, sizeof last); /* -1 */
    gort_chan *in[2] = {sx.ch[1], sx.ch[2]};
    int i = 0;
    while (in[0] || in[1]) {
        struct item v = {id, (uint32_t)i, {check_of(id, (uint32_t)i), 0}}, got;
        bool ok = false;
        gort_case cs[3] = {GORT_RECV(in[0], &got, &ok), GORT_RECV(in[1], &got, &ok),
                           GORT_SEND(i < SX_ITEMS ? sx.ch[3] : NULL, &v)};
        int r = gort_select(cs, 3, xs(&x) % 3 != 0);
        if (r < 0) {
            gort_yield();
            continue;
        }
        if (r == 2) {
            atomic_store(&sx.sent[id], ++i);
        } else if (!ok) {
            in[r] = NULL;
        } else {
            sx_note(&got, r + 1, last);
        }
    }
    gort_wg_done(&sx.rwg);
}

static void sx_receiver(void *arg)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL * ((uint64_t)(intptr_t)arg + 5);
    int64_t last[SX_SENDERS][SX_CHANS];
    memset(last, 0xff, sizeof last);
    gort_chan *in[3] = {sx.ch[0], sx.ch[1], sx.ch[2]};
    while (in[0] || in[1] || in[2]) {
        struct item got;
        bool ok = false;
        gort_case cs[3] = {GORT_RECV(in[0], &got, &ok), GORT_RECV(in[1], &got, &ok),
                           GORT_RECV(in[2], &got, &ok)};
        int r = gort_select(cs, 3, xs(&x) % 4 != 0);
        if (r < 0) {
            gort_yield();
            continue;
        }
        if (!ok)
            in[r] = NULL;
        else
            sx_note(&got, r, last);
    }
    gort_wg_done(&sx.rwg);
}

static void sx_drainer(void *arg)
{
    (void)arg;
    int64_t last[SX_SENDERS][SX_CHANS];
    memset(last, 0xff, sizeof last);
    struct item got;
    while (gort_chan_recv(sx.ch[3], &got))
        sx_note(&got, 3, last);
    gort_wg_done(&sx.dwg);
}

static void test_select_mixed_buffered_unbuffered(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        settle();
        memset(&sx, 0, sizeof sx);
        static const size_t caps[SX_CHANS] = {1, 4, 0, 2};
        for (int i = 0; i < SX_CHANS; i++)
            sx.ch[i] = gort_chan_make(sizeof(struct item), caps[i]);
        gort_wg_add(&sx.swg, SX_SEND);
        gort_wg_add(&sx.rwg, SX_MIXED + SX_RECV);
        gort_wg_add(&sx.dwg, 1);
        gort_go(sx_drainer, NULL);
        for (int i = 0; i < SX_RECV; i++)
            gort_go(sx_receiver, (void *)(intptr_t)i);
        for (int i = 0; i < SX_MIXED; i++)
            gort_go(sx_mixed, (void *)(intptr_t)(SX_SEND + i));
        for (int i = 0; i < SX_SEND; i++)
            gort_go(sx_sender, (void *)(intptr_t)i);
        if (!wg_wait_bounded(&sx.swg)) fail_msg("select senders hang");
        for (int i = 0; i < 3; i++)
            gort_chan_close(sx.ch[i]);
        if (!wg_wait_bounded(&sx.rwg)) fail_msg("select receivers hang");
        gort_chan_close(sx.ch[3]);
        if (!wg_wait_bounded(&sx.dwg)) fail_msg("drainer hangs");
        if (atomic_load(&sx.bad)) fail_msg("round %d: %s", round, sx.msg);
        int total = 0;
        for (int s = 0; s < SX_SENDERS; s++) {
            int n = atomic_load(&sx.sent[s]);
            if (s < SX_SEND) assert_int_equal(n, SX_ITEMS);
            total += n;
            for (int i = 0; i < SX_ITEMS; i++)
                if (sx.seen[s][i] != (i < n))
                    fail_msg("sender %d seq %d (of %d) received %d times", s, i, n, sx.seen[s][i]);
        }
        assert_int_equal(atomic_load(&sx.received), total);
    }
}

/* ---- a failing non-blocking select means "none ready at one instant" --------------- */

enum { SNAP_ROUNDS = 30000 };

static struct {
    gort_chan *c1, *c2, *go, *done;
    _Atomic int not_ready;
} snap;

static void snap_selector(void *arg)
{
    (void)arg;
    int v;
    while (gort_chan_recv(snap.go, &v)) {
        int got = -1;
        gort_case cs[] = {GORT_RECV(snap.c1, &got, NULL), GORT_RECV(snap.c2, &got, NULL)};
        int r = gort_select(cs, 2, false);
        if (r < 0) atomic_fetch_add(&snap.not_ready, 1);
        gort_chan_send(snap.done, &r);
    }
}

/* Go's TestNonblockSelectRace, persistent and jittered: c1 holds a value
 * that main takes (a lock-free receive) right after putting one in c2 (a
 * lock-free send), while another goroutine runs a non-blocking select over
 * both. At every instant one of them holds a value, so the select must
 * never fail, although its first look at c2 may come before main's send
 * and its look at c1 after main's receive (the reason for select's second
 * look with the fast paths frozen). */
static void test_nonblock_select_snapshot(void **state)
{
    (void)state;
    settle();
    memset(&snap, 0, sizeof snap);
    snap.c1 = gort_chan_make(sizeof(int), 1);
    snap.c2 = gort_chan_make(sizeof(int), 1);
    snap.go = gort_chan_make(sizeof(int), 0);
    snap.done = gort_chan_make(sizeof(int), 0);
    gort_go(snap_selector, NULL);
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int i = 0; i < SNAP_ROUNDS; i++) {
        gort_chan_send(snap.c1, &i);
        gort_chan_send(snap.go, &i); /* the selector starts */
        jitter(&x, 48);
        gort_chan_send(snap.c2, &i);
        int v, r;
        bool ok;
        gort_case cs = GORT_RECV(snap.c1, &v, &ok);
        gort_select(&cs, 1, false); /* c1's value, unless the selector took it */
        gort_chan_recv(snap.done, &r);
        /* reset: both empty */
        gort_select(&cs, 1, false);
        gort_case cs2 = GORT_RECV(snap.c2, &v, &ok);
        gort_select(&cs2, 1, false);
        assert_int_equal(gort_chan_len(snap.c1) + gort_chan_len(snap.c2), 0);
    }
    gort_chan_close(snap.go);
    assert_int_equal(atomic_load(&snap.not_ready), 0);
}

/* ---- wake-ups: token rings over buffered channels ------------------------------------ */

enum { RING_N = 5, RING_HOPS = 20000 };

static struct {
    gort_chan *link[RING_N];
    _Atomic int hops, bad;
    gort_waitgroup wg;
} ring;

static void ring_member(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(me + 1);
    long tok;
    /* Forward while the hop budget lasts, then drop each token that comes
     * (exactly RING_HOPS forwards in all); main closes the links once every
     * token is dropped. */
    while (gort_chan_recv(ring.link[me], &tok)) {
        if (tok < 0 || tok >= 1000) atomic_fetch_add(&ring.bad, 1);
        if (atomic_fetch_add(&ring.hops, 1) < RING_HOPS) {
            jitter(&x, 64);
            gort_chan_send(ring.link[(me + 1) % RING_N], &tok);
        }
    }
    gort_wg_done(&ring.wg);
}

/* Every hop of a token through a cap-1 or cap-2 link either finds its
 * receiver parked (a wake-up) or races it to its park. A lost wake-up
 * leaves the ring stuck: 10 s without a hop fails the test. */
static void test_token_rings_no_lost_wakeup(void **state)
{
    (void)state;
    static const struct {
        size_t cap;
        int tokens;
    } cfgs[] = {{1, 1}, {1, 3}, {2, 1}, {2, 3}};
    for (size_t k = 0; k < sizeof cfgs / sizeof *cfgs; k++) {
        settle();
        memset(&ring, 0, sizeof ring);
        for (int i = 0; i < RING_N; i++)
            ring.link[i] = gort_chan_make(sizeof(long), cfgs[k].cap);
        for (long t = 0; t < cfgs[k].tokens; t++) /* distinct links: room for each */
            gort_chan_send(ring.link[t * 2 % RING_N], &t);
        gort_wg_add(&ring.wg, RING_N);
        for (int i = 0; i < RING_N; i++)
            gort_go(ring_member, (void *)(intptr_t)i);
        int target = RING_HOPS + cfgs[k].tokens; /* every forward, plus the drops */
        for (int h; (h = atomic_load(&ring.hops)) < target;)
            if (!WAIT_FOR(atomic_load(&ring.hops) != h))
                fail_msg("ring cap %zu tokens %d stuck at hop %d", cfgs[k].cap, cfgs[k].tokens, h);
        assert_int_equal(atomic_load(&ring.hops), target);
        for (int i = 0; i < RING_N; i++)
            gort_chan_close(ring.link[i]);
        if (!wg_wait_bounded(&ring.wg)) fail_msg("ring members hang after the closes");
        assert_int_equal(atomic_load(&ring.bad), 0);
    }
}

/* ---- pointers in elements while the collector runs ------------------------------------ */

/* Producers send at least GCX_ITEMS each, and go on until the collector
 * has run GCX_CYCLES times while they send (GCX_MAX at most). */
enum {
    GCX_PROD = 2,
    GCX_CONS = 2,
    GCX_ITEMS = 4000,
    GCX_MAX = 400000,
    GCX_CYCLES = 20,
    GCX_WORDS = 8,
    GCX_KEEP = 16
};

struct gcx_item {
    uint64_t *obj;
    uint32_t sender, seq;
};

static struct {
    gort_chan *c;
    _Atomic int done, bad, received, sent, collections;
    gort_waitgroup pwg, cwg, gwg;
} gcx;

static uint64_t gcx_word(uint32_t sender, uint32_t seq, int w)
{
    return check_of(sender, seq) + (uint64_t)w * 0x100000001b3ULL;
}

static bool gcx_intact(const struct gcx_item *it)
{
    for (int w = 0; w < GCX_WORDS; w++)
        if (it->obj[w] != gcx_word(it->sender, it->seq, w)) return false;
    return true;
}

static void gcx_producer(void *arg)
{
    uint32_t id = (uint32_t)(intptr_t)arg;
    for (int i = 0; i < GCX_MAX && (i < GCX_ITEMS || atomic_load(&gcx.collections) < GCX_CYCLES);
         i++) {
        struct gcx_item it = {gort_new(GCX_WORDS * sizeof(uint64_t)), id, (uint32_t)i};
        for (int w = 0; w < GCX_WORDS; w++)
            it.obj[w] = gcx_word(id, (uint32_t)i, w);
        gort_chan_send(gcx.c, &it);
        atomic_fetch_add(&gcx.sent, 1);
        /* garbage between the sends, for the collector to free */
        if (i % 4 == 0) (void)gort_new(256);
    }
    gort_wg_done(&gcx.pwg);
}

static void gcx_consumer(void *arg)
{
    (void)arg;
    struct gcx_item keep[GCX_KEEP]; /* on the stack: the collector scans it */
    memset(keep, 0, sizeof keep);
    struct gcx_item it;
    int n = 0;
    while (gort_chan_recv(gcx.c, &it)) {
        if (!gcx_intact(&it)) atomic_fetch_add(&gcx.bad, 1);
        struct gcx_item *old = &keep[n % GCX_KEEP];
        if (old->obj && !gcx_intact(old)) atomic_fetch_add(&gcx.bad, 1);
        *old = it;
        n++;
        atomic_fetch_add(&gcx.received, 1);
    }
    for (int k = 0; k < GCX_KEEP; k++)
        if (keep[k].obj && !gcx_intact(&keep[k])) atomic_fetch_add(&gcx.bad, 1);
    gort_wg_done(&gcx.cwg);
}

static void gcx_collector(void *arg)
{
    (void)arg;
    while (!atomic_load(&gcx.done)) {
        gort_gc();
        atomic_fetch_add(&gcx.collections, 1);
    }
    gort_wg_done(&gcx.gwg);
}

/* Element copies while the collector marks go through the write barrier
 * (fast path included): an object whose only reference sits in the buffer,
 * or in a value in flight, survives every collection. */
static void test_pointers_survive_gc(void **state)
{
    (void)state;
    /* 20000 slots: a large object, the channel an interior pointer into it */
    static const size_t caps[] = {1, 8, 20000};
    for (size_t k = 0; k < sizeof caps / sizeof *caps; k++) {
        settle();
        memset(&gcx, 0, sizeof gcx);
        gcx.c = gort_chan_make(sizeof(struct gcx_item), caps[k]);
        gort_wg_add(&gcx.gwg, 1);
        gort_go(gcx_collector, NULL);
        gort_wg_add(&gcx.pwg, GCX_PROD);
        gort_wg_add(&gcx.cwg, GCX_CONS);
        for (int i = 0; i < GCX_CONS; i++)
            gort_go(gcx_consumer, NULL);
        for (int i = 0; i < GCX_PROD; i++)
            gort_go(gcx_producer, (void *)(intptr_t)i);
        if (!wg_wait_bounded(&gcx.pwg)) fail_msg("gc: producers hang");
        gort_chan_close(gcx.c);
        if (!wg_wait_bounded(&gcx.cwg)) fail_msg("gc: consumers hang");
        atomic_store(&gcx.done, 1);
        if (!wg_wait_bounded(&gcx.gwg)) fail_msg("gc: collector loop hangs");
        print_message("gc: cap %zu, %d items, %d collections\n", caps[k],
                      atomic_load(&gcx.received), atomic_load(&gcx.collections));
        assert_int_equal(atomic_load(&gcx.received), atomic_load(&gcx.sent));
        assert_true(atomic_load(&gcx.sent) >= GCX_PROD * GCX_ITEMS);
        assert_int_equal(atomic_load(&gcx.bad), 0);
    }
}

/* ---- main --------------------------------------------------------------------------- */

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gort_lock_thread(); /* cmocka's state is in __thread variables */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_laps),
        cmocka_unit_test(test_mpmc_exactly_once_in_order),
        cmocka_unit_test(test_mpmc_single_consumer_sequence),
        cmocka_unit_test(test_mpmc_close_race),
        cmocka_unit_test(test_zero_size_close_race),
        cmocka_unit_test(test_zero_size_semaphore_and_mutex),
        cmocka_unit_test(test_select_mixed_buffered_unbuffered),
        cmocka_unit_test(test_nonblock_select_snapshot),
        cmocka_unit_test(test_token_rings_no_lost_wakeup),
        cmocka_unit_test(test_pointers_survive_gc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}
