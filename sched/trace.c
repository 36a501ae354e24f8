/* sched/trace.c: GORT_DEBUG=schedtrace=MS, a line every MS milliseconds in
 * Go's format, and with scheddetail=1 one line per P and per M.
 *
 * Runs on its own thread (not an M: it never runs goroutines, holds no P and
 * is not counted by deadlock detection). It reads scheduler state without
 * the lock, as Go's schedtrace does: numbers may be momentarily
 * inconsistent, never unsafe to read (fields are atomics or word-sized).
 */
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

static int64_t trace_start;

static void schedtrace_once(void)
{
    char line[8192];
    size_t n = 0;
    int32_t procs = atomic_load(&gomaxprocs);
    int threads = 0, idle = 0;
    for (struct m *m = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); m; m = m->alllink)
        threads++;
    idle = __atomic_load_n(&sched.nmidle, __ATOMIC_RELAXED);
    n += snprintf(line + n, sizeof line - n,
                  "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d "
                  "idlethreads=%d runqueue=%d [",
                  (long long)((ki_nanotime() - trace_start) / 1000000), procs,
                  atomic_load(&sched.npidle), threads, atomic_load(&sched.nmspinning), idle,
                  atomic_load(&sched.runqsize));
    for (int32_t i = 0; i < procs && n < sizeof line - 32; i++)
        n += snprintf(line + n, sizeof line - n, "%s%u", i ? " " : "", runq_len(allp[i]));
    n += snprintf(line + n, sizeof line - n, "]\n");
    ki_write_all(2, line, n);
    if (!cfg.scheddetail) return;
    for (int32_t i = 0; i < procs; i++) {
        struct p *p = allp[i];
        struct m *m = __atomic_load_n(&p->m, __ATOMIC_RELAXED);
        n = snprintf(line, sizeof line,
                     "  P%d: status=%u schedtick=%u m=%lld runqsize=%u gfreecnt=%d node=%d\n",
                     p->id, atomic_load(&p->status),
                     __atomic_load_n(&p->schedtick, __ATOMIC_RELAXED), m ? (long long)m->id : -1LL,
                     runq_len(p), __atomic_load_n(&p->gfree_n, __ATOMIC_RELAXED), p->node);
        ki_write_all(2, line, n);
    }
    for (struct m *m = __atomic_load_n(&allm, __ATOMIC_ACQUIRE); m; m = m->alllink) {
        struct p *p = __atomic_load_n(&m->p, __ATOMIC_RELAXED);
        struct g *cg = __atomic_load_n(&m->curg, __ATOMIC_RELAXED);
        struct g *lg = __atomic_load_n(&m->lockedg, __ATOMIC_RELAXED);
        n = snprintf(line, sizeof line,
                     "  M%lld: p=%d curg=%lld spinning=%d blocked=%d lockedg=%lld tid=%d\n",
                     (long long)m->id, p ? p->id : -1, cg ? (long long)cg->goid : -1LL,
                     __atomic_load_n(&m->spinning, __ATOMIC_RELAXED),
                     __atomic_load_n(&m->blocked, __ATOMIC_RELAXED),
                     lg ? (long long)lg->goid : -1LL, (int)m->tid);
        ki_write_all(2, line, n);
    }
}

static void schedtrace_loop(void *arg)
{
    (void)arg;
    /* Not an M: checkdead must not take it for a foreign thread. */
    rlock_acquire(&sched.lock);
    sched.trace_tid = ki_gettid();
    rlock_release(&sched.lock);
    for (;;) {
        ki_nanosleep((int64_t)cfg.schedtrace_ms * 1000000);
        schedtrace_once();
    }
}

void schedtrace_start(void)
{
    trace_start = ki_nanotime();

    int r = ki_thread_start(schedtrace_loop, NULL, 0);
    if (r < 0) gort__fatal("schedtrace: cannot start thread (errno %d)", -r);
}
