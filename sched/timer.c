/* sched/timer.c: runtime timers in per-P 4-ary heaps (Go's time.go).
 *
 * Each P keeps its own min-heap of timers by fire time, under its own lock,
 * so adding and stopping timers on different Ps never contend. A timer is
 * added to the heap of the P running the caller. p->timer0when mirrors the
 * heap's earliest time so that schedulers can tell "nothing due" with one
 * atomic load and no lock.
 *
 * Who runs timers: the scheduler, never a dedicated thread.
 *   - every pass through findrunnable runs the due timers of every P (an
 *     idle P's timers must fire too; its own M is asleep);
 *   - goroutines switching directly to each other check their own P every
 *     32 switches (proc.c, timer_poll, after the switch: never while the
 *     goroutine that left still holds the locks gopark releases for it);
 *   - an M with nothing to do sleeps until the earliest timer of any P
 *     (proc.c, stopm_timed), so no timer is late because every M slept.
 * A goroutine that never yields keeps its P from running its timers: sysmon
 * preempts it when one is due. A timer that becomes a P's earliest tells
 * sysmon (sysmon_timer_added) in case it pauses beyond the timer's time.
 * Timer functions run with the heap's lock held (see struct timer), which
 * also makes timer_del exact: a timer is either still queued, and del takes
 * it out before it can run, or it has already run.
 *
 * Finding a timer's heap: t->pp, read atomically, then locked and re-checked
 * (a timer moves only under the locks of both heaps, when a P is destroyed).
 *
 * Rejected: Go's lock-free timer status machine (timerModifiedEarlier and
 * friends): a per-P lock held for a few dozen instructions costs less than
 * its complexity here, and keeps stop/reset linearisable.
 */
#include <stdlib.h>

#include "sched/netpoll.h"
#include "sched/sched.h"

/* sysmon.c: a new earliest timer cuts sysmon's pause short when it is due
 * first (so a hog on its P is preempted on time). Belongs in sched.h. */
GORT_HIDDEN void sysmon_timer_added(int64_t when);

/* ---- the heap (pp->timerlock held) ----------------------------------------- */

static inline void heap_set(struct p *pp, int32_t i, struct timer *t)
{
    pp->timers[i] = t;
    t->idx = i;
}

static void sift_up(struct p *pp, int32_t i)
{
    struct timer *t = pp->timers[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 4;
        if (pp->timers[parent]->when <= t->when) break;
        heap_set(pp, i, pp->timers[parent]);
        i = parent;
    }
    heap_set(pp, i, t);
}

static void sift_down(struct p *pp, int32_t i)
{
    struct timer *t = pp->timers[i];
    int32_t n = pp->ntimers;
    for (;;) {
        int32_t c = 4 * i + 1;
        if (c >= n) break;
        int32_t best = c;
        for (int32_t k = c + 1; k < c + 4 && k < n; k++)
            if (pp->timers[k]->when < pp->timers[best]->when) best = k;
        if (pp->timers[best]->when >= t->when) break;
        heap_set(pp, i, pp->timers[best]);
        i = best;
    }
    heap_set(pp, i, t);
}

static void update_timer0(struct p *pp)
{
    atomic_store_explicit(&pp->timer0when, pp->ntimers ? pp->timers[0]->when : 0,
                          memory_order_release);
}

static void heap_push(struct p *pp, struct timer *t)
{
    if (pp->ntimers == pp->timerscap) {
        int32_t ncap = pp->timerscap ? pp->timerscap * 2 : 64;
        struct timer **n = realloc(pp->timers, (size_t)ncap * sizeof *n);
        if (!n) gort__fatal("out of memory (timer heap of %d)", ncap);
        pp->timers = n;
        pp->timerscap = ncap;
    }
    int32_t i = pp->ntimers++;
    heap_set(pp, i, t);
    sift_up(pp, i);
    /* Release: a thread that sees t->pp == pp and locks pp finds t there. */
    atomic_store_explicit(&t->pp, pp, memory_order_release);
}

static void heap_remove(struct p *pp, int32_t i)
{
    struct timer *t = pp->timers[i];
    int32_t last = --pp->ntimers;
    if (i != last) {
        heap_set(pp, i, pp->timers[last]);
        sift_down(pp, i);
        sift_up(pp, pp->timers[i]->idx == i ? i : pp->timers[i]->idx);
    }
    atomic_store_explicit(&t->pp, NULL, memory_order_relaxed);
    /* Give memory back after a burst: a million stopped timers must not
     * keep a million-entry heap. Halve at a quarter full (no thrashing). */
    if (pp->timerscap > 64 && pp->ntimers < pp->timerscap / 4) {
        struct timer **n = realloc(pp->timers, (size_t)(pp->timerscap / 2) * sizeof *n);
        if (n) {
            pp->timers = n;
            pp->timerscap /= 2;
        }
    }
}

/* t->pp while a thread is queueing an idle timer (claimed by CAS from
 * NULL): others wait the few instructions until it names its heap. This
 * makes "not queued -> queued" happen once even when several goroutines
 * reset the same timer at once. */
#define TIMER_BUSY ((struct p *)1)

static inline void wait_not_busy(void)
{
    __builtin_ia32_pause();
}

/* Lock the heap holding t and return it, or NULL (t is not queued). */
static struct p *lock_owner(struct timer *t)
{
    for (;;) {
        struct p *pp = atomic_load_explicit(&t->pp, memory_order_acquire);
        if (!pp) return NULL;
        if (pp == TIMER_BUSY) {
            wait_not_busy();
            continue;
        }
        rlock_acquire(&pp->timerlock);
        if (atomic_load_explicit(&t->pp, memory_order_relaxed) == pp) return pp;
        rlock_release(&pp->timerlock); /* moved meanwhile: follow it */
    }
}

/* ---- API -------------------------------------------------------------------- */

/* Queue an idle timer on the caller's P (t->pp is TIMER_BUSY, ours). */
static void queue_claimed(struct timer *t, int64_t when)
{
    struct m *m = gort_m();
    struct p *pp = m && m->p ? m->p : allp[0]; /* no P (foreign thread): P 0's heap */
    rlock_acquire(&pp->timerlock);
    t->when = when;
    heap_push(pp, t); /* publishes t->pp = pp */
    bool earliest = t->idx == 0;
    if (earliest) update_timer0(pp);
    rlock_release(&pp->timerlock);
    /* An idle M may be sleeping until a later timer (or not at all): make
     * sure one looks again. The one that finds nothing to run sleeps until
     * the new earliest timer. */
    if (earliest) {
        if (m && m->p == pp && GORT_UNLIKELY(m->alarm_g != NULL))
            preempt_alarm_timer_added(m, when);
        /* Pairs with stopm_timed's fence: our push before our read. */
        atomic_thread_fence(memory_order_seq_cst);
        int64_t until = __atomic_load_n(&sched.sleep_until, __ATOMIC_RELAXED);
        sysmon_timer_added(when); /* sysmon, if it pauses past when */
        /* The M waiting in the poller re-computes its deadline. */
        if (netpoll_break_for_timer(when)) return;
        if (until == 0 || when < until) wakep();
    }
}

void timer_add(struct timer *t, int64_t when)
{
    /* Callers add timers nobody else can see yet (new ones, or a sleep's
     * timer on its stack), so no CAS is needed to claim it; timer_reset,
     * which may race with other resets, claims with a CAS. */
    if (atomic_load_explicit(&t->pp, memory_order_relaxed))
        sched_throw("timer_add: timer already queued");
    atomic_store_explicit(&t->pp, TIMER_BUSY, memory_order_relaxed);
    queue_claimed(t, when);
}

bool timer_reset(struct timer *t, int64_t when)
{
    for (;;) {
        struct p *pp = atomic_load_explicit(&t->pp, memory_order_acquire);
        if (pp == TIMER_BUSY) {
            wait_not_busy();
            continue;
        }
        if (!pp) { /* idle: claim it, then queue it */
            if (!atomic_compare_exchange_weak_explicit(&t->pp, &pp, TIMER_BUSY,
                                                       memory_order_acquire, memory_order_relaxed))
                continue;
            queue_claimed(t, when);
            return false;
        }
        rlock_acquire(&pp->timerlock);
        if (atomic_load_explicit(&t->pp, memory_order_relaxed) != pp) {
            rlock_release(&pp->timerlock);
            continue;
        }
        /* Queued: move it in place, on the heap it is on. */
        t->when = when;
        sift_up(pp, t->idx);
        sift_down(pp, t->idx);
        bool earliest = t->idx == 0;
        update_timer0(pp);
        rlock_release(&pp->timerlock);
        if (earliest) {
            struct m *m = gort_m();
            if (m && m->p == pp && GORT_UNLIKELY(m->alarm_g != NULL))
                preempt_alarm_timer_added(m, when);
            atomic_thread_fence(memory_order_seq_cst); /* as in queue_claimed */
            int64_t until = __atomic_load_n(&sched.sleep_until, __ATOMIC_RELAXED);
            sysmon_timer_added(when);
            if (!netpoll_break_for_timer(when) && (until == 0 || when < until)) wakep();
        }
        return true;
    }
}

bool timer_del(struct timer *t)
{
    struct p *pp = lock_owner(t);
    if (!pp) return false;
    heap_remove(pp, t->idx);
    update_timer0(pp);
    rlock_release(&pp->timerlock);
    return true;
}

int64_t timers_run(struct p *pp, int64_t now)
{
    int64_t first = atomic_load_explicit(&pp->timer0when, memory_order_acquire);
    if (first == 0 || now < first) return first;
    rlock_acquire(&pp->timerlock);
    while (pp->ntimers > 0) {
        struct timer *t = pp->timers[0];
        if (t->when > now) break;
        if (t->period > 0) {
            /* Next tick after now; missed ticks are skipped, not queued. */
            t->when += t->period * (1 + (now - t->when) / t->period);
            sift_down(pp, 0);
        } else {
            heap_remove(pp, 0);
        }
        t->f(t->arg, now);
    }
    update_timer0(pp);
    int64_t next = pp->ntimers ? pp->timers[0]->when : 0;
    rlock_release(&pp->timerlock);
    return next;
}

int64_t timers_earliest(void)
{
    int64_t best = 0;
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    for (int32_t i = 0; i < procs; i++) {
        int64_t w = atomic_load_explicit(&allp[i]->timer0when, memory_order_acquire);
        if (w && (!best || w < best)) best = w;
    }
    return best;
}

void timers_move(struct p *from, struct p *to)
{
    rlock_acquire(&from->timerlock);
    rlock_acquire(&to->timerlock);
    while (from->ntimers > 0) {
        struct timer *t = from->timers[from->ntimers - 1];
        from->ntimers--;
        heap_push(to, t);
    }
    update_timer0(from);
    update_timer0(to);
    rlock_release(&to->timerlock);
    rlock_release(&from->timerlock);
}
