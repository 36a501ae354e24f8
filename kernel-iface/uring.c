/* kernel-iface/uring.c: io_uring and epoll set-up for the poller.
 *
 * What the kernel offers is probed once (ki_uring_probe): whether io_uring
 * may be used at all (the io_uring_disabled sysctl and seccomp filters in
 * containers make io_uring_setup fail with EPERM or ENOSYS), and the
 * features gort relies on or uses when present. The rings themselves are
 * made by ki_uring_init; submitting, reaping and waiting are sched/'s
 * business (sched/netpoll.c), because they carry scheduling policy.
 *
 * Everything here returns 0 / a count / a descriptor, or -errno, and
 * retries EINTR where a retry is the same call.
 */
#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kernel-iface/ki.h"

int ki_uring_init(struct io_uring *r, unsigned sq_entries, unsigned cq_entries)
{
    struct io_uring_params pr;
    memset(&pr, 0, sizeof pr);
    /* CQSIZE: completions may outnumber submissions in flight (a
     * cancellation adds one); a roomy CQ keeps the kernel's overflow list,
     * which NODROP kernels fall back on, cold. SUBMIT_ALL: a bad SQE does
     * not stop the ones behind it. COOP_TASKRUN: a completion's task work
     * (a receive that found its data, say) runs on the thread that
     * submitted it; by default the kernel interrupts that thread at once
     * with an IPI, which on loopback arrives while the waking CPU still
     * holds the socket lock (the task work then spins on it: 10% of a
     * server's CPU, measured). Cooperative: it runs at the thread's next
     * entry into or return from the kernel (its next syscall, at the latest
     * the next timer tick), and a thread asleep on a futex or in epoll is
     * still woken for it (checked on Linux 6.18: the notification wakes
     * interruptible sleepers, only the IPI to a running thread is skipped).
     * gort-httpd: 14 -> 9.5 us of CPU per request. Not DEFER_TASKRUN: it
     * needs SINGLE_ISSUER, and a ring is used by whichever thread holds its P. */
    pr.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    pr.cq_entries = cq_entries;
    int ret = io_uring_queue_init_params(sq_entries, r, &pr);
    if (ret == -EINVAL) { /* kernels before 5.18 lack SUBMIT_ALL (5.19: COOP_TASKRUN) */
        memset(&pr, 0, sizeof pr);
        pr.flags = IORING_SETUP_CQSIZE;
        pr.cq_entries = cq_entries;
        ret = io_uring_queue_init_params(sq_entries, r, &pr);
    }
    return ret;
}

int ki_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
    for (;;) {
        long r = ki_syscall6(__NR_io_uring_enter, fd, to_submit, min_complete, flags, 0, 0);
        if (r != -EINTR) return (int)r;
    }
}

int ki_uring_probe(struct ki_uring_features *f)
{
    memset(f, 0, sizeof *f);
    struct io_uring r;
    int ret = ki_uring_init(&r, 4, 8);
    if (ret < 0) {
        f->err = ret;
        return ret;
    }
    f->features = r.features;
    f->nodrop = r.features & IORING_FEAT_NODROP;
    f->fast_poll = r.features & IORING_FEAT_FAST_POLL;
    struct io_uring_probe *pb = io_uring_get_probe_ring(&r);
    if (pb) {
        f->op_accept = io_uring_opcode_supported(pb, IORING_OP_ACCEPT);
        f->op_connect = io_uring_opcode_supported(pb, IORING_OP_CONNECT);
        f->op_recv = io_uring_opcode_supported(pb, IORING_OP_RECV);
        f->op_send = io_uring_opcode_supported(pb, IORING_OP_SEND);
        f->op_openat = io_uring_opcode_supported(pb, IORING_OP_OPENAT);
        f->op_poll = io_uring_opcode_supported(pb, IORING_OP_POLL_ADD);
        f->op_shutdown = io_uring_opcode_supported(pb, IORING_OP_SHUTDOWN);
        f->op_close = io_uring_opcode_supported(pb, IORING_OP_CLOSE);
        io_uring_free_probe(pb);
    }
    /* Synchronous cancellation (Linux 6.0) lets any thread cancel a request
     * on any ring: a deadline or a close cancels requests on rings of Ps it
     * does not hold. An unknown request answers -ENOENT where supported. */
    struct io_uring_sync_cancel_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.addr = 0x5eed;
    reg.timeout.tv_sec = -1;
    reg.timeout.tv_nsec = -1;
    ret = io_uring_register_sync_cancel(&r, &reg);
    f->sync_cancel = ret == -ENOENT || ret == 0;
    /* Same kernel generation (5.19/6.0): multishot accept and receive,
     * provided buffer rings. Recorded for the servers' fast paths. */
    f->multishot = f->sync_cancel;
    io_uring_queue_exit(&r);
    f->usable = pb && f->nodrop && f->fast_poll && f->sync_cancel && f->op_accept &&
                f->op_connect && f->op_recv && f->op_send && f->op_openat && f->op_poll;
    if (!f->usable) f->err = -ENOSYS;
    return f->usable ? 0 : -ENOSYS;
}

int ki_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int ki_epoll_create(void)
{
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int ki_epoll_ctl(int epfd, int op, int fd, uint32_t events, void *data)
{
    struct epoll_event ev = {.events = events, .data.ptr = data};
    return epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int ki_epoll_wait(int epfd, struct epoll_event *ev, int max, int64_t timeout_ns)
{
    static _Atomic int no_pwait2;
    int r;
    if (timeout_ns > 0 && !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        /* epoll_pwait2 (5.11): a nanosecond timeout, so a sleeping goroutine
         * wakes on time rather than at the next whole millisecond. */
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000,
                              .tv_nsec = timeout_ns % 1000000000};
        r = (int)ki_syscall6(SYS_epoll_pwait2, epfd, (long)ev, max, (long)&ts, 0, 8);
        if (r != -ENOSYS) return r == -EINTR ? 0 : r;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
    if (timeout_ns > (int64_t)INT32_MAX * 1000000) ms = INT32_MAX;
    r = epoll_wait(epfd, ev, max, ms);
    if (r < 0) return errno == EINTR ? 0 : -errno;
    return r;
}
