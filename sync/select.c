/* sync/select.c: Go's select (selectgo in select.go).
 *
 * 1. Poll order: a random permutation of the cases on non-NULL channels, so
 *    that among ready cases each is equally likely (Go's fairness).
 * 2. Lock order: the same cases sorted by channel address; each distinct
 *    channel is locked once, in that order (no deadlock between two selects
 *    locking overlapping sets).
 * 3. Pass 1, all locked: the first ready case in poll order runs. A
 *    buffered channel's ring is also moved by lock-free fast paths
 *    (chan.c): pass 1 uses the ring's locked operations, which wait out a
 *    fast-path operation in flight.
 * 3b. Nothing ready: set the waiter flag of every buffered case (this
 *    freezes the fast paths that could make it ready), then look at those
 *    cases once more; one ready now runs (the flags are cleared again when
 *    unlocking, no sudog having been queued). Non-blocking selects too:
 *    only then is "none ready" true at one instant.
 * 4. Still nothing: -1 when not blocking; else queue a sudog on every
 *    case's channel,
 *    park (the unlock function drops every lock after the switch).
 *    A waker claims the select with a CAS on g->selectdone (waitq_dequeue),
 *    moves the value and names the winning sudog in g->param.
 * 5. Woken: lock all again, take every other sudog off its queue, unlock.
 *
 * Panics after unlocking: "send on closed channel" (a send case on a closed
 * channel, found in pass 1 or as the reason we were woken).
 */
#include <stdlib.h>
#include <string.h>

#include "gort.h"
#include "sync/sync.h"

#define MAX_CASES   65536
#define STACK_CASES 64

static uint32_t sel_rand(void)
{
    /* Per-thread xorshift; fairness only, no security. */
    static __thread uint64_t x;
    if (!x) x = (uint64_t)ki_nanotime() * 0x9e3779b97f4a7c15ULL | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (uint32_t)(x >> 32);
}

struct selstate {
    gort_case *cases;
    uint16_t *lockorder;
    int n; /* cases on non-NULL channels */
};

static void sel_lock(struct selstate *st)
{
    struct hchan *prev = NULL;
    for (int i = 0; i < st->n; i++) {
        struct hchan *c = (struct hchan *)st->cases[st->lockorder[i]].ch;
        if (c != prev) rlock_acquire(&c->lock);
        prev = c;
    }
}

static void sel_unlock(struct selstate *st)
{
    /* Reverse order; each distinct channel once (its last occurrence). */
    for (int i = st->n - 1; i >= 0; i--) {
        struct hchan *c = (struct hchan *)st->cases[st->lockorder[i]].ch;
        if (i > 0 && (struct hchan *)st->cases[st->lockorder[i - 1]].ch == c) continue;
        chan_unlock(c); /* restores the channel's waiter flags from its queues */
    }
}

static bool sel_park_unlock(struct g *gp, void *arg)
{
    (void)gp;
    sel_unlock(arg);
    return true;
}

static void sort_by_chan(gort_case *cases, uint16_t *a, int n)
{
    /* Heap sort: no allocation, O(n log n) worst case (Go does the same). */
    for (int i = 1; i < n; i++) {
        int j = i;
        uint16_t k = a[i];
        uintptr_t key = (uintptr_t)cases[k].ch;
        while (j > 0 && (uintptr_t)cases[a[(j - 1) / 2]].ch < key) {
            a[j] = a[(j - 1) / 2];
            j = (j - 1) / 2;
        }
        a[j] = k;
    }
    for (int i = n - 1; i > 0; i--) {
        uint16_t k = a[i];
        uintptr_t key = (uintptr_t)cases[k].ch;
        a[i] = a[0];
        int j = 0, c;
        while ((c = 2 * j + 1) < i) {
            if (c + 1 < i && (uintptr_t)cases[a[c]].ch < (uintptr_t)cases[a[c + 1]].ch) c++;
            if (key < (uintptr_t)cases[a[c]].ch) {
                a[j] = a[c];
                j = c;
            } else {
                break;
            }
        }
        a[j] = k;
    }
}

/* select_impl's answers besides a case index and -1 (nothing ready): the
 * caller panics with these after releasing its buffers. */
enum { SEL_CLOSED_SEND = -2, SEL_NO_DIR = -3, SEL_NULL_ELEM = -4 };

static int select_impl(gort_case *cases, int ncases, bool block, uint16_t *pollorder,
                       uint16_t *lockorder, struct sudog *sgs, int *bad)
{
    /* 1. poll order over the live cases */
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        *bad = i;
        if (cases[i].dir != GORT_CASE_SEND && cases[i].dir != GORT_CASE_RECV) return SEL_NO_DIR;
        if (!cases[i].ch) continue;
        if (cases[i].dir == GORT_CASE_SEND && !cases[i].elem &&
            ((struct hchan *)cases[i].ch)->elemsize)
            return SEL_NULL_ELEM;
        int j = (int)(sel_rand() % (uint32_t)(n + 1));
        pollorder[n] = pollorder[j];
        pollorder[j] = (uint16_t)i;
        n++;
    }
    if (n == 0) {
        if (!block) return -1;
        gopark(NULL, NULL, WAIT_SELECT_NOCASES);
        sched_throw("select with no cases resumed");
    }
    memcpy(lockorder, pollorder, (size_t)n * sizeof *lockorder);
    sort_by_chan(cases, lockorder, n);
    struct selstate st = {cases, lockorder, n};

    /* 3. pass 1 */
    sel_lock(&st);
    for (int k = 0; k < n; k++) {
        int i = pollorder[k];
        gort_case *cs = &cases[i];
        struct hchan *c = (struct hchan *)cs->ch;
        struct sudog *sg;
        if (cs->dir == GORT_CASE_RECV) {
            if ((sg = waitq_dequeue(&c->sendq))) {
                struct g *gp = chan_recv_from(c, sg, cs->elem);
                sel_unlock(&st);
                goready(gp, true);
                if (cs->ok) *cs->ok = true;
                return i;
            }
            if (c->dataqsiz && chan_ring_take_locked(c, cs->elem)) {
                sel_unlock(&st);
                if (cs->ok) *cs->ok = true;
                return i;
            }
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                sel_unlock(&st);
                if (cs->elem && c->elemsize) memset(cs->elem, 0, c->elemsize);
                if (cs->ok) *cs->ok = false;
                return i;
            }
        } else {
            if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                sel_unlock(&st);
                return SEL_CLOSED_SEND;
            }
            if ((sg = waitq_dequeue(&c->recvq))) {
                struct g *gp = chan_send_to(c, sg, cs->elem);
                sel_unlock(&st);
                goready(gp, true);
                return i;
            }
            if (c->dataqsiz && chan_ring_put_locked(c, cs->elem)) {
                sel_unlock(&st);
                return i;
            }
        }
    }
    /* 3b. Buffered cases: their fast paths run without the lock, so pass 1
     * saw each of them at a different moment (a case seen not ready may
     * have become ready since, while a later one was seen after it stopped
     * being ready: TestNonblockSelectRace). Freeze the peers of every
     * buffered case (the waiter flag: chan.c's opening comment, step 2),
     * then look at those cases again: a case found not ready now cannot
     * become ready until we unlock, so once the last one is checked, none
     * is ready at one instant (what a failing non-blocking select must
     * mean), and nothing can arrive unseen between here and queueing.
     * Unbuffered cases need no second look: their locks are held. */
    bool buffered = false;
    for (int k = 0; k < n; k++) {
        gort_case *cs = &cases[pollorder[k]];
        struct hchan *c = (struct hchan *)cs->ch;
        if (!c->dataqsiz) continue;
        buffered = true;
        if (cs->dir == GORT_CASE_RECV)
            chan_flag_recv_waiter(c);
        else
            chan_flag_send_waiter(c);
    }
    for (int k = 0; buffered && k < n; k++) {
        int i = pollorder[k];
        gort_case *cs = &cases[i];
        struct hchan *c = (struct hchan *)cs->ch;
        if (!c->dataqsiz) continue;
        if (cs->dir == GORT_CASE_RECV ? chan_ring_take_locked(c, cs->elem)
                                      : chan_ring_put_locked(c, cs->elem)) {
            sel_unlock(&st); /* clears the flags: no sudog was queued */
            if (cs->dir == GORT_CASE_RECV && cs->ok) *cs->ok = true;
            return i;
        }
    }
    if (!block) {
        sel_unlock(&st); /* clears the flags again */
        return -1;
    }

    /* 4. queue on every channel and park */
    struct g *self = gort_g();
    atomic_store_explicit(&self->selectdone, 0, memory_order_relaxed);
    self->param = NULL;
    for (int k = 0; k < n; k++) {
        int i = lockorder[k];
        struct hchan *c = (struct hchan *)cases[i].ch;
        struct sudog *sg = &sgs[k];
        *sg = (struct sudog){
            .g = self, .elem = cases[i].elem, .c = c, .case_index = i, .is_select = true};
        waitq_enqueue(cases[i].dir == GORT_CASE_SEND ? &c->sendq : &c->recvq, sg);
    }
    gopark(sel_park_unlock, &st, WAIT_SELECT);

    /* 5. woken: the waker named its sudog in param */
    self = gort_g();
    struct sudog *won = self->param;
    self->param = NULL;
    sel_lock(&st);
    for (int k = 0; k < n; k++) {
        struct sudog *sg = &sgs[k];
        if (sg == won) continue;
        struct hchan *c = sg->c;
        waitq_remove(cases[sg->case_index].dir == GORT_CASE_SEND ? &c->sendq : &c->recvq, sg);
    }
    sel_unlock(&st);
    if (!won) sched_throw("select woken without a winning case");
    gort_case *cs = &cases[won->case_index];
    if (cs->dir == GORT_CASE_SEND) {
        if (!won->success) return SEL_CLOSED_SEND;
    } else if (cs->ok) {
        *cs->ok = won->success;
    }
    return won->case_index;
}

int gort_select(gort_case *cases, int n, bool block)
{
    preempt_check();
    if (n < 0 || n > MAX_CASES) gort_panic("gort_select: %d cases (0..%d allowed)", n, MAX_CASES);
    if (n > 0 && !cases) gort_panic("gort_select: NULL cases");
    /* Single-case selects are plain channel operations (Go compiles them so). */
    if (n == 1 && cases[0].ch) {
        if (cases[0].dir == GORT_CASE_SEND)
            return chan_send((struct hchan *)cases[0].ch, cases[0].elem, block) ? 0 : -1;
        if (cases[0].dir == GORT_CASE_RECV) {
            bool selected;
            bool ok = chan_recv((struct hchan *)cases[0].ch, cases[0].elem, block, &selected);
            if (!selected) return -1;
            if (cases[0].ok) *cases[0].ok = ok;
            return 0;
        }
    }
    int bad = 0, r;
    if (n <= STACK_CASES) {
        uint16_t pollorder[STACK_CASES], lockorder[STACK_CASES];
        struct sudog sgs[STACK_CASES];
        r = select_impl(cases, n, block, pollorder, lockorder, sgs, &bad);
    } else {
        /* Manual heap: the collector scans it (the sudogs name channels). */
        uint16_t *orders = gort_malloc((size_t)n * 2 * sizeof *orders);
        struct sudog *sgs = gort_malloc((size_t)n * sizeof *sgs);
        r = select_impl(cases, n, block, orders, orders + n, sgs, &bad);
        gort_free(orders);
        gort_free(sgs);
    }
    switch (r) {
    case SEL_CLOSED_SEND:
        gort_panic("send on closed channel");
    case SEL_NO_DIR:
        gort_panic("gort_select: case %d has no direction (use GORT_SEND/GORT_RECV)", bad);
    case SEL_NULL_ELEM:
        gort_panic("gort_select: send case %d has a NULL element pointer", bad);
    }
    return r;
}
