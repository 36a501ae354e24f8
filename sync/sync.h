/* sync/sync.h: the sync layer's private interface. */
#ifndef GORT_SYNC_H
#define GORT_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "sched/sched.h"

/* Go's semacquire/semrelease on a 32-bit counter at addr (sema.c). acquire
 * blocks the goroutine until *addr > 0, then decrements it. release
 * increments it and wakes one waiter; handoff: the count goes straight to
 * that waiter, and the releaser yields so it runs now (mutex starvation
 * mode). lifo: queue at the front (a waiter that already waited once). */
void sema_acquire(uint32_t *addr, bool lifo, enum waitreason why);
void sema_release(uint32_t *addr, bool handoff);
/* Waiters parked on addr (tests and diagnostics). */
uint32_t sema_nwait(uint32_t *addr);

/* ---- channels (chan.c, select.c) --------------------------------------- */

/* A goroutine waiting on a channel: one per blocked send/receive, one per
 * case of a blocked select. Lives on the waiting goroutine's stack; owned
 * by the channel's wait queue (under c->lock) while queued. */
struct sudog {
    struct g *g;
    struct sudog *next, *prev; /* wait queue links */
    void *elem;                /* the value sent from / received into (may be NULL) */
    struct hchan *c;
    int case_index; /* select: which case */
    bool is_select;
    bool success; /* woken by a value (true) or by close (false) */
};

struct waitq {
    struct sudog *first, *last;
};

/* ---- the channel ----------------------------------------------------------
 *
 * A buffered channel's buffer is a ring of slots that senders and receivers
 * claim without the lock when nobody waits (chan.c's opening comment has
 * the protocol). Two words drive it, each on its own cache line:
 *
 *   tail = CHAN_RECVW | CHAN_CLOSED | position of the next send
 *   head = CHAN_SENDW |               position of the next receive
 *
 * Positions are "stamps" (crossbeam's ArrayQueue): lap * one_lap + index,
 * with one_lap the power of two above cap, so that index = pos & lapmask
 * needs no division and a slot's stamp tells its state without ambiguity,
 * also for cap == 1:
 *
 *   slot.stamp == t          free for the sender holding tail position t
 *   slot.stamp == h + 1      holds the value for the receiver at head h
 *   slot.stamp == h + one_lap  (written by that receiver) free for the next lap
 *
 * Zero-size elements have no slots (cap may be huge): head and tail are
 * plain counts of receives and sends, and cap bounds tail - head.
 *
 * Invariants of a buffered channel (positions without flags; "frozen":
 * only the lock holder may change the word):
 *   head <= tail <= head + cap (in sends)
 *   recvq has a sudog           => CHAN_RECVW set in tail (senders frozen)
 *   recvq has a live sudog      => buffer empty (head == tail)
 *   sendq has a sudog           => CHAN_SENDW set in head (receivers frozen)
 *   sendq has a live sudog      => buffer full (tail == head + cap)
 *   CHAN_CLOSED set             <=> closed set (tail frozen for good)
 * The waiter flags may be set with their queue empty (a waiter is checking
 * a last time, or was just dequeued): that only sends fast paths to the
 * lock. chan_unlock clears the flags whose queues are empty.
 *
 * Unbuffered channels use only the first cache line (no ring: every
 * operation takes the lock, as in Go). */
#define CHAN_RECVW  (1ULL << 63) /* in tail: recvq may be non-empty */
#define CHAN_CLOSED (1ULL << 62) /* in tail: closed */
#define CHAN_SENDW  (1ULL << 63) /* in head: sendq may be non-empty */
#define CHAN_FLAGS  (3ULL << 62)

struct chan_slot {
    _Atomic uint64_t stamp; /* see above; the element follows */
    char elem[];
};

#define CHAN_LINE 64
struct hchan {
    /* Line 0: fixed after make, and the slow path's state. */
    uint64_t dataqsiz; /* buffer slots (cap) */
    uint32_t elemsize;
    uint32_t stride;           /* bytes per slot (stamp + element, 8-aligned); 0: no slots */
    uint64_t lapmask;          /* one_lap - 1 (ring with slots only) */
    struct rlock lock;         /* protects closed's writes, recvq, sendq, waiter flags' changes */
    _Atomic uint32_t closed;   /* set under lock; read without it by fast paths */
    struct waitq recvq, sendq; /* lock held; first also read without it (unbuffered fast failure) */
    /* Line 1: receivers' word (CAS by receivers; flags by lock holders). */
    _Alignas(CHAN_LINE) _Atomic uint64_t head;
    /* Line 2: senders' word (CAS by senders; flags by lock holders). */
    _Alignas(CHAN_LINE) _Atomic uint64_t tail;
    /* Then dataqsiz * stride bytes of slots, from the next line. */
};
_Static_assert(sizeof(struct rlock) == 4, "line 0 layout");
_Static_assert(__builtin_offsetof(struct hchan, head) == CHAN_LINE, "line 0 must fit one line");
_Static_assert(sizeof(struct hchan) == 3 * CHAN_LINE, "slots start on their own line");

static inline struct chan_slot *chan_slot(struct hchan *c, uint64_t pos)
{
    return (struct chan_slot *)((char *)(c + 1) + (pos & c->lapmask) * c->stride);
}

/* Release c->lock, first clearing the waiter flags whose queues are empty
 * (sync.h's invariants; the fast paths may run again). acq_rel, like every
 * flag change: a locked RMW on x86 either way, and the cleared word is then
 * ordered after the lock holder's ring updates. */
static inline void chan_unlock(struct hchan *c)
{
    if (c->dataqsiz) {
        if (!c->recvq.first && (atomic_load_explicit(&c->tail, memory_order_relaxed) & CHAN_RECVW))
            atomic_fetch_and_explicit(&c->tail, ~CHAN_RECVW, memory_order_acq_rel);
        if (!c->sendq.first && (atomic_load_explicit(&c->head, memory_order_relaxed) & CHAN_SENDW))
            atomic_fetch_and_explicit(&c->head, ~CHAN_SENDW, memory_order_acq_rel);
    }
    rlock_release(&c->lock);
}

/* Lock held. Take the first waiter that can still be woken: a select's
 * sudog is skipped when another of its cases already won. */
struct sudog *waitq_dequeue(struct waitq *q);
void waitq_enqueue(struct waitq *q, struct sudog *sg);
void waitq_remove(struct waitq *q, struct sudog *sg);
/* Lock held. Move one value to/from a waiting peer; returns its G, which
 * the caller readies after unlocking. chan_recv_from on a buffered channel
 * takes the head into ep and appends the sender's value (the buffer is
 * full: sync.h's invariants). */
struct g *chan_send_to(struct hchan *c, struct sudog *sg, const void *ep);
struct g *chan_recv_from(struct hchan *c, struct sudog *sg, void *ep);
/* Lock held, buffered channel. Put ep in / take one value into ep (may be
 * NULL); false: full / empty at one instant during the call. Either waits
 * out a fast-path operation in flight on the slot it needs (a few
 * instructions of another thread). With the peers frozen (waiter flag set),
 * the answer stays true until the lock is released. */
bool chan_ring_put_locked(struct hchan *c, const void *ep);
bool chan_ring_take_locked(struct hchan *c, void *ep);
/* Lock held. Set the waiter flag of a receive (in tail) or a send (in head)
 * before the last check that decides to queue (freezes the peers). No
 * seq_cst fence is needed: the fast path's CAS and this RMW act on one
 * word, so its modification order decides which came first (chan.c's
 * opening comment), and the last check reads that word again (coherence:
 * at least this value) and waits for the stamps with acquire loads.
 * acq_rel keeps the check's loads after the RMW. */
static inline void chan_flag_recv_waiter(struct hchan *c)
{
    atomic_fetch_or_explicit(&c->tail, CHAN_RECVW, memory_order_acq_rel);
}
static inline void chan_flag_send_waiter(struct hchan *c)
{
    atomic_fetch_or_explicit(&c->head, CHAN_SENDW, memory_order_acq_rel);
}

/* chan.c's operations (also for select.c and time.c). */
bool chan_send(struct hchan *c, const void *ep, bool block);
bool chan_recv(struct hchan *c, void *ep, bool block, bool *selected);

#endif
