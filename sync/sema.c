/* sync/sema.c: address-keyed goroutine wait queues (Go's sema.go), the base
 * of every blocking sync primitive.
 *
 * A counter lives at a user-visible address; the queues live here, in a
 * fixed table of buckets hashed by address, so a zero-initialised sync
 * object needs no setup. Each bucket holds a list of per-address queues: the
 * head waiter of each address is on the bucket list, the others hang off it
 * in FIFO order (a waiter re-queued after losing a race goes first: lifo).
 * Waiter records (struct semawaiter, Go's sudog) live on the waiting goroutine's stack.
 *
 * Lost-wakeup protocol, per bucket (the two steps marked * are seq_cst RMWs,
 * i.e. full barriers, and form a Dekker pair):
 *   acquirer: lock bucket; nwait++ *; try to take the count; if that fails,
 *             queue and park, unlocking the bucket only after the switch.
 *   releaser: count++ *; if nwait == 0 return (nobody can be waiting: an
 *             acquirer that incremented nwait after our load will see our
 *             count); else lock bucket, dequeue one waiter, nwait--, unlock,
 *             ready it.
 * Dropping the nwait increment before the retry loses wakeups.
 *
 * Rejected: Go's treap per bucket. A bucket list of per-address queues gives
 * O(1) FIFO for one address and O(addresses in the bucket) lookup, and 251
 * buckets keep that short.
 */
#include <stddef.h>

#include "gort.h"
#include "sync/sync.h"

#define SEMTAB_SIZE 251

struct semawaiter {
    struct g *g;
    uint32_t *addr;
    struct semawaiter *next;     /* next waiter on the same address */
    struct semawaiter *tail;     /* in a head: last waiter on this address */
    struct semawaiter *nexthead; /* in a head: next address's head in the bucket */
    bool ticket;                 /* the releaser handed the count to us */
};

struct semroot {
    struct rlock lock;
    _Atomic uint32_t nwait; /* waiters in this bucket (see protocol) */
    struct semawaiter *heads;
} __attribute__((aligned(CACHE_LINE)));

static struct semroot semtab[SEMTAB_SIZE];

static struct semroot *semroot(uint32_t *addr)
{
    return &semtab[((uintptr_t)addr >> 3) % SEMTAB_SIZE];
}

static bool can_acquire(uint32_t *addr)
{
    uint32_t v = __atomic_load_n(addr, __ATOMIC_RELAXED);
    while (v > 0) {
        /* seq_cst: the acquirer's side of the Dekker pair. */
        if (__atomic_compare_exchange_n(addr, &v, v - 1, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

/* root->lock held. */
static void queue(struct semroot *root, struct semawaiter *s, bool lifo)
{
    struct semawaiter **pp = &root->heads;
    for (; *pp; pp = &(*pp)->nexthead) {
        struct semawaiter *h = *pp;
        if (h->addr != s->addr) continue;
        if (lifo) { /* s becomes the head */
            s->next = h;
            s->tail = h->tail;
            s->nexthead = h->nexthead;
            h->tail = NULL;
            h->nexthead = NULL;
            *pp = s;
        } else {
            s->next = NULL;
            h->tail->next = s;
            h->tail = s;
        }
        return;
    }
    s->next = NULL;
    s->tail = s;
    s->nexthead = root->heads;
    root->heads = s;
}

/* root->lock held. */
static struct semawaiter *dequeue(struct semroot *root, uint32_t *addr)
{
    for (struct semawaiter **pp = &root->heads; *pp; pp = &(*pp)->nexthead) {
        struct semawaiter *h = *pp;
        if (h->addr != addr) continue;
        struct semawaiter *n = h->next;
        if (n) {
            n->tail = h->tail;
            n->nexthead = h->nexthead;
            *pp = n;
        } else {
            *pp = h->nexthead;
        }
        h->next = h->tail = h->nexthead = NULL;
        return h;
    }
    return NULL;
}

static bool unlock_root(struct g *gp, void *arg)
{
    (void)gp;
    rlock_release(&((struct semroot *)arg)->lock);
    return true;
}

void sema_acquire(uint32_t *addr, bool lifo, enum waitreason why)
{
    if (can_acquire(addr)) return;
    struct semroot *root = semroot(addr);
    struct semawaiter s = {.g = gort_g(), .addr = addr};
    for (;;) {
        rlock_acquire(&root->lock);
        atomic_fetch_add(&root->nwait, 1); /* seq_cst, see protocol */
        /* The RMW is a full barrier on x86; the fence makes the Dekker
         * pair with sema_release hold in the C11 model too. */
        atomic_thread_fence(memory_order_seq_cst);
        if (can_acquire(addr)) {
            atomic_fetch_sub(&root->nwait, 1);
            rlock_release(&root->lock);
            return;
        }
        s.ticket = false;
        queue(root, &s, lifo);
        gopark(unlock_root, root, why);
        if (s.ticket || can_acquire(addr)) return;
        lifo = true; /* lost the race to a barging acquirer: go first next time */
    }
}

void sema_release(uint32_t *addr, bool handoff)
{
    struct semroot *root = semroot(addr);
    __atomic_fetch_add(addr, 1, __ATOMIC_SEQ_CST); /* the releaser's side of the pair */
    if (atomic_load(&root->nwait) == 0) return;
    rlock_acquire(&root->lock);
    if (atomic_load(&root->nwait) == 0) {
        rlock_release(&root->lock);
        return;
    }
    struct semawaiter *s = dequeue(root, addr);
    if (s) atomic_fetch_sub(&root->nwait, 1);
    rlock_release(&root->lock);
    if (!s) return;
    /* Decide before readying: once readied, s (on the waiter's stack) may
     * be gone at any moment. */
    bool ticket = handoff && can_acquire(addr);
    s->ticket = ticket;
    goready(s->g, true);
    if (ticket) gort_yield(); /* let the waiter, now in runnext, run at once */
}

uint32_t sema_nwait(uint32_t *addr)
{
    struct semroot *root = semroot(addr);
    uint32_t n = 0;
    rlock_acquire(&root->lock);
    for (struct semawaiter *h = root->heads; h; h = h->nexthead)
        if (h->addr == addr)
            for (struct semawaiter *s = h; s; s = s->next)
                n++;
    rlock_release(&root->lock);
    return n;
}
