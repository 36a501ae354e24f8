/* sched/runq.c: per-P local run queues and the global run queue.
 *
 * Local queue: a 256-slot ring with one producer (the P's owner) and many
 * consumers (the owner and thieves), plus a runnext slot (Go's runq*).
 *   - Only the owner stores runqtail; it publishes runq[t] with a release
 *     store that pairs with the acquire loads of runqtail in runq_grab.
 *   - runqhead moves only by CAS (owner and thieves). A thief copies slots
 *     and then CASes head past them (release); the owner's acquire load of
 *     head in runq_put pairs with that CAS, so the owner never overwrites a
 *     slot a thief may still be reading.
 *   - Slots are relaxed atomics: a thief may read a slot the owner is
 *     rewriting; its CAS on head then fails and the value is discarded.
 *   - runnext: the owner exchanges it; a thief CASes it to NULL (last steal
 *     round only). A G in runnext inherits the time slice of the G that
 *     readied it (producer/consumer pairs ping-pong on one P).
 * Invariant: 0 <= runqtail - runqhead <= RUNQ_LEN.
 *
 * Global queue: a FIFO ring of G pointers under sched.lock (struct gring);
 * runqsize mirrors its length for lock-free reads as a hint. Nothing under
 * the lock dereferences a G.
 *
 * Rejected: a lock per local queue (every steal would contend with the
 * owner's fast path).
 */
#include "sched/sched.h"

static inline struct g *slot_load(struct p *p, uint32_t i)
{
    return atomic_load_explicit(&p->runq[i % RUNQ_LEN], memory_order_relaxed);
}

static inline void slot_store(struct p *p, uint32_t i, struct g *gp)
{
    atomic_store_explicit(&p->runq[i % RUNQ_LEN], gp, memory_order_relaxed);
}

/* Move half of the full local queue plus gp to the global queue in one batch.
 * Returns false when a thief moved head meanwhile (the queue is no longer
 * full: the caller retries the fast path). */
static bool runq_put_slow(struct p *p, struct g *gp, uint32_t h, uint32_t t)
{
    enum { N = RUNQ_LEN / 2 };
    struct g *batch[N + 1];
    if (t - h != RUNQ_LEN) sched_throw("runq_put_slow: queue is not full");
    for (uint32_t i = 0; i < N; i++)
        batch[i] = slot_load(p, h + i);
    /* Release: our reads of the slots happen before anyone reuses them. */
    if (!atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + N, memory_order_release,
                                                 memory_order_relaxed))
        return false;
    batch[N] = gp;
    rlock_acquire(&sched.lock);
    for (int i = 0; i <= N; i++)
        globrunq_put_locked(batch[i]);
    rlock_release(&sched.lock);
    return true;
}

void runq_put_tail_slow(struct p *p, struct g *gp)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
        if (t - h < RUNQ_LEN) {
            atomic_store_explicit(&p->runq[t % RUNQ_LEN], gp, memory_order_relaxed);
            atomic_store_explicit(&p->runqtail, t + 1, memory_order_release);
            return;
        }
        if (runq_put_slow(p, gp, h, t)) return;
    }
}

void runq_put(struct p *p, struct g *gp, bool next)
{
    if (next) {
        /* seq_cst: this RMW also serves as step (2) of the wake-up protocol
         * for callers that wakep next (proc.c, wakep_impl(fenced)). */
        gp = atomic_exchange_explicit(&p->runnext, gp, memory_order_seq_cst);
        if (!gp) return;
        /* Kick the old runnext to the tail. */
    }
    runq_put_tail(p, gp);
}

struct g *runq_get(struct p *p, bool *inherit)
{
    struct g *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);
    /* A thief may take runnext concurrently, so take it with a CAS. */
    if (next && atomic_compare_exchange_strong_explicit(
                    &p->runnext, &next, NULL, memory_order_acquire, memory_order_relaxed)) {
        *inherit = true;
        return next;
    }
    *inherit = false;
    return runq_get_head(p);
}

struct g *runq_get_head(struct p *p)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
        if (t == h) return NULL;
        struct g *gp = slot_load(p, h);
        /* Release: a CAS by the owner also orders its slot read before a
         * later reuse of the slot by itself; acquire is not needed because
         * the owner wrote the slot. */
        if (atomic_compare_exchange_weak_explicit(&p->runqhead, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed))
            return gp;
    }
}

/* Copy half of victim's queue into batch[bhead ..] (a ring of RUNQ_LEN), and
 * claim it with a CAS on victim's head. Returns the number taken. */
static uint32_t runq_grab(struct p *victim, _Atomic(struct g *) *batch, uint32_t bhead,
                          bool steal_next)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->runqhead, memory_order_acquire);
        /* Acquire: pairs with the owner's release store; the slots below
         * [h, t) are then visible. */
        uint32_t t = atomic_load_explicit(&victim->runqtail, memory_order_acquire);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (!steal_next) return 0;
            struct g *next = atomic_load_explicit(&victim->runnext, memory_order_relaxed);
            if (!next) return 0;
            /* The victim is probably about to run its runnext (it was just
             * readied by the running G, which will block soon: a channel
             * hand-off). Sleep a moment before stealing it, as Go does with
             * usleep(3), which the kernel's timer slack stretches to ~50 us:
             * a shorter busy-wait steals ping-pong partners mid-hand-off and
             * spreads them over two Ps. */
            if (atomic_load_explicit(&victim->status, memory_order_relaxed) == P_RUNNING)
                ki_nanosleep(3000);
            if (!atomic_compare_exchange_strong_explicit(
                    &victim->runnext, &next, NULL, memory_order_acquire, memory_order_relaxed))
                continue;
            atomic_store_explicit(&batch[bhead % RUNQ_LEN], next, memory_order_relaxed);
            return 1;
        }
        if (n > RUNQ_LEN / 2) continue; /* read an inconsistent h and t */
        for (uint32_t i = 0; i < n; i++)
            atomic_store_explicit(&batch[(bhead + i) % RUNQ_LEN], slot_load(victim, h + i),
                                  memory_order_relaxed);
        /* Release: our slot reads happen before the owner may reuse them. */
        if (atomic_compare_exchange_strong_explicit(&victim->runqhead, &h, h + n,
                                                    memory_order_release, memory_order_relaxed))
            return n;
    }
}

struct g *runq_steal(struct p *p, struct p *victim, bool steal_next)
{
    uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
    uint32_t n = runq_grab(victim, p->runq, t, steal_next);
    if (n == 0) return NULL;
    n--;
    struct g *gp = slot_load(p, t + n);
    if (n == 0) return gp;
    uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
    if (t - h + n >= RUNQ_LEN) sched_throw("runq_steal: queue overflow");
    /* Release: publishes the stolen slots to thieves of p. */
    atomic_store_explicit(&p->runqtail, t + n, memory_order_release);
    return gp;
}

static void gring_grow(struct gring *r)
{
    uint32_t ncap = r->cap ? r->cap * 2 : 1024;
    int err;
    struct g **v = ki_mmap_anon((size_t)ncap * sizeof *v, false, &err);
    if (!v) gort__fatal("out of memory (goroutine queue of %u entries)", ncap);
    for (uint32_t i = 0; i < r->n; i++)
        v[i] = r->v[(r->head + i) & (r->cap - 1)];
    if (r->v) ki_munmap(r->v, (size_t)r->cap * sizeof *v);
    r->v = v;
    r->head = 0;
    r->cap = ncap;
}

void gring_push(struct gring *r, struct g *gp)
{
    if (r->n == r->cap) gring_grow(r);
    r->v[(r->head + r->n++) & (r->cap - 1)] = gp;
}

struct g *gring_pop_head(struct gring *r)
{
    if (!r->n) return NULL;
    struct g *gp = r->v[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->n--;
    return gp;
}

struct g *gring_pop_tail(struct gring *r)
{
    if (!r->n) return NULL;
    return r->v[(r->head + --r->n) & (r->cap - 1)];
}

void globrunq_put_locked(struct g *gp)
{
    gring_push(&sched.runq, gp);
    atomic_store_explicit(&sched.runqsize, (int32_t)sched.runq.n, memory_order_relaxed);
}

void globrunq_put(struct g *gp)
{
    rlock_acquire(&sched.lock);
    globrunq_put_locked(gp);
    rlock_release(&sched.lock);
}

int32_t globrunq_take_locked(struct p *p, struct g **out, int32_t max)
{
    int32_t size = (int32_t)sched.runq.n;
    if (size == 0) return 0;
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    int32_t n = size / (procs > 0 ? procs : 1) + 1; /* a fair share */
    if (n > size) n = size;
    if (max > 0 && n > max) n = max;
    if (n > RUNQ_LEN / 2) n = RUNQ_LEN / 2;
    /* Room in the local queue (it only grows while we look: thieves). */
    int32_t room = (int32_t)(RUNQ_LEN - runq_len(p));
    if (n > room + 1) n = room + 1;
    for (int32_t i = 0; i < n; i++)
        out[i] = gring_pop_head(&sched.runq);
    atomic_store_explicit(&sched.runqsize, (int32_t)sched.runq.n, memory_order_relaxed);
    return n;
}

struct g *globrunq_finish(struct p *p, struct g **out, int32_t n)
{
    for (int32_t i = 1; i < n; i++)
        runq_put(p, out[i], false);
    return n ? out[0] : NULL;
}

struct g *globrunq_get(struct p *p, int32_t max)
{
    struct g *batch[RUNQ_LEN / 2];
    rlock_acquire(&sched.lock);
    int32_t n = globrunq_take_locked(p, batch, max);
    rlock_release(&sched.lock);
    return globrunq_finish(p, batch, n);
}
