/* kernel-iface/clock.c: clocks in int64 nanoseconds, and sleeping.
 *
 * clock_gettime goes through the vDSO for the REALTIME and MONOTONIC clocks
 * (no system call, ~20 ns); the CPU-time clocks enter the kernel.
 * ki_nanotime is gort's time base (gort_now, timers, deadlines): monotonic,
 * never goes backwards, counts from an arbitrary origin (boot).
 * ki_nanosleep sleeps to an absolute MONOTONIC deadline so that a stream of
 * signals (EINTR) cannot stretch the sleep by re-adding the remainder.
 * ki_thread_timer_*: a per-thread one-shot alarm (the preemption alarm of
 * sched/preempt.c), through the raw system calls: glibc's timer_create would
 * hand back its own timer_t, and the kernel's id is all we need.
 * Callers: any thread; ki_nanotime also from signal handlers.
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    /* Cannot fail for these clock ids; on a kernel that refuses one anyway,
     * ts stays zero rather than garbage. */
    if (clock_gettime(id, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ki_nanotime(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t ki_walltime(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t ki_thread_cputime(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int64_t ki_process_cputime(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

void ki_nanosleep(int64_t ns)
{
    if (ns <= 0) return;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    int64_t sec = ns / 1000000000;
    long nsec = dl.tv_nsec + (long)(ns % 1000000000);
    if (nsec >= 1000000000) {
        nsec -= 1000000000;
        sec++;
    }
    dl.tv_sec += (time_t)sec;
    dl.tv_nsec = nsec;
    /* clock_nanosleep returns the error number; errno is not involved. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL) == EINTR) {
    }
}

int ki_thread_timer_create(pid_t tid, int sig, void *value, int *id)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_ptr = value;
    sev._sigev_un._tid = tid;
    int kid = -1;
    long r = syscall(SYS_timer_create, (long)CLOCK_MONOTONIC, &sev, &kid);
    if (r < 0) return -errno;
    *id = kid;
    return 0;
}

int ki_thread_timer_set(int id, int64_t when_ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(when_ns / 1000000000);
    its.it_value.tv_nsec = (long)(when_ns % 1000000000);
    long r = syscall(SYS_timer_settime, (long)id, (long)TIMER_ABSTIME, &its, NULL);
    return r < 0 ? -errno : 0;
}

void ki_thread_timer_delete(int id)
{
    syscall(SYS_timer_delete, (long)id);
}
