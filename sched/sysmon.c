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
 *
 * Pacing, as Go: 20 us between passes while passes retake Ps; after 50
 * passes that retake none the delay doubles each pass, up to 10 ms, and at
 * most a quarter of the time slice (a slice is then noticed within 1.5
 * slices). Preempting does not count as work (Go's rule): with a hog on
 * every P a due timer every millisecond would otherwise hold sysmon at
 * 20 us for good. While any timer is pending the pause ends when the
 * earliest is due (no sooner: servers always have deadline timers pending,
 * and a 1 ms cap cost them 1000 wake-ups a second); a timer already due is looked at again
 * every 50 us, the gap between preemption requests to one P (proc.c), as
 * asking sooner is pointless. A timer added while sysmon pauses, due before
 * the pause ends, cuts the pause short (sysmon_timer_added, from timer.c):
 * a timer that appeared just after a pass began must not wait out a long
 * pause. When every P has been idle for 20 ms sysmon sleeps on
 * sched.sysmonnote until a P is taken from the idle list (pidleget wakes
 * it): an idle program costs nothing. Not at once, as Go does: a server
 * between requests has every P idle thousands of times a second, and
 * each such sleep cost a futex wake in pidleget plus 50 passes at 20 us
 * afterwards (5000 sysmon wake-ups a second, 12% of gort-httpd's CPU under
 * wrk); brief idleness now keeps the backed-off pace.
 *
 * Why so few passes: while every CPU is busy the kernel runs some of
 * sysmon's wake-ups late. Traced on a 2-CPU VM (Linux 6.18, EEVDF,
 * HZ=250): about 3 in 1000 wait for the next tick (up to 4 ms) because the
 * hog on that CPU is not preempted for the woken sysmon, or a kernel thread
 * (kdamond, kworker) runs first. Each such wake-up that spans a timer's
 * due time makes that timer late, so late timers grow with sysmon's rate:
 * polling at 20 us beside hogged Ps (22000 wake-ups/s, a third of a CPU)
 * made 5-10% of 1 ms sleeps 3.5 ms late; at ~2000/s, under 1%. The rest is
 * the kernel's, not sysmon's decisions.
 */
#include <signal.h>

#include "sched/netpoll.h"
#include "sched/sched.h"

/* Hooks of later subsystems; NULL until they are linked in. */
void mem_scavenge_tick(int64_t now) __attribute__((weak)); /* allocator: scavenger */
void gc_sysmon_tick(int64_t now) __attribute__((weak));    /* collector: forced cycle */

#define SYSMON_MIN_DELAY     (20 * 1000)
#define SYSMON_MAX_DELAY     (10 * 1000 * 1000)
#define SYSMON_DEEP_AFTER    (20 * 1000 * 1000) /* every P idle this long: sleep until woken */
#define SYSMON_OVERDUE_DELAY (50 * 1000)        /* proc.c's PREEMPT_RETRY_NS */
#define HANDLER_CHECK_NS     (10 * 1000 * 1000)
#define SCAVENGE_NS          (100 * 1000 * 1000)

static struct note started;

/* The pause between passes. until: its end while sysmon pauses, 0 while it
 * runs a pass or sleeps on sched.sysmonnote (every P idle: no goroutine can
 * sit on a due timer then). kick: the futex word it pauses on, set by the
 * one timer adder that claims the pause (CAS of until to 0). */
static _Atomic int64_t until;
static _Atomic uint32_t kick;

/* How long to pause after a pass at now, given the backoff delay and the
 * earliest pending timer next (0: none). */
static int64_t pause_for(int64_t now, int64_t delay, int64_t next)
{
    if (!next) return delay;
    if (next <= now) return SYSMON_OVERDUE_DELAY;
    int64_t d = delay;
    if (next - now < d) d = next - now;
    return d < SYSMON_MIN_DELAY ? SYSMON_MIN_DELAY : d;
}

static void sysmon_pause(int64_t now, int64_t delay)
{
    int64_t end = now + pause_for(now, delay, timers_earliest());
    /* Relaxed: only this thread clears it. A kick from an adder that
     * claimed the previous pause late may still land after this store:
     * one early pass, nothing lost. */
    atomic_store_explicit(&kick, 0, memory_order_relaxed);
    /* Relaxed store, seq_cst fence, then the timers read again: the
     * Dekker pair with sysmon_timer_added, whose caller publishes its
     * timer, fences (seq_cst), then reads until. Either the adder sees
     * this end and kicks, or the second timers_earliest sees its timer and
     * shortens the pause. */
    atomic_store_explicit(&until, end, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    int64_t again = now + pause_for(now, delay, timers_earliest());
    if (again < end) {
        end = again;
        /* Relaxed: a later end than the adder compares with only makes
         * it kick when it need not. */
        atomic_store_explicit(&until, end, memory_order_relaxed);
    }
    for (;;) {
        /* Acquire: pairs with the kicker's release store (only the
         * wake-up itself is handed over). */
        if (atomic_load_explicit(&kick, memory_order_acquire)) break;
        int64_t left = end - ki_nanotime();
        if (left <= 0) break;
        ki_futex_wait(&kick, 0, left);
    }
    /* Relaxed: an adder that reads the stale end loses its CAS or kicks a
     * pass that has begun (a harmless early wake of the next pause). */
    atomic_store_explicit(&until, 0, memory_order_relaxed);
}

/* A timer due at when became the earliest of its P (timer.c, after its
 * seq_cst fence): if sysmon pauses past when, end the pause now. Costs one
 * relaxed load when it does not; at most one kick per pause. */
GORT_HIDDEN void sysmon_timer_added(int64_t when);
void sysmon_timer_added(int64_t when)
{
    int64_t end = atomic_load_explicit(&until, memory_order_relaxed);
    while (end != 0 && when < end - SYSMON_MIN_DELAY) {
        /* Relaxed CAS: it only elects the one kicker of this pause. A
         * failure reloads end: sysmon shortened the pause meanwhile, or
         * another adder claimed it, or the pause ended. */
        if (atomic_compare_exchange_weak_explicit(&until, &end, 0, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            /* Release: pairs with the acquire load in sysmon_pause. */
            atomic_store_explicit(&kick, 1, memory_order_release);
            ki_futex_wake(&kick, 1);
            return;
        }
    }
}

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
    int64_t idle_since = 0; /* when every P was first seen idle (0: a P runs) */
    for (;;) {
        if (idle == 0)
            delay = SYSMON_MIN_DELAY;
        else if (idle > 50 && delay < SYSMON_MAX_DELAY)
            delay *= 2;
        if (delay > SYSMON_MAX_DELAY) delay = SYSMON_MAX_DELAY;
        if (delay > cfg.timeslice_ns / 4) delay = cfg.timeslice_ns / 4;
        if (delay < SYSMON_MIN_DELAY) delay = SYSMON_MIN_DELAY;

        int32_t procs = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
        bool allidle = atomic_load_explicit(&sched.npidle, memory_order_relaxed) == procs;
        int64_t t = ki_nanotime();
        if (!allidle)
            idle_since = 0;
        else if (!idle_since)
            idle_since = t;
        if ((allidle && t - idle_since >= SYSMON_DEEP_AFTER) ||
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
                bool woken = note_tsleep(&sched.sysmonnote, 100 * 1000 * 1000);
                rlock_acquire(&sched.lock);
                sched.sysmonwait = false;
                note_clear(&sched.sysmonnote);
                rlock_release(&sched.lock);
                /* Woken: the program runs again, watch it closely (Go's
                 * syscallWake). Timed out: still idle, sleep again at once. */
                if (woken) {
                    idle = 0;
                    idle_since = 0;
                }
                continue;
            }
            rlock_release(&sched.lock);
        }

        sysmon_pause(t, delay);

        int64_t now = ki_nanotime();
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
