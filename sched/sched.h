/* sched/sched.h: the scheduler's private structures (G, M, P and the global
 * scheduler state) and the small inline helpers every sched/ file uses.
 *
 * The model is Go's (runtime2.go, proc.go):
 *   G  a goroutine: a stack, a saved stack pointer and a status.
 *   M  an OS thread. Its own thread stack is its "g0" context, on which the
 *      scheduler loop runs (findrunnable, parking).
 *   P  a processor: the right to run goroutine code, with a local run queue,
 *      a runnext slot and free lists. There are gomaxprocs Ps.
 * Invariant: an M runs goroutine code only while it holds a P (the one
 * exception is a goroutine inside a blocking region, which holds an M and no P).
 *
 * Switching. A goroutine that yields, parks or exits switches directly to the
 * next goroutine of its P when there is one (one register swap, no detour
 * through g0), and to its M's g0 context otherwise. Either way the old
 * goroutine is not published (put on a run queue, marked waiting, freed) until
 * after the switch, by the context that resumes: see "post-switch actions" in
 * proc.c. So no other M can resume a goroutine whose stack is still in use.
 *
 * Reading the current M. A goroutine can move between threads at any switch,
 * so the address of a thread-local variable is not constant within one C
 * function. gort_m() reads the TLS slot with a volatile asm that the compiler
 * can neither cache nor move across a call; nothing in gort keeps a TLS
 * address across a switch point.
 *
 * Lock order (outer first): sched.world_lock > p->timerlock (timer functions
 * run under it and may take the rest) > sema bucket locks, channel locks >
 * sched.lock > sched.gflock > stack allocator lock. Locks handed to
 * gopark's unlockf stay held across the switch, and the switch may take
 * sched.lock (global queue), so none of those may be taken while holding
 * sched.lock. procresize takes timer locks under sched.lock, which is safe
 * only because the world is stopped then and no timer function can run.
 */
#ifndef GORT_SCHED_H
#define GORT_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gort.h"
#include "kernel-iface/ki.h"

#define GORT_LIKELY(x)   __builtin_expect(!!(x), 1)
#define GORT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GORT_NOINLINE    __attribute__((noinline))
#define GORT_HIDDEN      __attribute__((visibility("hidden")))
#define CACHE_LINE       64

#if defined(__SANITIZE_ADDRESS__) || defined(GORT_SANITIZE)
#define GORT_ASAN 1
#else
#define GORT_ASAN 0
#endif

#define MAX_PROCS       1024 /* upper bound of gomaxprocs (Go's _MaxGomaxprocs) */
#define RUNQ_LEN        256  /* local run queue slots; a power of two */
#define MAX_THREADS     10000
#define GFREE_LOCAL_MAX 64 /* a P keeps at most this many dead Gs */
#define GFREE_BATCH     32 /* moved to/from the global free list at once */
#define GOID_BATCH      16 /* goroutine ids a P takes from the global counter */

struct m;
struct p;
struct mcache;
struct gcwork;

/* ---- runtime lock and note (lock.c) ----------------------------------- */

/* A futex mutex for runtime-internal state: a short spin, then sleep. Holding
 * one forbids switching goroutines (the holder must not park). */
struct rlock {
    _Atomic uint32_t key; /* 0 free, 1 held, 2 held with sleepers */
};
void rlock_acquire(struct rlock *l);
void rlock_release(struct rlock *l);

/* A one-shot wake-up for one sleeping thread (Go's note): notewakeup may come
 * before or after notesleep; notesleep returns once it has come. Clear before
 * reuse, while nobody sleeps on it. */
struct note {
    _Atomic uint32_t key; /* 0 not yet woken, 1 woken */
};
void note_sleep(struct note *n);
/* Sleep at most ns; true when woken, false on timeout. */
bool note_tsleep(struct note *n, int64_t ns);
/* note_tsleep, watching the note for up to spin_ns first (included in ns):
 * for a wake-up due within microseconds, when a futex sleep would cost more
 * than the wait (an idle CPU's wake-up from halt takes tens of us in a VM). */
bool note_tsleep_spin(struct note *n, int64_t spin_ns, int64_t ns);
void note_wakeup(struct note *n);
static inline void note_clear(struct note *n)
{
    atomic_store_explicit(&n->key, 0, memory_order_relaxed);
}

/* ---- G ---------------------------------------------------------------- */

/* Goroutine states, with who owns the G in each (Go's _G* states). */
enum gstatus {
    G_IDLE,     /* just allocated; owned by its allocator */
    G_RUNNABLE, /* on a run queue; does not own its stack; not running */
    G_RUNNING,  /* owns its stack; g->m set and that M holds a P */
    G_SYSCALL,  /* in a blocking region: owns its stack and an M, no P */
    G_WAITING,  /* parked; whoever holds it on a wait queue may ready it */
    G_DEAD,     /* finished; on a free list; its stack is reusable */
};

enum waitreason {
    WAIT_NONE,
    WAIT_SEMACQUIRE, /* "semacquire" */
    WAIT_WAITGROUP,  /* "sync.WaitGroup.Wait" */
    WAIT_LOCKED_THREAD,
    WAIT_TEST,           /* tests' own park */
    WAIT_CHAN_SEND,      /* "chan send" */
    WAIT_CHAN_RECV,      /* "chan receive" */
    WAIT_CHAN_SEND_NIL,  /* "chan send (nil chan)" */
    WAIT_CHAN_RECV_NIL,  /* "chan receive (nil chan)" */
    WAIT_SELECT,         /* "select" */
    WAIT_SELECT_NOCASES, /* "select (no cases)" */
    WAIT_SYNC_MUTEX,     /* "sync.Mutex.Lock" */
    WAIT_SYNC_RWMUTEX_R, /* "sync.RWMutex.RLock" */
    WAIT_SYNC_RWMUTEX_W, /* "sync.RWMutex.Lock" */
    WAIT_SYNC_COND,      /* "sync.Cond.Wait" */
    WAIT_SLEEP,          /* "sleep" */
    WAIT_IO,             /* "IO wait" */
    WAIT_FINALIZER,      /* "finalizer wait" */
    WAIT_GC_IDLE,        /* "GC worker (idle)": the collector's goroutine */
    WAIT_GC_CYCLE,       /* "GC sweep wait": gort_gc waiting for its cycle */
};

/* Gs are packed in slabs apart from their stacks (stack.c). Fields used by
 * the switch path come first. */
struct g {
    void *sp;    /* saved stack pointer while not running; NULL: never ran
                    (stack_prepare builds the first frame when it first runs) */
    struct m *m; /* the M running it; NULL when not running */
    _Atomic uint32_t status;
    uint32_t waitreason; /* enum waitreason while G_WAITING */
    uint64_t goid;
    uintptr_t stack_lo; /* usable stack is [stack_lo, stack_hi) */
    uintptr_t stack_hi;
    uintptr_t guard_lo; /* guard region [guard_lo, stack_lo); empty when none */
    void (*fn)(void *);
    void *arg;
    struct m *lockedm;  /* set by gort_lock_thread */
    uint32_t lockcount; /* gort_lock_thread nesting */
    uint16_t node;      /* NUMA node of the stack */
    uint8_t is_main;
    uint8_t unguarded; /* no guard page: a canary at stack_lo is checked */
    uint64_t parent_goid;
    int64_t waitsince; /* reserved: when it parked (a coarse clock, later) */
    void *param;       /* wake-up data from the readier (select: the winning case) */
    /* panics (panic.c); touched only by the goroutine itself */
    struct defer_rec *defers;    /* gort_defer calls, newest first */
    struct try_frame *trytop;    /* innermost gort_try on this stack */
    struct panic_rec *panics;    /* panics in progress, newest first */
    char *recovered;             /* text of the last panic gort_try recovered */
    _Atomic uint32_t selectdone; /* a select's first waker CASes 0 -> 1 (sync/chan.c) */
    /* Preemption request (preempt.c, PREEMPT_* bits): set by sysmon, the
     * alarm or a stopper, cleared by the goroutine when it yields to it and
     * whenever it starts running. */
    _Atomic uint32_t preempt;
    /* The collector (gc/roots.c): scanned this cycle iff gcscan == the
     * cycle's scan generation; generation + 1 while someone scans it. Set to
     * 0 (never a generation) when the G is (re)created. CAS by the scanner
     * and by whoever is about to run the G (execute_prep, blocking_end). */
    _Atomic uint32_t gcscan;
    uint8_t system; /* a runtime goroutine (the collector's): not counted */
    /* Preempted at its last run and not parked or yielded since: likely to run long
     * again, so the M that runs it arms its preemption alarm (preempt.c).
     * Touched only by the M running the G. */
    uint8_t hog;
    /* In a blocking region: the caller's stack pointer at
     * gort_blocking_begin and its callee-saved registers (rbx, rbp,
     * r12-r15), saved by the assembly entry (switch.S) for the collector,
     * which scans [syscallsp, stack_hi) while the region runs. */
    uintptr_t syscallsp;
    uintptr_t syscallregs[6];
#if GORT_ASAN
    void *asan_fake_stack;
#endif
};
#define G_OFF_SYSCALLSP 160 /* offsetof(struct g, syscallsp), for switch.S */
#define M_OFF_CURG      8   /* offsetof(struct m, curg), for switch.S */

/* ---- M ---------------------------------------------------------------- */

/* What the context that resumes after a switch must do with the G that
 * switched away (proc.c, post_switch). */
enum post_action {
    POST_NONE,
    POST_YIELD,  /* requeue at the tail of the local run queue */
    POST_PARK,   /* mark waiting, then call unlockf(g, arg) */
    POST_EXIT,   /* free the G (and its stack) */
    POST_GLOBAL, /* queue on the global run queue (left a blocking region, no P) */
};

typedef bool (*unlock_fn)(struct g *gp, void *arg);

struct m {
    void *g0_sp;     /* saved stack pointer of the scheduler context */
    struct g *curg;  /* running goroutine; NULL while on g0 */
    struct p *p;     /* attached P, or NULL */
    struct p *nextp; /* P handed over by startm, taken after waking */
    /* post-switch action, set by the G switching away and consumed by
     * whoever resumes on this M (same thread, so no atomics) */
    uint8_t post;
    struct g *post_g;
    unlock_fn post_unlockf;
    void *post_arg;
    struct g *nextg; /* a G the fast path dequeued but g0 must run */
    bool nextg_inherit;

    bool spinning;  /* looking for work; counted in sched.nmspinning */
    bool blocked;   /* in a blocking region */
    bool exiting;   /* a locked goroutine exited: the thread ends */
    uint32_t locks; /* sched_proc_pin depth: no preemption while > 0 */
    struct p *oldp; /* the P left in P_SYSCALL by a blocking region */
    /* 1 while a preemption SIGURG sent to this thread is undelivered: set by
     * the sender, exchanged to 0 by the handler (one signal in flight). */
    _Atomic uint32_t preempt_sig;
    /* The preemption alarm (preempt.c): a kernel timer that sends SIGURG to
     * this thread alone, armed while it runs a hog, for the end of its slice
     * or its P's earliest timer. Owned by this thread; its handler reads
     * alarm_g and alarm_at (same thread: signal fences suffice). */
    uint8_t alarm_state; /* ALARM_NONE, ALARM_READY, ALARM_FAILED */
    int alarm_id;        /* kernel timer id while ALARM_READY */
    int64_t alarm_at;    /* when it is armed to fire; 0: disarmed */
    struct g *alarm_g;   /* the goroutine it was armed for */
    struct g *lockedg;   /* goroutine wired to this thread */
    struct note park;    /* sleeps here when idle */
    struct m *schedlink; /* idle M list; protected by sched.lock */
    struct m *alllink;   /* all Ms ever made; append-only */
    int64_t id;
    pid_t tid;
    uint64_t rand;          /* per-M random state (steal order) */
    uintptr_t g0_lo, g0_hi; /* thread stack bounds */
#if GORT_ASAN
    void *asan_fake_stack;
#endif
};

/* ---- P ---------------------------------------------------------------- */

enum pstatus {
    P_IDLE,    /* on the idle list, no M */
    P_RUNNING, /* owned by an M running Go code or the scheduler */
    P_GCSTOP,  /* stopped for stop-the-world */
    P_DEAD,    /* beyond gomaxprocs */
    P_SYSCALL, /* its M is in a blocking region (m->oldp); no M attached. The M
                  CASes it back to P_RUNNING on leaving; sysmon or a stopper
                  may CAS it to P_IDLE / P_GCSTOP first and take it. */
};

struct p {
    /* Run queue: single producer (the owner), many consumers (owner and
     * thieves). head..tail are the queued entries; tail - head <= RUNQ_LEN. */
    _Atomic uint32_t runqhead __attribute__((aligned(CACHE_LINE))); /* CAS by owner and thieves */
    _Atomic uint32_t runqtail;   /* stored only by the owner (release); read by thieves */
    _Atomic(struct g *) runnext; /* owner exchanges; thieves CAS to NULL */
    _Atomic(struct g *) runq[RUNQ_LEN];

    /* Owner-only fields (the M holding the P), unless noted. */
    int32_t id __attribute__((aligned(CACHE_LINE)));
    int32_t node;
    _Atomic uint32_t status; /* written under sched.lock or by the owner */
    struct m *m;             /* owning M, or NULL */
    struct p *link;          /* idle list; protected by sched.lock */
    uint32_t schedtick;      /* a G started a new slice; owner stores with __atomic relaxed */
    int32_t gfree_n;         /* dead Gs with stacks, most recent last */
    struct g *gfree[GFREE_LOCAL_MAX];
    uint64_t goid_next, goid_end; /* goroutine id cache [next, end) */
    _Atomic int64_t ngoroutine;   /* created here minus exited here (owner writes) */

    /* Timers (timer.c): a 4-ary min-heap by when. Any M holding some P may
     * run another P's due timers (an idle P's timers must still fire). */
    struct rlock timerlock; /* protects timers, ntimers, timerscap, each t->idx */
    struct timer **timers;
    int32_t ntimers, timerscap;
    _Atomic int64_t timer0when; /* earliest when, 0 when empty; written under timerlock */
    uint32_t timerpoll;         /* owner: counts fast-path checks */
    uint32_t runnext_streak;    /* owner: consecutive picks from runnext */
    uint32_t netpolltick;       /* owner: counts resumptions for timer_poll's I/O check */
    /* Blocking regions entered (owner stores, relaxed; sysmon samples it,
     * as it samples schedtick, to see whether the P moved on). */
    _Atomic uint32_t syscalltick;

    /* Allocator cache (mem/): created lazily by mem/ through sched_mcache_slot,
     * used only by the M holding the P, released by p_destroy. */
    struct mcache *mcache;
    /* The collector's mark work buffer of this P (gc/mark.c): used only by
     * the M holding the P (write barrier, assists, stack scans). */
    struct gcwork *gcw;
};
_Static_assert(offsetof(struct p, runqhead) % CACHE_LINE == 0, "run queue on its own line");

/* ---- global scheduler state (proc.c) ---------------------------------- */

/* A growable ring of G pointers, for the global run queue and free list.
 * Arrays, not lists threaded through the Gs: whoever holds the lock copies
 * pointers and never touches a G, whose cache line is likely on another
 * core. Protected by the lock of the structure that embeds it. */
struct gring {
    struct g **v;
    uint32_t head, n, cap; /* cap is 0 or a power of two */
};
void gring_push(struct gring *r, struct g *gp);
struct g *gring_pop_head(struct gring *r);
struct g *gring_pop_tail(struct gring *r);

struct sched {
    struct rlock lock;          /* protects the fields below unless noted */
    struct m *midle;            /* idle Ms */
    int32_t nmidle;             /* Ms on midle */
    int32_t nmidlelocked;       /* Ms parked waiting for their locked G */
    int32_t mcount;             /* Ms created and not exited */
    struct p *pidle;            /* idle Ps */
    _Atomic int32_t npidle;     /* written under lock; read anywhere */
    _Atomic int32_t nmspinning; /* atomic; see the wake-up protocol in proc.c */
    struct gring runq;          /* global run queue (FIFO) */
    _Atomic int32_t runqsize;   /* runq.n; written under lock, read anywhere as a hint */

    struct rlock gflock;    /* protects gfree */
    struct gring gfree;     /* dead Gs (LIFO: the most recently freed is the warmest) */
    _Atomic int32_t ngfree; /* gfree.n as a lock-free hint */

    _Atomic uint32_t gcwaiting; /* stop-the-world requested */
    int32_t stopwait;           /* Ps still to stop */
    struct note stopnote;       /* the stopper sleeps here */

    _Atomic uint64_t goidgen;   /* last goroutine id handed out */
    _Atomic int64_t ngoroutine; /* counts of foreign spawns and destroyed Ps */
    pid_t trace_tid;            /* the schedtrace thread (not an M), or 0 */
    struct m *timer_sleeper;    /* idle M sleeping until sleep_until (the next timer) */
    int64_t sleep_until;
    bool world_held; /* stop-the-world in progress (world_lock) */
    struct worldwaiter *world_waiters;
    struct rlock world_lock; /* protects world_held, world_waiters */
    bool main_exited;        /* main goroutine called gort_exit */
    bool sysmonwait;         /* sysmon sleeps until a P leaves the idle list (lock) */
    struct note sysmonnote;  /* ... here */
    pid_t sysmon_tid;        /* the sysmon thread (not an M), or 0 */
    bool started;
    bool netpoll_waiting; /* an M is in netpoll_wait (lock) */
};

extern struct sched sched;
extern struct p *allp[MAX_PROCS];
extern _Atomic int32_t gomaxprocs;
extern struct m *allm; /* protected by sched.lock (append-only) */

/* Configuration, fixed after start (env.c). */
struct config {
    int maxprocs;
    int ncpu;          /* CPUs this process may use, read once at start */
    size_t stack_size; /* usable bytes per goroutine stack */
    int schedtrace_ms; /* 0: off */
    bool scheddetail;
    bool asyncpreemptoff; /* GORT_DEBUG=asyncpreemptoff=1 */
    bool preemptalarmoff; /* GORT_DEBUG=preemptalarmoff=1: sysmon alone preempts */
    int64_t timeslice_ns; /* GORT_TIMESLICE */
    int poller;           /* GORT_POLLER: POLLER_AUTO, POLLER_URING, POLLER_EPOLL */
    int gc_percent;       /* GORT_GC: -1 off */
    int64_t gc_memlimit;  /* GORT_MEMLIMIT: INT64_MAX none */
    bool gctrace, gccheckmark, gcstoptheworld; /* GORT_DEBUG */
    struct ki_numa numa;
};
extern struct config cfg;
enum { POLLER_AUTO, POLLER_URING, POLLER_EPOLL };
/* Parse the GORT_* environment into cfg. On a bad value prints a message
 * naming the variable and exits with status 2. */
void config_load(void);

/* ---- current M -------------------------------------------------------- */

extern __thread struct m *gort__tls_m __attribute__((tls_model("initial-exec")));

/* The M running the caller, or NULL on a thread gort did not create. The
 * volatile asm is re-executed at every call, so a goroutine that moved to
 * another thread since its last read sees its new M. */
static inline struct m *gort_m(void)
{
    struct m *m;
    __asm__ volatile("movq gort__tls_m@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(m));
    return m;
}

static inline struct g *gort_g(void)
{
    struct m *m = gort_m();
    return m ? m->curg : NULL;
}

/* ---- context switch (switch.S) ---------------------------------------- */

/* Save callee-saved registers, MXCSR and the x87 control word on the current
 * stack, store the stack pointer in *save_sp, then load load_sp and restore
 * the same from there. Returns when something switches back to *save_sp. */
void gort__ctx_switch(void **save_sp, void *load_sp);
/* Abandon the current stack; start a fresh goroutine whose stack top is
 * stack_top (possibly the current stack's). Never returns. */
_Noreturn void gort__ctx_restart(void *stack_top);
/* First instruction a new goroutine runs (its initial frame returns here). */
void gort__gstart(void);

/* ---- run queues (runq.c) ---------------------------------------------- */

/* Queue gp on p (owner only). next: put it in runnext, kicking the old
 * runnext to the tail. A full queue moves half of itself plus gp to the
 * global queue. */
void runq_put(struct p *p, struct g *gp, bool next);
/* Dequeue (owner only): runnext first, then the head. *inherit tells whether
 * the G came from runnext (it inherits the current time slice). */
struct g *runq_get(struct p *p, bool *inherit);
/* Dequeue from the head only, leaving runnext alone (owner only). */
struct g *runq_get_head(struct p *p);
/* runq_put at the tail, inline: one acquire load, two stores (see runq.c
 * for the ordering argument); the full-queue case goes out of line. */
void runq_put_tail_slow(struct p *p, struct g *gp);
static inline void runq_put_tail(struct p *p, struct g *gp)
{
    uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
    if (GORT_UNLIKELY(t - h >= RUNQ_LEN)) {
        runq_put_tail_slow(p, gp);
        return;
    }
    atomic_store_explicit(&p->runq[t % RUNQ_LEN], gp, memory_order_relaxed);
    /* Release: publishes the slot; pairs with runq_grab's acquire. */
    atomic_store_explicit(&p->runqtail, t + 1, memory_order_release);
}
/* Steal half of victim's queue into p's (p's queue must be empty); returns
 * one stolen G to run and queues the rest on p. steal_next: also take
 * victim's runnext when its queue is empty. */
struct g *runq_steal(struct p *p, struct p *victim, bool steal_next);
static inline uint32_t runq_len(struct p *p)
{
    uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_acquire);
    return t - h;
}
/* Consistent snapshot (Go's runqempty): between reading the queue and
 * runnext, the owner may move runnext to the tail and take a new one; a
 * tail unchanged across the runnext read rules that out. */
static inline bool runq_empty(struct p *p)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_acquire);
        struct g *next = atomic_load_explicit(&p->runnext, memory_order_acquire);
        if (t == atomic_load_explicit(&p->runqtail, memory_order_acquire)) return h == t && !next;
    }
}
/* Global queue. _locked: sched.lock held. */
void globrunq_put_locked(struct g *gp);
void globrunq_put(struct g *gp);
/* Copy up to max Gs (0: no limit but a fair share and the room in p's local
 * queue) into out[0..n); returns n. */
int32_t globrunq_take_locked(struct p *p, struct g **out, int32_t max);
/* After globrunq_take_locked and unlocking: queue out[1..n) on p, return
 * out[0]. */
struct g *globrunq_finish(struct p *p, struct g **out, int32_t n);
/* Lock, take, unlock, finish. NULL when the global queue is empty. */
struct g *globrunq_get(struct p *p, int32_t max);

/* ---- stacks and G allocation (stack.c) -------------------------------- */

void stack_init(void);
/* A new G with a stack on NUMA node `node` (main: the main goroutine's
 * larger stack). Never fails: out of memory is fatal. */
struct g *stack_alloc_g(int node, bool main);
/* The G whose guard region contains addr, among those running on m; for the
 * fault handler (signal-safe). */
bool stack_addr_in_guard(const struct g *gp, uintptr_t addr);
/* Build the first frame on a fresh or reused G's stack so that switching to
 * it runs gort__gstart with an empty frame chain. Called by the M about to
 * run it for the first time (gp->sp == NULL), so the stack is touched only
 * by the thread that uses it. */
void stack_prepare(struct g *gp);
/* Exchange the stacks of a dead G and a G that has never run (stack.c). */
void stack_swap(struct g *a, struct g *b);
void stack_fork_lock(void);
void stack_fork_unlock(bool child);
/* All Gs ever made (a snapshot: the table only grows). */
size_t stack_allgs(struct g ***out);
#define STACK_CANARY 0x60a7c0ffee15dead

/* ---- proc.c entry points used by other files -------------------------- */

/* Park the calling goroutine. After it has switched away, unlockf(g, arg)
 * runs on the new context; returning false puts the G straight back on the
 * run queue (it is then not parked). Returns when readied. */
void gopark(unlock_fn unlockf, void *arg, enum waitreason why);
/* Make a waiting G runnable on the caller's P (runnext when next), waking an
 * idle P if one exists. Callable from any thread, also one gort did not
 * create. */
void goready(struct g *gp, bool next);
void wakep(void);
_Noreturn void sched_throw(const char *msg);

/* ---- timers (timer.c) ------------------------------------------------- */

/* A runtime timer. f runs when the timer fires, on whatever M is running
 * the scheduler then, with the owning P's timerlock held: it must be short,
 * must not block, and must not touch timers of that P (it may ready
 * goroutines, spawn them, or do non-blocking channel operations). A
 * periodic timer (period > 0) stays queued and fires every period. */
struct timer {
    int64_t when;
    int64_t period;
    void (*f)(void *arg, int64_t now);
    void *arg;
    _Atomic(struct p *) pp; /* heap holding it, or NULL; changed under pp->timerlock */
    int32_t idx;            /* index in pp's heap */
};
/* Queue t to fire at when (gort_now clock). t must not be visible to other
 * threads yet (a new timer); re-arming a shared one is timer_reset's job. */
void timer_add(struct timer *t, int64_t when);
/* Take t off its heap; true when it was queued (had not fired). */
bool timer_del(struct timer *t);
/* Fire t at when instead: moved in place if queued, queued if not; true when
 * it was queued. Safe against concurrent resets and deletes of the same t. */
bool timer_reset(struct timer *t, int64_t when);
/* Run pp's due timers (the caller holds a P); returns pp's next when, or 0. */
int64_t timers_run(struct p *pp, int64_t now);
/* Earliest pending when over all Ps, 0 when none (lock-free snapshot). */
int64_t timers_earliest(void);
/* Move every timer of a P being destroyed to `to` (world stopped). */
void timers_move(struct p *from, struct p *to);

/* ---- preemption (preempt.c) and sysmon (sysmon.c) ------------------- */

/* Find user code ranges and the register save size, install the SIGURG
 * handler (keeping a handler the program installed before, to forward its
 * signals to). Once, from gort_main, before any M but m0 exists. */
void preempt_init(void);
/* g->preempt bits: PREEMPT_ASK asks the goroutine to yield; PREEMPT_HOG
 * says why: its slice is over or a timer of its P is due (sysmon, the
 * alarm), which makes it a hog (g->hog) once it yields. */
enum { PREEMPT_ASK = 1, PREEMPT_HOG = 2 };
/* Ask the goroutine running on p to yield: mark it (PREEMPT_ASK | why) and
 * signal its thread. Any thread; true when a goroutine was running there. */
bool preemptone(struct p *p, uint32_t why);
/* preemptone for every running P but the caller's. */
void preemptall(void);
/* Re-install gort's SIGURG handler if the program replaced it, forwarding
 * to the program's handler from then on (sysmon, every few ms). */
void preempt_check_handler(void);
/* Whether pc lies in the program's own code, where a goroutine holds no
 * runtime lock (false when asynchronous preemption is off). */
bool sched_user_pc(uintptr_t pc);
enum { ALARM_NONE, ALARM_READY, ALARM_FAILED };
/* The M is about to run gp, a hog, on p: arm its alarm for the end of the
 * slice or p's earliest timer, whichever comes first (execute_prep). */
void preempt_alarm_arm(struct m *m, struct p *p, struct g *gp);
/* A timer due at when became the earliest of the P of m, the caller's M
 * (timer.c): bring the alarm forward if it is armed for later. This is
 * how a sleep's timer, queued after its goroutine switched to a hog
 * (gort_sleep queues it in its unlock function), still gets the alarm. */
void preempt_alarm_timer_added(struct m *m, int64_t when);
/* The M leaves the goroutine its alarm was armed for: disarm it unless it
 * has fired (gsched, gort_blocking_begin). */
void preempt_alarm_disarm(struct m *m);
/* The M's thread exits: free its kernel timer (mexit). */
void preempt_alarm_delete(struct m *m);
/* fork(): the child's M has no timer (kernel timers are not inherited). */
void preempt_alarm_fork_child(struct m *m);
/* A goroutine marked for preemption at a point where the signal could not
 * stop it yields here at its next gort call (cooperative check). */
void sched_preempt_yield(void);
static inline void preempt_check(void)
{
    struct g *gp = gort_g();
    if (GORT_UNLIKELY(gp && atomic_load_explicit(&gp->preempt, memory_order_relaxed)))
        sched_preempt_yield();
}
/* Shrink the calling runtime thread's timer slack to 1 us (proc.c). */
void sched_thread_timer_slack(void);
/* Start the sysmon thread (gort_main, and the child after fork). */
void sysmon_start(void);
/* Retake or preempt whatever needs it (sysmon; sched.lock not held);
 * returns how many Ps it acted on. */
uint32_t sched_retake(int64_t now);

/* ---- spin.c: for the sync package ------------------------------------- */

/* Whether a mutex waiter should spin once more (iteration iter, from 0):
 * several CPUs, another P running, nothing queued on ours, at most 4 rounds. */
bool sched_can_spin(int iter);
void sched_do_spin(void); /* 30 PAUSE instructions */
/* Pin the goroutine to its P and return the P's id (-1 outside goroutines).
 * Until sched_proc_unpin the caller must not block or yield. */
int sched_proc_pin(void);
void sched_proc_unpin(void);

/* ---- panic.c ---------------------------------------------------------- */

/* Run the goroutine's deferred calls newer than mark (NULL: all), newest
 * first. Used at goroutine end and by gort_exit. */
struct defer_rec;
void run_defers(struct g *gp, struct defer_rec *mark);
/* A goroutine ends: drop its panic records and recovered text. */
void panic_state_reset(struct g *gp);

/* Print "fatal error: msg", the current goroutine's backtrace, exit 2. */
/* For mem/: the mcache slot of the P the calling thread holds, and that P's
 * NUMA node in *node; NULL (node 0) on a thread without a P (foreign threads,
 * an M in a blocking region). The slot stays valid while the caller neither
 * blocks nor yields; gort's own code is never preempted asynchronously. */
struct mcache **sched_mcache_slot(int *node);

_Noreturn void gort__fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write a backtrace of the frame-pointer chain starting at rbp, bounded by
 * [lo, hi), to fd. signal_safe: print raw addresses only (no dladdr). */
void print_backtrace(int fd, uintptr_t pc, uintptr_t rbp, uintptr_t lo, uintptr_t hi,
                     bool signal_safe);
/* "goroutine N [state]:" header and backtrace of the calling goroutine. */
void print_current_goroutine(int fd);
/* Flush stdio buffers that nobody else holds (panics: keep user output). */
void flush_stdio_best_effort(void);
void signals_init(void); /* fault handler for guard pages (signal.c) */
void signals_thread_init(void);
void schedtrace_start(void); /* trace.c */
const char *gstatus_name(uint32_t s);
const char *waitreason_name(uint32_t w);

/* ---- the collector's hooks -------------------------------------------- */

/* While the collector marks (gort__gc_barrier set), a G must have had its
 * stack scanned before it runs again: the M about to switch to gp (or gp
 * itself leaving a blocking region) calls this first (gc/roots.c). */
void gc_scan_before_run(struct g *gp);
/* A goroutine was made while the collector marks (newproc). */
void gc_g_created(struct g *gp);
/* Stop and restart the world for the collector (from a goroutine holding a
 * P; nothing between the two may park). */
void sched_stop_world(void);
void sched_start_world(void);
/* Spawn a runtime goroutine: not counted by gort_num_goroutine nor by the
 * deadlock check (Go's system goroutines). */
uint64_t sched_go_system(void (*fn)(void *), void *arg);

/* ---- ASan fiber annotations ------------------------------------------- */
#if GORT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

#endif
