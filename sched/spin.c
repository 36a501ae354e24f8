/* sched/spin.c: scheduler facts the sync package asks for (Go's
 * sync_runtime_canSpin, sync_runtime_doSpin, procPin/procUnpin).
 *
 * Spinning on a mutex only pays when the holder is running on another CPU
 * and nothing else is waiting to run here: with one processor, or every other
 * P idle, or work queued on ours, the spinner would only delay the holder or
 * the queued goroutines. Called from goroutines only.
 */
#include "sched/sched.h"

#define ACTIVE_SPIN     4
#define ACTIVE_SPIN_CNT 30

bool sched_can_spin(int iter)
{
    if (iter >= ACTIVE_SPIN || cfg.ncpu <= 1) return false;
    int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    if (procs <= atomic_load_explicit(&sched.npidle, memory_order_relaxed) +
                     atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) + 1)
        return false;
    struct m *m = gort_m();
    return m && m->p && runq_empty(m->p);
}

void sched_do_spin(void)
{
    for (int i = 0; i < ACTIVE_SPIN_CNT; i++)
        __builtin_ia32_pause();
}

int sched_proc_pin(void)
{
    struct m *m = gort_m();
    if (!m || !m->p) return -1;
    m->locks++; /* a future preemption signal leaves this M alone */
    return m->p->id;
}

void sched_proc_unpin(void)
{
    struct m *m = gort_m();
    if (m) m->locks--;
}
