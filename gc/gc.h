/* gc/gc.h: the collector's private structures.
 *
 * The collector is Go's (mgc.go, mgcmark.go, mbarrier.go), conservative and
 * non-moving: a cycle is
 *   1. sweep termination (world stopped): the previous cycle's sweep is
 *      finished, pools drop their victims, every cache's tiny block is
 *      marked, the scan generation advances and the write barrier is on;
 *   2. concurrent mark: roots (data and bss, registered roots, the manual
 *      heap, finalizer objects' contents, timer heaps, every goroutine's
 *      stack) are scanned and the grey objects drained, by the collector's
 *      goroutine and by allocating goroutines (assists), while the program
 *      runs; new objects are allocated black; GORT_STORE shades the old and
 *      the new value (the hybrid barrier), so no stack is scanned twice;
 *   3. mark termination (world stopped): the processors' work buffers are
 *      drained, goroutines not yet scanned are, finalizers of unreachable
 *      objects are queued, the barrier is off, caches give back their spans
 *      and every GC span becomes unswept (mem/sweep.c);
 *   4. concurrent sweep, in the background, lazily on allocation (a class's
 *      own spans first) and in proportion to allocation (mem/sweep.c,
 *      "Sweep pacing"); a trigger reached now asks for the next cycle.
 *
 * Grey objects are (start, length) pairs in work buffers (struct wbuf):
 * each marker (the collector's goroutine, each P, threads without a P
 * under a lock) fills its own buffer and trades full ones for empty ones on
 * the global lists (Go's gcWork and work.full). Termination needs no
 * distributed protocol: whatever is left when the collector finds no work
 * is drained with the world stopped (mark termination), so the pause grows
 * only with what the barrier and assists greyed in the last moments.
 *
 * Goroutine stacks (gc/roots.c): g->gcscan == gc.scangen means scanned
 * this cycle; + 1 means someone is scanning it. Whoever CASes a stale
 * value to scangen + 1 scans: the collector (for a goroutine that is not
 * running), or the M about to run the goroutine (execute_prep), or the
 * goroutine itself leaving a blocking region; anyone who finds scangen + 1
 * waits for scangen. A goroutine never runs while its stack is scanned, so
 * the scan sees a stack that does not change (frames above its saved stack
 * pointer are frozen: a goroutine in a blocking region must not change
 * pointers to gort_new objects, the same rule as Go's cgo).
 *
 * Lock order: gc.lock (cycle state, waiters) > gc.wlock (work buffer
 * lists, leaf) ; gc.rootlock (registered roots, leaf); gc.nop_lock (the
 * work buffer of threads without a P) > gc.wlock. No gc lock is held while
 * the world is stopped by someone else or while parking, except gc.lock
 * handed to gopark's unlock function.
 */
#ifndef GORT_GC_H
#define GORT_GC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gort.h"
#include "mem/mem.h"
#include "sched/sched.h"

#define WBUF_PAIRS   255                 /* (start, length) pairs per buffer: 4 KiB */
#define OBLET_BYTES  (128 * 1024)        /* large objects are scanned in pieces */
#define MIN_HEAP     (4 * 1024 * 1024LL) /* the smallest heap goal (Go's) */
#define FORCED_GC_NS (120 * 1000000000LL)

struct wbuf {
    struct wbuf *next;
    uint32_t n; /* pairs in use */
    uint32_t unused;
    uintptr_t v[2 * WBUF_PAIRS];
};

/* One marker's state. Owner only. */
struct gcwork {
    struct wbuf *buf; /* current buffer, never NULL once used */
    int64_t scanned;  /* bytes scanned (statistics, assist credit) */
    int64_t marked;   /* bytes of objects this marker greyed */
};

enum gc_phase { GC_OFF, GC_MARK, GC_MARKTERM };

struct gc_waiter {
    struct g *g;
    uint64_t cycle; /* wake once cycles_done >= cycle */
    struct gc_waiter *next;
};

struct gc_root {
    uintptr_t lo, hi;
};

struct gcstate {
    struct rlock lock;         /* protects the fields up to `waiters` */
    bool started;              /* the collector's goroutine exists */
    bool running;              /* a cycle is in progress (started, not yet swept) */
    bool sweeping;             /* ... and past its mark termination: set by the collector's
                                  goroutine with the world stopped, cleared with `running`;
                                  gc_heap_grew peeks at it without the lock */
    bool bg_parked;            /* bg_g is parked waiting for a request */
    uint64_t requested;        /* cycles asked for (cycles_started catches up) */
    uint64_t cycles_started;   /* cycles begun */
    uint64_t cycles_done;      /* cycles marked and swept */
    struct g *bg_g;            /* the collector's goroutine */
    struct gc_waiter *waiters; /* gort_gc callers */

    _Atomic uint32_t phase;   /* enum gc_phase */
    uint32_t scangen;         /* stacks: see the header comment; even, advances by 2 */
    int percent;              /* GORT_GC / gort_gc_percent; -1 off */
    _Atomic int64_t memlimit; /* soft limit (bytes of memstats.sys); INT64_MAX none */
    bool gctrace, checkmark, stoptheworld;
    bool world_running;             /* the collector's goroutine may yield (not in a pause) */
    _Atomic uint32_t flush_request; /* the collector ran dry: Ps, hand over your buffers */

    struct rlock wlock; /* protects full, empty */
    struct wbuf *full, *empty;
    _Atomic uint32_t nfull;

    struct rlock nop_lock;  /* protects nop_work */
    struct gcwork nop_work; /* markers without a P (blocking regions, foreign threads) */

    struct rlock rootlock; /* protects roots, nroots, rootcap */
    struct gc_root *roots;
    uint32_t nroots, rootcap;

    /* Pacer and statistics (gc.c). */
    int64_t heap_marked; /* live bytes found by the last cycle */
    int64_t heap_goal;
    _Atomic int64_t last_gc_end; /* ns, for sysmon's forced cycle */
    uint64_t num_gc;
    uint64_t pause_total_ns, pause_max_ns, pause_ns[256];
    _Atomic int64_t cpu_ns; /* time spent by markers, sweepers and pauses (x procs) */
    int64_t start_ns;
    _Atomic int64_t assist_ns;
};

extern struct gcstate gc GORT_HIDDEN;

/* ---- mark.c ------------------------------------------------------------------------ */
/* Grey v if it points into a GC object that is not yet marked. */
void gc_shade(struct gcwork *w, uintptr_t v);
/* Conservatively scan [lo, hi): every aligned word that points into a GC
 * object shades it. */
void gc_scan_range(struct gcwork *w, uintptr_t lo, uintptr_t hi);
/* Scan grey objects until none is left (budget < 0) or about budget bytes
 * were scanned; true when w and the global lists ran dry. preemptible:
 * yield at the goroutine's preemption requests (the collector's goroutine
 * only; assists and the scheduler's scans never yield). */
bool gc_drain(struct gcwork *w, int64_t budget, bool preemptible);
/* Hand w's buffer to the global lists (w stays usable). */
void gc_flush(struct gcwork *w);
/* Hand w's buffer over when the collector asked for it (a ragged barrier:
 * each P answers at its next barrier, assist or scheduling). */
static inline void gc_flush_if_asked(struct gcwork *w)
{
    /* Relaxed: a hint; the buffer list itself is locked. */
    if (GORT_UNLIKELY(atomic_load_explicit(&gc.flush_request, memory_order_relaxed)) && w->buf &&
        w->buf->n)
        gc_flush(w);
}
/* The work buffer of the calling thread's P, or NULL without a P. */
struct gcwork *gc_p_work(void);
/* Shade v from any thread (the P's buffer, else the locked nop buffer). */
void barrier_shade_one(uintptr_t v);
/* Global buffers and every P's buffer empty? (world stopped for the Ps';
 * a racy hint otherwise) */
bool gc_work_empty(void);
/* A point where the collector's goroutine yields to a preemption request,
 * unless the world is stopped (it stopped it). */
static inline void gc_preempt_point(void)
{
    /* Like Go's dedicated mark worker, the collector keeps its P against
     * time-slice preemption when there are others (a queue of busy
     * goroutines would otherwise starve the cycle, and the heap grows
     * meanwhile); it yields to a stop-the-world, and at one P. */
    if (gc.world_running && (atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed) ||
                             atomic_load_explicit(&gomaxprocs, memory_order_relaxed) == 1))
        preempt_check();
}

/* ---- roots.c ----------------------------------------------------------------------- */
/* Scan the data and bss of every loaded object, registered roots, the
 * manual heap, timer heaps, and every goroutine that is not running
 * (listing the others for mark termination). */
void gc_mark_roots(struct gcwork *w);
/* World stopped: scan the goroutines the pass left, and any unscanned one
 * on a run queue. */
void gc_mark_remaining_gs(struct gcwork *w);
/* Scan one goroutine's stack, saved registers and G (claimed). */
void gc_scan_g(struct gcwork *w, struct g *gp);
/* Checkmark: scan every root again (world stopped), ignoring scan states. */
void gc_mark_roots_all(struct gcwork *w);

/* ---- finalizer.c ------------------------------------------------------------------- */
/* Mark everything finalizable objects reach, but not the objects. */
void gc_mark_finalizer_roots(struct gcwork *w);
/* Mark termination: queue the finalizers of unmarked objects (marking the
 * objects so they survive this cycle); returns how many were queued. */
uint32_t gc_queue_finalizers(struct gcwork *w);
/* After the world restarts: let the finalizer goroutine run them. */
void gc_wake_finalizers(void);

#endif
