/* sync/cond.c: gort_cond (Go's sync.Cond), on a ticket-based notify list
 * (Go's notifyList in runtime/sema.go).
 *
 * Two 32-bit ticket counters and a list of sleeping waiters:
 *   wait    next ticket to hand out: a waiter takes one (atomic fetch-add)
 *           while it still holds the user's mutex, before unlocking it.
 *   notify  next ticket to wake; tickets below it have been notified.
 *           Written only under the list lock.
 *   lock    the list lock: an rlock (the field is one 32-bit word; its
 *           address is used as a struct rlock, which has the same layout).
 *   head, tail  waiters asleep, in the order they queued (ticket order is
 *           not guaranteed: a goroutine may take a ticket and queue later).
 * Tickets compare modulo 2^32 (ticket_less), so wrap-around is harmless as
 * long as fewer than 2^31 waiters are outstanding.
 *
 * Wait = ticket (mutex held) / unlock mutex / notify_list_wait / lock
 * mutex. A notification that comes between the unlock and the sleep is not
 * lost: notify_list_wait compares the ticket with notify under the list
 * lock and returns at once if it was already notified. Otherwise it queues
 * its record (on its own stack) and parks; the list lock is released by
 * gopark's unlock function after the switch, so a notifier that finds the
 * record (under the lock) always finds a parked goroutine to ready.
 * signal: under the lock, if notify != wait, take ticket t = notify++ and
 * wake the sleeper holding t if it is queued (if it is not queued yet, it
 * will see t < notify and not sleep). broadcast: notify = wait and wake the
 * whole list. Waiters are readied after the lock is dropped; a record's next
 * link is read before its goroutine is readied (the record dies with the
 * waiter's frame).
 *
 * Memory ordering: the unlocked fast checks (wait == notify: nothing to do)
 * load both counters with acquire. A waiter's fetch-add on wait happens
 * before its gort_mutex_unlock, so a signaller that changed the condition
 * under the same mutex sees the ticket; signalling with nobody waiting in
 * that sense is a no-op, as in Go. Inside the lock everything is ordered by
 * the lock itself; notify is still written atomically (release) because
 * the fast checks read it without the lock.
 *
 * Callers: gort_cond_wait from goroutines; signal and broadcast from
 * anywhere goready may be called.
 */
#include <stddef.h>

#include "gort.h"
#include "sync/sync.h"

_Static_assert(sizeof(((gort_cond *)0)->lock) == sizeof(struct rlock) &&
                   _Alignof(uint32_t) >= _Alignof(struct rlock),
               "gort_cond.lock must hold a struct rlock");

/* A sleeping waiter; lives on its goroutine's stack while it is queued. */
struct cond_waiter {
    struct g *g;
    uint32_t ticket;
    struct cond_waiter *next;
};

static inline struct rlock *list_lock(gort_cond *c)
{
    return (struct rlock *)(void *)&c->lock;
}

static inline bool ticket_less(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static uint32_t notify_list_add(gort_cond *c)
{
    /* Only atomicity matters; the caller's mutex unlock publishes it. */
    return __atomic_fetch_add(&c->wait, 1, __ATOMIC_RELAXED);
}

static bool unlock_list(struct g *gp, void *arg)
{
    (void)gp;
    rlock_release(list_lock(arg));
    return true;
}

static void notify_list_wait(gort_cond *c, uint32_t t)
{
    rlock_acquire(list_lock(c));
    if (ticket_less(t, c->notify)) { /* notified before we could sleep */
        rlock_release(list_lock(c));
        return;
    }
    struct cond_waiter w = {.g = gort_g(), .ticket = t, .next = NULL};
    struct cond_waiter *tail = c->tail;
    if (tail)
        tail->next = &w;
    else
        c->head = &w;
    c->tail = &w;
    gopark(unlock_list, c, WAIT_SYNC_COND); /* unlock_list drops the lock */
    /* Readied by a notifier, which unlinked w first. */
}

void gort_cond_wait(gort_cond *c, gort_mutex *m)
{
    uint32_t t = notify_list_add(c);
    gort_mutex_unlock(m);
    notify_list_wait(c, t);
    gort_mutex_lock(m);
}

static bool nothing_to_notify(gort_cond *c)
{
    return __atomic_load_n(&c->wait, __ATOMIC_ACQUIRE) ==
           __atomic_load_n(&c->notify, __ATOMIC_ACQUIRE);
}

void gort_cond_signal(gort_cond *c)
{
    if (nothing_to_notify(c)) return;
    rlock_acquire(list_lock(c));
    uint32_t t = c->notify;
    if (t == __atomic_load_n(&c->wait, __ATOMIC_RELAXED)) { /* raced with another signal */
        rlock_release(list_lock(c));
        return;
    }
    __atomic_store_n(&c->notify, t + 1, __ATOMIC_RELEASE);
    /* Find the holder of ticket t; absent when it has not queued yet (it
     * will see t < notify and not sleep). */
    struct cond_waiter *prev = NULL, *w = c->head;
    for (; w; prev = w, w = w->next) {
        if (w->ticket != t) continue;
        struct cond_waiter *next = w->next;
        if (prev)
            prev->next = next;
        else
            c->head = next;
        if (!next) c->tail = prev;
        break;
    }
    rlock_release(list_lock(c));
    if (w) goready(w->g, true);
}

void gort_cond_broadcast(gort_cond *c)
{
    if (nothing_to_notify(c)) return;
    rlock_acquire(list_lock(c));
    struct cond_waiter *w = c->head;
    c->head = c->tail = NULL;
    __atomic_store_n(&c->notify, __atomic_load_n(&c->wait, __ATOMIC_RELAXED), __ATOMIC_RELEASE);
    rlock_release(list_lock(c));
    while (w) {
        struct cond_waiter *next = w->next; /* before w's goroutine can run */
        goready(w->g, true);
        w = next;
    }
}
