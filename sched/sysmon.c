/* sched/sysmon.c: the system monitor (Go's sysmon).
 *
 * One thread of its own, not an M: it never holds a P and never runs
 * goroutines, and it keeps every signal blocked. Each pass (sched_retake in
 * proc.c) it
 *   - preempts a goroutine that has run one slice longer than the time
 *     slice (GORT_TIMESLICE, 10 ms by default), or that sits on a P whose
 *     timers are due (so a sleeper wakes on time even when every P is
 *     hogged: the preempted goroutine's P runs its timers first);
 *   - takes a P from a blocking region that has lasted a pass, when work
 *     waits for that P or every other P is busy, or after 10 ms;
 *   - re-installs gort's SIGURG handler if the program replaced it (the
 *     program's handler keeps receiving its signals, through ours);
 *   - runs the hooks of later subsystems every 100 ms: the allocator's
 *     scavenger, and the collector's check for a cycle forced after 2
 *     minutes without one (both weak symbols, absent until linked in).
 * Pacing, as Go: 20 us between passes while passes find something to do;
 * after 50 quiet passes the delay doubles each pass, up to 10 ms. While any
 * timer is pending the delay is at most 1 ms and sysmon wakes when the
 * earliest timer is due, which bounds how late a hogged P runs its timers.
 * When every P is idle sysmon sleeps on sched.sysmonnote until a P is taken
 * from the idle list (pidleget wakes it): an idle program costs nothing.
 */
#include <signal.h>

#include "sched/netpoll.h"
#include "sched/sched.h"

/* Hooks of later subsystems; NULL until they are linked in. */
void mem_scavenge_tick(int64_t now) __attribute__((weak)); /* allocator: scavenger */
void gc_sysmon_tick(int64_t now) __attribute__((weak));    /* collector: forced cycle */

#define SYSMON_MIN_DELAY   (20 * 1000)
#define SYSMON_MAX_DELAY   (10 * 1000 * 1000)
#define SYSMON_TIMER_DELAY (1000 * 1000)
#define HANDLER_CHECK_NS   (10 * 1000 * 1000)
#define SCAVENGE_NS        (100 * 1000 * 1000)

static struct note started;

static void sysmon(void *arg)
{
    (void)arg;
    /* Release (note_wakeup): checkdead must know this thread is gort's
     * before the program can deadlock, or it would take it for a foreign
     * thread that might still wake someone. */
    __atomic_store_n(&sched.sysmon_tid, ki_gettid(), __ATOMIC_RELAXED);
    sched_thread_timer_slack();

    note_wakeup(&started);
    int64_t delay = SYSMON_MIN_DELAY;
    uint32_t idle = 0;
    int64_t last_handler_check = 0, last_scavenge = 0;
    for (;;) {
        if (idle == 0)
            delay = SYSMON_MIN_DELAY;
        else if (idle > 50 && delay < SYSMON_MAX_DELAY)
            delay *= 2;
        if (delay > SYSMON_MAX_DELAY) delay = SYSMON_MAX_DELAY;

        int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
        if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) == procs ||
            atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) {
            /* Nothing runs (or a stopper handles it): sleep until a P is
             * taken. Re-checked under the lock pidleget holds. */
            rlock_acquire(&sched.lock);
            if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) ==
                    atomic_load_explicit(&gomaxprocs, memory_order_relaxed) ||
                atomic_load_explicit(&sched.gcwaiting, memory_order_relaxed)) {
                sched.sysmonwait = true;
                rlock_release(&sched.lock);
                /* Bounded, so a stop-the-world's end is noticed too. */
                note_tsleep(&sched.sysmonnote, 100 * 1000 * 1000);
                rlock_acquire(&sched.lock);
                sched.sysmonwait = false;
                note_clear(&sched.sysmonnote);
                rlock_release(&sched.lock);
                idle = 0;
                continue;
            }
            rlock_release(&sched.lock);
        }

        int64_t now = ki_nanotime();
        int64_t sleep = delay;
        int64_t next = timers_earliest();
        if (next) {
            if (sleep > SYSMON_TIMER_DELAY) sleep = SYSMON_TIMER_DELAY;
            if (next - now < sleep) sleep = next - now;
            if (sleep < SYSMON_MIN_DELAY) sleep = SYSMON_MIN_DELAY;
        }
        ki_nanosleep(sleep);

        now = ki_nanotime();
        if (sched_retake(now))
            idle = 0;
        else
            idle++;
        netpoll_sysmon(now);
        if (now - last_handler_check >= HANDLER_CHECK_NS) {
            last_handler_check = now;
            preempt_check_handler();
        }
        if (now - last_scavenge >= SCAVENGE_NS) {
            last_scavenge = now;
            if (mem_scavenge_tick) mem_scavenge_tick(now);
            if (gc_sysmon_tick) gc_sysmon_tick(now);
        }
    }
}

void sysmon_start(void)
{
    note_clear(&started);
    int r = ki_thread_start(sysmon, NULL, 64 << 10);
    if (r < 0) gort__fatal("cannot start sysmon (errno %d)", -r);
    note_sleep(&started);
}
