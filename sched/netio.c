/* sched/netio.c: the I/O API (gort_read, gort_accept, gort_set_deadline,
 * ...) on the poller (netpoll.c).
 *
 * Per-descriptor state (Go's pollDesc), in a table indexed by fd whose
 * chunks are allocated on first use and never freed (so a pointer to one
 * stays valid; an fd number is reused by the kernel, and gort_close and the
 * calls that make descriptors reset its state):
 *   - deadlines per direction (0 read: reads, recvs, accepts; 1 write:
 *     writes, sends, connects), each with a runtime timer that marks the
 *     direction expired and cancels the waits in progress;
 *   - the list of waits in progress (struct iop), so that a deadline or a
 *     close can find and cancel them, and a count of calls in progress, so
 *     that gort_close closes the descriptor only once none can still submit
 *     a request for it (a later request would reach whatever file reuses
 *     the number): Go's fdMutex reference count, simplified;
 *   - the kind (socket, regular file, other), read once with fstat: sockets
 *     use RECV/SEND (io_uring ignores O_NONBLOCK there and arms a poll);
 *     regular files have no deadlines and, in epoll mode, run in a blocking
 *     region (epoll cannot watch them).
 *
 * Lock order: fs->dllock (deadline changes) > p->timerlock > fs->lock >
 * sched.lock. The deadline timers' functions run under timerlock and take
 * fs->lock; set_deadline takes dllock, then fs->lock, releases it, then
 * moves the timer, so no cycle.
 *
 * A call made without a goroutine (or inside gort_blocking_begin/end) runs
 * the plain syscall, waiting in poll(2) where the descriptor is
 * non-blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gort.h"
#include "sched/netpoll.h"

enum fdkind { FD_UNKNOWN, FD_SOCKET, FD_FILE, FD_OTHER };

struct fdstate {
    struct rlock lock;     /* protects the fields below, unless noted */
    struct rlock dllock;   /* serialises deadline changes (outer to timerlock) */
    int fd;                /* fixed */
    uint8_t kind;          /* enum fdkind */
    bool closing;          /* gort_close in progress: new calls fail -EBADF */
    bool epoll_added;      /* epoll mode: in the epoll set */
    bool ready[2];         /* epoll mode: an edge came while nobody waited */
    bool expired[2];       /* the deadline has passed (set by its timer or at once) */
    int64_t deadline[2];   /* 0: none */
    int32_t refs;          /* calls in progress */
    struct iop *ops;       /* waits in progress, both directions */
    struct iop *closer;    /* gort_close waiting for refs to reach 0 */
    struct timer timer[2]; /* f/arg fixed; armed under dllock */
};

#define FD_CHUNK_SHIFT 8
#define FD_CHUNK       (1 << FD_CHUNK_SHIFT)
#define FD_MAX         (1 << 22)
static struct fdstate *_Atomic fdchunks[FD_MAX / FD_CHUNK];
static struct rlock fdchunk_lock;

static void deadline_fire_read(void *arg, int64_t now);
static void deadline_fire_write(void *arg, int64_t now);

/* The state of fd, made on first use; NULL when fd is out of range. */
static struct fdstate *fd_state(int fd)
{
    if (fd < 0 || fd >= FD_MAX) return NULL;
    struct fdstate *c = atomic_load_explicit(&fdchunks[fd >> FD_CHUNK_SHIFT], memory_order_acquire);
    if (GORT_UNLIKELY(!c)) {
        rlock_acquire(&fdchunk_lock);
        c = atomic_load_explicit(&fdchunks[fd >> FD_CHUNK_SHIFT], memory_order_relaxed);
        if (!c) {
            c = calloc(FD_CHUNK, sizeof *c);
            if (!c) gort__fatal("out of memory (descriptor table)");
            for (int i = 0; i < FD_CHUNK; i++) {
                c[i].fd = (fd & ~(FD_CHUNK - 1)) + i;
                c[i].timer[0].f = deadline_fire_read;
                c[i].timer[0].arg = &c[i];
                c[i].timer[1].f = deadline_fire_write;
                c[i].timer[1].arg = &c[i];
            }
            /* Release: the initialised chunk before its pointer. */
            atomic_store_explicit(&fdchunks[fd >> FD_CHUNK_SHIFT], c, memory_order_release);
        }
        rlock_release(&fdchunk_lock);
    }
    return &c[fd & (FD_CHUNK - 1)];
}

static enum fdkind fd_kind_locked(struct fdstate *fs)
{
    if (fs->kind == FD_UNKNOWN) {
        struct stat st;
        if (fstat(fs->fd, &st) == 0)
            fs->kind = S_ISSOCK(st.st_mode)                         ? FD_SOCKET
                       : S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ? FD_FILE
                                                                    : FD_OTHER;
    }
    return fs->kind;
}

/* A descriptor gort just made (or just closed): forget what the number
 * meant before. Its deadline timers are stopped by gort_close. */
static void fd_fresh(int fd, enum fdkind kind)
{
    struct fdstate *fs = fd_state(fd);
    if (!fs) return;
    rlock_acquire(&fs->lock);
    fs->kind = (uint8_t)kind;
    fs->closing = false;
    fs->epoll_added = false;
    fs->ready[0] = fs->ready[1] = false;
    fs->expired[0] = fs->expired[1] = false;
    fs->deadline[0] = fs->deadline[1] = 0;
    rlock_release(&fs->lock);
}

/* ---- calls in progress ----------------------------------------------------- */

static bool in_goroutine(void)
{
    struct m *m = gort_m();
    return m && m->curg && m->p && !m->blocked;
}

static int64_t nanotime(void)
{
    return ki_nanotime();
}

/* Whether dir's deadline has passed (fs->lock held). */
static bool expired_locked(struct fdstate *fs, int dir)
{
    if (fs->expired[dir]) return true;
    int64_t d = fs->deadline[dir];
    return d != 0 && d <= nanotime();
}

/* Start a call on fs: -EBADF while closing, -ETIMEDOUT past the deadline
 * (unless nodeadline: regular files), else counted in refs. */
static int call_begin(struct fdstate *fs, int dir, bool nodeadline)
{
    rlock_acquire(&fs->lock);
    int e = 0;
    if (fs->closing)
        e = -EBADF;
    else if (!nodeadline && expired_locked(fs, dir))
        e = -ETIMEDOUT;
    else
        fs->refs++;
    rlock_release(&fs->lock);
    return e;
}

static void call_end(struct fdstate *fs)
{
    struct g *gp = NULL;
    rlock_acquire(&fs->lock);
    if (--fs->refs == 0 && fs->closer) {
        gp = iop_complete(fs->closer, 0, 0);
        fs->closer = NULL;
    }
    rlock_release(&fs->lock);
    if (gp) netpoll_inject(gp), wakep();
}

static void ops_link_locked(struct fdstate *fs, struct iop *op)
{
    op->prev = NULL;
    op->next = fs->ops;
    if (fs->ops) fs->ops->prev = op;
    fs->ops = op;
    op->linked = true;
}

static void ops_unlink_locked(struct fdstate *fs, struct iop *op)
{
    if (!op->linked) return;
    if (op->prev)
        op->prev->next = op->next;
    else
        fs->ops = op->next;
    if (op->next) op->next->prev = op->prev;
    op->linked = false;
}

/* End the waits on fs in the directions of mask (bit 0 read, bit 1 write)
 * with err: io_uring requests are cancelled (their CQEs come back
 * -ECANCELED and the callers map that to err by looking at fs); epoll waits
 * complete now. The goroutines readied go to out (at most n; the rest are
 * injected at once). fs->lock held. Returns how many are in out. */
static int wake_ops_locked(struct fdstate *fs, int mask, int32_t err, struct g **out, int n)
{
    int k = 0;
    for (struct iop *op = fs->ops, *next; op; op = next) {
        next = op->next;
        if (!(mask & (1 << op->dir))) continue;
        if (netpoll_mode() == NETPOLL_URING) {
            netpoll_cancel(op);
            continue;
        }
        ops_unlink_locked(fs, op);
        struct g *gp = iop_complete(op, err, 0);
        if (!gp) continue;
        if (k < n)
            out[k++] = gp;
        else
            netpoll_inject(gp);
    }
    return k;
}

static void inject_all(struct g **gs, int n)
{
    for (int i = 0; i < n; i++)
        netpoll_inject(gs[i]);
    if (n) wakep();
}

/* ---- deadlines ----------------------------------------------------------------- */

static void deadline_fire(struct fdstate *fs, int dir, int64_t now)
{
    struct g *gs[16];
    int n = 0;
    rlock_acquire(&fs->lock);
    int64_t d = fs->deadline[dir];
    /* A deadline moved or cleared since the timer was armed: not ours. */
    if (d != 0 && d <= now && !fs->expired[dir]) {
        fs->expired[dir] = true;
        n = wake_ops_locked(fs, 1 << dir, -ETIMEDOUT, gs, 16);
    }
    rlock_release(&fs->lock);
    inject_all(gs, n);
}

static void deadline_fire_read(void *arg, int64_t now)
{
    deadline_fire(arg, 0, now);
}

static void deadline_fire_write(void *arg, int64_t now)
{
    deadline_fire(arg, 1, now);
}

static int set_deadline(int fd, int mask, int64_t deadline)
{
    if (fd < 0) return -EBADF;
    if (deadline < 0) deadline = 1; /* long past */
    struct fdstate *fs = fd_state(fd);
    if (!fs) return -EBADF;
    if (fcntl(fd, F_GETFD) < 0) return -errno;
    struct g *gs[16];
    int n = 0;
    rlock_acquire(&fs->dllock);
    rlock_acquire(&fs->lock);
    bool past = deadline != 0 && deadline <= nanotime();
    for (int dir = 0; dir < 2; dir++) {
        if (!(mask & (1 << dir))) continue;
        fs->deadline[dir] = deadline;
        fs->expired[dir] = past;
    }
    if (past) n = wake_ops_locked(fs, mask, -ETIMEDOUT, gs, 16);
    rlock_release(&fs->lock);
    for (int dir = 0; dir < 2; dir++) {
        if (!(mask & (1 << dir))) continue;
        if (deadline == 0 || past)
            timer_del(&fs->timer[dir]);
        else
            timer_reset(&fs->timer[dir], deadline);
    }
    rlock_release(&fs->dllock);
    inject_all(gs, n);
    return 0;
}

int gort_set_deadline(int fd, int64_t deadline)
{
    return set_deadline(fd, 3, deadline);
}

int gort_set_read_deadline(int fd, int64_t deadline)
{
    return set_deadline(fd, 1, deadline);
}

int gort_set_write_deadline(int fd, int64_t deadline)
{
    return set_deadline(fd, 2, deadline);
}

/* Map a wait's result to what the caller sees, given why it may have been
 * cancelled. -EAGAIN from a cancelled request is also possible. */
static int32_t cancel_reason(struct fdstate *fs, int dir, bool nodeadline)
{
    rlock_acquire(&fs->lock);
    int32_t e = fs->closing ? -EBADF : !nodeadline && expired_locked(fs, dir) ? -ETIMEDOUT : 0;
    rlock_release(&fs->lock);
    return e;
}

/* ---- io_uring calls ------------------------------------------------------------------ */

/* Run the request described by t for fs (may be NULL: no descriptor state,
 * e.g. openat) and wait for its completion. now: enter the ring at once
 * (the result is likely immediate: sends, file I/O). */
static int32_t uring_run(struct fdstate *fs, int dir, const struct io_uring_sqe *t, bool now)
{
    struct iop op;
    memset(&op, 0, sizeof op);
    op.g = gort_g();
    op.dir = (uint8_t)dir;
    if (fs) {
        rlock_acquire(&fs->lock);
        ops_link_locked(fs, &op);
        rlock_release(&fs->lock);
    }
    struct io_uring_sqe *sqe = netpoll_sqe(&op);
    if (GORT_UNLIKELY(!sqe)) {
        if (fs) {
            rlock_acquire(&fs->lock);
            ops_unlink_locked(fs, &op);
            rlock_release(&fs->lock);
        }
        return op.res;
    }
    *sqe = *t;
    io_uring_sqe_set_data(sqe, &op);
    netpoll_submit(&op, now);
    iop_wait(&op, WAIT_IO);
    if (fs) {
        rlock_acquire(&fs->lock);
        ops_unlink_locked(fs, &op);
        rlock_release(&fs->lock);
    }
    return op.res;
}

/* Wait until fd is ready for dir (an io_uring poll), for descriptors that
 * answered -EAGAIN because they are O_NONBLOCK (pipes, ttys). */
static int32_t uring_poll(struct fdstate *fs, int dir)
{
    struct io_uring_sqe t;
    memset(&t, 0, sizeof t);
    io_uring_prep_poll_add(&t, fs->fd, dir ? POLLOUT : POLLIN);
    int32_t r = uring_run(fs, dir, &t, false);
    return r < 0 ? r : 0;
}

/* One transfer (read-like or write-like), retried through EINTR, -EAGAIN
 * (after a poll), and cancellations that were not ours (a submitting
 * thread exited). */
static int32_t uring_xfer(struct fdstate *fs, int dir, struct io_uring_sqe *t, bool nodeadline,
                          bool now)
{
    for (;;) {
        int32_t r = uring_run(fs, dir, t, now);
        if (r >= 0) return r;
        if (r == -EINTR) continue;
        if (r == -ECANCELED || r == -EAGAIN || r == -EALREADY) {
            int32_t e = cancel_reason(fs, dir, nodeadline);
            if (e) return e;
            if (r == -EAGAIN) {
                r = uring_poll(fs, dir);
                if (r < 0 && r != -ECANCELED && r != -EINTR) return r;
                if (r < 0 && (e = cancel_reason(fs, dir, nodeadline))) return e;
            }
            continue;
        }
        return r;
    }
}

/* ---- epoll calls ----------------------------------------------------------------------- */

/* Put fs in the epoll set (and make it non-blocking) on first use.
 * Returns false when epoll cannot watch it (regular files). */
static bool epoll_watch(struct fdstate *fs)
{
    rlock_acquire(&fs->lock);
    bool ok = fs->epoll_added;
    rlock_release(&fs->lock);
    if (ok) return true;
    int fl = fcntl(fs->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fs->fd, F_SETFL, fl | O_NONBLOCK);
    int e = netpoll_epoll_add(fs->fd, fs);
    if (e < 0 && e != -EEXIST) return false;
    rlock_acquire(&fs->lock);
    fs->epoll_added = true;
    rlock_release(&fs->lock);
    return true;
}

/* Wait for readiness of fs in dir: 0 when the call should be retried, or
 * -EBADF / -ETIMEDOUT. */
static int32_t epoll_wait_ready(struct fdstate *fs, int dir, bool nodeadline)
{
    struct iop op;
    memset(&op, 0, sizeof op);
    op.g = gort_g();
    op.dir = (uint8_t)dir;
    atomic_store_explicit(&op.state, IOP_WAIT, memory_order_relaxed);
    rlock_acquire(&fs->lock);
    if (fs->closing) {
        rlock_release(&fs->lock);
        return -EBADF;
    }
    if (!nodeadline && expired_locked(fs, dir)) {
        rlock_release(&fs->lock);
        return -ETIMEDOUT;
    }
    if (fs->ready[dir]) { /* an edge came after our attempt: try again */
        fs->ready[dir] = false;
        rlock_release(&fs->lock);
        return 0;
    }
    ops_link_locked(fs, &op);
    netpoll_arm();
    rlock_release(&fs->lock);
    iop_wait(&op, WAIT_IO);
    return op.res;
}

int netio_ready(void *data, int dirs)
{
    struct fdstate *fs = data;
    struct g *gs[16];
    int n = 0, total = 0;
    rlock_acquire(&fs->lock);
    for (int dir = 0; dir < 2; dir++) {
        if (!(dirs & (1 << dir))) continue;
        bool woke = false;
        for (struct iop *op = fs->ops, *next; op; op = next) {
            next = op->next;
            if (op->dir != dir) continue;
            ops_unlink_locked(fs, op);
            woke = true;
            struct g *gp = iop_complete(op, 0, 0);
            if (!gp) continue;
            total++;
            if (n < 16)
                gs[n++] = gp;
            else
                netpoll_inject(gp);
        }
        if (!woke) fs->ready[dir] = true;
    }
    rlock_release(&fs->lock);
    for (int i = 0; i < n; i++)
        netpoll_inject(gs[i]);
    return total;
}

/* ---- plain calls (no goroutine, or epoll-mode regular files) -------------------------- */

static long sys_result(long r)
{
    return r < 0 ? -errno : r;
}

/* Outside goroutines: the blocking call, waiting in poll(2) when the
 * descriptor is non-blocking. */
static int wait_fd_plain(int fd, int dir)
{
    struct pollfd pfd = {.fd = fd, .events = dir ? POLLOUT : POLLIN};
    for (;;) {
        int r = poll(&pfd, 1, -1);
        if (r >= 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

/* ---- the generic transfer ---------------------------------------------------------------- */

enum xop { X_READ, X_WRITE, X_RECV, X_SEND, X_PREAD, X_PWRITE };

static long plain_xfer(enum xop x, int fd, void *buf, size_t n, int flags, off_t off)
{
    switch (x) {
    case X_READ:
        return read(fd, buf, n);
    case X_WRITE:
        return write(fd, buf, n);
    case X_RECV:
        return recv(fd, buf, n, flags);
    case X_SEND:
        return send(fd, buf, n, flags);
    case X_PREAD:
        return pread(fd, buf, n, off);
    case X_PWRITE:
        return pwrite(fd, buf, n, off);
    }
    return -1;
}

/* One transfer of at most n bytes. */
static long xfer_once(enum xop x, int fd, void *buf, size_t n, int flags, off_t off)
{
    int dir = x == X_WRITE || x == X_SEND || x == X_PWRITE;
    if (n > (1u << 30)) n = 1u << 30;
    if (!in_goroutine()) {
        for (;;) {
            long r = sys_result(
                plain_xfer(x, fd, buf, n, flags | (x == X_SEND ? MSG_NOSIGNAL : 0), off));
            if (r == -EINTR) continue;
            if (r == -EAGAIN) {
                r = wait_fd_plain(fd, dir);
                if (r < 0) return r;
                continue;
            }
            return r;
        }
    }
    struct fdstate *fs = fd_state(fd);
    if (!fs) return -EBADF;
    rlock_acquire(&fs->lock);
    enum fdkind kind = fd_kind_locked(fs);
    rlock_release(&fs->lock);
    if (kind == FD_UNKNOWN) return -EBADF; /* fstat failed: not open */
    bool file = kind == FD_FILE;
    if ((x == X_RECV || x == X_SEND) && kind != FD_SOCKET) return -ENOTSOCK;
    /* io_uring treats an offset on a stream (pipe, socket) as no offset and
     * would wait for data: answer as pread(2) does. */
    if ((x == X_PREAD || x == X_PWRITE) && kind != FD_FILE && lseek(fd, 0, SEEK_CUR) < 0 &&
        errno == ESPIPE)
        return -ESPIPE;
    if (kind == FD_SOCKET && (x == X_READ || x == X_WRITE)) { /* MSG_NOSIGNAL for writes */
        x = x == X_READ ? X_RECV : X_SEND;
        flags = 0;
    }
    int e = call_begin(fs, dir, file);
    if (e) return e;
    long r;
    if (netpoll_mode() == NETPOLL_URING && kind == FD_SOCKET && !(flags & MSG_WAITALL)) {
        /* Sockets: the transfer itself first, without waiting (Go's order).
         * A send with room and a receive with data queued finish here in
         * one syscall, and post no completion: a CQE would also wake the
         * M waiting on every ring. Only a transfer that would wait goes to
         * the ring, where the kernel completes it when the socket is ready.
         * (gort_recv splits MSG_WAITALL into plain receives.) */
        do
            r = sys_result(
                plain_xfer(x, fd, buf, n, flags | MSG_DONTWAIT | (dir ? MSG_NOSIGNAL : 0), off));
        while (r == -EINTR);
        if (r != -EAGAIN) {
            call_end(fs);
            return r;
        }
    }
    if (netpoll_mode() == NETPOLL_URING) {
        struct io_uring_sqe t;
        memset(&t, 0, sizeof t);
        switch (x) {
        case X_READ:
            io_uring_prep_read(&t, fd, buf, (unsigned)n, (uint64_t)-1);
            break;
        case X_WRITE:
            io_uring_prep_write(&t, fd, buf, (unsigned)n, (uint64_t)-1);
            break;
        case X_RECV:
            io_uring_prep_recv(&t, fd, buf, n, flags);
            break;
        case X_SEND:
            io_uring_prep_send(&t, fd, buf, n, flags | MSG_NOSIGNAL);
            break;
        case X_PREAD:
            io_uring_prep_read(&t, fd, buf, (unsigned)n, (uint64_t)off);
            break;
        case X_PWRITE:
            io_uring_prep_write(&t, fd, buf, (unsigned)n, (uint64_t)off);
            break;
        }
        /* Writes usually complete at once (socket buffer room, page
         * cache): enter now and skip the park. Reads of sockets usually
         * wait: batch them with the P's next scheduler pass. */
        r = uring_xfer(fs, dir, &t, file, dir == 1 || file);
    } else if (file || !epoll_watch(fs)) {
        gort_blocking_begin();
        do
            r = sys_result(plain_xfer(x, fd, buf, n, flags, off));
        while (r == -EINTR);
        gort_blocking_end();
    } else {
        for (;;) {
            r = sys_result(
                plain_xfer(x, fd, buf, n, flags | (x == X_SEND ? MSG_NOSIGNAL : 0), off));
            if (r == -EINTR) continue;
            if (r != -EAGAIN) break;
            r = epoll_wait_ready(fs, dir, false);
            if (r < 0) break;
        }
    }
    call_end(fs);
    return r;
}

/* Read-like: one transfer. */
static ssize_t xfer_read(enum xop x, int fd, void *buf, size_t n, int flags, off_t off)
{
    if (fd < 0) return -EBADF;
    if (!buf && n) return -EINVAL;
    preempt_check();
    return xfer_once(x, fd, buf, n, flags, off);
}

/* Write-like: everything, continuing short transfers, unless an error
 * (then -errno, even if part was written: as Go's Write, which returns the
 * count and the error together; C callers get the error). */
static ssize_t xfer_write(enum xop x, int fd, const void *buf, size_t n, int flags, off_t off)
{
    if (fd < 0) return -EBADF;
    if (!buf && n) return -EINVAL;
    preempt_check();
    size_t done = 0;
    do {
        long r = xfer_once(x, fd, (char *)buf + done, n - done, flags,
                           x == X_PWRITE ? off + (off_t)done : 0);
        if (r < 0) return r;
        if (r == 0 && n) return -EIO; /* no progress on a non-empty write */
        done += (size_t)r;
    } while (done < n);
    return (ssize_t)done;
}

ssize_t gort_read(int fd, void *buf, size_t n)
{
    return xfer_read(X_READ, fd, buf, n, 0, 0);
}

ssize_t gort_recv(int fd, void *buf, size_t n, int flags)
{
    if (!(flags & MSG_WAITALL) || (flags & MSG_PEEK))
        return xfer_read(X_RECV, fd, buf, n, flags, 0);
    /* MSG_WAITALL: transfers until n bytes, end of file or an error (then
     * the count so far, or the error if nothing came), as recv(2) does; the
     * pieces are plain receives, since a non-blocking socket (epoll mode)
     * or the first try without waiting (netio above) answers early. */
    flags &= ~MSG_WAITALL;
    size_t done = 0;
    while (done < n) {
        ssize_t r = xfer_read(X_RECV, fd, (char *)buf + done, n - done, flags, 0);
        if (r < 0) return done ? (ssize_t)done : r;
        if (r == 0) break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t gort_pread(int fd, void *buf, size_t n, off_t off)
{
    if (off < 0) return -EINVAL;
    return xfer_read(X_PREAD, fd, buf, n, 0, off);
}

ssize_t gort_write(int fd, const void *buf, size_t n)
{
    return xfer_write(X_WRITE, fd, buf, n, 0, 0);
}

ssize_t gort_send(int fd, const void *buf, size_t n, int flags)
{
    return xfer_write(X_SEND, fd, buf, n, flags, 0);
}

ssize_t gort_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (off < 0) return -EINVAL;
    return xfer_write(X_PWRITE, fd, buf, n, 0, off);
}

/* ---- accept and connect ---------------------------------------------------------------- */

static int accept_once(struct fdstate *fs, struct sockaddr *addr, socklen_t *len)
{
    int fd = fs->fd;
    if (netpoll_mode() == NETPOLL_URING) {
        struct io_uring_sqe t;
        memset(&t, 0, sizeof t);
        io_uring_prep_accept(&t, fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        return uring_xfer(fs, 0, &t, false, false);
    }
    if (!epoll_watch(fs)) return -ENOTSOCK;
    for (;;) {
        int r = (int)sys_result(accept4(fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (r == -EINTR || r == -ECONNABORTED) continue;
        if (r != -EAGAIN) return r;
        r = epoll_wait_ready(fs, 0, false);
        if (r < 0) return r;
    }
}

int gort_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (fd < 0) return -EBADF;
    if ((addr == NULL) != (len == NULL)) return -EINVAL;
    preempt_check();
    if (!in_goroutine()) {
        for (;;) {
            int r = (int)sys_result(accept4(fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (r == -EINTR || r == -ECONNABORTED) continue;
            if (r == -EAGAIN && (r = wait_fd_plain(fd, 0)) == 0) continue;
            if (r >= 0) fd_fresh(r, FD_SOCKET);
            return r;
        }
    }
    struct fdstate *fs = fd_state(fd);
    if (!fs) return -EBADF;
    int64_t backoff = 5 * 1000 * 1000;
    for (;;) {
        int e = call_begin(fs, 0, false);
        if (e) return e;
        int r = accept_once(fs, addr, len);
        call_end(fs);
        if (r >= 0) {
            fd_fresh(r, FD_SOCKET);
            return r;
        }
        if (r == -ECONNABORTED || r == -EINTR) continue;
        if (r != -EMFILE && r != -ENFILE && r != -ENOBUFS && r != -ENOMEM) return r;
        /* Out of descriptors: wait for some to be closed, as Go's
         * net/http server does (5 ms doubling to 1 s), not spin. */
        rlock_acquire(&fs->lock);
        int64_t d = fs->deadline[0];
        bool closing = fs->closing;
        rlock_release(&fs->lock);
        if (closing) return -EBADF;
        int64_t wait = backoff;
        if (d) {
            int64_t left = d - nanotime();
            if (left <= 0) return -ETIMEDOUT;
            if (left < wait) wait = left;
        }
        gort_sleep(wait);
        if (backoff < 1000 * 1000 * 1000) backoff *= 2;
    }
}

int gort_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fd < 0) return -EBADF;
    if (!addr) return -EINVAL;
    preempt_check();
    if (!in_goroutine()) {
        int r = (int)sys_result(connect(fd, addr, len));
        if (r != -EINPROGRESS && r != -EINTR) return r;
        if ((r = wait_fd_plain(fd, 1)) < 0) return r;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) return -errno;
        return -err;
    }
    struct fdstate *fs = fd_state(fd);
    if (!fs) return -EBADF;
    rlock_acquire(&fs->lock);
    enum fdkind kind = fd_kind_locked(fs);
    rlock_release(&fs->lock);
    if (kind == FD_UNKNOWN) return -EBADF;
    if (kind != FD_SOCKET) return -ENOTSOCK;
    int e = call_begin(fs, 1, false);
    if (e) return e;
    int r;
    if (netpoll_mode() == NETPOLL_URING) {
        struct io_uring_sqe t;
        memset(&t, 0, sizeof t);
        io_uring_prep_connect(&t, fd, addr, len);
        r = uring_xfer(fs, 1, &t, false, true);
    } else if (!epoll_watch(fs)) {
        r = -ENOTSOCK;
    } else {
        r = (int)sys_result(connect(fd, addr, len));
        if (r == -EINPROGRESS || r == -EINTR) {
            for (;;) {
                r = epoll_wait_ready(fs, 1, false);
                if (r < 0) break;
                int err = 0;
                socklen_t el = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) {
                    r = -errno;
                    break;
                }
                /* Writable with no error: connected, unless still in
                 * progress (a spurious edge): then wait again. */
                if (err == EINPROGRESS || err == EALREADY) continue;
                if (err) {
                    r = -err;
                    break;
                }
                struct sockaddr_storage peer;
                socklen_t pl = sizeof peer;
                r = getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 ? -errno : 0;
                if (r == -ENOTCONN) continue;
                break;
            }
        }
    }
    call_end(fs);
    return r;
}

/* ---- files ---------------------------------------------------------------------------- */

int gort_open(const char *path, int flags, mode_t mode)
{
    if (!path) return -EFAULT;
    preempt_check();
    flags |= O_CLOEXEC;
    int r;
    if (!in_goroutine()) {
        do
            r = (int)sys_result(open(path, flags, mode));
        while (r == -EINTR);
    } else if (netpoll_mode() == NETPOLL_URING) {
        struct io_uring_sqe t;
        memset(&t, 0, sizeof t);
        io_uring_prep_openat(&t, AT_FDCWD, path, flags, mode);
        do
            r = uring_run(NULL, 0, &t, true);
        while (r == -EINTR || r == -ECANCELED);
    } else {
        gort_blocking_begin();
        do
            r = (int)sys_result(open(path, flags, mode));
        while (r == -EINTR);
        gort_blocking_end();
    }
    if (r >= 0) fd_fresh(r, FD_UNKNOWN);
    return r;
}

int gort_fsync(int fd)
{
    if (fd < 0) return -EBADF;
    preempt_check();
    int r;
    if (in_goroutine() && netpoll_mode() == NETPOLL_URING) {
        struct fdstate *fs = fd_state(fd);
        if (!fs) return -EBADF;
        int e = call_begin(fs, 1, true);
        if (e) return e;
        struct io_uring_sqe t;
        memset(&t, 0, sizeof t);
        io_uring_prep_fsync(&t, fd, 0);
        do
            r = uring_run(fs, 1, &t, true);
        while (r == -EINTR || (r == -ECANCELED && !cancel_reason(fs, 1, true)));
        if (r == -ECANCELED) r = cancel_reason(fs, 1, true);
        call_end(fs);
        return r;
    }
    bool g = in_goroutine();
    if (g) gort_blocking_begin();
    do
        r = (int)sys_result(fsync(fd));
    while (r == -EINTR);
    if (g) gort_blocking_end();
    return r;
}

int gort_shutdown(int fd, int how)
{
    if (fd < 0) return -EBADF;
    /* Never blocks: the plain call (which also wakes readers that wait for
     * the peer, as in Go's CloseRead/CloseWrite). */
    return (int)sys_result(shutdown(fd, how));
}

int gort_close(int fd)
{
    if (fd < 0) return -EBADF;
    struct fdstate *fs = fd_state(fd);
    if (!fs) return (int)sys_result(close(fd));
    struct g *gs[16];
    int n;
    rlock_acquire(&fs->lock);
    if (fs->closing) {
        rlock_release(&fs->lock);
        return -EBADF;
    }
    fs->closing = true;
    n = wake_ops_locked(fs, 3, -EBADF, gs, 16);
    bool wait = fs->refs > 0 && in_goroutine();
    struct iop closer;
    if (wait) {
        memset(&closer, 0, sizeof closer);
        closer.g = gort_g();
        atomic_store_explicit(&closer.state, IOP_WAIT, memory_order_relaxed);
        fs->closer = &closer;
        netpoll_arm();
    }
    rlock_release(&fs->lock);
    inject_all(gs, n);
    /* Wait for the calls in progress to leave: until then one of them may
     * still submit a request naming fd. */
    if (wait) iop_wait(&closer, WAIT_IO);
    rlock_acquire(&fs->dllock);
    timer_del(&fs->timer[0]);
    timer_del(&fs->timer[1]);
    rlock_release(&fs->dllock);
    int r = (int)sys_result(close(fd));
    /* EINTR from close: the descriptor is gone anyway (Linux); report 0. */
    if (r == -EINTR) r = 0;
    fd_fresh(fd, FD_UNKNOWN);
    return r;
}

/* ---- TCP helpers ---------------------------------------------------------------------- */

/* getaddrinfo in a blocking region (it may talk to a DNS server). */
static int resolve(const char *host, int port, bool passive, struct addrinfo **out)
{
    if (port < 0 || port > 65535) return -EINVAL;
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_ADDRCONFIG | AI_NUMERICSERV;
    bool g = in_goroutine();
    if (g) gort_blocking_begin();
    int e = getaddrinfo(host, ps, &hints, out);
    if (e == EAI_NONAME || e == EAI_ADDRFAMILY) { /* AI_ADDRCONFIG on a loopback-only host */
        hints.ai_flags &= ~AI_ADDRCONFIG;
        e = getaddrinfo(host, ps, &hints, out);
    }
    if (g) gort_blocking_end();
    switch (e) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_NODATA:
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return -EIO;
    default:
        return -EINVAL;
    }
}

int gort_listen_tcp(const char *host, int port, int backlog)
{
    if (backlog <= 0) backlog = SOMAXCONN;
    bool any = !host || !*host || !strcmp(host, "*");
    struct addrinfo *ai = NULL;
    int err = resolve(any ? NULL : host, port, true, &ai);
    if (err < 0) return err;
    /* With no host, prefer the IPv6 wildcard, which also takes IPv4 (as
     * Go's ":port" does); getaddrinfo lists IPv4 first. */
    struct addrinfo *order[16];
    int n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (struct addrinfo *a = ai; a && n < 16; a = a->ai_next)
            if (!any ? pass == 0 : (a->ai_family == AF_INET6) == (pass == 0)) order[n++] = a;
    int fd = -EADDRNOTAVAIL;
    for (int i = 0; i < n; i++) {
        struct addrinfo *a = order[i];
        int s = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0) {
            fd = -errno;
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (a->ai_family == AF_INET6 && any)
            setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(s, a->ai_addr, a->ai_addrlen) < 0 || listen(s, backlog) < 0) {
            fd = -errno;
            close(s);
            continue;
        }
        fd = s;
        break;
    }
    freeaddrinfo(ai);
    if (fd >= 0) fd_fresh(fd, FD_SOCKET);
    return fd;
}

int gort_dial_tcp(const char *host, int port, int64_t timeout_ns)
{
    if (!host || !*host) host = "localhost";
    int64_t deadline = timeout_ns > 0 ? nanotime() + timeout_ns : 0;
    struct addrinfo *ai = NULL;
    int err = resolve(host, port, false, &ai);
    if (err < 0) return err;
    int fd = -ECONNREFUSED;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        if (deadline && nanotime() >= deadline) {
            fd = -ETIMEDOUT;
            break;
        }
        int s = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0) {
            fd = -errno;
            continue;
        }
        fd_fresh(s, FD_SOCKET);
        if (deadline) gort_set_write_deadline(s, deadline);
        int r = gort_connect(s, a->ai_addr, a->ai_addrlen);
        if (r == 0) {
            if (deadline) gort_set_write_deadline(s, 0);
            int one = 1;
            setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fd = s;
            break;
        }
        fd = r;
        gort_close(s);
    }
    freeaddrinfo(ai);
    return fd;
}

const char *gort_poller_name(void)
{
    return netpoll_mode_name();
}
