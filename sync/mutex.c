/* sync/mutex.c: gort_mutex (Go's sync.Mutex).
 *
 * One 32-bit state word and a semaphore (sema.c) for the goroutines that
 * sleep:
 *     state = waiters << MUTEX_WAITER_SHIFT | STARVING | WOKEN | LOCKED
 *   LOCKED    held (in normal mode: by whoever set it).
 *   WOKEN     a goroutine is awake and trying to take the lock (a spinner,
 *             or a waiter the last unlock released): unlock need not wake
 *             another one. Set by at most one goroutine at a time.
 *   STARVING  starvation mode (below).
 *   waiters   goroutines parked on sema, or about to be: incremented by the
 *             waiter itself (one CAS, only while LOCKED or STARVING is set),
 *             decremented by the unlocker that releases one of them, or by
 *             the waiter that receives ownership in starvation mode.
 *
 * Two modes, as in Go. Normal mode: a released waiter does not own the lock,
 * it competes with goroutines arriving now (which are already on a CPU and
 * usually win); one that loses queues again at the front of sema (lifo).
 * Throughput is best: a running goroutine can take the lock many times in a
 * row. A waiter that has waited more than STARVATION_NS (1 ms) sets STARVING.
 * Starvation mode: unlock hands the lock straight to the oldest waiter
 * (sema_release with handoff: the count goes to that waiter and the unlocker
 * yields so it runs now); LOCKED stays clear meanwhile, but newcomers seeing
 * STARVING neither take the lock nor spin, they queue at the tail. The
 * waiter that receives the lock sets LOCKED, drops itself from the count,
 * and leaves starvation mode if it is the last waiter or waited under 1 ms
 * (otherwise two goroutines could hand the lock back and forth forever).
 *
 * Invariants: LOCKED and STARVING are never both set; STARVING implies
 * waiters > 0 (a waiter sets it only while the lock is held, i.e. while it
 * itself is still counted). An unlock with LOCKED clear and STARVING clear
 * is a misuse: fatal "sync: unlock of unlocked mutex", as Go.
 *
 * Memory ordering: every read-modify-write of state is acq_rel. Lock's
 * successful RMW acquires, unlock's subtraction releases; since every later
 * RMW continues the release sequence, whichever goroutine takes the lock
 * next (fast path, barging, or a handed-off waiter's final add) sees the
 * previous critical section. The wake-up itself (a waiter parked, the
 * unlocker releases it) is sema.c's Dekker protocol on sema; the state word
 * only decides who calls sema_release, so no StoreLoad fence is needed here.
 * Plain loads of state (snapshots for the next CAS) are relaxed: a stale
 * snapshot only makes the CAS fail.
 *
 * Fast paths: lock is one CAS 0 -> LOCKED, unlock one atomic add of
 * -LOCKED; anything else goes out of line (mutex_lock_slow,
 * mutex_unlock_slow). Uncontended lock+unlock is two locked instructions.
 *
 * Callers: goroutines (lock may park). trylock and an unlock that wakes
 * nobody also work on threads gort did not create; an unlock that must wake
 * a waiter may be called from anywhere goready may.
 */
#include "gort.h"
#include "sync/sync.h"

enum {
    MUTEX_LOCKED = 1,
    MUTEX_WOKEN = 2,
    MUTEX_STARVING = 4,
    MUTEX_WAITER_SHIFT = 3,
};
#define MUTEX_WAITER  ((int32_t)1 << MUTEX_WAITER_SHIFT)
#define STARVATION_NS 1000000 /* 1 ms, Go's starvationThresholdNs */

static GORT_NOINLINE void mutex_lock_slow(gort_mutex *m);
static GORT_NOINLINE void mutex_unlock_slow(gort_mutex *m, int32_t new);

static inline int32_t state_load(gort_mutex *m)
{
    return __atomic_load_n(&m->state, __ATOMIC_RELAXED);
}

/* CAS state old -> new; on failure *old is the current state. acq_rel: see
 * the ordering note above. */
static inline bool state_cas(gort_mutex *m, int32_t *old, int32_t new)
{
    return __atomic_compare_exchange_n(&m->state, old, new, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

void gort_mutex_lock(gort_mutex *m)
{
    preempt_check();
    int32_t old = 0;
    /* Acquire: pairs with the release in gort_mutex_unlock. */
    if (GORT_LIKELY(__atomic_compare_exchange_n(&m->state, &old, MUTEX_LOCKED, false,
                                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)))
        return;
    mutex_lock_slow(m);
}

bool gort_mutex_trylock(gort_mutex *m)
{
    int32_t old = state_load(m);
    /* Held, or handed to a waiter in starvation mode: fail without
     * queueing, as Go's TryLock. */
    if (old & (MUTEX_LOCKED | MUTEX_STARVING)) return false;
    /* One attempt only: a failure means another goroutine is taking it. */
    return __atomic_compare_exchange_n(&m->state, &old, old | MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static GORT_NOINLINE void mutex_lock_slow(gort_mutex *m)
{
    int64_t wait_start = 0; /* when we first queued; 0: not yet */
    bool starving = false;  /* we waited more than STARVATION_NS */
    bool awoke = false;     /* we own the WOKEN flag */
    int iter = 0;
    int32_t old = state_load(m);
    for (;;) {
        /* Spin while the lock is held in normal mode and spinning can pay
         * (sched_can_spin: another CPU runs the holder, nothing queued on
         * our P). In starvation mode the lock goes to a waiter anyway. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && sched_can_spin(iter)) {
            /* Set WOKEN so that unlock does not wake a sleeper that would
             * only compete with us. */
            if (!awoke && !(old & MUTEX_WOKEN) && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                state_cas(m, &old, old | MUTEX_WOKEN))
                awoke = true;
            sched_do_spin();
            iter++;
            old = state_load(m);
            continue;
        }
        int32_t new = old;
        /* A starving mutex belongs to the queue: newcomers do not take it. */
        if (!(old & MUTEX_STARVING)) new |= MUTEX_LOCKED;
        if (old & (MUTEX_LOCKED | MUTEX_STARVING)) new += MUTEX_WAITER;
        /* Switch to starvation mode, only while the lock is held: unlock
         * expects a starving mutex to have waiters, and an unlocked one
         * may have none once we take it. */
        if (starving && (old & MUTEX_LOCKED)) new |= MUTEX_STARVING;
        if (awoke) {
            /* We were the woken one: the flag is ours to clear, whatever
             * happens next. */
            if (!(new &MUTEX_WOKEN)) sched_throw("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (!state_cas(m, &old, new)) continue;               /* old reloaded by the CAS */
        if (!(old & (MUTEX_LOCKED | MUTEX_STARVING))) return; /* took it */

        /* Queued (counted in waiters): sleep. A goroutine that has waited
         * before goes to the front of the queue. */
        bool lifo = wait_start != 0;
        if (!wait_start) wait_start = ki_nanotime();
        sema_acquire(&m->sema, lifo, WAIT_SYNC_MUTEX);
        starving = starving || ki_nanotime() - wait_start > STARVATION_NS;
        old = state_load(m);
        if (old & MUTEX_STARVING) {
            /* Handed off: the lock is ours, but LOCKED is still clear and
             * we are still counted as a waiter. Fix both in one add. */
            if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || (old >> MUTEX_WAITER_SHIFT) == 0)
                sched_throw("sync: inconsistent mutex state");
            int32_t delta = MUTEX_LOCKED - MUTEX_WAITER;
            /* Leave starvation mode when we did not wait long or nobody
             * else waits: lock-step hand-offs are slow. */
            if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1) delta -= MUTEX_STARVING;
            __atomic_add_fetch(&m->state, delta, __ATOMIC_ACQ_REL);
            return;
        }
        /* Normal mode: we were released (and own WOKEN) but must compete. */
        awoke = true;
        iter = 0;
    }
}

void gort_mutex_unlock(gort_mutex *m)
{
    /* Release: publishes the critical section to the next owner. */
    int32_t new = __atomic_sub_fetch(&m->state, MUTEX_LOCKED, __ATOMIC_RELEASE);
    if (GORT_UNLIKELY(new != 0)) mutex_unlock_slow(m, new);
}

/* Unlock found waiters, WOKEN, STARVING, or that the mutex was not locked.
 * new: state right after our subtraction. */
static GORT_NOINLINE void mutex_unlock_slow(gort_mutex *m, int32_t new)
{
    if (!((new + MUTEX_LOCKED) & MUTEX_LOCKED)) gort__fatal("sync: unlock of unlocked mutex");
    if (new &MUTEX_STARVING) {
        /* Hand the lock to the first waiter; LOCKED stays clear until it
         * sets it, but STARVING keeps newcomers out meanwhile. */
        sema_release(&m->sema, true);
        return;
    }
    int32_t old = new;
    for (;;) {
        /* Nobody to wake, or somebody is already awake, or the lock was
         * retaken (its holder's unlock will wake), or a waiter turned the
         * mutex starving after our subtraction (then the handoff chain
         * belongs to the next unlock): done. */
        if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
            (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
            return;
        /* Take the right to wake one waiter. */
        if (state_cas(m, &old, (old - MUTEX_WAITER) | MUTEX_WOKEN)) {
            sema_release(&m->sema, false);
            return;
        }
    }
}
