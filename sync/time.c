/* sync/time.c: Go's time facilities on the runtime timers (sched/timer.c):
 * Sleep, After, AfterFunc, Timer.Stop/Reset, Ticker.
 *
 * Each is a struct timer whose function runs inside the scheduler with a
 * timer heap's lock held, so each does one short non-blocking thing: ready
 * the sleeper, send the time on a 1-slot channel without blocking (a full
 * channel drops the tick: slow receivers miss ticks, as Go's), or spawn the
 * AfterFunc goroutine.
 *
 * gort_sleep keeps its timer on the sleeping goroutine's stack and queues it
 * from gopark's unlock function, after the goroutine has switched away, so
 * the timer cannot fire (and ready it) before it is parked.
 *
 * Memory: a sleep allocates nothing; gort_after's timer is freed when it
 * fires; timers and tickers returned to the caller, like their channels,
 * live until the collector can reclaim them (Go's rules let a stopped timer
 * be reset, so nothing frees them earlier).
 */
#include <stdlib.h>

#include "gort.h"
#include "sync/sync.h"

bool chan_send(struct hchan *c, const void *ep, bool block);

struct gort_timer {
    struct timer t;
    void (*fn)(void *);
    void *arg;
};

struct gort_ticker {
    struct timer t;
    gort_chan *c;
};

static int64_t deadline_after(int64_t ns)
{
    int64_t now = ki_nanotime();
    if (ns <= 0) return now;
    if (ns > INT64_MAX - now) return INT64_MAX; /* "forever" saturates */
    return now + ns;
}

/* ---- sleep -------------------------------------------------------------- */

static void sleep_fire(void *arg, int64_t now)
{
    (void)now;
    goready(arg, true);
}

static bool sleep_arm(struct g *gp, void *arg)
{
    (void)gp;
    struct timer *t = arg;
    timer_add(t, t->when);
    return true;
}

void gort_sleep(int64_t ns)
{
    if (ns <= 0) return;
    struct g *gp = gort_g();
    if (!gp) { /* outside goroutines: an ordinary thread sleep */
        ki_nanosleep(ns);
        return;
    }
    struct timer t = {.when = deadline_after(ns), .f = sleep_fire, .arg = gp};
    gopark(sleep_arm, &t, WAIT_SLEEP);
}

/* ---- channel timers --------------------------------------------------------- */

static void send_time(void *arg, int64_t now)
{
    chan_send(arg, &now, false); /* full: the receiver has not taken the last one */
}

struct after_timer {
    struct timer t;
    gort_chan *c;
};

static void after_fire(void *arg, int64_t now)
{
    struct after_timer *a = arg;
    send_time(a->c, now); /* a is collected once nothing points to it */
}

gort_chan *gort_after(int64_t ns)
{
    gort_chan *c = gort_chan_make(sizeof(int64_t), 1);
    struct after_timer *a = gort_new(sizeof *a); /* allocated black: no barrier needed */
    a->c = c;
    a->t.f = after_fire;
    a->t.arg = a;
    timer_add(&a->t, deadline_after(ns));
    return c;
}

/* ---- AfterFunc ------------------------------------------------------------------ */

static void func_fire(void *arg, int64_t now)
{
    (void)now;
    struct gort_timer *t = arg;
    gort_go(t->fn, t->arg);
}

gort_timer *gort_timer_after_func(int64_t ns, void (*fn)(void *), void *arg)
{
    if (!fn) gort_panic("gort_timer_after_func: nil function");
    struct gort_timer *t = gort_new(sizeof *t);
    t->fn = fn;
    GORT_STORE(t->arg, arg);
    t->t.f = func_fire;
    t->t.arg = t;
    timer_add(&t->t, deadline_after(ns));
    return t;
}

bool gort_timer_stop(gort_timer *t)
{
    if (!t) gort_panic("gort_timer_stop: nil timer");
    return timer_del(&t->t);
}

bool gort_timer_reset(gort_timer *t, int64_t ns)
{
    if (!t) gort_panic("gort_timer_reset: nil timer");
    /* A timer heap the collector scanned already now holds t: shade it. */
    if (GORT_UNLIKELY(gort__gc_barrier)) gort_gc_memmove(&t, &t, sizeof t);
    return timer_reset(&t->t, deadline_after(ns));
}

/* ---- Ticker ------------------------------------------------------------------------ */

gort_ticker *gort_ticker_new(int64_t period)
{
    if (period <= 0) gort_panic("non-positive interval for gort_ticker_new");
    struct gort_ticker *tk = gort_new(sizeof *tk); /* allocated black */
    tk->c = gort_chan_make(sizeof(int64_t), 1);
    tk->t.period = period;
    tk->t.f = send_time;
    tk->t.arg = tk->c;
    timer_add(&tk->t, deadline_after(period));
    return tk;
}

gort_chan *gort_ticker_chan(gort_ticker *tk)
{
    return tk ? tk->c : NULL;
}

void gort_ticker_stop(gort_ticker *tk)
{
    if (tk) timer_del(&tk->t);
}
