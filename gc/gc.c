/* gc/gc.c: the collection cycle, the pacer and the public collector API
 * (Go's mgc.go, mgcpacer.go). The phases are described in gc.h.
 *
 * The cycle runs on one runtime goroutine (bg_g, started with the first
 * request), which parks between cycles. A request comes from the
 * allocator when heap_live reaches the trigger (gc_heap_grew, any thread;
 * while a cycle only sweeps, the request is for the next one, which then
 * starts as soon as this one ends), from sysmon when no cycle ran for 2
 * minutes (gc_sysmon_tick), or from gort_gc, which waits for the next
 * complete cycle (marked and swept).
 *
 * Pacer: after a cycle found `marked` live bytes (those the markers reached
 * plus half of what was allocated black meanwhile), the goal is
 *   goal = max(marked * (100 + GORT_GC) / 100, 4 MiB),
 * lowered to keep memstats.sys under the soft memory limit when one is set
 * (Go's memory limit: limit - what the heap cannot use - 3% headroom; it
 * may go below the GORT_GC goal, never below what is live), and the next
 * cycle starts at
 *   trigger = marked + (goal - marked) * 7 / 10,
 * leaving the last 30% of the growth for allocation during the concurrent
 * mark; assists slow allocators that outrun the marker. The hard goal
 * (mem.gc_goal) is goal + 10% (under a limit at most the limit's whole
 * room): an allocator past it waits for the next mark termination
 * (gc_throttle), in whatever phase, so the heap stays bounded even when the
 * collector's goroutine runs late (on a busy machine its thread may be off
 * the CPU for milliseconds). The sweep is paced too: allocators sweep in
 * proportion to what they take, so that everything is swept half-way to
 * the next trigger (mem/sweep.c, "Sweep pacing"), and under a limit the
 * page heap returns free pages to the kernel (mem/mheap.c).
 *
 * Statistics: num_gc counts completed mark phases (Go counts at mark
 * termination); pause_ns[i] is the sum of cycle i's two stop-the-world
 * pauses; gc_cpu_fraction is the collector's time (marking, assisting,
 * sweeping, and each pause times the number of processors) over the wall
 * time since the first cycle times the processors.
 */
#include <stdio.h>
#include <string.h>

#include "gc/gc.h"
#include "sync/pool.h"

struct gcstate gc;

static void gc_init_locked(void)
{
    if (!cfg.maxprocs) config_load();
    gc.percent = cfg.gc_percent;
    atomic_store(&gc.memlimit, cfg.gc_memlimit);
    gc.gctrace = cfg.gctrace;
    gc.checkmark = cfg.gccheckmark;
    gc.stoptheworld = cfg.gcstoptheworld;
    gc.scangen = 2;
    gc.start_ns = ki_nanotime();
    atomic_store(&gc.last_gc_end, gc.start_ns);
}

static bool gc_inited;
static void pace(void);
static struct rlock init_lock;

static void gc_init(void)
{
    if (__atomic_load_n(&gc_inited, __ATOMIC_ACQUIRE)) return;
    rlock_acquire(&init_lock);
    if (!gc_inited) {
        gc_init_locked();
        __atomic_store_n(&gc_inited, true, __ATOMIC_RELEASE);
        pace(); /* the first trigger: Go's 4 MiB minimum heap, or the limit's */
    }
    rlock_release(&init_lock);
}

/* ---- the pacer --------------------------------------------------------------------------- */

/* After mark termination (world stopped) or a change of settings. */
static void pace(void)
{
    mem_init(); /* mem's defaults first (mem_init_slow), then ours */
    int64_t marked = gc.heap_marked;
    int64_t goal = INT64_MAX, hard = INT64_MAX;
    if (gc.percent >= 0) {
        goal = marked + marked / 100 * gc.percent;
        if (goal < MIN_HEAP) goal = MIN_HEAP;
        /* Allocators wait past the goal plus a tenth (room for the cycle to end). */
        hard = goal + goal / 10;
    }
    int64_t limit = atomic_load(&gc.memlimit);
    atomic_store_explicit(&mem.memlimit, limit, memory_order_relaxed);
    if (limit != INT64_MAX) {
        /* Go's memoryLimitHeapGoal: what the runtime holds beyond the GC
         * heap (metadata, manual objects, fragmentation; not free pages,
         * which the heap reuses and the page heap returns to the kernel
         * under the limit) counts against it. The heap may fill the room
         * up to the hard goal; the goal leaves 3% (at least 1 MiB) of it
         * for the cycle to end in. Never below what is live. */
        int64_t room = limit - mem_gc_nonheap();
        int64_t headroom = room / 32 > (1 << 20) ? room / 32 : (1 << 20);
        int64_t floor = marked + (1 << 20);
        int64_t lgoal = room - headroom < floor ? floor : room - headroom;
        if (room < floor + headroom) room = floor + headroom;
        if (lgoal < goal) goal = lgoal;
        if (room < hard) hard = room;
    }
    gc.heap_goal = goal;
    atomic_store_explicit(&mem.gc_goal, hard, memory_order_relaxed);
    int64_t trigger = goal == INT64_MAX ? INT64_MAX : marked + (goal - marked) / 10 * 7;
    atomic_store_explicit(&mem.gc_trigger, trigger, memory_order_relaxed);
}

void gc_throttle(void)
{
    /* Only a goroutine holding a P waits (a thread without one has no
     * scheduler to give way to). */
    if (!gort_g() || !gc_p_work()) return;
    /* Help first; then wait in short naps for the cycle to end (at most
     * 100 ms, so a stalled cycle cannot stop the program). Past the goal
     * before the cycle marks (its goroutine not yet run, or still
     * sweeping): ask for it, and let it have our processor. */
    for (int i = 0; i < 2000 && mem_gc_over_goal(); i++) {
        struct gcwork *w = gc_p_work();
        if (atomic_load_explicit(&gc.phase, memory_order_relaxed) == GC_MARK) {
            if (!gc_drain(w, 64 * 1024, false)) continue; /* found work */
            gc_flush(w);
        } else {
            gc_heap_grew();
        }
        gort_sleep(50 * 1000);
    }
}

int gort_gc_percent(int pct)
{
    gc_init();
    rlock_acquire(&gc.lock);
    int old = gc.percent;
    gc.percent = pct < 0 ? -1 : pct;
    rlock_release(&gc.lock);
    pace();
    return old;
}

int64_t gort_gc_memory_limit(int64_t bytes)
{
    gc_init();
    int64_t old = atomic_load(&gc.memlimit);
    if (bytes >= 0) {
        atomic_store(&gc.memlimit, bytes);
        pace();
    }
    return old;
}

/* ---- one cycle ---------------------------------------------------------------------------- */

static void mark_tiny(uintptr_t block)
{
    mem_gc_mark_new((void *)block);
}

/* Every marker's buffer to the global lists: world stopped. */
static void flush_all(void)
{
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++)
        if (allp[i]->gcw) gc_flush(allp[i]->gcw);
    rlock_acquire(&gc.nop_lock);
    gc_flush(&gc.nop_work);
    rlock_release(&gc.nop_lock);
}

/* Drain every marker's buffer: world stopped. */
static void drain_all(struct gcwork *w)
{
    for (;;) {
        flush_all();
        gc_drain(w, -1, false);
        if (gc_work_empty()) return;
    }
}

/* Dedicated mark workers beside the collector's goroutine (Go's
 * gcBgMarkWorker): (procs + 2) / 4 markers in all, so a quarter of the
 * processors mark (1 at 2..5 Ps, 2 at 6..9, 4 at 16). Each is a runtime
 * goroutine that drains until the collector ends the concurrent mark,
 * napping when the lists are empty, and then exits. */
static struct {
    _Atomic int32_t running;
    _Atomic uint32_t stop;
    _Atomic int64_t marked, scanned;
} workers;

static void mark_worker(void *unused)
{
    (void)unused;
    struct gcwork w = {0};
    while (!atomic_load_explicit(&workers.stop, memory_order_acquire)) {
        if (gc_drain(&w, -1, true)) gort_sleep(20 * 1000);
    }
    gc_flush(&w);
    atomic_fetch_add_explicit(&workers.marked, w.marked, memory_order_relaxed);
    atomic_fetch_add_explicit(&workers.scanned, w.scanned, memory_order_relaxed);
    /* Release: our buffer handed over before the collector stops the world. */
    atomic_fetch_sub_explicit(&workers.running, 1, memory_order_release);
}

static void workers_start(void)
{
    int32_t n = (atomic_load(&gomaxprocs) + 2) / 4 - 1;
    atomic_store(&workers.stop, 0);
    atomic_store(&workers.running, n > 0 ? n : 0);
    for (int32_t i = 0; i < n; i++)
        sched_go_system(mark_worker, NULL);
}

static void workers_stop(void)
{
    atomic_store_explicit(&workers.stop, 1, memory_order_release);
    while (atomic_load_explicit(&workers.running, memory_order_acquire) > 0)
        gort_sleep(10 * 1000);
}

/* The concurrent mark's drain: when the global lists run dry, ask the Ps
 * for what their buffers hold (stack scans, the barrier, assists) and wait
 * for it a few times before leaving the rest to mark termination. */
static void concurrent_drain(struct gcwork *w)
{
    if (gc.stoptheworld) {
        gc_drain(w, -1, false);
        return;
    }
    for (int round = 0; round < 20; round++) {
        gc_drain(w, -1, true);
        if (gc_work_empty()) break;
        atomic_store_explicit(&gc.flush_request, 1, memory_order_relaxed);
        gort_sleep(20 * 1000); /* let the Ps reach a barrier or a switch */
    }
    gc_drain(w, -1, true);
    atomic_store_explicit(&gc.flush_request, 0, memory_order_relaxed);
}

struct gc_span_marks {
    struct span *s;
    uint64_t marks[GC_MARK_WORDS];
};

/* GORT_DEBUG=gccheckmark=1, world stopped, marking finished: save every
 * mark, clear them, mark again from all roots with nothing running, and
 * fail on an object reached now that the concurrent mark had missed. */
static void checkmark(struct gcwork *w);

static int64_t now(void)
{
    return ki_nanotime();
}

static void gc_cycle(void)
{
    int64_t t_start = now();
    /* Finish the previous cycle's sweep (Go's finishsweep_m). */
    gc.world_running = true;
    while (mem_gc_sweep_one())
        gc_preempt_point();
    gc.world_running = false;
    int64_t live_before = atomic_load_explicit(&mem.heap_live, memory_order_relaxed);

    /* 1. Sweep termination. */
    sched_stop_world();
    int64_t t_stw1 = now();
    /* Threads without a P (which the stop does not stop) may still be
     * sweeping a span they took: wait them out, marking must not start
     * under a sweep that clears mark bits. */
    while (!mem_gc_sweep_done())
        if (!mem_gc_sweep_one()) __builtin_ia32_pause();
    sync_pool_cleanup();
    gc.scangen += 2;
    atomic_store_explicit(&gc.bg_g->gcscan, gc.scangen, memory_order_relaxed);
    struct gcwork work = {0};
    mem_gc_tiny_blocks(mark_tiny);
    int64_t heap_live_stw1 = atomic_load_explicit(&mem.heap_live, memory_order_relaxed);
    atomic_store_explicit(&gc.phase, GC_MARK, memory_order_relaxed);
    gort__gc_barrier = 1;
    int64_t pause1 = now() - t_stw1;
    if (!gc.stoptheworld) {
        sched_start_world();
        gc.world_running = true;
    }

    /* 2. Concurrent mark. */
    int64_t t_mark = now();
    if (!gc.stoptheworld) workers_start();
    gc_mark_roots(&work);
    concurrent_drain(&work);
    if (!gc.stoptheworld) workers_stop();
    int64_t mark_ns = now() - t_mark;

    /* 3. Mark termination. A processor may have greyed objects since the
     * collector last looked (Go's gcMarkDone): then hand its buffer over
     * and go on marking concurrently, a few times at most. */
    int64_t t_stw2, pause_extra = 0;
    for (int restart = 0;; restart++) {
        gc.world_running = false;
        if (!gc.stoptheworld) sched_stop_world();
        t_stw2 = now();
        if (gc.stoptheworld || restart >= 3 || gc_work_empty()) break;
        flush_all();
        pause_extra += now() - t_stw2;
        sched_start_world();
        gc.world_running = true;
        concurrent_drain(&work);
    }
    atomic_store_explicit(&gc.phase, GC_MARKTERM, memory_order_relaxed);
    int64_t scanned_before_term = work.scanned;
    gc_mark_remaining_gs(&work);
    drain_all(&work);
    int64_t scanned_term = work.scanned - scanned_before_term;
    uint32_t nfin = gc_queue_finalizers(&work);
    if (gc.checkmark) checkmark(&work);
    gort__gc_barrier = 0;
    atomic_store_explicit(&gc.phase, GC_OFF, memory_order_relaxed);
    int64_t marked_by_scan = work.marked + atomic_exchange(&workers.marked, 0);
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++)
        if (allp[i]->gcw) marked_by_scan += allp[i]->gcw->marked, allp[i]->gcw->marked = 0;
    marked_by_scan += gc.nop_work.marked;
    gc.nop_work.marked = 0;
    int64_t allocated_black =
        atomic_load_explicit(&mem.heap_live, memory_order_relaxed) - heap_live_stw1;
    /* Live = what the markers reached. Go also counts what was allocated
     * black during the mark; with assists that do not hold allocators back
     * when there is no grey work left, that doubled the next goal under
     * churn, so only half of it counts (it is mostly garbage by the next
     * cycle in allocation-heavy programs, and live data shows up in the
     * next cycle's scan anyway). */
    gc.heap_marked = marked_by_scan + (allocated_black > 0 ? allocated_black / 2 : 0);
    mem_gc_mark_termination();
    atomic_store_explicit(&mem.heap_live, gc.heap_marked, memory_order_relaxed);
    pace();
    /* Everything swept by half-way to the next trigger (sweep.c, "Sweep
     * pacing"): what is unswept counts in heap_alloc and holds pages. */
    int64_t trigger = atomic_load_explicit(&mem.gc_trigger, memory_order_relaxed);
    int64_t distance = trigger == INT64_MAX ? INT64_MAX : (trigger - gc.heap_marked) / 2;
    mem_gc_sweep_pace(gc.heap_marked, distance > 0 ? distance : 1);
    /* From here a trigger asks for the next cycle (gc_heap_grew). */
    __atomic_store_n(&gc.sweeping, true, __ATOMIC_RELAXED);
    int64_t t_end2 = now();
    int64_t pause2 = t_end2 - t_stw2 + pause_extra;
    if (gc.stoptheworld) { /* one pause from sweep termination to here */
        pause1 = t_end2 - t_stw1;
        pause2 = 0;
    }
    uint64_t n = gc.num_gc;
    gc.pause_ns[n % 256] = (uint64_t)(pause1 + pause2);
    gc.pause_total_ns += (uint64_t)(pause1 + pause2);
    if ((uint64_t)(pause1 + pause2) > gc.pause_max_ns)
        gc.pause_max_ns = (uint64_t)(pause1 + pause2);
    __atomic_store_n(&gc.num_gc, n + 1, __ATOMIC_RELEASE);
    sched_start_world();
    gc.world_running = true;
    if (nfin) gc_wake_finalizers();

    /* 4. Concurrent sweep (allocation sweeps lazily too, mcentral_grab_gc). */
    int64_t t_sweep = now();
    while (mem_gc_sweep_one())
        gc_preempt_point();
    int64_t t_done = now();
    int64_t sweep_ns = t_done - t_sweep;
    gc.world_running = false;
    /* Under a memory limit, free pages go back to the kernel down to 95%
     * of it (Go's background scavenger goal); the page heap does the same
     * synchronously when an allocation takes memstats.sys past the limit. */
    int64_t limit = atomic_load(&gc.memlimit);
    if (limit != INT64_MAX) mem_scavenge_to(limit - limit / 20);
    atomic_fetch_add_explicit(&gc.cpu_ns, (pause1 + pause2) * procs + mark_ns + sweep_ns,
                              memory_order_relaxed);
    atomic_store(&gc.last_gc_end, t_done);
    if (gc.gctrace) {
        char line[256];
        double el = (double)(t_stw1 - gc.start_ns) / 1e9;
        int64_t wall = t_done - gc.start_ns;
        int64_t cpu = atomic_load(&gc.cpu_ns) + atomic_load(&gc.assist_ns);
        int pct = wall > 0 ? (int)(100 * cpu / (wall * procs)) : 0;
        int len = snprintf(line, sizeof line,
                           "gc %llu @%.3fs %d%%: %.3f+%.3f+%.3f ms clock, %.3f ms sweep, "
                           "%lld->%lld MB, %lld MB goal, %lld KB scanned in pause, %d P%s\n",
                           (unsigned long long)(n + 1), el, pct, pause1 / 1e6, mark_ns / 1e6,
                           pause2 / 1e6, sweep_ns / 1e6, (long long)(live_before >> 20),
                           (long long)(gc.heap_marked >> 20), (long long)(gc.heap_goal >> 20),
                           (long long)(scanned_term >> 10), procs,
                           gc.stoptheworld ? " (stop-the-world)" : "");
        ki_write_all(2, line, (size_t)len);
    }
    (void)t_start;
}

/* ---- checkmark ------------------------------------------------------------------------------ */

static struct gc_span_marks *ck_saved;
static size_t ck_n, ck_cap;

static void ck_save(struct span *s, void *arg)
{
    (void)arg;
    if (ck_n == ck_cap) {
        size_t ncap = ck_cap ? ck_cap * 2 : 4096;
        struct gc_span_marks *n = mem_meta_alloc(ncap * sizeof *n); /* debug mode: leaked */
        if (ck_n) memcpy(n, ck_saved, ck_n * sizeof *n);
        ck_saved = n;
        ck_cap = ncap;
    }
    struct gc_span_marks *e = &ck_saved[ck_n++];
    e->s = s;
    for (int i = 0; i < GC_MARK_WORDS; i++) {
        e->marks[i] = atomic_load_explicit(&s->gcmarks[i], memory_order_relaxed);
        atomic_store_explicit(&s->gcmarks[i], 0, memory_order_relaxed);
    }
}

static void checkmark(struct gcwork *w)
{
    ck_n = 0;
    mem_gc_for_each_span(ck_save, NULL);
    struct gcwork cw = {0};
    mem_gc_tiny_blocks(mark_tiny);
    gc_mark_roots_all(&cw);
    gc_drain(&cw, -1, false);
    for (size_t i = 0; i < ck_n; i++) {
        struct gc_span_marks *e = &ck_saved[i];
        for (int k = 0; k < GC_MARK_WORDS; k++) {
            uint64_t now_marked = atomic_load_explicit(&e->s->gcmarks[k], memory_order_relaxed);
            uint64_t missed = now_marked & ~e->marks[k];
            if (missed) {
                uint32_t idx = (uint32_t)(k * 64 + __builtin_ctzll(missed));
                uintptr_t obj = e->s->state == SPAN_LARGE
                                    ? e->s->base + e->s->large_off
                                    : e->s->base + (uintptr_t)idx * e->s->elemsize;
                gort__fatal("gccheckmark: object %p (%zu bytes) is reachable but was not marked "
                            "(a pointer store without GORT_STORE?)",
                            (void *)obj, (size_t)span_objsize(e->s));
            }
            atomic_store_explicit(&e->s->gcmarks[k], e->marks[k], memory_order_relaxed);
        }
    }
    (void)w;
}

/* ---- the collector's goroutine and requests ------------------------------------------------ */

static bool unlock_gc(struct g *gp, void *arg)
{
    (void)gp;
    rlock_release(arg);
    return true;
}

static void bg_loop(void *unused)
{
    (void)unused;
    for (;;) {
        rlock_acquire(&gc.lock);
        if (gc.requested <= gc.cycles_started) {
            gc.bg_g = gort_g();
            gc.bg_parked = true;
            gopark(unlock_gc, &gc.lock, WAIT_GC_IDLE);
            continue;
        }
        gc.cycles_started++;
        gc.running = true;
        gc.bg_g = gort_g();
        rlock_release(&gc.lock);

        gc_cycle();

        rlock_acquire(&gc.lock);
        gc.running = false;
        __atomic_store_n(&gc.sweeping, false, __ATOMIC_RELAXED);
        gc.cycles_done++;
        struct gc_waiter *wake = NULL, **pp = &gc.waiters;
        while (*pp) {
            struct gc_waiter *wt = *pp;
            if (wt->cycle <= gc.cycles_done) {
                *pp = wt->next;
                wt->next = wake;
                wake = wt;
            } else {
                pp = &wt->next;
            }
        }
        rlock_release(&gc.lock);
        while (wake) {
            struct gc_waiter *next = wake->next;
            goready(wake->g, false);
            wake = next;
        }
    }
}

/* gc.lock held; returns the goroutine to ready after unlocking, or NULL. */
static struct g *request_locked(uint64_t upto)
{
    if (gc.requested < upto) gc.requested = upto;
    if (!gc.started) {
        gc.started = true;
        return NULL; /* the caller spawns it */
    }
    if (gc.bg_parked && gc.requested > gc.cycles_started) {
        gc.bg_parked = false;
        return gc.bg_g;
    }
    return NULL;
}

/* Request the next cycle unless one is asked for or running (a cycle that
 * is only sweeping does not count: the next one starts when it ends). */
static void request_if_idle(void)
{
    gc_init();
    rlock_acquire(&gc.lock);
    bool idle = (!gc.running || gc.sweeping) && gc.requested <= gc.cycles_started;
    bool spawn = idle && !gc.started;
    struct g *wake = idle ? request_locked(gc.cycles_started + 1) : NULL;
    rlock_release(&gc.lock);
    if (spawn) sched_go_system(bg_loop, NULL);
    if (wake) goready(wake, true); /* runnext: the collector goes before the queue */
}

void gc_heap_grew(void)
{
    if (!sched.started) return;
    /* Racy peeks: called at every span refill once over the trigger; the
     * trigger moves at mark termination. A cycle past its mark termination
     * (sweeping) takes a request for the next one: its goroutine may be
     * slow to finish (the thread descheduled), and the heap must not grow
     * unwatched meanwhile. */
    if (__atomic_load_n(&gc.running, __ATOMIC_RELAXED) &&
        !__atomic_load_n(&gc.sweeping, __ATOMIC_RELAXED))
        return;
    if (__atomic_load_n(&gc.requested, __ATOMIC_RELAXED) >
        __atomic_load_n(&gc.cycles_started, __ATOMIC_RELAXED))
        return;
    request_if_idle();
}

void gc_sysmon_tick(int64_t now_ns);
void gc_sysmon_tick(int64_t now_ns)
{
    if (!sched.started) return;
    /* Nothing allocated yet, nothing to collect. And sysmon must not be
     * the one to set the allocator up (mem_init, from pace): that reads
     * libnuma's state, which exit() may be tearing down meanwhile (a
     * program that prints its usage and exits crashed so). Acquire: pairs
     * with mem_init_slow's release. */
    if (!atomic_load_explicit(&mem.ready, memory_order_acquire)) return;
    gc_init();
    if (gc.percent < 0) return;
    if (now_ns - atomic_load(&gc.last_gc_end) < FORCED_GC_NS) return;
    atomic_store(&gc.last_gc_end, now_ns); /* one request per period */
    request_if_idle();
}

void gort_gc(void)
{
    struct g *self = gort_g();
    if (!self || !sched.started) gort_panic("gort_gc: must be called from a goroutine");
    gc_init();
    rlock_acquire(&gc.lock);
    /* A cycle already marking may have scanned us: the next complete one. */
    uint64_t want = gc.cycles_started + 1;
    bool spawn = !gc.started;
    struct g *wake = request_locked(want);
    rlock_release(&gc.lock);
    if (spawn) sched_go_system(bg_loop, NULL);
    if (wake) goready(wake, true); /* runnext: the collector goes before the queue */
    rlock_acquire(&gc.lock);
    if (gc.cycles_done >= want) {
        rlock_release(&gc.lock);
        return;
    }
    /* On the list only from here, with the lock held until we are parked
     * (unlock_gc runs after the switch): the collector cannot ready us
     * while we still run. */
    struct gc_waiter w = {self, want, gc.waiters};
    gc.waiters = &w;
    gopark(unlock_gc, &gc.lock, WAIT_GC_CYCLE);
}

void gc_read_stats(gort_memstats *out)
{
    out->num_gc = __atomic_load_n(&gc.num_gc, __ATOMIC_ACQUIRE);
    out->pause_total_ns = gc.pause_total_ns;
    out->pause_max_ns = gc.pause_max_ns;
    memcpy(out->pause_ns, gc.pause_ns, sizeof out->pause_ns);
    int64_t wall = ki_nanotime() - gc.start_ns;
    int32_t procs = atomic_load(&gomaxprocs);
    if (gc.start_ns && wall > 0 && procs > 0)
        out->gc_cpu_fraction =
            (double)(atomic_load(&gc.cpu_ns) + atomic_load(&gc.assist_ns)) / ((double)wall * procs);
}
