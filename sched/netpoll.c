/* sched/netpoll.c: the poller. io_uring completions (or epoll readiness)
 * become runnable goroutines.
 *
 * io_uring mode (the default where the kernel allows it):
 *   - One ring per P, made on the P's first I/O and kept by P id, so it
 *     moves with the P from M to M and outlives a P that gort_maxprocs
 *     removes (its requests still complete and are reaped; no new ones are
 *     submitted to it until a P of that id exists again).
 *   - Submission: only the M holding the P writes SQEs, without locks
 *     (netpoll_sqe / netpoll_submit). Publishing an SQE is a release store
 *     of the SQ tail; entering the kernel (io_uring_enter) is deferred to the
 *     next scheduler pass of that P so that a batch of goroutines parking on
 *     I/O costs one syscall, except when the caller wants the result at once
 *     or many are waiting. Any thread may enter a ring: the kernel takes
 *     only published SQEs and serialises submitters. sysmon enters rings
 *     whose published SQEs have waited a whole pass (a P running one long
 *     goroutine), so nothing waits for submission longer than ~50 us.
 *   - Reaping: whoever holds a ring's reap flag (an exchange; the owner
 *     almost always gets it uncontended) walks its CQ. No syscall when the
 *     CQ already has entries; NODROP kernels park overflowed CQEs in the
 *     kernel and set IORING_SQ_CQ_OVERFLOW, after which one GETEVENTS enter
 *     flushes them back. The owner reaps in findrunnable (before stealing
 *     or sleeping) and every 32nd switch; the idle waiter and sysmon reap
 *     rings of any P, and queue what they ready globally.
 *   - Sleeping: an idle M with I/O pending, when no other M does, waits in
 *     epoll_pwait2 on every ring's descriptor (readable while its CQ is not
 *     empty) plus an eventfd, with the nearest timer as timeout
 *     (netpoll_wait). It is the only one; other idle Ms sleep on their
 *     futexes. netpoll_break (the eventfd) wakes it; a timer earlier than its
 *     deadline does so too (netpoll_break_for_timer). New runnable work does
 *     not need it: wakep starts another M.
 *   - Cancellation (deadlines, close): a request may sit on the ring of a P
 *     the canceller does not hold. Synchronous cancellation
 *     (IORING_REGISTER_SYNC_CANCEL, Linux 6.0) works from any thread on any
 *     ring; the canceller first enters the ring so that a published but
 *     unsubmitted SQE is in the kernel. An SQE not yet published cannot be
 *     cancelled by anyone but its owner: the iop's stage decides (see
 *     netpoll.h). Cancelled requests still post their CQE, and the goroutine
 *     waits for it, so the kernel never writes into a buffer or iop that is
 *     gone. The same holds when a thread that submitted requests exits (the
 *     kernel cancels them): the CQE says -ECANCELED and netio.c retries.
 *
 *   Rings are COOP_TASKRUN (kernel-iface/uring.c says why). Sockets try
 *   the transfer itself first (netio.c); only one that would wait becomes
 *   a request, so a send with room or a receive with data queued costs one
 *   syscall and posts no completion (which would also wake the waiter).
 *
 *   Rejected: SINGLE_ISSUER/DEFER_TASKRUN (the ring changes threads with
 *   its P); one ring per M (idle Ms
 *   would hold requests nobody reaps); SQPOLL (a kernel thread spinning per
 *   ring costs a CPU on a 2-core machine).
 *
 * epoll mode (GORT_POLLER=epoll, or io_uring unusable): Go's netpoller.
 * Descriptors are registered once, edge-triggered, with their netio.c state
 * as data; netpoll_wait hands readiness to netio_ready, which readies the
 * goroutines waiting on that descriptor. The idle-M protocol is the same.
 *
 * Counting: np.pending counts I/O waits armed and not yet completed (both
 * modes). An M going idle while it is non-zero becomes the waiter unless
 * one exists, so a completion always has someone to notice it: the waiter,
 * a running P's own reaping, or sysmon.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "sched/netpoll.h"

#define RING_SQ_ENTRIES 256
#define RING_CQ_ENTRIES 1024 /* overflow beyond is kept by the kernel (NODROP) */
#define SUBMIT_BATCH    16   /* published SQEs that make the owner enter at once */
#define SYSMON_POLL_NS  (10 * 1000 * 1000)
#define WAIT_EVENTS     128 /* epoll events per netpoll_wait round */
#define EAGER_RINGS     64  /* Ps that get their ring up front; the rest on first I/O */

struct pollring {
    struct io_uring ur;         /* SQ side: the owner P's M only; CQ side: reaping */
    _Atomic uint32_t reaping;   /* CQ consumer lock (exchange) */
    uint32_t sysmon_seen_tail;  /* sysmon only: SQ tail it saw unsubmitted last pass */
    _Atomic uint32_t reaps;     /* walks of the CQ (written by the reap flag's holder) */
    uint32_t sysmon_seen_reaps; /* sysmon only: reaps when it first saw CQEs waiting */
    int64_t sysmon_cqe_since;   /* sysmon only: since when CQEs wait unreaped (0: none) */
    int32_t id;
};

static struct {
    enum netpoll_mode mode;
    int epfd;                   /* rings (io_uring mode) or descriptors (epoll mode), plus wakefd */
    int wakefd;                 /* eventfd: netpoll_break */
    _Atomic uint32_t wake_sent; /* an unconsumed eventfd write exists */
    _Atomic int64_t wait_until; /* deadline of the M in netpoll_wait; 0 none, INT64_MAX forever */
    _Atomic int32_t pending;    /* I/O waits armed, not yet completed */
    _Atomic int64_t lastpoll;   /* when someone last reaped every ring (sysmon) */
    struct ki_uring_features feat;
} np;

/* Rings by P id. A slot is written once, by the first owner of that P id
 * (release), and read by reapers (acquire). */
static struct pollring *_Atomic rings[MAX_PROCS];
static _Atomic int32_t nrings_hint; /* highest ring id + 1 */

static char epoll_tag_wake; /* epoll data of wakefd */

/* ---- set-up ---------------------------------------------------------------- */

void netpoll_init(void)
{
    np.epfd = ki_epoll_create();
    if (np.epfd < 0) gort__fatal("netpoll: epoll_create1 failed (errno %d)", -np.epfd);
    np.wakefd = ki_eventfd();
    if (np.wakefd < 0) gort__fatal("netpoll: eventfd failed (errno %d)", -np.wakefd);
    int r = ki_epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.wakefd, EPOLLIN, &epoll_tag_wake);
    if (r < 0) gort__fatal("netpoll: epoll_ctl(eventfd) failed (errno %d)", -r);
    if (cfg.poller != POLLER_EPOLL && ki_uring_probe(&np.feat) == 0) {
        np.mode = NETPOLL_URING;
    } else if (cfg.poller == POLLER_URING) {
        gort__fatal("GORT_POLLER=io_uring: io_uring is not usable here (errno %d; needs "
                    "Linux 6.0+ and io_uring not disabled by sysctl or seccomp)",
                    -np.feat.err);
    } else {
        np.mode = NETPOLL_EPOLL;
    }
    atomic_store_explicit(&np.lastpoll, ki_nanotime(), memory_order_relaxed);
    netpoll_rings_ensure(atomic_load_explicit(&gomaxprocs, memory_order_relaxed));
}

enum netpoll_mode netpoll_mode(void)
{
    return np.mode;
}

const char *netpoll_mode_name(void)
{
    return np.mode == NETPOLL_URING ? "io_uring" : np.mode == NETPOLL_EPOLL ? "epoll" : "none";
}

bool netpoll_pending(void)
{
    return atomic_load_explicit(&np.pending, memory_order_acquire) > 0;
}

/* Make the ring of P id (any thread): NULL with *err when the kernel
 * refuses one (-EMFILE, -ENOMEM). Two threads may race to make the same
 * one; the CAS publishing it decides, and the loser's ring is dropped. */
static struct pollring *ring_make(int32_t id, int *err)
{
    struct pollring *r = calloc(1, sizeof *r);
    if (!r) {
        *err = -ENOMEM;
        return NULL;
    }
    int e = ki_uring_init(&r->ur, RING_SQ_ENTRIES, RING_CQ_ENTRIES);
    if (e < 0) {
        free(r);
        *err = e;
        return NULL;
    }
    r->id = id;
    struct pollring *none = NULL;
    /* Release: the ring's set-up before its pointer, for reapers. */
    if (!atomic_compare_exchange_strong_explicit(&rings[id], &none, r, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        io_uring_queue_exit(&r->ur);
        free(r);
        return none;
    }
    /* In the epoll set only once published: a wake-up for it finds it. */
    e = ki_epoll_ctl(np.epfd, EPOLL_CTL_ADD, r->ur.ring_fd, EPOLLIN, r);
    if (e < 0) gort__fatal("netpoll: epoll_ctl(ring) failed (errno %d)", -e);
    int32_t n = atomic_load_explicit(&nrings_hint, memory_order_relaxed);
    while (n < id + 1 &&
           !atomic_compare_exchange_weak_explicit(&nrings_hint, &n, id + 1, memory_order_release,
                                                  memory_order_relaxed)) {
    }
    return r;
}

/* The ring of p (the M holding p). Rings are made for the first 64 Ps at start and
 * when gort_maxprocs adds Ps (netpoll_rings_ensure), so that descriptors
 * for them are not needed later, when a server may have used up its limit;
 * one that could not be made then is made here. NULL with *err when the
 * kernel still refuses: the I/O call that needed it fails with that error,
 * as a syscall would, and a later one tries again. */
static struct pollring *ring_of(struct p *p, int *err)
{
    struct pollring *r = atomic_load_explicit(&rings[p->id], memory_order_acquire);
    if (GORT_LIKELY(r)) return r;
    return ring_make(p->id, err);
}

void netpoll_rings_ensure(int32_t n)
{
    if (np.mode != NETPOLL_URING) return;
    if (n > EAGER_RINGS) n = EAGER_RINGS; /* ~36 KiB and a descriptor each */
    for (int32_t i = 0; i < n; i++) {
        int err;
        if (!atomic_load_explicit(&rings[i], memory_order_acquire)) ring_make(i, &err);
    }
}

/* ---- completion ------------------------------------------------------------ */

struct g *iop_complete(struct iop *op, int32_t res, uint32_t flags)
{
    op->res = res;
    op->flags = flags;
    atomic_fetch_sub_explicit(&np.pending, 1, memory_order_relaxed);
    /* acq_rel: release publishes res/flags to the goroutine (its unlockf's
     * failed CAS or its load after waking acquires); acquire pairs with the
     * unlockf's successful CAS, after which the G is G_WAITING and op->g
     * may be read. After this exchange op may be gone unless we saw
     * IOP_PARKED: the goroutine can return as soon as it sees IOP_DONE. */
    uint32_t old = atomic_exchange_explicit(&op->state, IOP_DONE, memory_order_acq_rel);
    return old == IOP_PARKED ? op->g : NULL;
}

static bool iop_park_commit(struct g *gp, void *arg)
{
    (void)gp;
    struct iop *op = arg;
    uint32_t want = IOP_WAIT;
    /* Fails when the completion came first: the goroutine does not park. */
    return atomic_compare_exchange_strong_explicit(&op->state, &want, IOP_PARKED,
                                                   memory_order_acq_rel, memory_order_acquire);
}

void iop_wait(struct iop *op, enum waitreason why)
{
    if (atomic_load_explicit(&op->state, memory_order_acquire) == IOP_DONE) return;
    gopark(iop_park_commit, op, why);
    /* Pairs with iop_complete's release (a readied G is also ordered by
     * the run queue hand-off). */
    (void)atomic_load_explicit(&op->state, memory_order_acquire);
}

void netpoll_inject(struct g *gp)
{
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    struct m *m = gort_m();
    if (m && m->p && !m->blocked)
        runq_put(m->p, gp, false);
    else
        globrunq_put(gp);
}

/* ---- io_uring: submission -------------------------------------------------- */

/* Publish every SQE written so far (owner). Release: the SQEs before the
 * tail, for whichever thread enters the ring next (pairs with the kernel's
 * acquire of the tail). */
static inline void ring_publish(struct pollring *r)
{
    struct io_uring_sq *sq = &r->ur.sq;
    sq->sqe_head = sq->sqe_tail;
    __atomic_store_n(sq->ktail, sq->sqe_tail, __ATOMIC_RELEASE);
}

static inline unsigned ring_unsubmitted(struct pollring *r)
{
    return __atomic_load_n(r->ur.sq.ktail, __ATOMIC_ACQUIRE) -
           __atomic_load_n(r->ur.sq.khead, __ATOMIC_ACQUIRE);
}

static int ring_reap(struct pollring *r);

/* Enter r to submit what is published (any thread). -EBUSY / -EAGAIN (CQ
 * backlog, or no memory for requests) leave the SQEs in place for the next
 * pass; the reaping here makes room. */
static void ring_enter_submit(struct pollring *r)
{
    unsigned n = ring_unsubmitted(r);
    if (!n) return;
    int ret = ki_uring_enter(r->ur.ring_fd, n, 0, 0);
    if (ret == -EBUSY || ret == -EAGAIN) ring_reap(r);
}

struct io_uring_sqe *netpoll_sqe(struct iop *op)
{
    struct m *m = gort_m();
    int err = 0;
    struct pollring *r = ring_of(m->p, &err);
    if (GORT_UNLIKELY(!r)) {
        op->res = err;
        return NULL;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ur);
    while (GORT_UNLIKELY(!sqe)) {
        /* The SQ holds RING_SQ_ENTRIES published requests not yet taken:
         * hand them to the kernel. */
        ring_publish(r);
        ring_enter_submit(r);
        sqe = io_uring_get_sqe(&r->ur);
        if (!sqe) ki_nanosleep(1000); /* kernel out of request memory: rare */
    }
    op->ring = r;
    atomic_store_explicit(&op->state, IOP_WAIT, memory_order_relaxed);
    atomic_store_explicit(&op->stage, IOP_PREP, memory_order_relaxed);
    memset(sqe, 0, sizeof *sqe);
    io_uring_sqe_set_data(sqe, op);
    return sqe;
}

void netpoll_submit(struct iop *op, bool now)
{
    struct pollring *r = op->ring;
    atomic_fetch_add_explicit(&np.pending, 1, memory_order_relaxed);
    ring_publish(r);
    uint32_t want = IOP_PREP;
    /* seq_cst, pairing with netpoll_cancel's CAS: either the canceller sees
     * IOP_LIVE (and our SQE, published above, is there for it to submit
     * and cancel), or we see IOP_CANCEL and cancel it ourselves. */
    if (GORT_UNLIKELY(!atomic_compare_exchange_strong(&op->stage, &want, IOP_LIVE))) {
        struct io_uring_sqe *c = io_uring_get_sqe(&r->ur);
        if (!c) {
            ring_enter_submit(r);
            c = io_uring_get_sqe(&r->ur);
        }
        if (c) {
            io_uring_prep_cancel64(c, (uint64_t)(uintptr_t)op, 0);
            io_uring_sqe_set_data64(c, 0);
            ring_publish(r);
        }
        now = true;
    }
    if (now || ring_unsubmitted(r) >= SUBMIT_BATCH) {
        ring_enter_submit(r);
        /* The request may have completed inline: reap so that the caller
         * finds it done without parking. */
        if (now) {
            struct m *m = gort_m();
            if (m && m->p && io_uring_cq_ready(&r->ur)) netpoll_poll_p(m->p);
        }
    }
}

void netpoll_cancel(struct iop *op)
{
    uint32_t want = IOP_PREP;
    if (atomic_compare_exchange_strong(&op->stage, &want, IOP_CANCEL))
        return; /* not yet published: its owner cancels it (netpoll_submit) */
    if (want != IOP_LIVE) return;
    struct pollring *r = op->ring;
    ring_enter_submit(r); /* published but maybe not yet in the kernel */
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.addr = (uint64_t)(uintptr_t)op;
    /* Bounded: the caller holds locks (a deadline timer runs under its P's
     * timerlock). A request poll-armed on a socket or pipe is cancelled at
     * once; one a kernel worker is executing (a tty read) is signalled and
     * ends soon after; either way its CQE comes, and its goroutine waits
     * for it. -ENOENT / -EALREADY: it completed, or is completing. */
    reg.timeout.tv_sec = 0;
    reg.timeout.tv_nsec = 10 * 1000 * 1000;
    int e = io_uring_register_sync_cancel(&r->ur, &reg);
    (void)e;
}

/* ---- io_uring: reaping ------------------------------------------------------- */

/* Walk r's CQ (whoever gets the reap flag); ready the goroutines through
 * netpoll_inject. Returns how many were readied. */
static int ring_reap(struct pollring *r)
{
    if (atomic_exchange_explicit(&r->reaping, 1, memory_order_acquire)) return 0;
    int n = 0;
    for (;;) {
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&r->ur, head, cqe)
        {
            seen++;
            struct iop *op = io_uring_cqe_get_data(cqe);
            if (!op) continue; /* a cancellation's own CQE */
            struct g *gp = iop_complete(op, cqe->res, cqe->flags);
            if (gp) {
                netpoll_inject(gp);
                n++;
            }
        }
        /* Release: our reads of the CQEs before the kernel may reuse them. */
        io_uring_cq_advance(&r->ur, seen);
        if (GORT_LIKELY(!(IO_URING_READ_ONCE(*r->ur.sq.kflags) & IORING_SQ_CQ_OVERFLOW))) break;
        /* NODROP kept CQEs the full CQ had no room for: bring them in. */
        ki_uring_enter(r->ur.ring_fd, 0, 0, IORING_ENTER_GETEVENTS);
    }
    /* Relaxed: a hint for sysmon, written only under the reap flag. */
    atomic_store_explicit(&r->reaps, atomic_load_explicit(&r->reaps, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&r->reaping, 0, memory_order_release);
    return n;
}

int netpoll_poll_p(struct p *p)
{
    if (np.mode != NETPOLL_URING) return 0;
    struct pollring *r = atomic_load_explicit(&rings[p->id], memory_order_relaxed);
    if (!r) return 0;
    ring_enter_submit(r);
    if (!io_uring_cq_ready(&r->ur)) return 0;
    int n = ring_reap(r);
    if (n > 1) wakep(); /* more than we will run next: let an idle P steal */
    return n;
}

void netpoll_flush(struct p *p)
{
    if (np.mode != NETPOLL_URING) return;
    struct pollring *r = atomic_load_explicit(&rings[p->id], memory_order_acquire);
    if (r) ring_enter_submit(r);
}

/* Enter every ring with published requests not yet submitted (any thread):
 * before the waiter sleeps, nothing may be left where no kernel sees it. */
static void submit_all(void)
{
    int32_t nr = atomic_load_explicit(&nrings_hint, memory_order_acquire);
    for (int32_t i = 0; i < nr; i++) {
        struct pollring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r) ring_enter_submit(r);
    }
}

/* Reap every ring that has completions; with no P, what is readied goes
 * to the global queue. */
static int reap_all(void)
{
    int n = 0;
    int32_t nr = atomic_load_explicit(&nrings_hint, memory_order_acquire);
    for (int32_t i = 0; i < nr; i++) {
        struct pollring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
        if (r && io_uring_cq_ready(&r->ur)) n += ring_reap(r);
    }
    atomic_store_explicit(&np.lastpoll, ki_nanotime(), memory_order_relaxed);
    return n;
}

/* ---- idle waiting -------------------------------------------------------------- */

int netpoll_wait(int64_t until)
{
    int64_t wait = -1;
    atomic_store_explicit(&np.wait_until, until ? until : INT64_MAX, memory_order_seq_cst);
    /* Dekker pair with queue_claimed (timer.c): it pushes its timer, fences
     * and reads wait_until; we stored wait_until and read the timers. */
    int64_t t = timers_earliest();
    if (t && (!until || t < until)) until = t;
    if (until) {
        wait = until - ki_nanotime();
        if (wait < 0) wait = 0;
    }
    int n = 0;
    /* Requests a P published and left behind when it went idle without a
     * scheduler pass (a wired goroutine parked, a blocking region), then
     * completions that came before we got here. */
    if (np.mode == NETPOLL_URING) {
        submit_all();
        n = reap_all();
    }
    if (n) wait = 0;
    struct epoll_event ev[WAIT_EVENTS];
    int k = ki_epoll_wait(np.epfd, ev, WAIT_EVENTS, wait);
    atomic_store_explicit(&np.wait_until, 0, memory_order_relaxed);
    for (int i = 0; i < k; i++) {
        void *data = ev[i].data.ptr;
        if (data == &epoll_tag_wake) {
            uint64_t v;
            ssize_t rr = read(np.wakefd, &v, sizeof v);
            (void)rr;
            atomic_store_explicit(&np.wake_sent, 0, memory_order_release);
        } else if (np.mode == NETPOLL_URING) {
            n += ring_reap(data);
        } else {
            uint32_t e = ev[i].events;
            int dirs = 0;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) dirs |= 1;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) dirs |= 2;
            n += netio_ready(data, dirs);
        }
    }
    atomic_store_explicit(&np.lastpoll, ki_nanotime(), memory_order_relaxed);
    return n;
}

void netpoll_break(void)
{
    /* One eventfd write per wake-up round: the exchange coalesces. */
    if (atomic_exchange_explicit(&np.wake_sent, 1, memory_order_acq_rel)) return;
    uint64_t one = 1;
    ssize_t r = write(np.wakefd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is full, a wake-up is pending anyway */
}

bool netpoll_break_for_timer(int64_t when)
{
    int64_t until = atomic_load_explicit(&np.wait_until, memory_order_seq_cst);
    if (until == 0 || when >= until) return false;
    netpoll_break();
    return true;
}

/* ---- sysmon ---------------------------------------------------------------------- */

void netpoll_sysmon(int64_t now)
{
    if (np.mode == NETPOLL_NONE || !netpoll_pending()) return;
    if (np.mode == NETPOLL_URING) {
        /* Requests published before our last pass and still not entered:
         * their P is busy with one goroutine. Enter them for it. */
        int32_t nr = atomic_load_explicit(&nrings_hint, memory_order_acquire);
        for (int32_t i = 0; i < nr; i++) {
            struct pollring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
            if (!r) continue;
            unsigned tail = __atomic_load_n(r->ur.sq.ktail, __ATOMIC_ACQUIRE);
            unsigned head = __atomic_load_n(r->ur.sq.khead, __ATOMIC_ACQUIRE);
            if (tail != head && (int)(r->sysmon_seen_tail - head) > 0) ring_enter_submit(r);
            r->sysmon_seen_tail = tail;
        }
    }
    if (np.mode == NETPOLL_URING) {
        /* Completions that nobody has reaped for 10 ms: their P is busy
         * with one goroutine and no M waits. Per ring, not "every ring
         * polled lately": a busy P reaps its own ring often, and taking
         * its completions to the global queue (we hold no P) would park
         * them behind a local queue that it keeps refilling, where only
         * every 61st pick looks (seen: echo round trips 500 ms late). */
        int32_t nr = atomic_load_explicit(&nrings_hint, memory_order_acquire);
        int n = 0;
        for (int32_t i = 0; i < nr; i++) {
            struct pollring *r = atomic_load_explicit(&rings[i], memory_order_acquire);
            if (!r) continue;
            if (!io_uring_cq_ready(&r->ur)) {
                r->sysmon_cqe_since = 0;
                continue;
            }
            uint32_t reaps = atomic_load_explicit(&r->reaps, memory_order_relaxed);
            if (!r->sysmon_cqe_since || reaps != r->sysmon_seen_reaps) {
                r->sysmon_cqe_since = now;
                r->sysmon_seen_reaps = reaps;
            } else if (now - r->sysmon_cqe_since >= SYSMON_POLL_NS) {
                n += ring_reap(r);
                r->sysmon_cqe_since = 0;
            }
        }
        if (n > 0) wakep();
        return;
    }
    int64_t last = atomic_load_explicit(&np.lastpoll, memory_order_relaxed);
    if (now - last < SYSMON_POLL_NS) return;
    if (atomic_load_explicit(&np.wait_until, memory_order_relaxed) != 0) return; /* someone waits */
    {
        struct epoll_event ev[WAIT_EVENTS];
        int k = ki_epoll_wait(np.epfd, ev, WAIT_EVENTS, 0);
        for (int i = 0; i < k; i++) {
            void *data = ev[i].data.ptr;
            if (data == &epoll_tag_wake) continue; /* level-triggered: left for the waiter */
            uint32_t e = ev[i].events;
            int dirs = 0;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) dirs |= 1;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) dirs |= 2;
            netio_ready(data, dirs);
        }
        atomic_store_explicit(&np.lastpoll, now, memory_order_relaxed);
        if (k > 0) wakep();
    }
}

/* ---- epoll mode ---------------------------------------------------------------------- */

int netpoll_epoll_add(int fd, void *data)
{
    return ki_epoll_ctl(np.epfd, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                        data);
}

void netpoll_arm(void)
{
    atomic_fetch_add_explicit(&np.pending, 1, memory_order_relaxed);
}

void netpoll_fork_child(void)
{
    if (np.mode == NETPOLL_NONE) return;
    /* The rings' memory is shared with the parent (MAP_SHARED): unmap our
     * view and close our descriptors; the parent's requests are its own.
     * Goroutines that were waiting on I/O in the parent never wake here
     * (only the forking goroutine runs on in the child, as after fork(2)
     * in Go's syscall.ForkExec). */
    for (int32_t i = 0; i < MAX_PROCS; i++) {
        struct pollring *r = atomic_load_explicit(&rings[i], memory_order_relaxed);
        if (!r) continue;
        io_uring_queue_exit(&r->ur);
        free(r);
        atomic_store_explicit(&rings[i], NULL, memory_order_relaxed);
    }
    atomic_store_explicit(&nrings_hint, 0, memory_order_relaxed);
    close(np.epfd);
    close(np.wakefd);
    atomic_store_explicit(&np.pending, 0, memory_order_relaxed);
    atomic_store_explicit(&np.wait_until, 0, memory_order_relaxed);
    atomic_store_explicit(&np.wake_sent, 0, memory_order_relaxed);
    netpoll_init();
}
