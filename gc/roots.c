/* gc/roots.c: the collector's roots: goroutine stacks, the data and bss of
 * every loaded object, registered roots, the manual heap, timer heaps.
 *
 * Goroutines (the protocol is in gc.h): gc_scan_before_run is the
 * scheduler's side, gc_mark_roots the collector's. A goroutine's stack is
 * read from its saved stack pointer to its top: the switch pushed its
 * callee-saved registers there, a preempted goroutine's whole register
 * file (preempt.S) lies above that, and a goroutine in a blocking region is
 * read from the stack pointer and registers gort_blocking_begin saved
 * (switch.S). The G struct itself is scanned too: a goroutine that has not
 * run yet holds its argument only there.
 *
 * Data and bss come from dl_iterate_phdr (writable PT_LOAD segments of the
 * executable and every shared object), at each cycle so that dlopen'ed
 * libraries count, minus gort's own arena map (16 MiB of pointers to arena
 * metadata, never to objects). Thread-local storage is not scanned.
 *
 * The manual heap (gort_malloc memory, mem_gc_manual_ranges) and the data
 * segments are read while the program runs: pointer stores into them must
 * use GORT_STORE while the collector marks (include/gort.h), as Go's
 * compiler barriers stores to globals and the heap.
 *
 * Timer heaps: each P's array of pending timers, under its timerlock (a
 * timer's memory may be a gort_new object, kept alive while it is
 * pending). Timers added while marking are shaded by timer_add's caller
 * (sync/time.c) ... or found here if added before this scan.
 */
#include <link.h>
#include <string.h>

#include "gc/gc.h"

/* ---- goroutines ----------------------------------------------------------------------- */

void gc_scan_g(struct gcwork *w, struct g *gp)
{
    gc_scan_range(w, (uintptr_t)gp, (uintptr_t)(gp + 1));
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
    if (st == G_SYSCALL) {
        gc_scan_range(w, (uintptr_t)gp->syscallregs,
                      (uintptr_t)(gp->syscallregs + sizeof gp->syscallregs / sizeof(uintptr_t)));
        if (gp->syscallsp >= gp->stack_lo && gp->syscallsp <= gp->stack_hi)
            gc_scan_range(w, gp->syscallsp, gp->stack_hi);
        return;
    }
    uintptr_t sp = (uintptr_t)gp->sp;
    if (sp >= gp->stack_lo && sp <= gp->stack_hi) gc_scan_range(w, sp, gp->stack_hi);
}

/* Try to scan gp for this cycle. Returns true when gp is scanned (by us or
 * someone before), false when someone else is scanning it right now.
 * Acquire on the claim pairs with the release that ended the previous
 * owner's use of the G (a scan or a run's switch). */
static bool try_scan(struct gcwork *w, struct g *gp, uint32_t gen)
{
    uint32_t v = atomic_load_explicit(&gp->gcscan, memory_order_acquire);
    if (v == gen) return true;
    if (v == gen + 1) return false;
    if (!atomic_compare_exchange_strong_explicit(&gp->gcscan, &v, gen + 1, memory_order_acquire,
                                                 memory_order_relaxed))
        return v == gen;
    gc_scan_g(w, gp);
    /* Release: the scan is done before whoever waits runs gp. */
    atomic_store_explicit(&gp->gcscan, gen, memory_order_release);
    return true;
}

void gc_scan_before_run(struct g *gp)
{
    /* Also in mark termination: a goroutine leaving a blocking region then
     * must not run on while the collector scans its frames. */
    if (atomic_load_explicit(&gc.phase, memory_order_relaxed) == GC_OFF) return;
    uint32_t gen = gc.scangen;
    struct gcwork *w = gc_p_work();
    bool locked = !w;
    if (!locked && atomic_load_explicit(&gp->gcscan, memory_order_acquire) == gen) {
        gc_flush_if_asked(w);
        return;
    }
    if (locked) {
        rlock_acquire(&gc.nop_lock);
        w = &gc.nop_work;
    }
    while (!try_scan(w, gp, gen))
        __builtin_ia32_pause(); /* the collector is scanning it: microseconds */
    /* What the stack reached is for the collector's goroutine to mark, not
     * for this P's next assist or mark termination. */
    gc_flush(w);
    if (locked) rlock_release(&gc.nop_lock);
}

/* Goroutines the collector's pass had to leave (running, or claimed by
 * someone else), for mark termination. Only the collector's goroutine
 * touches the list. */
static struct {
    struct g **v;
    size_t n, cap;
} left;

static void leave(struct g *gp)
{
    if (left.n == left.cap) {
        size_t ncap = left.cap ? left.cap * 2 : 1024;
        struct g **v = mem_meta_alloc(ncap * sizeof *v); /* the old one is leaked */
        if (left.n) memcpy(v, left.v, left.n * sizeof *v);
        left.v = v;
        left.cap = ncap;
    }
    left.v[left.n++] = gp;
}

void gc_g_created(struct g *gp)
{
    /* Made while marking: its stack is empty and its G holds only its
     * argument, shaded now. Scanned from birth, so mark termination need
     * not look for it. */
    barrier_shade_one((uintptr_t)gp->arg);
    atomic_store_explicit(&gp->gcscan, gc.scangen, memory_order_relaxed);
}

/* The collector's pass over all goroutines: scan those that are not
 * running, and list the others for mark termination. */
static void scan_gs(struct gcwork *w)
{
    struct g **gs;
    size_t n = stack_allgs(&gs);
    uint32_t gen = gc.scangen;
    left.n = 0;
    for (size_t i = 0; i < n; i++) {
        struct g *gp = gs[i];
        uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
        if (st == G_DEAD || st == G_IDLE) continue; /* they hold nothing */
        if (st == G_RUNNING) {
            /* It scanned itself before it ran, or mark termination will. */
            if (atomic_load_explicit(&gp->gcscan, memory_order_relaxed) != gen) leave(gp);
            continue;
        }
        if (!try_scan(w, gp, gen)) leave(gp);
        if ((i & 63) == 63) gc_preempt_point();
    }
}

/* World stopped: nobody runs but us and goroutines in blocking regions,
 * which wait in blocking_end while we hold a claim. */
static void scan_now(struct gcwork *w, struct g *gp, uint32_t gen)
{
    if (!gp || gp == gc.bg_g) return;
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
    if (st == G_DEAD || st == G_IDLE) return;
    while (!try_scan(w, gp, gen))
        __builtin_ia32_pause();
}

void gc_mark_remaining_gs(struct gcwork *w)
{
    uint32_t gen = gc.scangen;
    for (size_t i = 0; i < left.n; i++)
        scan_now(w, left.v[i], gen);
    left.n = 0;
    /* A goroutine made on a thread without a P just as the cycle began
     * may have missed both the pass (not yet published) and gc_g_created
     * (the barrier not yet seen): it has not run, so it is queued. The run
     * queues are short, while allgs may hold a million dead Gs. */
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++) {
        struct p *p = allp[i];
        scan_now(w, atomic_load_explicit(&p->runnext, memory_order_acquire), gen);
        uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_acquire);
        for (uint32_t k = h; k != t; k++)
            scan_now(w, atomic_load_explicit(&p->runq[k % RUNQ_LEN], memory_order_relaxed), gen);
    }
    /* The global queue: foreign threads may push meanwhile (at the tail,
     * so an entry's distance from the head stays put; nobody pops while
     * the world is stopped). Under the lock, which keeps the ring still,
     * collect a batch of the entries not yet scanned; scan them after. It
     * holds every preempted goroutine, ten thousand in bench-gcpause: one
     * lock round trip each made this loop half a millisecond of pause. */
    for (uint32_t k = 0;;) {
        struct g *batch[128];
        int nb = 0;
        bool end = false;
        rlock_acquire(&sched.lock);
        while (nb < 128) {
            if (k >= sched.runq.n) {
                end = true;
                break;
            }
            struct g *gp = sched.runq.v[(sched.runq.head + k++) & (sched.runq.cap - 1)];
            /* Relaxed: a G scanned this cycle needs nothing more from us;
             * one being scanned (gen + 1) is waited for by scan_now. */
            if (atomic_load_explicit(&gp->gcscan, memory_order_relaxed) != gen) batch[nb++] = gp;
        }
        rlock_release(&sched.lock);
        for (int i = 0; i < nb; i++)
            scan_now(w, batch[i], gen);
        if (end) break;
    }
}

/* ---- data, bss, registered roots, the manual heap, timers ------------------------------ */

/* Scan [lo, hi) minus the ranges x[0..n) (each excluded piece cut out). */
static void scan_excluding(struct gcwork *w, uintptr_t lo, uintptr_t hi, uintptr_t (*x)[2], int n)
{
    for (int i = 0; i < n; i++) {
        if (x[i][1] <= lo || x[i][0] >= hi) continue;
        if (lo < x[i][0]) scan_excluding(w, lo, x[i][0], x + i + 1, n - i - 1);
        if (x[i][1] < hi) scan_excluding(w, x[i][1], hi, x + i + 1, n - i - 1);
        return;
    }
    gc_scan_range(w, lo, hi);
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct gcwork *w = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        uintptr_t x[MEM_GC_UNSCANNED][2];
        int n = mem_gc_unscanned(x);
        scan_excluding(w, lo, lo + ph->p_memsz, x, n);
    }
    return 0;
}

static void manual_cb(uintptr_t lo, uintptr_t hi, void *arg)
{
    gc_scan_range(arg, lo, hi);
    gc_preempt_point();
}

static void scan_globals(struct gcwork *w)
{
    dl_iterate_phdr(phdr_cb, w);
    rlock_acquire(&gc.rootlock);
    for (uint32_t i = 0; i < gc.nroots; i++)
        gc_scan_range(w, gc.roots[i].lo, gc.roots[i].hi);
    rlock_release(&gc.rootlock);
}

static void scan_timers(struct gcwork *w)
{
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++) {
        struct p *p = allp[i];
        rlock_acquire(&p->timerlock);
        if (p->timers) gc_scan_range(w, (uintptr_t)p->timers, (uintptr_t)(p->timers + p->ntimers));
        rlock_release(&p->timerlock);
    }
}

void gc_mark_roots(struct gcwork *w)
{
    scan_globals(w);
    mem_gc_manual_ranges(manual_cb, w);
    scan_timers(w);
    gc_mark_finalizer_roots(w);
    scan_gs(w);
}

void gc_mark_roots_all(struct gcwork *w)
{
    scan_globals(w);
    mem_gc_manual_ranges(manual_cb, w);
    scan_timers(w);
    gc_mark_finalizer_roots(w);
    struct g **gs;
    size_t n = stack_allgs(&gs);
    for (size_t i = 0; i < n; i++) {
        uint32_t st = atomic_load_explicit(&gs[i]->status, memory_order_relaxed);
        if (st != G_DEAD && st != G_IDLE && gs[i] != gc.bg_g) gc_scan_g(w, gs[i]);
    }
}

/* ---- registered roots (public API) ---------------------------------------------------- */

void gort_gc_add_root(void *start, size_t len)
{
    uintptr_t lo = (uintptr_t)start;
    if (!start || len == 0) return;
    rlock_acquire(&gc.rootlock);
    for (uint32_t i = 0; i < gc.nroots; i++)
        if (gc.roots[i].lo == lo) {
            gc.roots[i].hi = lo + len;
            rlock_release(&gc.rootlock);
            return;
        }
    if (gc.nroots == gc.rootcap) {
        uint32_t ncap = gc.rootcap ? gc.rootcap * 2 : 16;
        struct gc_root *n = mem_meta_alloc(ncap * sizeof *n); /* the old table is leaked */
        if (gc.nroots) memcpy(n, gc.roots, gc.nroots * sizeof *n);
        gc.roots = n;
        gc.rootcap = ncap;
    }
    gc.roots[gc.nroots++] = (struct gc_root){lo, lo + len};
    rlock_release(&gc.rootlock);
}

void gort_gc_remove_root(void *start)
{
    rlock_acquire(&gc.rootlock);
    for (uint32_t i = 0; i < gc.nroots; i++)
        if (gc.roots[i].lo == (uintptr_t)start) {
            gc.roots[i] = gc.roots[--gc.nroots];
            break;
        }
    rlock_release(&gc.rootlock);
}
