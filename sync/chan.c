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
 * Buffered channels: lock-free fast path while nobody waits. The buffer is
 * a bounded MPMC ring with a stamp per slot (Vyukov's queue, with
 * crossbeam's lap-stamped positions; sync.h has the layout and the
 * invariants). A send claims the tail position with one CAS, copies its
 * value in and publishes it with a release store of the slot's stamp; a
 * receive claims the head the same way, copies out, clears the slot and
 * frees it for the next lap with a release store. One locked instruction
 * per operation (the lock took two), head and tail on separate cache
 * lines, and no access to the lock's line. Zero-size elements have no
 * slots: head and tail are counts, a send is a CAS on tail bounded by
 * head + cap, a receive a CAS on head bounded by tail.
 *
 * The fast paths never wake anybody: they run only while the waiter flags
 * are clear, and the flags say "there may be a waiter, take the lock".
 * The protocol between a fast-path peer and a goroutine about to park
 * (receiver side; the sender side is the mirror image with CHAN_SENDW in
 * head and "full" for "empty"):
 *   receiver R (lock held)                 fast sender S
 *   1. finds the buffer empty              a. loads tail: no flag set
 *   2. sets CHAN_RECVW in tail (RMW)       b. finds its slot free
 *   3. checks again, with tail now         c. CAS tail t -> t+1, expecting
 *      frozen: head == tail (waiting          the value without flags
 *      out a sender between c and d)       d. copies, publishes the stamp
 *   4. queues its sudog, parks
 * Steps 2 and c are read-modify-writes of one word, so one precedes the
 * other in its modification order: either c came first, and R's step 3
 * sees the position S claimed (tail > head) and takes S's value (waiting
 * for d if need be) instead of parking; or 2 came first, and c fails
 * (the word now holds the flag), S reloads, sees the flag and takes the
 * lock, where it finds R queued and hands the value over directly. No
 * fence is needed on the fast path: the Dekker pair is the single word.
 * (The flag may also come and go between a and c, the word returning to
 * the value S read: it is cleared only with recvq empty, so S's CAS then
 * succeeds at an instant when nobody waits, which is all S needs.)
 * Drop step 3 and a value sent between 1 and 2 sits in the buffer while
 * R sleeps; set the flag after queueing (or clear it with the queue
 * non-empty) and S never takes the lock to wake R. Lock holders restore
 * the flags from the queues when unlocking (chan_unlock).
 * With a waiter frozen out of the fast path, its peers' fast paths are
 * also closed where they would jump a queue: a queued sender finds the
 * buffer full, so later senders find it full too (their fast path fails
 * on the slot stamp) and queue behind it; FIFO per sender holds because
 * each sender's operations are sequential and the ring is FIFO.
 * A lock holder may wait for a fast-path operation in flight (between its
 * CAS and its stamp store: a copy, no lock taken, no park): ring_spin. The
 * fast paths themselves never wait for anybody.
 *
 * Before parking, a blocking send or receive with no waiter flag set spins
 * briefly (about 1 us, Go's mutex heuristic for when: send_spin): a
 * producer and a consumer on two Ps then run side by side without a park
 * and a wake-up every time the buffer fills or empties. On one P (the peer
 * in our run queue) it parks at once, as Go, and the pair alternates on
 * that P, readied into runnext.
 *
 * Close sets closed and CHAN_CLOSED in tail (senders then take the lock and
 * panic), then wakes every waiter: receivers with a zeroed value and
 * success = false, senders with success = false (they then panic). Sends
 * whose CAS preceded the close are delivered: receivers drain the buffer,
 * waiting for those in flight, before they see "closed". Waiters are
 * collected under the lock and readied after unlocking (never wake while
 * holding a channel lock).
 *
 * Non-blocking failure (select with default) answers without the lock:
 * "full" or "empty" is checked on head and tail read in an order that makes
 * the answer true at the instant of the second load (see send_would_block
 * and recv_would_block); a slot merely in flight is never reported empty.
 *
 * Panics (recoverable, as Go's): "send on closed channel", "close of closed
 * channel", "close of nil channel", "makechan: size out of range"; always
 * raised after unlocking.
 *
 * Channels are gort_new objects (one holds the header and the buffer; the
 * channel pointer is the first cache line inside it, an interior pointer,
 * which keeps it alive as any other), collected once unreachable; a
 * goroutine parked on one keeps it alive through its stack. Element copies
 * go through the write barrier while the collector marks (copy_elem): an
 * element may hold pointers; a value received into NULL is shaded before
 * its slot is cleared.
 *
 * Rejected: a seq_cst fence on every fast operation between publishing and
 * checking a separate "waiters" word (the classic Dekker pair): a second
 * locked instruction per operation, as dear as the lock it replaces (6 ns
 * each on this machine). Unbounded spinning instead of parking: an idle
 * consumer must cost no CPU. A fast path for unbuffered channels: every
 * operation there meets a waiter (a hand-off needs the lock anyway).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "gort.h"
#include "sync/sync.h"

#define MAX_ELEM_SIZE  (64u << 10)
#define MAX_CHAN_BYTES ((size_t)1 << 40)

/* ---- wait queues (c->lock held) ------------------------------------------ */

/* q->first is also read without the lock (unbuffered non-blocking fast
 * paths), so it is stored atomically (relaxed: those readers need no
 * ordering with the waiter's fields). */
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

/* ---- moving values --------------------------------------------------------- */

/* The common element sizes are copied inline (a load and a store); the
 * barrier's flag changes only with the world stopped, never during a copy. */
static inline void copy_elem(const struct hchan *c, void *dst, const void *src)
{
    size_t n = c->elemsize;
    if (!dst || !n) return;
    if (GORT_UNLIKELY(gort__gc_barrier)) {
        gort_gc_memmove(dst, src, n); /* shades what it copies and overwrites */
    } else if (n == 8) {
        memcpy(dst, src, 8);
    } else if (n == 4) {
        memcpy(dst, src, 4);
    } else if (n == 16) {
        memcpy(dst, src, 16);
    } else {
        memcpy(dst, src, n);
    }
}

/* A slot whose value was taken: clear it, so the collector finds no stale
 * pointers in the buffer. A value received into ep was shaded by its copy;
 * one dropped (ep NULL) is shaded here while the collector marks (the
 * deleting half of the hybrid barrier, as Go's typedmemclr). */
static inline void clear_elem(const struct hchan *c, char *s, const void *ep)
{
    size_t n = c->elemsize;
    if (GORT_UNLIKELY(gort__gc_barrier) && !ep)
        for (size_t off = 0; off + 8 <= n; off += 8) /* slots are 8-aligned */
            gort__store((void **)(void *)(s + off), NULL);
    if (n == 8)
        memset(s, 0, 8);
    else
        memset(s, 0, n);
}

/* The ring position after pos (no flags): the next index, or index 0 of the
 * next lap. */
static inline uint64_t ring_next(const struct hchan *c, uint64_t pos)
{
    if ((pos & c->lapmask) + 1 < c->dataqsiz) return pos + 1;
    return (pos & ~c->lapmask) + c->lapmask + 1;
}

/* Positions h and t are a snapshot (h read after t, or frozen): full. */
static inline bool ring_full(const struct hchan *c, uint64_t h, uint64_t t)
{
    if (c->stride == 0) return t - h >= c->dataqsiz;
    return t == h + c->lapmask + 1; /* same index, one lap on */
}

/* Waiting out a fast-path operation of another thread between its CAS and
 * its stamp store: a copy, nanoseconds, unless the kernel took that
 * thread's CPU in between. Spin a little, then yield the CPU (the thread
 * may be waiting for ours), then sleep with a growing period (it waits for
 * another CPU: do not burn this one), up to 64 us. Nothing in the window
 * blocks or takes a lock we hold, so the wait ends once that thread runs. */
static GORT_NOINLINE void ring_spin(int *n)
{
    int k = ++*n;
    if (k <= 64)
        __builtin_ia32_pause();
    else if (k <= 96)
        sched_yield();
    else
        ki_nanosleep(k < 102 ? 1000LL << (k - 96) : 64000);
}

/* Fast send: a free slot and no waiter flag. False: take the lock (a flag,
 * full, a receiver still on the slot). Cost: two loads, one CAS, the copy,
 * one store. */
static inline __attribute__((always_inline)) bool send_fast(struct hchan *c, const void *ep)
{
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
    if (c->stride == 0) {
        for (;;) {
            if (t & CHAN_FLAGS) return false;
            /* Acquire: pairs with the receivers' release CAS on head (the
             * k-th receive completes before the (k+cap)-th send does). Any
             * head value will do: it only grows, so the room it shows is
             * there when the CAS succeeds. */
            uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire) & ~CHAN_FLAGS;
            if ((int64_t)(t - h) < 0 || t - h >= c->dataqsiz) return false;
            /* Release: pairs with the receivers' acquire load of tail (the
             * send completes before its receive). */
            if (atomic_compare_exchange_weak_explicit(&c->tail, &t, t + 1, memory_order_release,
                                                      memory_order_relaxed))
                return true;
        }
    }
    for (;;) {
        if (t & CHAN_FLAGS) return false;
        struct chan_slot *s = chan_slot(c, t);
        /* Acquire: pairs with the release stamp store of the receiver that
         * emptied the slot a lap ago (its reads come before our writes). */
        uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (st == t) {
            /* Relaxed: the CAS only decides which sender owns the slot;
             * the stamps carry the data's ordering. */
            if (atomic_compare_exchange_weak_explicit(&c->tail, &t, ring_next(c, t),
                                                      memory_order_relaxed, memory_order_relaxed)) {
                copy_elem(c, s->elem, ep);
                /* Release: publishes the element; pairs with the receiver's
                 * acquire load of the stamp. */
                atomic_store_explicit(&s->stamp, t + 1, memory_order_release);
                return true;
            }
            continue; /* t reloaded by the failed CAS */
        }
        if ((int64_t)(st - t) < 0) return false; /* last lap's value, or its receiver, is there */
        t = atomic_load_explicit(&c->tail, memory_order_relaxed); /* t was stale */
    }
}

/* Fast receive: a published value and no waiter flag. False: take the lock
 * (a flag, empty, a sender still writing the slot). */
static inline __attribute__((always_inline)) bool recv_fast(struct hchan *c, void *ep)
{
    uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
    if (c->stride == 0) {
        for (;;) {
            if (h & CHAN_FLAGS) return false;
            /* Acquire: pairs with the senders' release CAS on tail (a tail
             * that shows the send shows what came before it: an RMW chain
             * is one release sequence). */
            uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire) & ~CHAN_FLAGS;
            if ((int64_t)(t - h) <= 0) return false;
            /* Release: pairs with the senders' acquire load of head. */
            if (atomic_compare_exchange_weak_explicit(&c->head, &h, h + 1, memory_order_release,
                                                      memory_order_relaxed))
                return true;
        }
    }
    for (;;) {
        if (h & CHAN_FLAGS) return false;
        struct chan_slot *s = chan_slot(c, h);
        /* Acquire: pairs with the sender's release stamp store (we see the
         * element it copied in). */
        uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (st == h + 1) {
            /* Relaxed: as in send_fast. */
            if (atomic_compare_exchange_weak_explicit(&c->head, &h, ring_next(c, h),
                                                      memory_order_relaxed, memory_order_relaxed)) {
                copy_elem(c, ep, s->elem);
                clear_elem(c, s->elem, ep);
                /* Release: our reads and the clearing come before the next
                 * lap's sender writes (its acquire load of the stamp). */
                atomic_store_explicit(&s->stamp, h + c->lapmask + 1, memory_order_release);
                return true;
            }
            continue;
        }
        if ((int64_t)(st - (h + 1)) < 0) return false; /* empty, or its sender is writing */
        h = atomic_load_explicit(&c->head, memory_order_relaxed);
    }
}

bool chan_ring_put_locked(struct hchan *c, const void *ep)
{
    int spins = 0;
    for (;;) {
        /* Acquire (tail, then head): the head load is not hoisted above the
         * tail load, so h is at least the head of the instant t was read,
         * which makes ring_full exact at the instant of the head load (head
         * <= tail <= head + cap). */
        uint64_t tw = atomic_load_explicit(&c->tail, memory_order_acquire);
        uint64_t t = tw & ~CHAN_FLAGS;
        uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire) & ~CHAN_FLAGS;
        if ((int64_t)(t - h) < 0) continue; /* tail moved on since we read it */
        if (ring_full(c, h, t)) return false;
        if (c->stride == 0) {
            /* acq_rel: release as in send_fast; the flags stay as they are. */
            if (atomic_compare_exchange_strong_explicit(&c->tail, &tw, tw + 1, memory_order_acq_rel,
                                                        memory_order_relaxed))
                return true;
            continue;
        }
        struct chan_slot *s = chan_slot(c, t);
        uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire); /* as in send_fast */
        if (st == t) {
            uint64_t next = ring_next(c, t) | (tw & CHAN_FLAGS);
            if (atomic_compare_exchange_strong_explicit(&c->tail, &tw, next, memory_order_relaxed,
                                                        memory_order_relaxed)) {
                copy_elem(c, s->elem, ep);
                atomic_store_explicit(&s->stamp, t + 1, memory_order_release); /* as in send_fast */
                return true;
            }
            continue;
        }
        if ((int64_t)(st - t) > 0) continue; /* t was stale */
        /* Not full, yet the slot holds the last lap: its receiver claimed
         * it (head moved) and is still copying out. */
        ring_spin(&spins);
    }
}

bool chan_ring_take_locked(struct hchan *c, void *ep)
{
    int spins = 0;
    for (;;) {
        /* Acquire (head, then tail): as in chan_ring_put_locked, tail is
         * read after head, so t == h means empty at the tail load. The tail
         * load also pairs with the zero-size senders' release CAS. */
        uint64_t hw = atomic_load_explicit(&c->head, memory_order_acquire);
        uint64_t h = hw & ~CHAN_FLAGS;
        uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire) & ~CHAN_FLAGS;
        if (t == h) return false;
        if (c->stride == 0) {
            if (atomic_compare_exchange_strong_explicit(&c->head, &hw, hw + 1, memory_order_acq_rel,
                                                        memory_order_relaxed))
                return true;
            continue;
        }
        struct chan_slot *s = chan_slot(c, h);
        uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire); /* as in recv_fast */
        if (st == h + 1) {
            uint64_t next = ring_next(c, h) | (hw & CHAN_FLAGS);
            if (atomic_compare_exchange_strong_explicit(&c->head, &hw, next, memory_order_relaxed,
                                                        memory_order_relaxed)) {
                copy_elem(c, ep, s->elem);
                clear_elem(c, s->elem, ep);
                atomic_store_explicit(&s->stamp, h + c->lapmask + 1, memory_order_release);
                return true;
            }
            continue;
        }
        if ((int64_t)(st - (h + 1)) > 0) continue; /* h was stale */
        /* tail > head, yet the slot is not published: its sender claimed it
         * and is still copying in. */
        ring_spin(&spins);
    }
}

/* Non-blocking send, fast path failed: true when the channel is open and
 * full now (no lock needed to say so). Tail first (acquire keeps the head
 * load after it): head <= tail <= head + cap then makes "full" exact at
 * the head load. Open: a closed channel must panic, under the lock. */
static inline bool send_would_block(struct hchan *c)
{
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire);
    if (t & CHAN_CLOSED) return false;
    uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire) & ~CHAN_FLAGS;
    t &= ~CHAN_FLAGS;
    return (int64_t)(t - h) >= 0 && ring_full(c, h, t);
}

/* Non-blocking or blocking receive, fast path failed: 1 when empty and
 * open, -1 when closed and drained (every send before the close was
 * received), 0 when the lock must decide (a value, or one in flight).
 * Head first, then tail (acquire): head <= tail, so t == h is "empty" at
 * the tail load. A tail with CHAN_CLOSED is final; acquire pairs with the
 * close's release RMW (the close happens before this receive returns). */
static inline int recv_would_block(struct hchan *c)
{
    uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire) & ~CHAN_FLAGS;
    uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire);
    if ((t & ~CHAN_FLAGS) != h) return 0;
    return t & CHAN_CLOSED ? -1 : 1;
}

struct g *chan_send_to(struct hchan *c, struct sudog *sg, const void *ep)
{
    copy_elem(c, sg->elem, ep);
    sg->success = true;
    sg->g->param = sg;
    return sg->g;
}

/* Buffered, a live sender queued: the buffer is full and frozen (sync.h),
 * head moves only under the lock (CHAN_SENDW) and tail cannot move (fast
 * senders find the slot at tail occupied). Take the head into ep and put
 * the sender's value in the slot just freed, which is the tail's (FIFO). */
static void ring_rotate_locked(struct hchan *c, struct sudog *sg, void *ep)
{
    uint64_t hw = atomic_load_explicit(&c->head, memory_order_acquire);
    uint64_t tw = atomic_load_explicit(&c->tail, memory_order_acquire);
    uint64_t h = hw & ~CHAN_FLAGS, t = tw & ~CHAN_FLAGS;
    if (!ring_full(c, h, t)) sched_throw("chan: sender queued on a buffer that is not full");
    if (c->stride == 0) {
        /* Counts: tail first (cap + 1 for an instant: fast senders see
         * full, fast receivers are frozen), then head. acq_rel as every
         * count change (sends before receives, receives before sends). */
        atomic_fetch_add_explicit(&c->tail, 1, memory_order_acq_rel);
        atomic_fetch_add_explicit(&c->head, 1, memory_order_acq_rel);
        return;
    }
    struct chan_slot *s = chan_slot(c, h); /* == chan_slot(c, t) */
    int spins = 0;
    /* The value may still be in flight (a fast sender filled the last slot
     * just before the buffer froze). */
    while (atomic_load_explicit(&s->stamp, memory_order_acquire) != h + 1)
        ring_spin(&spins);
    /* Frozen: these CASes cannot fail; the words keep their flags. */
    if (!atomic_compare_exchange_strong_explicit(&c->head, &hw, ring_next(c, h) | (hw & CHAN_FLAGS),
                                                 memory_order_relaxed, memory_order_relaxed) ||
        !atomic_compare_exchange_strong_explicit(&c->tail, &tw, ring_next(c, t) | (tw & CHAN_FLAGS),
                                                 memory_order_relaxed, memory_order_relaxed))
        sched_throw("chan: frozen ring moved");
    copy_elem(c, ep, s->elem);
    copy_elem(c, s->elem, sg->elem); /* overwrites: the barrier shades what was there */
    /* Release: publishes the sender's value at position t (pairs with the
     * receivers' acquire load of the stamp). */
    atomic_store_explicit(&s->stamp, t + 1, memory_order_release);
}

struct g *chan_recv_from(struct hchan *c, struct sudog *sg, void *ep)
{
    if (c->dataqsiz == 0) {
        if (ep) copy_elem(c, ep, sg->elem);
    } else {
        ring_rotate_locked(c, sg, ep);
    }
    sg->success = true;
    sg->g->param = sg;
    return sg->g;
}

/* ---- the API --------------------------------------------------------------- */

gort_chan *gort_chan_make(size_t elem_size, size_t cap)
{
    if (elem_size > MAX_ELEM_SIZE || (elem_size && cap > MAX_CHAN_BYTES / elem_size) ||
        cap > (size_t)INT64_MAX)
        gort_panic("makechan: size out of range");
    /* Slots: the stamp and the element, 8-aligned (stamps are atomic
     * words). Zero-size elements: none. */
    size_t stride = elem_size ? sizeof(struct chan_slot) + ((elem_size + 7) & ~(size_t)7) : 0;
    size_t size = cap ? sizeof(struct hchan) + cap * stride : offsetof(struct hchan, head);
    /* One line of slack to put the header on a line of its own (gort_new
     * aligns to less). */
    char *p = gort_new(size + CHAN_LINE - 1);
    if (!p) gort__fatal("out of memory (channel of %zu x %zu bytes)", cap, elem_size);
    struct hchan *c =
        (struct hchan *)(((uintptr_t)p + CHAN_LINE - 1) & ~(uintptr_t)(CHAN_LINE - 1));
    c->elemsize = (uint32_t)elem_size;
    c->dataqsiz = cap;
    c->stride = (uint32_t)stride;
    if (cap && stride) {
        uint64_t one_lap = 1;
        while (one_lap <= cap)
            one_lap <<= 1;
        c->lapmask = one_lap - 1;
        for (size_t i = 0; i < cap; i++) /* lap 0: slot i free for position i */
            atomic_store_explicit(&chan_slot(c, i)->stamp, i, memory_order_relaxed);
    }
    /* The channel reaches other goroutines through a synchronising
     * operation (a spawn, a channel, a lock): plain initialisation is
     * published by it. */
    return (gort_chan *)c;
}

static bool unlock_chan(struct g *gp, void *arg)
{
    (void)gp;
    chan_unlock(arg);
    return true;
}

static inline bool unbuffered_full(struct hchan *c)
{
    return __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) == NULL;
}

static inline bool unbuffered_empty(struct hchan *c)
{
    return __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) == NULL;
}

/* A blocking operation whose fast path failed with no waiter flag set (the
 * buffer full or empty, or a peer's operation in flight on the slot) spins
 * a little and retries before taking the lock, when that may pay: Go's
 * heuristic for its mutex (sched_can_spin: several CPUs, another P
 * running, nothing else runnable here), in rounds of CHAN_SPIN_PAUSES
 * PAUSEs (a peer on another P moves an element every few nanoseconds:
 * look often), CHAN_SPIN_ROUNDS at most (about 1 us on this machine's
 * 27 ns PAUSE, about what the park and the wake-up it saves cost: the
 * waker's futex call, the woken's trip through the run queues). A producer
 * and a consumer running on two Ps then keep going without a park each
 * time the buffer fills or empties, and without the lock when they merely
 * meet on a slot. Not when a peer waits in our run queue (it runs only once
 * we park), and never past a waiter flag: a queued peer is to be woken, or
 * queued behind, under the lock; a closed channel is the lock's too.
 * Returns whether the operation happened. */
#define CHAN_SPIN_ROUNDS 8
#define CHAN_SPIN_PAUSES 5

static inline bool chan_spin_ok(struct hchan *c, int round)
{
    return round < CHAN_SPIN_ROUNDS &&
           !((atomic_load_explicit(&c->tail, memory_order_relaxed) |
              atomic_load_explicit(&c->head, memory_order_relaxed)) &
             CHAN_FLAGS) &&
           sched_can_spin(0);
}

static inline void chan_spin_round(void)
{
    for (int i = 0; i < CHAN_SPIN_PAUSES; i++)
        __builtin_ia32_pause();
}

static GORT_NOINLINE bool send_spin(struct hchan *c, const void *ep)
{
    for (int i = 0; chan_spin_ok(c, i); i++) {
        chan_spin_round();
        if (send_fast(c, ep)) return true;
    }
    return false;
}

static GORT_NOINLINE bool recv_spin(struct hchan *c, void *ep)
{
    for (int i = 0; chan_spin_ok(c, i); i++) {
        chan_spin_round();
        if (recv_fast(c, ep)) return true;
    }
    return false;
}

/* Go's chansend after the fast paths. */
static GORT_NOINLINE bool send_slow(struct hchan *c, const void *ep, bool block)
{
    rlock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        chan_unlock(c);
        gort_panic("send on closed channel");
    }
    struct sudog *sg = waitq_dequeue(&c->recvq);
    if (sg) { /* a live receiver: the buffer is empty (sync.h), hand over */
        struct g *gp = chan_send_to(c, sg, ep);
        chan_unlock(c);
        goready(gp, true);
        return true;
    }
    if (c->dataqsiz) {
        if (chan_ring_put_locked(c, ep)) {
            chan_unlock(c);
            return true;
        }
        if (block) {
            /* Full. Freeze the receivers, then look again: a receive that
             * claimed the head before the flag made room (chan.c's opening
             * comment, mirrored). */
            chan_flag_send_waiter(c);
            if (chan_ring_put_locked(c, ep)) {
                chan_unlock(c); /* clears the flag: sendq is empty */
                return true;
            }
        }
    }
    if (!block) {
        chan_unlock(c);
        return false;
    }
    struct sudog me = {.g = gort_g(), .elem = (void *)ep, .c = c};
    waitq_enqueue(&c->sendq, &me);
    gopark(unlock_chan, c, WAIT_CHAN_SEND);
    if (!me.success) gort_panic("send on closed channel"); /* closed while we waited */
    return true;
}

/* Go's chansend. Returns whether the value was sent (false only when !block
 * and it would have blocked). */
static inline __attribute__((always_inline)) bool send_impl(struct hchan *c, const void *ep,
                                                            bool block)
{
    if (GORT_UNLIKELY(!c)) {
        if (!block) return false;
        gopark(NULL, NULL, WAIT_CHAN_SEND_NIL);
        sched_throw("chan send on nil channel resumed");
    }
    if (GORT_UNLIKELY(!ep && c->elemsize)) gort_panic("gort_chan_send: NULL element pointer");
    if (c->dataqsiz) {
        if (GORT_LIKELY(send_fast(c, ep))) return true;
        if (!block) {
            if (send_would_block(c)) return false;
        } else if (send_spin(c, ep)) {
            return true;
        }
    } else if (!block && !atomic_load_explicit(&c->closed, memory_order_relaxed) &&
               unbuffered_full(c)) {
        return false;
    }
    return send_slow(c, ep, block);
}

bool chan_send(struct hchan *c, const void *ep, bool block)
{
    return send_impl(c, ep, block);
}

/* Go's chanrecv after the fast paths. */
static GORT_NOINLINE bool recv_slow(struct hchan *c, void *ep, bool block, bool *selected)
{
    rlock_acquire(&c->lock);
    struct sudog *sg = waitq_dequeue(&c->sendq);
    if (c->dataqsiz == 0) {
        if (!sg && atomic_load_explicit(&c->closed, memory_order_relaxed)) {
            chan_unlock(c);
            if (ep && c->elemsize) memset(ep, 0, c->elemsize);
            return false;
        }
    } else if (!sg) {
        if (chan_ring_take_locked(c, ep)) {
            chan_unlock(c);
            return true;
        }
        bool closed = atomic_load_explicit(&c->closed, memory_order_relaxed);
        if (!closed && block) {
            /* Empty. Freeze the senders, then look again: a send that
             * claimed its position before the flag is ours to take (chan.c's
             * opening comment, steps 2 and 3). */
            chan_flag_recv_waiter(c);
            if (chan_ring_take_locked(c, ep)) {
                chan_unlock(c); /* clears the flag: recvq is empty */
                return true;
            }
        }
        if (closed) { /* closed and drained: no send can come any more */
            chan_unlock(c);
            if (ep && c->elemsize) memset(ep, 0, c->elemsize);
            return false;
        }
    }
    if (sg) {
        struct g *gp = chan_recv_from(c, sg, ep);
        chan_unlock(c);
        goready(gp, true);
        return true;
    }
    if (!block) {
        chan_unlock(c);
        *selected = false;
        return false;
    }
    struct sudog me = {.g = gort_g(), .elem = ep, .c = c};
    waitq_enqueue(&c->recvq, &me);
    gopark(unlock_chan, c, WAIT_CHAN_RECV);
    return me.success;
}

/* Go's chanrecv. *selected: an operation happened (false only when !block
 * and it would have blocked); returns whether a value was received (false:
 * closed and drained, *ep zeroed). */
static inline __attribute__((always_inline)) bool recv_impl(struct hchan *c, void *ep, bool block,
                                                            bool *selected)
{
    *selected = true;
    if (GORT_UNLIKELY(!c)) {
        if (!block) {
            *selected = false;
            return false;
        }
        gopark(NULL, NULL, WAIT_CHAN_RECV_NIL);
        sched_throw("chan receive on nil channel resumed");
    }
    if (c->dataqsiz) {
        if (GORT_LIKELY(recv_fast(c, ep))) return true;
        int r = recv_would_block(c);
        if (r < 0) { /* closed and drained */
            if (ep && c->elemsize) memset(ep, 0, c->elemsize);
            return false;
        }
        if (!block) {
            if (r > 0) { /* empty, open */
                *selected = false;
                return false;
            }
        } else if (recv_spin(c, ep)) {
            return true;
        }
    } else if (!block && unbuffered_empty(c)) {
        /* Acquire fence: the emptiness load above is ordered before the
         * closed load below (C11 lets a relaxed load drift after an acquire
         * load; this fence forbids it). Seeing "empty" then "open" must mean
         * the channel was empty while open. */
        atomic_thread_fence(memory_order_acquire);
        if (!atomic_load_explicit(&c->closed, memory_order_acquire)) {
            *selected = false;
            return false;
        }
        if (unbuffered_empty(c)) { /* closed and still empty: drained for good */
            if (ep && c->elemsize) memset(ep, 0, c->elemsize);
            return false;
        }
    }
    return recv_slow(c, ep, block, selected);
}

bool chan_recv(struct hchan *c, void *ep, bool block, bool *selected)
{
    return recv_impl(c, ep, block, selected);
}

void gort_chan_send(gort_chan *c, const void *elem)
{
    preempt_check();
    send_impl((struct hchan *)c, elem, true);
}

bool gort_chan_recv(gort_chan *c, void *elem)
{
    preempt_check();
    bool selected;
    return recv_impl((struct hchan *)c, elem, true, &selected);
}

void gort_chan_close(gort_chan *ch)
{
    struct hchan *c = (struct hchan *)ch;
    if (!c) gort_panic("close of nil channel");
    rlock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        chan_unlock(c);
        gort_panic("close of closed channel");
    }
    /* Release: pairs with the unbuffered fast receive path's acquire load
     * of closed. */
    atomic_store_explicit(&c->closed, 1, memory_order_release);
    /* Buffered: senders' CASes fail from here on (they take the lock and
     * panic); the final tail counts every send that came before. acq_rel:
     * the release half pairs with recv_would_block's acquire load. */
    if (c->dataqsiz) atomic_fetch_or_explicit(&c->tail, CHAN_CLOSED, memory_order_acq_rel);
    /* Collect every waiter, then ready them with the lock dropped. The
     * sudogs stay valid: their goroutines are parked until readied. A
     * queued receiver means an empty buffer (sync.h): it gets zero. */
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
    chan_unlock(c); /* both queues empty: clears the waiter flags */
    while (wake) {
        sg = wake;
        wake = sg->next; /* read before readying: sg dies when its G runs */
        goready(sg->g, false);
    }
}

size_t gort_chan_len(gort_chan *ch)
{
    struct hchan *c = (struct hchan *)ch;
    if (!c || !c->dataqsiz) return 0;
    /* A snapshot: tail, head, tail again unchanged (acquire keeps the three
     * loads in order) puts head between two equal tails. Racy by nature,
     * as Go's len; a few retries, then the last reading. */
    uint64_t t, h;
    for (int i = 0;; i++) {
        t = atomic_load_explicit(&c->tail, memory_order_acquire) & ~CHAN_FLAGS;
        h = atomic_load_explicit(&c->head, memory_order_acquire) & ~CHAN_FLAGS;
        if ((atomic_load_explicit(&c->tail, memory_order_relaxed) & ~CHAN_FLAGS) == t || i == 8)
            break;
    }
    if ((int64_t)(t - h) <= 0) return 0;
    if (c->stride == 0) return t - h < c->dataqsiz ? t - h : c->dataqsiz;
    uint64_t hix = h & c->lapmask, tix = t & c->lapmask;
    if (hix < tix) return tix - hix;
    if (hix > tix) return c->dataqsiz - hix + tix;
    return c->dataqsiz; /* same index, different laps */
}

size_t gort_chan_cap(gort_chan *ch)
{
    struct hchan *c = (struct hchan *)ch;
    return c ? c->dataqsiz : 0;
}
