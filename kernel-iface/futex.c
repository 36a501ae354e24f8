/* kernel-iface/futex.c: private futex wait and wake.
 *
 * ki_futex_wait sleeps while *addr == val, for at most timeout_ns (relative;
 * FUTEX_WAIT measures it on CLOCK_MONOTONIC). The kernel compares *addr with
 * val under its hash-bucket lock, so a waker that changes *addr and then calls
 * ki_futex_wake cannot be missed: either the waiter sees the new value
 * (-EAGAIN, folded into 0) or it is already queued and gets woken.
 *
 * Return values are folded to what callers act on: 0 = "look again" (woken,
 * value changed, EINTR, or a spurious wake), -ETIMEDOUT = the time ran out.
 * Callers must loop on their own condition: a 0 never proves a wake-up.
 *
 * Private futexes only (FUTEX_*_PRIVATE): gort never shares futex words
 * across processes, and private futexes skip the mm lookup.
 * Callers: any thread; not from signal handlers (errno is used).
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int ki_futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    if (r == 0) return 0;
    int err = errno; /* capture before anything else can overwrite it */
    switch (err) {
    case EAGAIN: /* *addr != val on entry */
    case EINTR:  /* a signal: spurious wake, the caller re-checks */
        return 0;
    default:
        return -err; /* ETIMEDOUT, or EFAULT/EINVAL for a caller's bug */
    }
}

int ki_futex_wake(_Atomic uint32_t *addr, int n)
{
    if (n < 0) n = INT_MAX;
    for (;;) {
        long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
        if (r >= 0) return (int)r;
        int err = errno;
        if (err != EINTR) return -err;
    }
}
