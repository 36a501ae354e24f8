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

/* Invariants (under lock): qcount <= dataqsiz; buffered: recvq non-empty
 * only when qcount == 0, sendq non-empty only when qcount == dataqsiz;
 * unbuffered: at most one of recvq, sendq is non-empty. */
struct hchan {
    struct rlock lock;
    _Atomic uint32_t closed; /* set under lock; read without it by fast paths */
    _Atomic size_t qcount;   /* elements in buf; written under lock */
    size_t dataqsiz;         /* buffer slots (cap) */
    size_t elemsize;
    size_t sendx, recvx; /* buffer indices */
    char *buf;           /* dataqsiz * elemsize bytes, after the struct */
    struct waitq recvq, sendq;
};

/* Lock held. Take the first waiter that can still be woken: a select's
 * sudog is skipped when another of its cases already won. */
struct sudog *waitq_dequeue(struct waitq *q);
void waitq_enqueue(struct waitq *q, struct sudog *sg);
void waitq_remove(struct waitq *q, struct sudog *sg);
/* Lock held. Move one value to/from a waiting peer; returns its G, which
 * the caller readies after unlocking. */
struct g *chan_send_to(struct hchan *c, struct sudog *sg, const void *ep);
struct g *chan_recv_from(struct hchan *c, struct sudog *sg, void *ep);
/* Lock held. Buffer operations. */
void chan_buf_put(struct hchan *c, const void *ep);
void chan_buf_take(struct hchan *c, void *ep);

#endif
