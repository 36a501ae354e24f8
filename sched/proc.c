/* sched/proc.c: the G/M/P scheduler (Go's proc.go).
 *
 * Invariant: an M runs goroutine code only while it holds a P, except a
 * goroutine inside a blocking region (it holds its M and no P).
 *
 * Switching and post-switch actions. A goroutine leaving the CPU (yield,
 * park, exit) picks the next goroutine of its P itself and switches straight
 * to it; only when there is none (or the M is wired to a goroutine, or the
 * world is stopping) does it switch to its M's g0 context, the thread's own
 * stack, which runs findrunnable and may park the thread. Before switching it
 * records what must happen to it (m->post: requeue, mark waiting and unlock,
 * free); the context that resumes on the same M performs that action first
 * thing (post_switch). Until then the old goroutine is invisible to other Ms,
 * so nobody can resume a stack that is still in use, and a waker cannot see a
 * parked goroutine before its wait-queue lock is dropped (gopark's unlockf).
 *
 * Worker wake-up protocol (Go's "Worker thread parking/unparking"). Goal: use
 * idle Ps when there is work, without waking a thread per submission and
 * without ever leaving work queued with every M asleep.
 *   Submitter: (1) queue the G (runq_put, release store of runqtail),
 *              (2) seq_cst fence, (3) if npidle > 0 and nmspinning == 0,
 *              CAS nmspinning 0->1 and start an M spinning (wakep).
 *   Spinner giving up: (a) put its P idle under sched.lock after checking the
 *              global queue, (b) decrement nmspinning (seq_cst RMW),
 *              (c) re-check every run queue and the global queue, taking an
 *              idle P back if work appeared.
 *   Steps (2) and (b) are the StoreLoad barriers of a Dekker pair: either the
 *   submitter sees the spinner (nmspinning > 0: it will re-check in (c)) or
 *   the spinner sees the submitted G in (c). Dropping (c), or (2), loses a
 *   wake-up: a G sits in a queue while every other M sleeps.
 *   A spinner that finds work stops spinning and, if it was the last, wakes
 *   another (resetspinning), so bursts fan out one thread at a time.
 * Ms sleep on their own futex word (m->park) and never poll.
 *
 * Who may call what: gort_* entry points from goroutines (gort_go and goready
 * also from any thread); functions named *_g0 or documented "on g0" only
 * from the scheduler context.
 */
#include <dirent.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort.h"
#include "sched/sched.h"
#include "mem/mem.h"
#include "sched/netpoll.h"

struct sched sched;
struct p *allp[MAX_PROCS];
_Atomic int32_t gomaxprocs;
struct m *allm;
__thread struct m *gort__tls_m __attribute__((tls_model("initial-exec")));

static struct m m0;
#define RUNNEXT_STREAK 1000          /* hand-offs through runnext before the queue head runs */
static int64_t mnext = 1;            /* next M id; sched.lock */
static uint32_t coprimes[MAX_PROCS]; /* steal orders; changed only with the world stopped */
static uint32_t ncoprimes;
static bool any_remote_node; /* some P is on another NUMA node than another */

static struct {
    int (*fn)(int, char **);
    int argc;
    char **argv;
} main_args;

void gort__g_entry(void);
static void checkdead(void);
static void stopm(struct m *m);

_Noreturn void sched_throw(const char *msg)
{
    gort__fatal("%s", msg);
}

static uint32_t fastrand(struct m *m)
{
    /* xorshift64* (per M, so no sharing) */
    uint64_t x = m->rand;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    m->rand = x;
    return (uint32_t)((x * 0x2545f4914f6cdd1dULL) >> 32);
}

/* ---- P and M lists (sched.lock held) ---------------------------------- */

static void pidleput(struct p *p)
{
    if (!runq_empty(p)) sched_throw("pidleput: P has a non-empty run queue");
    atomic_store_explicit(&p->status, P_IDLE, memory_order_relaxed);
    p->link = sched.pidle;
    sched.pidle = p;
    atomic_fetch_add(&sched.npidle, 1);
}

static struct p *pidleget(void)
{
    struct p *p = sched.pidle;
    if (p) {
        sched.pidle = p->link;
        p->link = NULL;
        atomic_fetch_sub(&sched.npidle, 1);
        if (GORT_UNLIKELY(sched.sysmonwait)) {
            /* Something will run: sysmon must watch it again. */
            sched.sysmonwait = false;
            note_wakeup(&sched.sysmonnote);
        }
    }
    return p;
}

static void mput(struct m *m)
{
    m->schedlink = sched.midle;
    sched.midle = m;
    sched.nmidle++;
    checkdead();
}

static struct m *mget(void)
{
    struct m *m = sched.midle;
    /* Keep the timed sleeper watching the timers when another M will do. */
    if (m && m == sched.timer_sleeper && m->schedlink) {
        struct m *other = m->schedlink;
        m->schedlink = other->schedlink;
        sched.nmidle--;
        return other;
    }
    if (m) {
        sched.midle = m->schedlink;
        sched.nmidle--;
        if (m == sched.timer_sleeper) {
            sched.timer_sleeper = NULL;
            __atomic_store_n(&sched.sleep_until, 0, __ATOMIC_RELAXED);
        }
    }
    return m;
}

/* Take m off the idle list if it is still there (sched.lock held). */
static bool mremove(struct m *m)
{
    for (struct m **pp = &sched.midle; *pp; pp = &(*pp)->schedlink) {
        if (*pp == m) {
            *pp = m->schedlink;
            sched.nmidle--;
            return true;
        }
    }
    return false;
}

static void acquirep(struct m *m, struct p *p)
{
    if (m->p || p->m) sched_throw("acquirep: P or M already attached");
    p->m = m;
    m->p = p;
    atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
}

static struct p *releasep(struct m *m)
{
    struct p *p = m->p;
    if (!p || p->m != m) sched_throw("releasep: invalid P state");
    p->m = NULL;
    m->p = NULL;
    atomic_store_explicit(&p->status, P_IDLE, memory_order_relaxed);
    return p;
}

/* ---- switching ---------------------------------------------------------- */

/* Switch from the running context to another. fake_save: the leaving
 * context's ASan fake-stack slot, NULL when it will never run again. */
static inline void ctx_switch(void **save_sp, void **fake_save, void *load_sp, uintptr_t lo,
                              uintptr_t hi)
{
#if GORT_ASAN
    __sanitizer_start_switch_fiber(fake_save, (const void *)lo, hi - lo);
#else
    (void)fake_save;
    (void)lo;
    (void)hi;
#endif
    gort__ctx_switch(save_sp, load_sp);
#if GORT_ASAN
    __sanitizer_finish_switch_fiber(fake_save ? *fake_save : NULL, NULL, NULL);
#endif
}

#if GORT_ASAN
#define FAKE(x) (&(x)->asan_fake_stack)
#else
#define FAKE(x) ((void **)NULL + 0 * sizeof(x))
#endif

/* Dead Gs: a per-P array, spilling half to the global list when full. */
static void gfput(struct p *p, struct g *gp)
{
    if (GORT_UNLIKELY(p->gfree_n == GFREE_LOCAL_MAX)) {
        /* Give away the oldest (coldest) half; keep the warm ones. */
        rlock_acquire(&sched.gflock);
        for (int i = 0; i < GFREE_BATCH; i++)
            gring_push(&sched.gfree, p->gfree[i]);
        atomic_store_explicit(&sched.ngfree, (int32_t)sched.gfree.n, memory_order_relaxed);
        rlock_release(&sched.gflock);
        memmove(p->gfree, p->gfree + GFREE_BATCH,
                (GFREE_LOCAL_MAX - GFREE_BATCH) * sizeof p->gfree[0]);
        p->gfree_n -= GFREE_BATCH;
    }
    p->gfree[p->gfree_n++] = gp;
}

static struct g *gfget(struct p *p)
{
    if (p->gfree_n == 0 && atomic_load_explicit(&sched.ngfree, memory_order_relaxed) > 0) {
        rlock_acquire(&sched.gflock);
        struct g *gp;
        while (p->gfree_n < GFREE_BATCH && (gp = gring_pop_tail(&sched.gfree)))
            p->gfree[p->gfree_n++] = gp;
        atomic_store_explicit(&sched.ngfree, (int32_t)sched.gfree.n, memory_order_relaxed);
        rlock_release(&sched.gflock);
    }
    return p->gfree_n ? p->gfree[--p->gfree_n] : NULL;
}

static inline void count_goroutine(struct p *p, int64_t d)
{
    /* Only the owner writes p->ngoroutine; readers sum all Ps. */
    atomic_store_explicit(&p->ngoroutine,
                          atomic_load_explicit(&p->ngoroutine, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

/* Unguarded stacks (guard budget exhausted on old kernels) carry a canary
 * at their lowest word: an overflow is caught when the G switches away. */
static inline void check_canary(struct g *gp)
{
    if (GORT_UNLIKELY(gp->unguarded) && *(uint64_t *)gp->stack_lo != STACK_CANARY)
        gort__fatal("stack overflow (goroutine %llu overwrote the bottom of its %zu-byte stack)",
                    (unsigned long long)gp->goid, cfg.stack_size);
}

/* The G that switched away on this M is now off its stack: publish it.
 * post_switch is the inline fast path (nothing to do, or a plain yield);
 * post_switch_slow does the rest. */
static GORT_NOINLINE void post_switch_slow(struct m *m)
{
    uint8_t act = m->post;
    struct g *prev = m->post_g;
    m->post = POST_NONE;
    prev->m = NULL;
    check_canary(prev);
    switch (act) {
    case POST_YIELD:
        atomic_store_explicit(&prev->status, G_RUNNABLE, memory_order_relaxed);
        if (prev->lockedm) { /* only its own M may run it: go through the global queue */
            globrunq_put(prev);
        } else {
            runq_put(m->p, prev, false);
        }
        break;
    case POST_PARK:
        atomic_store_explicit(&prev->status, G_WAITING, memory_order_relaxed);
        if (m->post_unlockf && !m->post_unlockf(prev, m->post_arg)) {
            atomic_store_explicit(&prev->status, G_RUNNABLE, memory_order_relaxed);
            runq_put(m->p, prev, true);
        }
        break;
    case POST_EXIT:
        atomic_store_explicit(&prev->status, G_DEAD, memory_order_relaxed);
        if (!prev->system) count_goroutine(m->p, -1);
        prev->system = 0;
        prev->fn = NULL;
        prev->arg = NULL;
        if (prev->lockedm) {
            /* A goroutine that exits while wired leaves its thread in an
             * unknown state (Go's rule): the thread ends too, except the
             * process's main thread, which cannot. */
            prev->lockedm = NULL;
            prev->lockcount = 0;
            m->lockedg = NULL;
            if (m != &m0) m->exiting = true;
        }
        if (!prev->is_main) /* the main goroutine's 8 MiB stack is not reused */
            gfput(m->p, prev);
        break;
    case POST_GLOBAL:
        atomic_store_explicit(&prev->status, G_RUNNABLE, memory_order_relaxed);
        globrunq_put(prev);
        wakep();
        break;
    }
}

static inline void post_switch(struct m *m)
{
    uint8_t act = m->post;
    if (GORT_LIKELY(act == POST_NONE)) return;
    struct g *prev = m->post_g;
    if (GORT_LIKELY(act == POST_YIELD && !prev->lockedm && !prev->unguarded)) {
        m->post = POST_NONE;
        prev->m = NULL;
        atomic_store_explicit(&prev->status, G_RUNNABLE, memory_order_relaxed);
        runq_put_tail(m->p, prev);
        return;
    }
    post_switch_slow(m);
}

/* The periodic reap below only while the local queue is shorter than this. */
#define NETPOLL_REAP_MAXQ (RUNQ_LEN / 2)

/* Goroutines that switch straight to each other never visit g0: every 32nd
 * resumption, run this P's due timers (one atomic load otherwise). Only
 * here, after post_switch: the goroutine that switched away may have held
 * channel locks until its unlockf ran, and timer functions take channel
 * locks (a goroutine receiving from its own ticker would deadlock). */
static inline void timer_poll(struct m *m)
{
    struct p *p = m->p;
    if (GORT_UNLIKELY(p && atomic_load_explicit(&p->timer0when, memory_order_relaxed) != 0) &&
        (++p->timerpoll & 31) == 0)
        timers_run(p, ki_nanotime());
    /* The same for I/O: submit what this P published and reap what came
     * back, every 16th resumption while I/O is pending. Reap only while
     * the global queue is empty and the local one short: goroutines
     * readied now join the local queue, ahead of those waiting globally,
     * and a P that keeps refilling its own queue would leave the global
     * one to every 61st pick (Go reaps only once the local queue is
     * empty). Seen: 1000-connection echo round trips 300 ms late against
     * a 3 ms median. Submitting is always done. */
    if (GORT_UNLIKELY(p && netpoll_pending()) && (++p->netpolltick & 15) == 0) {
        if (runq_len(p) < NETPOLL_REAP_MAXQ &&
            atomic_load_explicit(&sched.runqsize, memory_order_relaxed) == 0)
            netpoll_poll_p(p);
        else
            netpoll_flush(p);
    }
}

_Static_assert(offsetof(struct g, syscallsp) == G_OFF_SYSCALLSP, "switch.S offsets");
_Static_assert(offsetof(struct m, curg) == M_OFF_CURG, "switch.S offsets");

static inline void execute_prep(struct m *m, struct p *p, struct g *gp, bool inherit)
{
    /* The collector marks: gp's stack must be scanned before it runs
     * (one load and a branch otherwise). */
    if (GORT_UNLIKELY(gort__gc_barrier)) gc_scan_before_run(gp);
    if (!gp->sp) stack_prepare(gp);
    atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
    gp->m = m;
    m->curg = gp;
    atomic_store_explicit(&gp->preempt, 0, memory_order_relaxed);
    /* A goroutine preempted last time it ran: a kernel timer preempts it on
     * time, for its P's next timer or the end of its slice, whether sysmon
     * gets a CPU then or not (preempt.c, "The alarm"). */
    if (GORT_UNLIKELY(gp->hog)) preempt_alarm_arm(m, p, gp);
    /* Relaxed store: sysmon samples the tick to see that the P moved on. */
    if (!inherit) __atomic_store_n(&p->schedtick, p->schedtick + 1, __ATOMIC_RELAXED);
}

/* Next G from this P's own sources: every 61st tick the global queue first
 * (so a pair of goroutines yielding to each other cannot starve it), then
 * runnext and the local queue, then the global queue. */
static struct g *pick_local(struct p *p, bool *inherit)
{
    struct g *gp;
    *inherit = false;

    if (GORT_UNLIKELY(p->schedtick % 61 == 0) &&
        atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
        gp = globrunq_get(p, 1);
        if (gp) return gp;
    }
    gp = runq_get(p, inherit);
    if (gp && *inherit) {
        /* A pair handing off through runnext (channel ping-pong) shares one
         * time slice and would keep the rest of the queue waiting forever.
         * Go ends that slice by preemption after 10 ms; here, after
         * RUNNEXT_STREAK hand-offs the queue head goes first, and the tick
         * advances so the global queue gets its turn too. */
        if (GORT_UNLIKELY(++p->runnext_streak >= RUNNEXT_STREAK)) {
            p->runnext_streak = 0;
            __atomic_store_n(&p->schedtick, p->schedtick + 1, __ATOMIC_RELAXED);
            struct g *head = runq_get_head(p);
            if (head) {
                atomic_store_explicit(&p->runnext, gp, memory_order_release); /* it goes next */
                *inherit = false;
                return head;
            }
        }
        return gp;
    }
    p->runnext_streak = 0;
    if (gp) return gp;
    if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) gp = globrunq_get(p, 0);
    return gp;
}

/* Leave the running goroutine gp; act says what happens to it once off its
 * stack (see post_switch). Returns when gp runs again, maybe on another M. */
static void gsched(struct g *gp, uint8_t act, unlock_fn unlockf, void *arg)
{
    struct m *m = gp->m;
    struct p *p = m->p;
    struct g *next = NULL;
    bool inherit = false;
    if (GORT_UNLIKELY(m->alarm_g != NULL)) preempt_alarm_disarm(m);
    /* Parking, yielding or exiting on its own: not a hog (any more). Only
     * a preemption (sched_preempt_yield, POST_GLOBAL) sets the flag; a
     * blocking region's exit through the global queue keeps it. */
    if (GORT_UNLIKELY(gp->hog) && act != POST_GLOBAL) gp->hog = 0;
    if (GORT_LIKELY(!m->lockedg && !atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)))
        next = pick_local(p, &inherit);
    m->post = act;
    m->post_g = gp;
    m->post_unlockf = unlockf;
    m->post_arg = arg;
    void **fake = act == POST_EXIT ? NULL : FAKE(gp);
#if GORT_ASAN
    if (act == POST_EXIT) {
        /* The frames below us never return, so ASan never unpoisons them:
         * clear their shadow now, or the stack's next owner trips on it. */
        uintptr_t lo = (uintptr_t)__builtin_frame_address(0) - 4096;
        if (lo < gp->stack_lo) lo = gp->stack_lo;
        __asan_unpoison_memory_region((void *)lo, gp->stack_hi - lo);
    }
#endif
    if (GORT_UNLIKELY(next && next->lockedm)) {
        m->nextg = next; /* g0 hands it to its own M */
        m->nextg_inherit = inherit;
        next = NULL;
    }
    if (next && act == POST_EXIT && !next->sp && !gp->is_main && !next->is_main &&
        gp->node == next->node) {
        /* The next G has never run: give it our cache-hot stack (its own,
         * untouched, goes to us on the free list) and start it there. A
         * stream of short goroutines then runs on one warm stack. */
        check_canary(gp);
        stack_swap(gp, next);
        next->sp = (void *)next->stack_hi; /* not NULL: no stack_prepare */
        execute_prep(m, p, next, inherit);
#if GORT_ASAN
        __sanitizer_start_switch_fiber(NULL, (const void *)next->stack_lo,
                                       next->stack_hi - next->stack_lo);
#endif
        gort__ctx_restart((void *)next->stack_hi);
    }
    if (next) {
        execute_prep(m, p, next, inherit);
        ctx_switch(&gp->sp, fake, next->sp, next->stack_lo, next->stack_hi);
    } else {
        m->curg = NULL;
        ctx_switch(&gp->sp, fake, m->g0_sp, m->g0_lo, m->g0_hi);
    }
    m = gort_m();
    post_switch(m);
    timer_poll(m);
}

void gort__g_entry(void)
{
#if GORT_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    post_switch(gort_m());
    struct g *gp = gort_g();
    gp->fn(gp->arg);
    gort_exit(); /* runs the goroutine's remaining deferred calls */
}

/* ---- spinning, waking and parking Ms ------------------------------------ */

static void mstart(void *arg);

static void newm(struct p *p, bool spinning, int64_t id)
{
    struct m *m = calloc(1, sizeof *m);
    if (!m) gort__fatal("out of memory (new M)");
    m->id = id;
    m->nextp = p;
    m->spinning = spinning;
    m->rand = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
    rlock_acquire(&sched.lock);
    m->alllink = allm;
    /* Release: schedtrace walks allm without the lock. */
    __atomic_store_n(&allm, m, __ATOMIC_RELEASE);
    rlock_release(&sched.lock);
    int r = ki_thread_start(mstart, m, 256 << 10);
    if (r < 0)
        gort__fatal("runtime: failed to create new OS thread (have %d already; errno=%d)\n"
                    "runtime: may need to increase max user processes (ulimit -u)",
                    sched.mcount, -r);
}

/* Hand p (or an idle P when p is NULL) to an idle or new M. spinning: the
 * caller already counted the new M in nmspinning. */
static void startm(struct p *p, bool spinning)
{
    rlock_acquire(&sched.lock);
    if (!p) {
        p = pidleget();
        if (!p) {
            rlock_release(&sched.lock);
            if (spinning && atomic_fetch_sub(&sched.nmspinning, 1) <= 0)
                sched_throw("startm: negative nmspinning");
            return;
        }
    }
    struct m *nm = mget();
    if (!nm) {
        if (sched.mcount >= MAX_THREADS) {
            rlock_release(&sched.lock);
            gort__fatal("thread exhaustion (%d threads)", MAX_THREADS);
        }
        sched.mcount++; /* counted as running from now on (checkdead) */
        int64_t id = mnext++;
        rlock_release(&sched.lock);
        newm(p, spinning, id);
        return;
    }
    rlock_release(&sched.lock);
    nm->spinning = spinning;
    nm->nextp = p;
    note_wakeup(&nm->park); /* release: nextp and spinning visible to nm */
}

/* Start a spinning M if a P is idle and nobody spins. fenced: the caller's
 * publication of the work was itself a seq_cst RMW (runq_put into runnext
 * is an exchange), which already orders it before our loads: step (2) of
 * the protocol needs no separate fence then. */
static inline void wakep_impl(bool fenced)
{
    /* One P and we hold it: none can be idle (gomaxprocs changes only with
     * the world stopped). A caller without a P (blocking region, foreign
     * thread) may be readying work for an idle P: it takes the full path. */
    if (atomic_load_explicit(&gomaxprocs, memory_order_relaxed) == 1) {
        struct m *m = gort_m();
        if (m && m->p) return;
    }
    /* Step (2) of the wake-up protocol: the caller's queue store before our
     * loads. Pairs with the seq_cst nmspinning decrement in findrunnable. */
    if (!fenced) atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sched.npidle, memory_order_seq_cst) == 0) return;
    int32_t zero = 0;
    if (atomic_load_explicit(&sched.nmspinning, memory_order_seq_cst) != 0 ||
        !atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1))
        return;
    startm(NULL, true);
}

void wakep(void)
{
    wakep_impl(false);
}

static void resetspinning(struct m *m)
{
    m->spinning = false;
    int32_t n = atomic_fetch_sub(&sched.nmspinning, 1) - 1;
    if (n < 0) sched_throw("resetspinning: negative nmspinning");
    /* The last spinner to find work wakes another, which will spin if there
     * is an idle P: more work may be coming (Go's M wake-up policy). */
    if (n == 0) wakep();
}

/* Give p away when its M stops running Go code (blocking region, wired M).
 * p is released (no M). */
static void handoffp(struct p *p)
{
    /* Requests its goroutines published reach the kernel now: the P may go
     * idle with nobody making a scheduler pass on it. */
    netpoll_flush(p);
    if (!runq_empty(p) || atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
        startm(p, false);
        return;
    }
    int32_t zero = 0;
    if (atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) == 0 &&
        atomic_compare_exchange_strong(&sched.nmspinning, &zero, 1)) {
        startm(p, true); /* nobody is looking for work: be the one */
        return;
    }
    rlock_acquire(&sched.lock);
    if (atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) {
        atomic_store_explicit(&p->status, P_GCSTOP, memory_order_relaxed);
        if (--sched.stopwait == 0) note_wakeup(&sched.stopnote);
        rlock_release(&sched.lock);
        return;
    }
    if (sched.runqsize > 0 || timers_earliest() != 0 ||
        (netpoll_pending() && !sched.netpoll_waiting)) {
        /* Work, or timers or I/O that an idle P would leave unwatched: an M
         * takes the P, runs what is due, and sleeps until the next timer
         * (or in the poller). */
        rlock_release(&sched.lock);
        startm(p, false);
        return;
    }
    pidleput(p);
    rlock_release(&sched.lock);
}

/* ---- sysmon's retake (Go's retake) ------------------------------------------ */

/* What sysmon saw of each P on earlier passes (sysmon only). */
static struct {
    uint32_t schedtick, syscalltick;
    int64_t schedwhen, syscallwhen; /* when sysmon first saw those ticks */
    int64_t lastsig;                /* last preemption request */
} sysmon_pd[MAX_PROCS];

/* Minimum gap between preemption requests to one P: a goroutine that was
 * not at a safe point (inside libc, say) is asked again this much later.
 * Also how overdue a timer may get on a P that keeps switching goroutines
 * (such a P runs its own timers, every 32nd switch) before sysmon preempts
 * it anyway. sysmon.c looks at an overdue timer this often. */
#define PREEMPT_RETRY_NS (50 * 1000)

/* Whether to preempt the goroutine running on the P sysmon saw as pd: moved
 * says its tick changed since the last pass (a new slice began meanwhile),
 * tw is its earliest timer (0: none). */
static bool retake_preempt_due(const __typeof__(sysmon_pd[0]) *pd, bool moved, int64_t tw,
                               int64_t now)
{
    if (now - pd->lastsig < PREEMPT_RETRY_NS) return false;
    /* Over its time: one slice since an earlier pass saw it begin. */
    if (!moved && now - pd->schedwhen >= cfg.timeslice_ns) return true;
    if (tw == 0 || tw > now) return false;
    /* A due timer the P will not run until its goroutine yields: at once
     * when the same goroutine has run since the last pass. A P that moved
     * on may be about to run it, but moving on does not mean it did (a
     * switch between goroutines looks at timers every 32nd time): once
     * the timer is a retry gap overdue, preempt anyway. */
    return !moved || now - tw >= PREEMPT_RETRY_NS;
}

/* Returns how many Ps it took from blocking regions: as in Go, preemption
 * requests do not count, so they do not hold sysmon at its fastest pace
 * (see sysmon.c, "Pacing"). A request that found no safe point is repeated
 * a retry gap later at the earliest, when sysmon next looks: within 50 us
 * for a due timer, within a quarter slice for a slice over its time. */
uint32_t sched_retake(int64_t now)
{
    uint32_t n = 0;
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    for (int32_t i = 0; i < procs; i++) {
        struct p *p = allp[i];
        __typeof__(sysmon_pd[0]) *pd = &sysmon_pd[i];
        uint32_t st = atomic_load_explicit(&p->status, memory_order_relaxed);
        int64_t tw = atomic_load_explicit(&p->timer0when, memory_order_relaxed);
        if (st == P_RUNNING) {
            uint32_t t = __atomic_load_n(&p->schedtick, __ATOMIC_RELAXED);
            bool moved = t != pd->schedtick;
            if (moved) {
                pd->schedtick = t;
                pd->schedwhen = now;
            }
            if (retake_preempt_due(pd, moved, tw, now) && preemptone(p, PREEMPT_HOG))
                pd->lastsig = now;
        } else if (st == P_SYSCALL) {
            uint32_t t = atomic_load_explicit(&p->syscalltick, memory_order_relaxed);
            if (t != pd->syscalltick) {
                pd->syscalltick = t;
                pd->syscallwhen = now;
                continue;
            }
            /* In the same blocking region for a tick at least: take the P
             * if work waits on it, if everyone else is busy, or after
             * 10 ms anyway (Go's rule). */
            bool timer_due = tw != 0 && tw <= now;
            if (runq_empty(p) && !timer_due &&
                atomic_load(&sched.nmspinning) + atomic_load(&sched.npidle) > 0 &&
                now - pd->syscallwhen < 10 * 1000 * 1000)
                continue;
            uint32_t want = P_SYSCALL;
            if (atomic_compare_exchange_strong(&p->status, &want, P_IDLE)) {
                n++;
                handoffp(p);
            }
        }
    }
    return n;
}

/* Park the M until startm hands it a P; returns holding that P. */
static void stopm(struct m *m)
{
    if (m->p || m->spinning) sched_throw("stopm: holding a P or spinning");
    rlock_acquire(&sched.lock);
    mput(m);
    rlock_release(&sched.lock);
    note_sleep(&m->park);
    note_clear(&m->park);
    acquirep(m, m->nextp);
    m->nextp = NULL;
}

/* Park the M as stopm does, but if timers are pending and no idle M is
 * already sleeping until an earlier one, sleep only until the earliest:
 * then take an idle P and return holding it, to run the timers (any M
 * holding a P runs every P's due timers in findrunnable). Without this,
 * timers of idle Ps would wait until something else woke an M. */
static bool stopm_netpoll(struct m *m);

static void stopm_timed(struct m *m)
{
    if (stopm_netpoll(m)) return;
    int64_t next = timers_earliest();
    if (next == 0) {
        stopm(m);
        return;
    }
    rlock_acquire(&sched.lock);
    mput(m);
    bool timed = !sched.timer_sleeper || next < sched.sleep_until;
    if (timed) {
        sched.timer_sleeper = m;
        __atomic_store_n(&sched.sleep_until, next, __ATOMIC_RELAXED);
        /* Dekker pair with timer_add (which pushes, fences, reads
         * sleep_until): either it sees our deadline and wakes an M for
         * its earlier timer, or we see that timer here. */
        atomic_thread_fence(memory_order_seq_cst);
        int64_t again = timers_earliest();
        if (again && again < next) {
            next = again;
            __atomic_store_n(&sched.sleep_until, next, __ATOMIC_RELAXED);
        }
    }
    rlock_release(&sched.lock);
    int64_t wait = next - ki_nanotime();
    bool woken = timed ? (wait > 0 && note_tsleep(&m->park, wait)) : (note_sleep(&m->park), true);
    if (!woken) {
        /* Timed out: unless startm took us meanwhile (its wake-up is on
         * the way), leave the idle list and take an idle P. */
        rlock_acquire(&sched.lock);
        bool mine = mremove(m);
        if (mine && sched.timer_sleeper == m) {
            sched.timer_sleeper = NULL;
            __atomic_store_n(&sched.sleep_until, 0, __ATOMIC_RELAXED);
        }
        struct p *p = mine && !atomic_load(&sched.gcwaiting) ? pidleget() : NULL;
        rlock_release(&sched.lock);
        if (p) {
            acquirep(m, p);
            return;
        }
        if (mine) {
            /* Every P is busy: their Ms run timers (findrunnable, and
             * every 32nd switch). Sleep until handed a P; a P going idle
             * with timers pending wakes an M (handoffp, findrunnable). */
            stopm(m);
            return;
        }
        note_sleep(&m->park);
    }
    note_clear(&m->park);
    acquirep(m, m->nextp);
    m->nextp = NULL;
    return;
}

/* An M about to go idle while I/O waits are pending becomes the poll
 * waiter unless another M is one: it blocks in netpoll_wait (every ring, or
 * the epoll set, with the nearest timer as its timeout) instead of on its
 * futex, and is not on the idle M list (new work starts another M, as in
 * Go). Returns true holding a P once goroutines were readied, a timer is
 * due or the global queue has work; false when the caller should park as
 * usual (nothing pending, another waiter, a stop-the-world).
 *
 * No lost wake-up: np.pending is raised by a running M before its
 * goroutine parks on I/O; that M goes through here before it sleeps, so
 * while anything is pending some M is running, or waiting in the poller.
 * The flag and the pending check are read under sched.lock, as is the
 * flag's clearing, so two Ms never both wait and never both skip. */
static bool stopm_netpoll(struct m *m)
{
    for (;;) {
        rlock_acquire(&sched.lock);
        if (sched.netpoll_waiting || !netpoll_pending() ||
            atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) {
            rlock_release(&sched.lock);
            return false;
        }
        sched.netpoll_waiting = true;
        rlock_release(&sched.lock);
        int n = netpoll_wait(timers_earliest());
        int64_t next = timers_earliest();
        bool due = next != 0 && next <= ki_nanotime();
        rlock_acquire(&sched.lock);
        sched.netpoll_waiting = false;
        struct p *p = NULL;
        if ((n > 0 || due || sched.runqsize > 0) &&
            !atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed))
            p = pidleget();
        rlock_release(&sched.lock);
        if (p) {
            acquirep(m, p);
            if (n > 1) wakep();
            return true;
        }
        /* Nothing for us, or every P busy (they will find what we queued
         * globally): wait again, or park if nothing is pending now. */
    }
}

/* Stop for stop-the-world: give up the P and park. */
static void gcstopm(struct m *m)
{
    if (m->spinning) {
        m->spinning = false;
        if (atomic_fetch_sub(&sched.nmspinning, 1) <= 0)
            sched_throw("gcstopm: negative nmspinning");
    }
    struct p *p = releasep(m);
    rlock_acquire(&sched.lock);
    atomic_store_explicit(&p->status, P_GCSTOP, memory_order_relaxed);
    if (--sched.stopwait == 0) note_wakeup(&sched.stopnote);
    rlock_release(&sched.lock);
    stopm(m);
}

/* A wired M whose goroutine cannot run: give the P away and sleep until the
 * goroutine is runnable again and someone hands us a P (startlockedm). */
static void stoplockedm(struct m *m)
{
    if (m->p) handoffp(releasep(m));
    rlock_acquire(&sched.lock);
    sched.nmidlelocked++;
    checkdead();
    rlock_release(&sched.lock);
    note_sleep(&m->park); /* startlockedm took us off nmidlelocked */
    note_clear(&m->park);
    acquirep(m, m->nextp);
    m->nextp = NULL;
}

/* gp is wired to another M: give it our P and stop. */
static void startlockedm(struct m *m, struct g *gp)
{
    struct m *owner = gp->lockedm;
    if (owner == m) sched_throw("startlockedm: locked to this M");
    /* Count the owner as running before we go idle ourselves, or checkdead
     * in our stopm sees every M idle while gp is runnable. */
    rlock_acquire(&sched.lock);
    sched.nmidlelocked--;
    rlock_release(&sched.lock);
    owner->nextp = releasep(m);
    note_wakeup(&owner->park);
    stopm(m);
}

/* ---- finding work (on g0) ------------------------------------------------ */

static struct g *steal_work(struct m *m, struct p *p)
{
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    for (int round = 0; round < 4; round++) {
        bool steal_next = round == 3;
        uint32_t start = fastrand(m) % (uint32_t)procs;
        uint32_t step = coprimes[fastrand(m) % ncoprimes];
        /* Victims on our own NUMA node first, then the others. */
        for (int pass = 0; pass < (any_remote_node ? 2 : 1); pass++) {
            uint32_t pos = start;
            for (int32_t i = 0; i < procs; i++, pos = (pos + step) % (uint32_t)procs) {
                if (atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) return NULL;
                struct p *victim = allp[pos];
                if (victim == p || (any_remote_node && (victim->node == p->node) != (pass == 0)))
                    continue;
                struct g *gp = runq_steal(p, victim, steal_next);
                if (gp) return gp;
            }
        }
    }
    return NULL;
}

static struct g *findrunnable(struct m *m, bool *inherit)
{
    struct g *gp;
top:;
    struct p *p = m->p;
    if (atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) {
        gcstopm(m);
        goto top;
    }
    gp = pick_local(p, inherit);
    if (gp) return gp;
    *inherit = false;

    /* Due timers of every P, ours and idle ones (they may ready goroutines,
     * onto our P). */
    if (timers_earliest() != 0) {
        int64_t now = ki_nanotime();
        int32_t nprocs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
        for (int32_t i = 0; i < nprocs; i++)
            timers_run(allp[i], now);
        gp = pick_local(p, inherit);
        if (gp) return gp;
        *inherit = false;
    }

    /* Non-blocking netpoll: submit what our P's goroutines queued and reap
     * its ring (no syscall when nothing is to be submitted). */
    if (netpoll_pending() && netpoll_poll_p(p) > 0) {
        gp = pick_local(p, inherit);
        if (gp) return gp;
        *inherit = false;
    }

    /* Spin (steal) only while spinners are fewer than half the busy Ps: more
     * would burn CPU without finding more work. */
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    if (procs > 1 &&
        (m->spinning || 2 * atomic_load(&sched.nmspinning) < procs - atomic_load(&sched.npidle))) {
        if (!m->spinning) {
            m->spinning = true;
            atomic_fetch_add(&sched.nmspinning, 1);
        }
        gp = steal_work(m, p);
        if (gp) return gp;
    }

    /* Nothing: give up the P (protocol step (a)). */
    rlock_acquire(&sched.lock);
    if (atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) {
        rlock_release(&sched.lock);
        goto top;
    }
    if (sched.runqsize > 0) {
        struct g *batch[RUNQ_LEN / 2];
        int32_t n = globrunq_take_locked(p, batch, 0);
        rlock_release(&sched.lock);
        return globrunq_finish(p, batch, n);
    }
    if (releasep(m) != p) sched_throw("findrunnable: wrong P");
    pidleput(p);
    rlock_release(&sched.lock);

    if (m->spinning) {
        /* Steps (b) and (c): stop spinning, then look once more. */
        m->spinning = false;
        if (atomic_fetch_sub(&sched.nmspinning, 1) <= 0)
            sched_throw("findrunnable: negative nmspinning");
        /* StoreLoad between the decrement and the re-check (a full barrier
         * on x86 already; the C11 model wants the fence). */
        atomic_thread_fence(memory_order_seq_cst);
        bool work = atomic_load(&sched.runqsize) > 0;
        for (int32_t i = 0; i < procs && !work; i++)
            work = !runq_empty(allp[i]);
        if (work) {
            rlock_acquire(&sched.lock);
            p = pidleget();
            rlock_release(&sched.lock);
            if (p) {
                acquirep(m, p);
                m->spinning = true;
                atomic_fetch_add(&sched.nmspinning, 1);
                goto top;
            }
        }
    }
    stopm_timed(m);
    goto top;
}

static _Noreturn void mexit(struct m *m)
{
    if (m->p) handoffp(releasep(m));
    rlock_acquire(&sched.lock);
    sched.mcount--;
    checkdead(); /* we may have been the last M running */
    rlock_release(&sched.lock);
    preempt_alarm_delete(m);
    ki_sigaltstack_free();
    gort__tls_m = NULL;
    pthread_exit(NULL);
}

/* The scheduler loop, on the M's own stack (g0). Each pass first finishes
 * the post-switch action of the goroutine that switched here. */
static _Noreturn void schedule(struct m *m)
{
    for (;;) {
        post_switch(m);
        if (GORT_UNLIKELY(m->exiting)) mexit(m);
        struct g *gp;
        bool inherit = false;
        if (GORT_UNLIKELY(m->lockedg != NULL)) {
            stoplockedm(m);
            gp = m->lockedg;
            if (atomic_load_explicit(&gp->status, memory_order_relaxed) != G_RUNNABLE)
                sched_throw("stoplockedm: locked goroutine not runnable");
        } else {
            if (!m->p) { /* left a blocking region with no P to take */
                stopm(m);
                continue;
            }
            gp = m->nextg;
            if (gp) {
                m->nextg = NULL;
                inherit = m->nextg_inherit;
            } else {
                gp = findrunnable(m, &inherit);
            }
            if (m->spinning) resetspinning(m);
            if (GORT_UNLIKELY(gp->lockedm != NULL)) {
                startlockedm(m, gp);
                continue;
            }
        }
        execute_prep(m, m->p, gp, inherit);
        ctx_switch(&m->g0_sp, FAKE(m), gp->sp, gp->stack_lo, gp->stack_hi);
    }
}

static void m_thread_bounds(struct m *m)
{
    pthread_attr_t a;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &addr, &size) == 0) {
            m->g0_lo = (uintptr_t)addr;
            m->g0_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&a);
    }
}

/* Timed futex waits of runtime threads (timers, the stopper's retries,
 * sysmon) end within 1 us of their deadline instead of the default 50 us
 * slack: a sleeping goroutine wakes on time. */
void sched_thread_timer_slack(void)
{
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
}

static void mstart(void *arg)
{
    struct m *m = arg;
    gort__tls_m = m;
    sched_thread_timer_slack();
    m->tid = ki_gettid();
    m_thread_bounds(m);
    signals_thread_init();
    sigset_t none;
    sigemptyset(&none);
    ki_signals_set_mask(&none);
    struct p *p = m->nextp;
    m->nextp = NULL;
    acquirep(m, p);
    schedule(m);
}

/* ---- deadlock detection (Go's checkdead) -------------------------------- */

static int64_t count_goroutines(void)
{
    int64_t n = atomic_load_explicit(&sched.ngoroutine, memory_order_relaxed);
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    for (int32_t i = 0; i < procs; i++)
        n += atomic_load_explicit(&allp[i]->ngoroutine, memory_order_relaxed);
    return n;
}

void print_all_goroutines(int fd);

/* Whether the process has threads gort did not create: every task in
 * /proc/self/task must be an M (live or exiting: allm keeps them all) or a
 * gort helper thread. Read only on the way to a deadlock verdict (rare);
 * sched.lock held. Unreadable means "assume yes". */
static bool foreign_threads_exist(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return true;
    bool foreign = false;
    struct dirent *e;
    while (!foreign && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        pid_t tid = (pid_t)atoi(e->d_name);
        bool known = tid == sched.trace_tid || tid == sched.sysmon_tid;
        for (struct m *m = allm; m && !known; m = m->alllink)
            known = m->tid == tid;
        foreign = !known;
    }
    closedir(d);
    return foreign;
}

/* sched.lock held. Called whenever an M goes idle: if no M is running, no
 * goroutine can ever run again (nothing is queued, or an M would have taken
 * it; no blocking region is in progress, or its M would count as running). */
static void checkdead(void)
{
    if (!sched.started) return;
    int32_t run = sched.mcount - sched.nmidle - sched.nmidlelocked;
    if (run > 0) return;
    if (run < 0) sched_throw("checkdead: inconsistent M counts");
    /* A pending timer will wake a goroutine (an idle M sleeps until it). */
    if (timers_earliest() != 0) return;
    /* I/O in flight will complete (an M waits for it in the poller). */
    if (netpoll_pending()) return;
    /* A thread gort did not create may still call gort_go or ready someone
     * (Go disables this check in c-shared builds for the same reason). */
    if (foreign_threads_exist()) return;
    if (count_goroutines() == 0 && sched.main_exited)
        gort__fatal("no goroutines (main called gort_exit) - deadlock!");
    gort__fatal("all goroutines are asleep - deadlock!");
}

/* ---- public lifecycle API ----------------------------------------------- */

static struct p *p_new(int32_t id)
{
    struct p *p = aligned_alloc(CACHE_LINE, sizeof *p);
    if (!p) gort__fatal("out of memory (new P)");
    memset(p, 0, sizeof *p);
    p->id = id;
    /* P i takes the node of the i-th usable CPU (round robin over CPUs). */
    int total = 0;
    for (int n = 0; n < cfg.numa.nnodes; n++)
        total += cfg.numa.node[n].ncpus;
    int k = total ? id % total : 0;
    for (int n = 0; n < cfg.numa.nnodes; n++) {
        if (k < cfg.numa.node[n].ncpus) {
            p->node = n;
            break;
        }
        k -= cfg.numa.node[n].ncpus;
    }
    atomic_store_explicit(&p->status, P_GCSTOP, memory_order_relaxed);
    return p;
}

struct mcache **sched_mcache_slot(int *node)
{
    struct m *m = gort_m();
    struct p *p = m ? m->p : NULL;
    *node = p ? p->node : 0;
    return p ? &p->mcache : NULL;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* World stopped (or not yet started). */
static void steal_order_reset(int32_t procs)
{
    ncoprimes = 0;
    for (uint32_t i = 1; i <= (uint32_t)procs; i++)
        if (gcd(i, (uint32_t)procs) == 1) coprimes[ncoprimes++] = i;
    any_remote_node = false;
    for (int32_t i = 1; i < procs; i++)
        if (allp[i]->node != allp[0]->node) any_remote_node = true;
}

/* fork(). Only the forking thread lives on in the child. The prepare
 * handler takes the scheduler's locks (in lock order) so the child copies a
 * consistent state; the parent releases them. The child rebuilds a runtime
 * of one M, the forking thread: other Ms are gone, their Ps go idle with
 * their queued goroutines moved to the global queue (any M started later
 * runs them), and goroutines that were running on other threads at the
 * moment of fork are lost, as their threads are. Channel and semaphore
 * locks held by vanished threads at that instant stay held: fork from a
 * quiet moment, or exec at once (the usual fork-exec needs none of this).
 * Forking from a thread gort did not create leaves a child whose scheduler
 * is unusable until exec. */
static void fork_prepare(void)
{
    /* Timer locks come before sched.lock in the lock order. A timer being
     * queued by a thread that vanishes at fork stays "busy" in the child:
     * stopping or resetting that one timer there would wait forever. */
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++)
        rlock_acquire(&allp[i]->timerlock);
    rlock_acquire(&sched.lock);
    rlock_acquire(&sched.gflock);
    stack_fork_lock();
}

static void fork_parent(void)
{
    stack_fork_unlock(false);
    rlock_release(&sched.gflock);
    rlock_release(&sched.lock);
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = procs - 1; i >= 0; i--)
        rlock_release(&allp[i]->timerlock);
}

static void fork_child(void)
{
    stack_fork_unlock(true);
    atomic_store_explicit(&sched.gflock.key, 0, memory_order_relaxed);
    atomic_store_explicit(&sched.lock.key, 0, memory_order_relaxed);
    atomic_store_explicit(&sched.world_lock.key, 0, memory_order_relaxed);
    sched.world_held = false;
    sched.world_waiters = NULL;
    atomic_store(&sched.gcwaiting, 0);
    sched.stopwait = 0;
    sched.trace_tid = 0;
    sched.sysmon_tid = 0;
    sched.sysmonwait = false;
    note_clear(&sched.sysmonnote);
    struct m *self = gort_m();
    if (!self) return;
    self->tid = ki_gettid();
    atomic_store(&self->preempt_sig, 0); /* pending signals are not inherited */
    preempt_alarm_fork_child(self);
    self->alllink = NULL;
    self->spinning = false;
    self->schedlink = NULL;
    allm = self;
    sched.mcount = 1;
    sched.midle = NULL;
    sched.nmidle = 0;
    sched.nmidlelocked = 0;
    atomic_store(&sched.nmspinning, 0);
    sched.pidle = NULL;
    atomic_store(&sched.npidle, 0);
    sched.timer_sleeper = NULL;
    sched.sleep_until = 0;
    sched.netpoll_waiting = false;
    netpoll_fork_child();
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = procs - 1; i >= 0; i--) {
        struct p *p = allp[i];
        atomic_store_explicit(&p->timerlock.key, 0, memory_order_relaxed);
        if (p == self->p) continue;
        p->m = NULL;
        bool inherit;
        struct g *gp;
        while ((gp = runq_get(p, &inherit)))
            globrunq_put_locked(gp);
        pidleput(p);
    }
}

static void main_goroutine(void *unused)
{
    (void)unused;
    int r = main_args.fn(main_args.argc, main_args.argv);
    exit(r);
}

int gort_main(int (*main_fn)(int, char **), int argc, char **argv)
{
    if (sched.started) gort__fatal("gort_main called twice");
    if (!main_fn) gort__fatal("gort_main: main_fn is NULL");
    config_load();
    stack_init();

    struct m *m = &m0;
    gort__tls_m = m;
    m->tid = ki_gettid();
    m->rand = 0x9e3779b97f4a7c15ULL ^ (uint64_t)ki_nanotime();
    m_thread_bounds(m);
    allm = m;
    sched.mcount = 1;
    signals_init();
    signals_thread_init();
    preempt_init();
    sched_thread_timer_slack();

    int32_t procs = cfg.maxprocs;
    for (int32_t i = 0; i < procs; i++)
        allp[i] = p_new(i);
    atomic_store(&gomaxprocs, procs);
    steal_order_reset(procs);
    for (int32_t i = procs - 1; i > 0; i--)
        pidleput(allp[i]);
    acquirep(m, allp[0]);
    netpoll_init(); /* after acquirep: P 0 gets its ring at once */

    main_args.fn = main_fn;
    main_args.argc = argc;
    main_args.argv = argv;
    struct g *gp = stack_alloc_g(allp[0]->node, true);
    gp->fn = main_goroutine;
    gp->goid = atomic_fetch_add(&sched.goidgen, 1) + 1; /* 1 */
    count_goroutine(allp[0], 1);
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    runq_put(allp[0], gp, true);

    sched.started = true;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (cfg.schedtrace_ms > 0) schedtrace_start();
    sysmon_start();
    schedule(m);
}

static uint64_t goid_next(struct p *p)
{
    if (p->goid_next == p->goid_end) {
        uint64_t start = atomic_fetch_add(&sched.goidgen, GOID_BATCH);
        p->goid_next = start + 1;
        p->goid_end = start + 1 + GOID_BATCH;
    }
    return p->goid_next++;
}

static uint64_t newproc(void (*fn)(void *), void *arg, bool system);

uint64_t gort_go(void (*fn)(void *), void *arg)
{
    return newproc(fn, arg, false);
}

uint64_t sched_go_system(void (*fn)(void *), void *arg)
{
    return newproc(fn, arg, true);
}

static uint64_t newproc(void (*fn)(void *), void *arg, bool system)
{
    if (GORT_UNLIKELY(!sched.started)) gort__fatal("gort_go called before gort_main");
    if (GORT_UNLIKELY(!fn)) gort_panic("gort_go: nil function");
    struct m *m = gort_m();
    struct p *p = m ? m->p : NULL;
    struct g *parent = m ? m->curg : NULL;
    struct g *gp = NULL;
    if (p) {
        gp = gfget(p);
    } else if (atomic_load_explicit(&sched.ngfree, memory_order_relaxed) > 0) {
        rlock_acquire(&sched.gflock);
        gp = gring_pop_tail(&sched.gfree);
        atomic_store_explicit(&sched.ngfree, (int32_t)sched.gfree.n, memory_order_relaxed);
        rlock_release(&sched.gflock);
    }
    if (!gp) gp = stack_alloc_g(p ? p->node : 0, false);
    gp->sp = NULL; /* first frame built when it first runs */
    gp->fn = fn;
    gp->arg = arg;
    gp->parent_goid = parent ? parent->goid : 0;
    gp->lockedm = NULL;
    gp->lockcount = 0;
    gp->waitreason = WAIT_NONE;
    gp->param = NULL;
    gp->defers = NULL;
    gp->trytop = NULL;
    gp->system = system;
    gp->hog = 0;
    /* Not scanned in any cycle yet; made while the collector marks, it
     * counts as scanned and its argument is shaded (gc/roots.c). */
    atomic_store_explicit(&gp->gcscan, 0, memory_order_relaxed);
    if (GORT_UNLIKELY(gort__gc_barrier)) gc_g_created(gp);
    uint64_t id = p ? goid_next(p) : atomic_fetch_add(&sched.goidgen, 1) + 1;
    gp->goid = id;
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    if (p) {
        if (!system) count_goroutine(p, 1);
        runq_put(p, gp, true); /* seq_cst exchange of runnext: fenced */
    } else {
        if (!system) atomic_fetch_add(&sched.ngoroutine, 1);
        globrunq_put(gp);
    }
    wakep_impl(p != NULL);
    return id; /* not gp->goid: gp may already have run and been reused */
}

void gort_yield(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (GORT_UNLIKELY(!gp || !m->p)) {
        sched_yield(); /* outside goroutines, or in a blocking region */
        return;
    }
    /* Nothing else could run here: keep going (no switch). */
    if (runq_empty(m->p) && atomic_load_explicit(&sched.runqsize, memory_order_relaxed) == 0 &&
        !atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed))
        return;
    gsched(gp, POST_YIELD, NULL, NULL);
}

void sched_preempt_yield(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!gp || !m->p || m->locks) return; /* the mark stays for later */
    /* A hog only when asked for its slice or a due timer (sysmon, the
     * alarm), not for a stop-the-world: until it parks or yields (gsched). */
    if (atomic_load_explicit(&gp->preempt, memory_order_relaxed) & PREEMPT_HOG) gp->hog = 1;
    atomic_store_explicit(&gp->preempt, 0, memory_order_relaxed);
    /* Overdue timers first (what sysmon may have preempted us for): the
     * goroutines they wake go to runnext and run before the queue. */
    struct p *p = m->p;
    int64_t w = atomic_load_explicit(&p->timer0when, memory_order_relaxed);
    if (w) {
        int64_t now = ki_nanotime();
        if (w <= now) timers_run(p, now);
    }
    gsched(gp, POST_GLOBAL, NULL, NULL);
}

void gopark(unlock_fn unlockf, void *arg, enum waitreason why)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (GORT_UNLIKELY(!gp))
        gort__fatal("a blocking gort call was made outside a goroutine (call gort_main first)");
    if (GORT_UNLIKELY(!m->p))
        gort__fatal("a blocking gort call was made inside gort_blocking_begin/end");
    gp->waitreason = why;
    gsched(gp, POST_PARK, unlockf, arg);
}

void goready(struct g *gp, bool next)
{
    if (atomic_load_explicit(&gp->status, memory_order_relaxed) != G_WAITING)
        sched_throw("goready: goroutine is not waiting");
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    struct m *m = gort_m();
    bool fenced = false;
    if (m && m->p) {
        runq_put(m->p, gp, next);
        fenced = next; /* runnext is published by a seq_cst exchange */
    } else {
        globrunq_put(gp);
    }
    wakep_impl(fenced);
}

_Noreturn void gort_exit(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!gp) gort__fatal("gort_exit called outside a goroutine");
    if (!m->p) gort__fatal("gort_exit called inside gort_blocking_begin/end");
    /* Go's Goexit runs every deferred call, also those inside gort_try
     * bodies, which are abandoned first: a deferred call that panics now is
     * recovered only by a gort_try of its own, never by an abandoned frame
     * (which would resume a goroutine that is exiting). */
    gp->trytop = NULL;
    if (gp->defers) {
        run_defers(gp, NULL);
        gp = gort_g();
        m = gp->m;
    }
    panic_state_reset(gp);
    if (gp->is_main) {
        rlock_acquire(&sched.lock);
        sched.main_exited = true;
        rlock_release(&sched.lock);
    }
    gsched(gp, POST_EXIT, NULL, NULL);
    sched_throw("gort_exit: dead goroutine resumed");
}

uint64_t gort_self(void)
{
    struct g *gp = gort_g();
    return gp ? gp->goid : 0;
}

int gort_num_goroutine(void)
{
    if (!sched.started) return 0;
    int64_t n = count_goroutines();
    return n < 0 ? 0 : (int)n;
}

int64_t gort_now(void)
{
    return ki_nanotime();
}

void gort_lock_thread(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!gp) return;
    if (gp->lockcount == UINT32_MAX) gort_panic("gort_lock_thread: nested too deeply");
    gp->lockcount++;
    gp->lockedm = m;
    m->lockedg = gp;
}

void gort_unlock_thread(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!gp || gp->lockcount == 0) return;
    if (--gp->lockcount == 0) {
        gp->lockedm = NULL;
        m->lockedg = NULL;
    }
}

/* Blocking regions (Go's entersyscall/exitsyscall). Entering leaves the P
 * in P_SYSCALL, attached to nothing but remembered in m->oldp; leaving
 * CASes it back to P_RUNNING if nobody took it meanwhile. sysmon takes it
 * (CAS to P_IDLE, then handoffp) once the region has lasted a sysmon tick
 * and other work waits for it; a stopper takes it with a CAS to P_GCSTOP.
 * The CAS on the status decides every race between them and the region's
 * end. A short region thus costs two stores and one CAS, no wake-up. */
/* The C half of gort_blocking_begin; the assembly entry (switch.S) has
 * saved the caller's stack pointer and callee-saved registers in the G. */
GORT_HIDDEN void gort__blocking_begin(void);
void gort__blocking_begin(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!gp || m->blocked || !m->p) return;
    /* The region's system calls must not see the alarm's EINTR (poll,
     * nanosleep and epoll_wait are not restarted): disarm it. The G stays
     * a hog; sysmon preempts it if it keeps its P after the region. */
    if (GORT_UNLIKELY(m->alarm_g != NULL)) preempt_alarm_disarm(m);
    m->blocked = true;
    atomic_store_explicit(&gp->status, G_SYSCALL, memory_order_relaxed);
    struct p *p = m->p;
    atomic_store_explicit(&p->syscalltick,
                          atomic_load_explicit(&p->syscalltick, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    p->m = NULL;
    m->p = NULL;
    m->oldp = p;
    /* Release: the P's state (queue, timers are atomics or locked) is
     * published with the status; whoever CASes it away acquires it. No
     * fence against stop_the_world: a stopper that missed this store
     * (store buffer) scans again for P_SYSCALL every 100 us while it
     * waits, so the stop is delayed at most that long, never blocked by
     * the region. Seeing gcwaiting here only hands the P over sooner; both
     * trying is settled by the CAS. */
    atomic_store_explicit(&p->status, P_SYSCALL, memory_order_release);
    if (GORT_UNLIKELY(atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed))) {
        rlock_acquire(&sched.lock);
        uint32_t want = P_SYSCALL;
        if (atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&p->status, &want, P_GCSTOP)) {
            if (--sched.stopwait == 0) note_wakeup(&sched.stopnote);
        }
        rlock_release(&sched.lock);
    }
}

void gort_blocking_end(void)
{
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!gp || !m->blocked) return;
    /* The collector may be scanning our frames above syscallsp (or want
     * them scanned): settle that before they change again. */
    if (GORT_UNLIKELY(gort__gc_barrier)) gc_scan_before_run(gp);
    m->blocked = false;
    struct p *oldp = m->oldp;
    m->oldp = NULL;
    uint32_t want = P_SYSCALL;
    /* Acquire on success: whatever the P's last holder (us, before) wrote
     * is ours again; nobody else held it in between. */
    if (GORT_LIKELY(oldp && atomic_compare_exchange_strong_explicit(&oldp->status, &want, P_RUNNING,
                                                                    memory_order_acquire,
                                                                    memory_order_relaxed))) {
        oldp->m = m;
        m->p = oldp;
        atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
        /* A stop-the-world began meanwhile and counted on this P stopping. */
        if (GORT_UNLIKELY(atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)))
            gsched(gp, POST_YIELD, NULL, NULL);
        return;
    }
    if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) > 0) {
        rlock_acquire(&sched.lock);
        struct p *p =
            atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed) ? NULL : pidleget();
        rlock_release(&sched.lock);
        if (p) {
            acquirep(m, p);
            atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
            return;
        }
    }
    /* No P: queue ourselves globally (after the switch) and park the M. */
    m->post = POST_GLOBAL;
    m->post_g = gp;
    m->curg = NULL;
    ctx_switch(&gp->sp, FAKE(gp), m->g0_sp, m->g0_lo, m->g0_hi);
    post_switch(gort_m());
}

/* ---- stop-the-world and changing gomaxprocs ------------------------------ */

/* One stop-the-world at a time (Go's worldsema): a second stopper would
 * overwrite stopwait and both would sleep forever holding their Ps. The
 * lock parks goroutines, not threads; release hands it to the first waiter. */
struct worldwaiter {
    struct g *g;
    struct worldwaiter *next;
};

static bool unlock_world_lock(struct g *gp, void *arg)
{
    (void)gp;
    rlock_release(arg);
    return true;
}

static void world_lock(void)
{
    rlock_acquire(&sched.world_lock);
    if (!sched.world_held) {
        sched.world_held = true;
        rlock_release(&sched.world_lock);
        return;
    }
    struct worldwaiter w = {gort_g(), NULL}, **pp = &sched.world_waiters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = &w;
    gopark(unlock_world_lock, &sched.world_lock, WAIT_SEMACQUIRE);
    /* world_unlock handed us the lock (world_held stayed true). */
}

static void world_unlock(void)
{
    rlock_acquire(&sched.world_lock);
    struct worldwaiter *w = sched.world_waiters;
    if (w)
        sched.world_waiters = w->next;
    else
        sched.world_held = false;
    rlock_release(&sched.world_lock);
    if (w) goready(w->g, false);
}

/* Stop-the-world: take every P whose M is in a blocking region (sched.lock
 * held). True when that was the last P to stop: the stopper is done. */
static bool take_syscall_ps(void)
{
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++) {
        uint32_t want = P_SYSCALL;
        if (atomic_compare_exchange_strong(&allp[i]->status, &want, P_GCSTOP) &&
            --sched.stopwait == 0)
            return true;
    }
    return false;
}

/* Stop every P but the caller's. Idle Ps and Ps in blocking regions are
 * taken at once; running goroutines are preempted (signal, then the
 * cooperative mark) and stop in the scheduler. The stopper asks again
 * every 100 us until all have stopped: a goroutine inside libc when the
 * signal came stops at the next attempt or at its next gort call. */
#define STOP_SPIN_NS (50 * 1000)

static void stop_the_world(struct m *m)
{
    rlock_acquire(&sched.lock);
    sched.stopwait = atomic_load(&gomaxprocs);
    atomic_store(&sched.gcwaiting, 1); /* seq_cst: see gort_blocking_begin */
    atomic_store_explicit(&m->p->status, P_GCSTOP, memory_order_relaxed);
    sched.stopwait--;
    struct p *p;
    while ((p = pidleget())) {
        atomic_store_explicit(&p->status, P_GCSTOP, memory_order_relaxed);
        sched.stopwait--;
    }
    take_syscall_ps();
    bool wait = sched.stopwait > 0;
    rlock_release(&sched.lock);
    if (wait) {
        preemptall();
        /* Retry soon at first (a goroutine just resumed from a preemption
         * is still in gort's code), then every 100 us as Go does. */
        int64_t retry = 10 * 1000;
        /* The first wait is usually tens of microseconds (a signal and a
         * switch on a busy CPU): watch for it rather than sleep, unless the
         * goroutines we wait for need this CPU. Then retry from 20 us. */
        bool stopped = cfg.ncpu > 1 ? note_tsleep_spin(&sched.stopnote, STOP_SPIN_NS, STOP_SPIN_NS)
                                    : note_tsleep(&sched.stopnote, retry);
        while (!stopped) {
            retry = retry * 2 < 100 * 1000 ? retry * 2 : 100 * 1000; /* 20, 40, 80, 100 us */
            rlock_acquire(&sched.lock);
            bool done = take_syscall_ps();
            rlock_release(&sched.lock);
            if (done) break;
            preemptall();
            stopped = note_tsleep(&sched.stopnote, retry);
        }
        note_clear(&sched.stopnote);
    }
    if (sched.stopwait != 0) sched_throw("stop_the_world: not stopped");
}

/* A P beyond the new gomaxprocs: its work goes to the global lists. */
static void p_destroy(struct p *p)
{
    timers_move(p, allp[0]);
    bool inherit;
    struct g *gp;
    while ((gp = runq_get(p, &inherit)))
        globrunq_put_locked(gp);
    rlock_acquire(&sched.gflock);
    for (int32_t i = 0; i < p->gfree_n; i++)
        gring_push(&sched.gfree, p->gfree[i]);
    atomic_store_explicit(&sched.ngfree, (int32_t)sched.gfree.n, memory_order_relaxed);
    p->gfree_n = 0;
    rlock_release(&sched.gflock);
    atomic_fetch_add(&sched.ngoroutine, atomic_load(&p->ngoroutine));
    atomic_store(&p->ngoroutine, 0);
    p->goid_next = p->goid_end = 0;
    atomic_store_explicit(&p->status, P_DEAD, memory_order_relaxed);
    if (p->mcache) mcache_release(p->mcache), p->mcache = NULL;
}

/* World stopped, sched.lock held. Returns the Ps with queued work, linked
 * through p->link, for the caller to start. */
static struct p *procresize(struct m *m, int32_t n)
{
    int32_t old = atomic_load(&gomaxprocs);
    for (int32_t i = old; i < n; i++) {
        if (!allp[i]) allp[i] = p_new(i);
        atomic_store_explicit(&allp[i]->status, P_GCSTOP, memory_order_relaxed);
    }
    for (int32_t i = n; i < old; i++)
        p_destroy(allp[i]);
    atomic_store(&gomaxprocs, n);
    if (m->p && m->p->id >= n) {
        m->p->m = NULL;
        m->p = NULL;
    }
    if (m->p)
        atomic_store_explicit(&m->p->status, P_RUNNING, memory_order_relaxed);
    else
        acquirep(m, allp[0]);
    sched.pidle = NULL;
    atomic_store(&sched.npidle, 0);
    struct p *runnable = NULL;
    for (int32_t i = n - 1; i >= 0; i--) {
        struct p *p = allp[i];
        if (p == m->p) continue;
        if (runq_empty(p)) {
            pidleput(p);
        } else {
            atomic_store_explicit(&p->status, P_IDLE, memory_order_relaxed);
            p->link = runnable;
            runnable = p;
        }
    }
    steal_order_reset(n);
    return runnable;
}

static void start_the_world(struct m *m, int32_t n)
{
    rlock_acquire(&sched.lock);
    struct p *runnable = procresize(m, n);
    atomic_store(&sched.gcwaiting, 0);
    rlock_release(&sched.lock);
    while (runnable) {
        struct p *p = runnable;
        runnable = p->link;
        p->link = NULL;
        startm(p, false);
    }
    wakep();
}

void sched_stop_world(void)
{
    world_lock();
    stop_the_world(gort_m()); /* world_lock may have parked us: read the M again */
}

void sched_start_world(void)
{
    start_the_world(gort_m(), atomic_load(&gomaxprocs));
    world_unlock();
}

/* For tools/bench/stw: stop and restart the world once (what gort_maxprocs
 * does); returns how long the stop took, ns. From a goroutine. */
int64_t gort__stw_probe(void)
{
    struct m *m = gort_m();
    if (!m || !m->curg || !m->p) return -1;
    world_lock();
    m = gort_m();
    int64_t t0 = ki_nanotime();
    stop_the_world(m);
    int64_t t1 = ki_nanotime();
    start_the_world(m, atomic_load(&gomaxprocs));
    world_unlock();
    return t1 - t0;
}

int gort_maxprocs(int n)
{
    int old = sched.started ? atomic_load(&gomaxprocs) : 0;
    if (!sched.started) {
        if (!cfg.maxprocs) config_load();
        old = cfg.maxprocs;
    }
    if (n <= 0 || n == old) return old;
    if (n > MAX_PROCS) n = MAX_PROCS;
    struct m *m = gort_m();
    if (!m || !m->curg || !m->p)
        gort_panic("gort_maxprocs: changing the number of processors needs a running goroutine");
    world_lock();
    m = gort_m(); /* world_lock may park us */
    old = atomic_load(&gomaxprocs);
    if (n != old) {
        stop_the_world(m);
        start_the_world(m, n);
    }
    world_unlock();
    netpoll_rings_ensure(n); /* rings for new Ps, now rather than at a bad moment */
    return old;
}
