/* sync/chan.c: Go's channels (chan.go).
 *
 * A channel is a lock, an optional ring buffer and two wait queues. A
 * blocked sender or receiver queues a sudog (on its own stack) pointing at
 * its value, and parks; gopark drops the channel lock only after the switch,
 * so no peer can wake it before it is off its stack. A peer arriving later
 * copies straight from or into that value ("direct hand-off": an unbuffered
 * send is one copy, no buffer), marks success and readies the waiter into
 * its own P's runnext, so a ping-pong pair stays on one P.
 *
 * Close wakes every waiter: receivers with a zeroed value and success =
 * false, senders with success = false (they then panic). Waiters are
 * collected under the lock and readied after unlocking (never wake while
 * holding a channel lock).
 *
 * Lock-free fast paths (non-blocking failure only, as Go): a send to a full
 * open channel or a receive from an empty open channel can be answered from
 * relaxed loads, because the answer would be the same had the operation run
 * an instant earlier under the lock. The receive side checks empty, then
 * closed, then empty again: a channel that was empty and then found closed
 * may have received a last value in between.
 *
 * Panics (recoverable, as Go's): "send on closed channel", "close of closed
 * channel", "close of nil channel", "makechan: size out of range"; always
 * raised after unlocking.
 *
 * Channels are gort_new objects (one holds the header and the buffer),
 * collected once unreachable; a goroutine parked on one keeps it alive
 * through its stack. Element copies go through the write barrier while the
 * collector marks (copy_elem): an element may hold pointers.
 */
#include <stdlib.h>
#include <string.h>

#include "gort.h"
#include "sync/sync.h"

#define MAX_ELEM_SIZE  (64u << 10)
#define MAX_CHAN_BYTES ((size_t)1 << 40)

/* ---- wait queues (c->lock held) ------------------------------------------ */

/* q->first is also read without the lock (the non-blocking fast paths), so
 * it is stored atomically (relaxed: those readers need no ordering with the
 * waiter's fields). */
static inline void set_first(struct waitq *q, struct sudog *sg)
{
    __atomic_store_n(&q->first, sg, __ATOMIC_RELAXED);
}

void waitq_enqueue(struct waitq *q, struct sudog *sg)
{
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        set_first(q, sg);
    q->last = sg;
}

void waitq_remove(struct waitq *q, struct sudog *sg)
{
    if (sg->prev)
        sg->prev->next = sg->next;
    else if (q->first == sg)
        set_first(q, sg->next);
    else
        return; /* not queued (already dequeued by its waker) */
    if (sg->next)
        sg->next->prev = sg->prev;
    else
        q->last = sg->prev;
    sg->next = sg->prev = NULL;
}

struct sudog *waitq_dequeue(struct waitq *q)
{
    for (;;) {
        struct sudog *sg = q->first;
        if (!sg) return NULL;
        set_first(q, sg->next);
        if (q->first)
            q->first->prev = NULL;
        else
            q->last = NULL;
        sg->next = sg->prev = NULL;
        /* A select queued on several channels: only its first waker wins.
         * acq_rel: the winner's later writes to sg (success, the copied
         * value) are ordered after its claim. */
        uint32_t zero = 0;
        if (sg->is_select &&
            !atomic_compare_exchange_strong_explicit(&sg->g->selectdone, &zero, 1,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        return sg;
    }
}

/* ---- moving values (c->lock held) ---------------------------------------- */

static inline void copy_elem(struct hchan *c, void *dst, const void *src)
{
    if (dst && c->elemsize) {
        if (GORT_UNLIKELY(gort__gc_barrier))
            gort_gc_memmove(dst, src, c->elemsize); /* shades what it copies and overwrites */
        else
            memcpy(dst, src, c->elemsize);
    }
}

static inline char *slot(struct hchan *c, size_t i)
{
    return c->buf + i * c->elemsize;
}

void chan_buf_put(struct hchan *c, const void *ep)
{
    copy_elem(c, slot(c, c->sendx), ep);
    if (++c->sendx == c->dataqsiz) c->sendx = 0;
    atomic_store_explicit(&c->qcount, c->qcount + 1, memory_order_relaxed);
}

void chan_buf_take(struct hchan *c, void *ep)
{
    char *s = slot(c, c->recvx);
    if (ep) copy_elem(c, ep, s);
    if (c->elemsize) memset(s, 0, c->elemsize); /* no stale pointers for the collector */
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    atomic_store_explicit(&c->qcount, c->qcount - 1, memory_order_relaxed);
}

struct g *chan_send_to(struct hchan *c, struct sudog *sg, const void *ep)
{
    copy_elem(c, sg->elem, ep);
    sg->success = true;
    sg->g->param = sg;
    return sg->g;
}

struct g *chan_recv_from(struct hchan *c, struct sudog *sg, void *ep)
{
    if (c->dataqsiz == 0) {
        if (ep) copy_elem(c, ep, sg->elem);
    } else {
        /* Full buffer with a sender waiting: take the head, put the
         * sender's value into the slot just freed (the tail), keep FIFO. */
        char *s = slot(c, c->recvx);
        if (ep) copy_elem(c, ep, s);
        copy_elem(c, s, sg->elem);
        if (++c->recvx == c->dataqsiz) c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->success = true;
    sg->g->param = sg;
    return sg->g;
}

/* ---- the API --------------------------------------------------------------- */

gort_chan *gort_chan_make(size_t elem_size, size_t cap)
{
    if (elem_size > MAX_ELEM_SIZE || (elem_size && cap > MAX_CHAN_BYTES / elem_size))
        gort_panic("makechan: size out of range");
    size_t hdr = (sizeof(struct hchan) + 15) & ~(size_t)15;
    struct hchan *c = gort_new(hdr + elem_size * cap);
    if (!c) gort__fatal("out of memory (channel of %zu x %zu bytes)", cap, elem_size);
    c->elemsize = elem_size;
    c->dataqsiz = cap;
    c->buf = (char *)c + hdr;
    return (gort_chan *)c;
}

static bool unlock_chan(struct g *gp, void *arg)
{
    (void)gp;
    rlock_release(&((struct hchan *)arg)->lock);
    return true;
}

static inline bool chan_full(struct hchan *c)
{
    if (c->dataqsiz == 0) return __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) == NULL;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed) == c->dataqsiz;
}

static inline bool chan_empty(struct hchan *c)
{
    if (c->dataqsiz == 0) return __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) == NULL;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed) == 0;
}

/* Go's chansend. Returns whether the value was sent (false only when !block
 * and it would have blocked). */
bool chan_send(struct hchan *c, const void *ep, bool block)
{
    if (!c) {
        if (!block) return false;
        gopark(NULL, NULL, WAIT_CHAN_SEND_NIL);
        sched_throw("chan send on nil channel resumed");
    }
    if (!ep && c->elemsize) gort_panic("gort_chan_send: NULL element pointer");
    if (!block && !atomic_load_explicit(&c->closed, memory_order_relaxed) && chan_full(c))
        return false;

    rlock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        rlock_release(&c->lock);
        gort_panic("send on closed channel");
    }
    struct sudog *sg = waitq_dequeue(&c->recvq);
    if (sg) {
        struct g *gp = chan_send_to(c, sg, ep);
        rlock_release(&c->lock);
        goready(gp, true);
        return true;
    }
    if (c->qcount < c->dataqsiz) {
        chan_buf_put(c, ep);
        rlock_release(&c->lock);
        return true;
    }
    if (!block) {
        rlock_release(&c->lock);
        return false;
    }
    struct sudog me = {.g = gort_g(), .elem = (void *)ep, .c = c};
    waitq_enqueue(&c->sendq, &me);
    gopark(unlock_chan, c, WAIT_CHAN_SEND);
    if (!me.success) gort_panic("send on closed channel"); /* closed while we waited */
    return true;
}

/* Go's chanrecv. *selected: an operation happened (false only when !block
 * and it would have blocked); returns whether a value was received (false:
 * closed and drained, *ep zeroed). */
bool chan_recv(struct hchan *c, void *ep, bool block, bool *selected)
{
    *selected = true;
    if (!c) {
        if (!block) {
            *selected = false;
            return false;
        }
        gopark(NULL, NULL, WAIT_CHAN_RECV_NIL);
        sched_throw("chan receive on nil channel resumed");
    }
    if (!block && chan_empty(c)) {
        /* Acquire fence: the emptiness load above is ordered before the
         * closed load below (C11 lets a relaxed load drift after an acquire
         * load; this fence forbids it). Seeing "empty" then "open" must mean
         * the channel was empty while open. */
        atomic_thread_fence(memory_order_acquire);
        if (!atomic_load_explicit(&c->closed, memory_order_acquire)) {
            *selected = false;
            return false;
        }
        if (chan_empty(c)) { /* closed and still empty: drained for good */
            if (ep && c->elemsize) memset(ep, 0, c->elemsize);
            return false;
        }
    }

    rlock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) && c->qcount == 0) {
        rlock_release(&c->lock);
        if (ep && c->elemsize) memset(ep, 0, c->elemsize);
        return false;
    }
    struct sudog *sg = waitq_dequeue(&c->sendq);
    if (sg) {
        struct g *gp = chan_recv_from(c, sg, ep);
        rlock_release(&c->lock);
        goready(gp, true);
        return true;
    }
    if (c->qcount > 0) {
        chan_buf_take(c, ep);
        rlock_release(&c->lock);
        return true;
    }
    if (!block) {
        rlock_release(&c->lock);
        *selected = false;
        return false;
    }
    struct sudog me = {.g = gort_g(), .elem = ep, .c = c};
    waitq_enqueue(&c->recvq, &me);
    gopark(unlock_chan, c, WAIT_CHAN_RECV);
    return me.success;
}

void gort_chan_send(gort_chan *c, const void *elem)
{
    preempt_check();
    chan_send((struct hchan *)c, elem, true);
}

bool gort_chan_recv(gort_chan *c, void *elem)
{
    preempt_check();
    bool selected;
    return chan_recv((struct hchan *)c, elem, true, &selected);
}

void gort_chan_close(gort_chan *ch)
{
    struct hchan *c = (struct hchan *)ch;
    if (!c) gort_panic("close of nil channel");
    rlock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        rlock_release(&c->lock);
        gort_panic("close of closed channel");
    }
    /* Release: pairs with the fast receive path's acquire load of closed
     * (a receiver that sees closed also sees the final qcount). */
    atomic_store_explicit(&c->closed, 1, memory_order_release);
    /* Collect every waiter, then ready them with the lock dropped. The
     * sudogs stay valid: their goroutines are parked until readied. */
    struct sudog *wake = NULL, *sg;
    while ((sg = waitq_dequeue(&c->recvq))) {
        if (sg->elem && c->elemsize) memset(sg->elem, 0, c->elemsize);
        sg->success = false;
        sg->g->param = sg;
        sg->next = wake;
        wake = sg;
    }
    while ((sg = waitq_dequeue(&c->sendq))) {
        sg->success = false;
        sg->g->param = sg;
        sg->next = wake;
        wake = sg;
    }
    rlock_release(&c->lock);
    while (wake) {
        sg = wake;
        wake = sg->next; /* read before readying: sg dies when its G runs */
        goready(sg->g, false);
    }
}

size_t gort_chan_len(gort_chan *ch)
{
    struct hchan *c = (struct hchan *)ch;
    return c ? atomic_load_explicit(&c->qcount, memory_order_relaxed) : 0;
}

size_t gort_chan_cap(gort_chan *ch)
{
    struct hchan *c = (struct hchan *)ch;
    return c ? c->dataqsiz : 0;
}
